//! [`BeforeCommit`]: work a backup's caller runs once all the point's data is uploaded and
//! before its manifest is sealed, whose warnings become the point's (a snapshot job's
//! `after` hook, so that its failure is a warning on the point).

use std::fmt;
use std::sync::Mutex;

use crate::sync::LockExt;

type Callback = Box<dyn FnOnce() -> Vec<String> + Send>;

/// A callback run at most once, after the uploads and before the manifest is written;
/// the warnings it returns are the backup's like any other (counted in
/// `stats.warnings`, kept in the manifest's `warnings`). Not run when the backup fails
/// before that.
pub struct BeforeCommit(Mutex<Option<Callback>>);

impl BeforeCommit {
    pub fn new(callback: impl FnOnce() -> Vec<String> + Send + 'static) -> BeforeCommit {
        BeforeCommit(Mutex::new(Some(Box::new(callback))))
    }

    /// Runs the callback if it has not run yet; its warnings.
    pub(super) fn run(&self) -> Vec<String> {
        let callback = self.0.locked().take();
        callback.map(|f| f()).unwrap_or_default()
    }
}

impl fmt::Debug for BeforeCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BeforeCommit")
    }
}

//! Progress reporting and cancellation: the engine reports through [`Progress`]; the job
//! system stores it, the CLI draws it, tests ignore it ([`NoProgress`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Receives progress from a running operation. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// The total amount of work, once known (may arrive after work has started).
    fn set_total(&self, _files: u64, _bytes: u64) {}
    /// One file (or other entry) is done; `bytes` is its logical size.
    fn file_done(&self, _path: &Path, _bytes: u64) {}
    /// Bytes of an entry still being read (a stream), counted as they arrive; its
    /// `file_done` then gives only the bytes not counted here.
    fn bytes_read(&self, _bytes: u64) {}
    /// A condition the operation survived, in words a person acts on.
    fn warn(&self, _message: &str) {}
    /// A named phase begins (e.g. "scanning", "uploading", "staging", "swapping").
    fn phase(&self, _name: &str) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A cancellation flag shared between the requester and the operation.
#[derive(Debug, Default, Clone)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once cancelled: sprinkle at safe points.
    pub fn check(&self) -> Result<(), super::EngineError> {
        if self.is_cancelled() {
            Err(super::EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

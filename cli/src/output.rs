//! Standard output that a reader going away cannot crash. Rust ignores SIGPIPE, so a
//! write to a closed pipe fails with EPIPE, and `println!` panics on any failed write
//! (`cairn jobs | head -1` ended with "Broken pipe" and exit code 101). Every `println!`
//! of this crate is the macro in main.rs, which writes through [`line`]: once stdout is
//! closed the rest of the output is dropped and the command ends as it would have (its
//! work done, its exit code kept); any other write error is reported when it ends.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cairn::sync::LockExt;

/// Set once a write found stdout closed (or failing): nothing more is written.
static STOPPED: AtomicBool = AtomicBool::new(false);
/// The first write error other than a closed pipe.
static FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes one line to stdout, unless stdout failed before.
pub fn line(args: fmt::Arguments<'_>) {
    if STOPPED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        STOPPED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut failure = FAILURE.locked();
            failure.get_or_insert(e);
        }
    }
}

/// Flushes stdout; returns the first write error that was not a closed pipe.
pub fn finish() -> Option<io::Error> {
    if !STOPPED.load(Ordering::Relaxed) {
        if let Err(e) = io::stdout().lock().flush() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Some(e);
            }
        }
    }
    FAILURE.locked().take()
}

//! Lines on stderr that can never take the process down. A mount daemon's stderr is its
//! log file in the cache directory: when that disk is full, `eprintln!` panics ("failed
//! printing to stderr"), and a panic in a destructor aborts the daemon. A line that cannot
//! be written is dropped.

use std::io::Write;

/// Writes one line to stderr, ignoring any failure.
pub fn line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `eprintln!` that ignores write errors.
macro_rules! note {
    () => {
        $crate::stderr_note::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stderr_note::line(format_args!($($arg)*))
    };
}

pub(crate) use note;

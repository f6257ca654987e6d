//! A one-line progress display on stderr: phase, files, bytes, and percent and ETA once
//! the total is known. Drawn only when stderr is a terminal; warnings are printed either
//! way.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn::engine::Progress;
use cairn::sync::LockExt;

use crate::human_units;

const REDRAW: Duration = Duration::from_millis(200);

struct Shared {
    draw: bool,
    /// What `file_done` counts: "files", "objects".
    noun: &'static str,
    /// Whether warnings are printed as they come (else the command reports them).
    print_warnings: bool,
    start: Instant,
    files: AtomicU64,
    bytes: AtomicU64,
    /// (files, bytes) once known.
    total: Mutex<Option<(u64, u64)>>,
    phase: Mutex<String>,
    /// Held while writing to stderr; true while a progress line is on screen.
    line_shown: Mutex<bool>,
    /// Warnings printed while the operation ran.
    warned: Mutex<Vec<String>>,
}

impl Shared {
    fn line(&self) -> String {
        let files = self.files.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let phase = self.phase.lock().map(|p| p.clone()).unwrap_or_default();
        let elapsed = self.start.elapsed();
        let mut line = format!(
            "{phase}: {files} {}, {}",
            self.noun,
            human_units::bytes(bytes)
        );
        let total = *self.total.locked();
        if let Some((total_files, total_bytes)) = total {
            // Percent by bytes when the operation counts bytes, else by items.
            let done = if total_bytes > 0 {
                line.push_str(&format!(" of {}", human_units::bytes(total_bytes)));
                bytes as f64 / total_bytes as f64
            } else if total_files > 0 {
                line.push_str(&format!(" ({files} of {total_files})"));
                files as f64 / total_files as f64
            } else {
                0.0
            };
            let done = done.min(1.0);
            if done > 0.0 {
                line.push_str(&format!(" {:.0}%", done * 100.0));
            }
            if done > 0.01 && done < 1.0 {
                let eta = elapsed.as_secs_f64() * (1.0 - done) / done;
                line.push_str(&format!(
                    " ETA {}",
                    human_units::duration(Duration::from_secs_f64(eta))
                ));
            }
        }
        line.push_str(&format!(
            ", {}/s",
            human_units::bytes(human_units::bytes_per_sec(bytes, elapsed))
        ));
        line
    }

    fn redraw(&self) {
        let line = self.line();
        let width = terminal_width().saturating_sub(1).max(20);
        let line: String = line.chars().take(width).collect();
        let mut shown = self.line_shown.locked();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        *shown = true;
    }

    /// Prints a line of its own, moving the progress line out of the way.
    fn print_line(&self, text: &str) {
        let mut shown = self.line_shown.locked();
        let mut err = std::io::stderr().lock();
        if *shown {
            let _ = write!(err, "\r\x1b[2K");
            *shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    fn clear(&self) {
        let mut shown = self.line_shown.locked();
        if *shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            *shown = false;
        }
    }
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            ws.ws_col as usize
        } else {
            80
        }
    }
}

/// The CLI's [`Progress`]: call [`TermProgress::finish`] when the operation returns.
pub struct TermProgress {
    shared: Arc<Shared>,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl TermProgress {
    /// Draws when stderr is a terminal. `noun` names what is counted; with
    /// `print_warnings` false, warnings are only collected (the command reports them).
    pub fn new(first_phase: &str, noun: &'static str, print_warnings: bool) -> TermProgress {
        let shared = Arc::new(Shared {
            draw: std::io::stderr().is_terminal(),
            noun,
            print_warnings,
            start: Instant::now(),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total: Mutex::new(None),
            phase: Mutex::new(first_phase.to_string()),
            line_shown: Mutex::new(false),
            warned: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let ticker = shared.draw.then(|| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("cairn-progress".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(REDRAW) {
                        s.redraw();
                    }
                })
                .ok()
        });
        TermProgress {
            shared,
            stop: Mutex::new(Some(tx)),
            ticker: Mutex::new(ticker.flatten()),
        }
    }

    /// Stops drawing and clears the line.
    pub fn finish(&self) {
        drop(self.stop.locked().take());
        if let Some(t) = self.ticker.locked().take() {
            let _ = t.join();
        }
        self.shared.clear();
    }

    /// Sets the counters to figures measured elsewhere (a job in a mount's daemon).
    pub fn set_counts(&self, files: u64, bytes: u64) {
        self.shared.files.store(files, Ordering::Relaxed);
        self.shared.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Prints those of an operation's final warnings that were not reported while it ran.
    pub fn print_unseen_warnings(&self, warnings: &[String]) {
        let seen = self.shared.warned.locked().clone();
        for w in warnings.iter().filter(|w| !seen.contains(w)) {
            self.shared.print_line(&format!("warning: {w}"));
        }
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress for TermProgress {
    fn set_total(&self, files: u64, bytes: u64) {
        *self.shared.total.locked() = Some((files, bytes));
    }

    fn file_done(&self, _path: &Path, bytes: u64) {
        self.shared.files.fetch_add(1, Ordering::Relaxed);
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn warn(&self, message: &str) {
        if !self.shared.print_warnings {
            return;
        }
        self.shared.warned.locked().push(message.to_string());
        self.shared.print_line(&format!("warning: {message}"));
    }

    fn phase(&self, name: &str) {
        *self.shared.phase.locked() = name.to_string();
    }
}

//! The progress display on stderr, drawn by indicatif: a spinner with the phase, files,
//! bytes and rate, then a bar with percent and ETA once the total is known. Drawn only
//! when stderr is a terminal; warnings are printed either way, each on a line of its own
//! (`warning: ...`), which is all a script reading stderr sees.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn::engine::Progress;
use cairn::sync::LockExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::human_units;

const REDRAW: Duration = Duration::from_millis(200);

/// Before the total is known: what is done so far.
const SPINNER: &str = "{spinner} {msg}: {files} {noun}, {size}, {rate}/s";
/// The total is known in bytes: the bar counts bytes.
const BY_BYTES: &str =
    "{spinner} {msg}: {files} {noun}, {size} of {total_size} [{wide_bar}] {percent}%{eta}, {rate}/s";
/// The total is known in items only: the bar counts them.
const BY_ITEMS: &str =
    "{spinner} {msg}: {files} {noun}, {size} ({pos} of {len}) [{wide_bar}] {percent}%{eta}, {rate}/s";

/// What the operation reported, beside the bar (whose position is one of them).
#[derive(Default)]
struct Counts {
    files: AtomicU64,
    bytes: AtomicU64,
    /// The bar's position counts items, not bytes (a total known in items only).
    by_items: AtomicBool,
}

impl Counts {
    /// The bar's position: items or bytes.
    fn position(&self) -> u64 {
        if self.by_items.load(Ordering::Relaxed) {
            self.files.load(Ordering::Relaxed)
        } else {
            self.bytes.load(Ordering::Relaxed)
        }
    }
}

/// `template` with cairn's keys: counts and sizes in the units of the command's summary.
fn style(template: &str, noun: &'static str, counts: &Arc<Counts>) -> ProgressStyle {
    let template = template.replace("{noun}", noun);
    let files = counts.clone();
    let size = counts.clone();
    let rate = counts.clone();
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "files",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", files.files.load(Ordering::Relaxed));
            },
        )
        .with_key(
            "size",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&human_units::bytes(size.bytes.load(Ordering::Relaxed)));
            },
        )
        .with_key(
            "total_size",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&human_units::bytes(s.len().unwrap_or(0)));
            },
        )
        .with_key("eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let done = s.fraction();
            if done > 0.01 && done < 1.0 {
                let _ = write!(w, " ETA {}", human_units::duration(s.eta()));
            }
        })
        .with_key(
            "rate",
            move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                // indicatif's recent rate when the bar counts bytes, else the average.
                let per_sec = if rate.by_items.load(Ordering::Relaxed) {
                    human_units::bytes_per_sec(rate.bytes.load(Ordering::Relaxed), s.elapsed())
                } else {
                    s.per_sec() as u64
                };
                let _ = w.write_str(&human_units::bytes(per_sec));
            },
        )
}

/// The CLI's [`Progress`]: call [`TermProgress::finish`] when the operation returns.
pub struct TermProgress {
    bar: ProgressBar,
    counts: Arc<Counts>,
    /// What `file_done` counts: "files", "objects".
    noun: &'static str,
    /// Whether warnings are printed as they come (else the command reports them).
    print_warnings: bool,
    /// The template drawn now (one of the three above).
    template: Mutex<&'static str>,
    /// Warnings printed while the operation ran.
    warned: Mutex<Vec<String>>,
}

impl TermProgress {
    /// Draws when stderr is a terminal. `noun` names what is counted; with
    /// `print_warnings` false, warnings are only collected (the command reports them).
    pub fn new(first_phase: &str, noun: &'static str, print_warnings: bool) -> TermProgress {
        let counts = Arc::new(Counts::default());
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target)
            .with_style(style(SPINNER, noun, &counts))
            .with_message(first_phase.to_string());
        if !bar.is_hidden() {
            bar.enable_steady_tick(REDRAW);
        }
        TermProgress {
            bar,
            counts,
            noun,
            print_warnings,
            template: Mutex::new(SPINNER),
            warned: Mutex::new(Vec::new()),
        }
    }

    /// Stops drawing and clears the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Sets the counters to figures measured elsewhere (a job in a mount's daemon).
    pub fn set_counts(&self, files: u64, bytes: u64) {
        self.counts.files.store(files, Ordering::Relaxed);
        self.counts.bytes.store(bytes, Ordering::Relaxed);
        self.bar.set_position(self.counts.position());
    }

    /// Prints those of an operation's final warnings that were not reported while it ran.
    pub fn print_unseen_warnings(&self, warnings: &[String]) {
        let seen = self.warned.locked().clone();
        for w in warnings.iter().filter(|w| !seen.contains(w)) {
            self.print_line(&format!("warning: {w}"));
        }
    }

    /// Prints a line of its own, moving the progress line out of the way.
    fn print_line(&self, text: &str) {
        self.bar.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        });
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress for TermProgress {
    fn set_total(&self, files: u64, bytes: u64) {
        // Percent by bytes when the operation counts bytes, else by items.
        let (template, len) = if bytes > 0 {
            (BY_BYTES, bytes)
        } else if files > 0 {
            (BY_ITEMS, files)
        } else {
            return;
        };
        let mut shown = self.template.locked();
        if *shown != template {
            // A job's follower hears the total at every poll: restyle only on a change.
            *shown = template;
            self.counts
                .by_items
                .store(template == BY_ITEMS, Ordering::Relaxed);
            self.bar.set_style(style(template, self.noun, &self.counts));
        }
        drop(shown);
        self.bar.set_length(len);
        self.bar.set_position(self.counts.position());
    }

    fn file_done(&self, _path: &Path, bytes: u64) {
        self.counts.files.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.bar.set_position(self.counts.position());
    }

    fn bytes_read(&self, bytes: u64) {
        self.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.bar.set_position(self.counts.position());
    }

    fn warn(&self, message: &str) {
        if !self.print_warnings {
            return;
        }
        self.warned.locked().push(message.to_string());
        self.print_line(&format!("warning: {message}"));
    }

    fn phase(&self, name: &str) {
        self.bar.set_message(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for template in [SPINNER, BY_BYTES, BY_ITEMS] {
            let template = template.replace("{noun}", "files");
            assert!(
                ProgressStyle::with_template(&template).is_ok(),
                "{template}"
            );
        }
    }
}

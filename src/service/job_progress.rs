//! A job's live progress: the counters the engine updates through [`Progress`] while the
//! job runs, its log lines, and the `progress` object of its status.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::engine::Progress;
use crate::sync::LockExt;

/// The `progress` object of a status. Every field has a default, so that the empty
/// object of a job cut off before its first status reads too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressStatus {
    // Alphabetical, as every JSON object the daemon writes.
    pub bytes: u64,
    pub eta_seconds: Option<f64>,
    pub files: u64,
    pub percent: Option<f64>,
    pub phase: Option<String>,
    pub total_bytes: Option<u64>,
    pub total_files: Option<u64>,
}

/// Counters the engine updates through [`Progress`].
#[derive(Debug, Default)]
pub struct JobProgress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub total_files: AtomicU64,
    pub total_bytes: AtomicU64,
    pub phase: Mutex<String>,
    pub log: Mutex<Vec<String>>,
}

impl JobProgress {
    pub fn log_line(&self, line: String) {
        let mut log = self.log.locked();
        if log.len() < 10_000 {
            log.push(line);
        }
    }

    /// The byte length of [`log_text`](Self::log_text), without building it.
    pub fn log_len(&self) -> u64 {
        let log = self.log.locked();
        log.iter().map(|l| l.len() as u64 + 1).sum()
    }

    pub fn log_text(&self) -> String {
        let log = self.log.locked();
        let mut s = log.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// The `progress` object of a status document.
    pub fn status(&self, elapsed_s: f64) -> ProgressStatus {
        let files = self.files.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let total_files = self.total_files.load(Ordering::Relaxed);
        let total_bytes = self.total_bytes.load(Ordering::Relaxed);
        let percent = if total_bytes > 0 {
            Some((bytes as f64 * 100.0 / total_bytes as f64).min(100.0))
        } else if total_files > 0 {
            Some((files as f64 * 100.0 / total_files as f64).min(100.0))
        } else {
            None
        };
        let eta = percent
            .filter(|p| *p > 0.5 && elapsed_s > 0.0)
            .map(|p| (elapsed_s * (100.0 - p) / p).round());
        ProgressStatus {
            phase: Some(self.phase.lock().map(|p| p.clone()).unwrap_or_default()),
            files,
            bytes,
            total_files: (total_files > 0).then_some(total_files),
            total_bytes: (total_bytes > 0).then_some(total_bytes),
            percent: percent.map(|p| (p * 10.0).round() / 10.0),
            eta_seconds: eta,
        }
    }
}

impl Progress for JobProgress {
    fn set_total(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        self.total_bytes.store(bytes, Ordering::Relaxed);
    }

    fn file_done(&self, _path: &Path, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn bytes_read(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn warn(&self, message: &str) {
        self.log_line(format!("warning: {message}"));
    }

    fn phase(&self, name: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = name.to_string();
        }
        self.log_line(format!("phase: {name}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_length_is_the_length_of_its_text() {
        let progress = JobProgress::default();
        assert_eq!(progress.log_len(), 0);
        assert_eq!(progress.log_text(), "");
        for line in ["phase: scanning", "", "fichier é 日本 🦀", "done"] {
            progress.log_line(line.to_string());
            assert_eq!(progress.log_len(), progress.log_text().len() as u64);
        }
    }
}

//! Skipping damaged files (`skip_damaged`): a file with a missing, corrupt or wrongly
//! sized chunk is taken out of the stage when its last chunk was handled (an in-place
//! restore puts the original back in its place), and named in the outcome.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{join, open_staged, FileJob, Stager};
use crate::engine::{EngineError, Result};

impl Stager<'_> {
    /// A damaged chunk of a staged file: fails the restore, or with `skip_damaged` marks
    /// the file to be skipped when it completes.
    pub(super) fn damage(
        &self,
        job: &FileJob<'_>,
        damaged: &AtomicBool,
        e: EngineError,
    ) -> Result<()> {
        if !self.skip_damaged || !e.is_damage() {
            return Err(e);
        }
        if !damaged.swap(true, Ordering::AcqRel) {
            self.warn(format!(
                "skipped damaged file {}: {e}",
                join(&job.unit.dest, &job.leaf.rel).display()
            ));
        }
        Ok(())
    }

    /// A staged file whose chunks were all handled: finished, or skipped if damaged.
    pub(super) fn complete(
        &self,
        job: &FileJob<'_>,
        damaged: &AtomicBool,
        file: Option<fs::File>,
    ) -> Result<()> {
        if damaged.load(Ordering::Acquire) {
            return self.skip(job);
        }
        match file {
            Some(f) => self.finish_file(job, &f),
            None => self.finish_file(job, &open_staged(&job.path)?),
        }
    }

    /// Takes a damaged file out of the stage; an in-place restore keeps the original
    /// there instead (as if the file were out of scope).
    fn skip(&self, job: &FileJob<'_>) -> Result<()> {
        fs::remove_file(&job.path).map_err(|e| EngineError::io("removing", &job.path, e))?;
        if let Some(original) = &job.leaf.existing {
            match fs::hard_link(original, &job.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(EngineError::io("linking", &job.path, e))
                }
                _ => {}
            }
        }
        self.skipped_stage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.path.clone());
        self.skipped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(join(&job.unit.dest, &job.leaf.rel));
        Ok(())
    }
}

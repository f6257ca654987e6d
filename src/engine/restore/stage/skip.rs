//! Skipping damaged files (`skip_damaged`): a file with a missing, corrupt or wrongly
//! sized chunk is taken out of the stage when its last chunk was handled (an in-place
//! restore puts the original back in its place), and named in the outcome.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{join, open_staged, FileJob, Leaf, Stager, Unit};
use crate::engine::{EngineError, Result};
use crate::sync::LockExt;

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
        self.skipped_in_place(&job.path, job.leaf, join(&job.unit.dest, &job.leaf.rel))
    }

    /// Whether `leaf`, a later member of a hard-link group whose first member (`first`,
    /// in the stage) was skipped as damaged, is skipped too (then it is handled).
    pub(super) fn skip_link(&self, unit: &Unit, leaf: &Leaf, first: &Path) -> Result<bool> {
        let group_skipped = self.skipped_stage.locked().contains(first);
        if !self.skip_damaged || !group_skipped {
            return Ok(false);
        }
        let dest = join(&unit.dest, &leaf.rel);
        self.warn(format!(
            "skipped damaged file {}: a hard link of a damaged file",
            dest.display()
        ));
        self.skipped_in_place(&join(&unit.stage, &leaf.rel), leaf, dest)?;
        Ok(true)
    }

    /// Records a skipped file, putting its original (in place) at its stage path.
    fn skipped_in_place(&self, path: &Path, leaf: &Leaf, dest: PathBuf) -> Result<()> {
        if let Some(original) = &leaf.existing {
            match fs::hard_link(original, path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(EngineError::io("linking", path, e))
                }
                _ => {}
            }
        }
        self.skipped_stage.locked().insert(path.to_path_buf());
        self.skipped.locked().push(dest);
        Ok(())
    }
}

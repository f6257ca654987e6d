//! Deleting a finished job by hand: `rm -r <mnt>/.cairn/jobs/<id>`. `rm -r` unlinks the
//! job's `status` and `log` first, then removes the directory; so unlinking a job file
//! hides it (in this mount, until it ends) and removing the emptied directory deletes the
//! job from the history. Only the mount owner may, and never for a queued or running job
//! (`EBUSY`). Everything else in the mount is read-only (`EROFS`).

use super::state::{DIFFERENCES, JOB_FILES};
use super::{FsResult, Inode, Namespace, JOBS_DIR};
use crate::sync::LockExt;

impl Namespace {
    fn owner_or_root(&self, uid: u32) -> FsResult<()> {
        if uid == self.owner_uid || uid == 0 {
            Ok(())
        } else {
            Err(libc::EACCES)
        }
    }

    /// Whether `file` of job `id` was unlinked.
    pub(super) fn job_file_removed(&self, id: u64, file: &str) -> bool {
        self.removed
            .locked()
            .get(&id)
            .is_some_and(|s| s.contains(file))
    }

    /// `unlink(parent/name)` by `uid`.
    pub fn unlink(&self, parent: u64, name: &[u8], uid: u32) -> FsResult<()> {
        let Inode::JobDir(id) = self.inode(parent)? else {
            // Exists or not, nothing else can be removed.
            self.child_of(parent, name)?;
            return Err(libc::EROFS);
        };
        let file = JOB_FILES
            .into_iter()
            .chain([DIFFERENCES])
            .find(|f| f.as_bytes() == name && !self.job_file_removed(id, f))
            .ok_or(libc::ENOENT)?;
        self.service.job_status(id).ok_or(libc::ENOENT)?;
        self.owner_or_root(uid)?;
        if self.service.job_is_live(id) {
            return Err(libc::EBUSY);
        }
        self.removed.locked().entry(id).or_default().insert(file);
        Ok(())
    }

    /// `rmdir(parent/name)` by `uid`: a job directory whose files were unlinked deletes
    /// the job (an event); one that still shows files is `ENOTEMPTY`.
    pub fn rmdir(&self, parent: u64, name: &[u8], uid: u32) -> FsResult<()> {
        let (_, child) = self.child_of(parent, name)?;
        let (JOBS_DIR, Inode::JobDir(id)) = (parent, child) else {
            return Err(libc::EROFS);
        };
        self.owner_or_root(uid)?;
        if self.service.job_is_live(id) {
            return Err(libc::EBUSY);
        }
        if JOB_FILES.iter().any(|f| !self.job_file_removed(id, f)) {
            return Err(libc::ENOTEMPTY);
        }
        self.service
            .delete_job(id, uid, &format!("rmdir .cairn/jobs/{id}"))
            .map_err(|e| {
                tracing::info!("job {id} not deleted: {}", e.message);
                e.errno
            })?;
        self.removed.locked().remove(&id);
        Ok(())
    }
}

//! A job's input: `jobs/<id>/input`, the write-only file a snapshot with `stdin=NAME`
//! reads its stream from (docs/CONTROL.md, "Streams through the mount"). It is listed
//! while the job's input is open for writers; opening it for writing attaches a writer,
//! each write goes into the job's bounded pipe (and waits while the backup is behind),
//! and releasing the last writing handle closes the input. The service owns the pipe
//! (`service::job_input`); this file only maps the files onto it. It also lists a check
//! job's `differences` (docs/CONTROL.md, "Check").

use super::state::{Handle, DIFFERENCES, JOB_FILES};
use super::{Child, FsResult, Inode, Key, Namespace};

impl Namespace {
    /// `jobs/<id>/`: `status` and `log` unless unlinked, a check job's `differences`
    /// unless unlinked, and `input` while it is open.
    pub(super) fn job_dir_listing(&self, id: u64) -> Vec<Child> {
        let mut out = Vec::new();
        for file in JOB_FILES {
            if self.job_file_removed(id, file) {
                continue;
            }
            out.push(match file {
                "status" => Child::new(file, Key::JobStatus(id), Inode::JobStatus(id)),
                _ => Child::new(file, Key::JobLog(id), Inode::JobLog(id)),
            });
        }
        if !self.job_file_removed(id, DIFFERENCES) && self.service.job_differences(id).is_some() {
            let (key, inode) = (Key::JobDifferences(id), Inode::JobDifferences(id));
            out.push(Child::new(DIFFERENCES, key, inode));
        }
        if self.service.job_inputs().is_open(id) {
            out.push(Child::new("input", Key::JobInput(id), Inode::JobInput(id)));
        }
        out
    }

    /// Opens job `id`'s input: for writing, by the mount owner (or root) only.
    pub(super) fn open_input(&self, id: u64, write: bool, uid: u32) -> FsResult<Handle> {
        if !write || (uid != self.owner_uid && uid != 0) {
            return Err(libc::EACCES);
        }
        self.service.job_inputs().attach(id)?;
        Ok(Handle::Input(id))
    }

    /// Whether a write through `fh` may wait (a job's input; any control request, which
    /// may write to the repository or refresh from it): the adapter then runs it on a
    /// worker, not on a session thread.
    pub fn write_may_wait(&self, fh: u64) -> bool {
        matches!(
            self.handle(fh).as_deref(),
            Ok(Handle::Input(_) | Handle::Control { .. })
        )
    }
}

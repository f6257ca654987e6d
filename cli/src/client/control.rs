//! The control protocol of a running mount: finding the mount, writing one request into
//! `ctl/<file>` and reading the reply from the same handle (with what to try when it is
//! refused), reading job statuses and the mount's directories.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cairn::service::JobStatus;

use super::request::Request;
use crate::failure::{coded, usage};
use crate::mounts;

/// The mount to talk to when no `--mount` is given.
pub const MOUNT_ENV: &str = "CAIRN_MOUNT";

/// A mount's control plane.
pub struct Client {
    pub dir: PathBuf,
}

/// Reads a whole file through positioned reads, so that it works on a handle that was
/// also written to.
fn read_all_at(f: &File) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read_at(&mut buf, out.len() as u64)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The reply readable from a control file's handle, trimmed.
pub(super) fn reply_of(f: &File) -> String {
    read_all_at(f)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default()
}

/// The daemon's message in a reply to a write that failed with `e` (else `e`).
pub(super) fn refusal(reply: &str, e: &std::io::Error) -> String {
    reply
        .strip_prefix("error: ")
        .map(str::to_string)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| e.to_string())
}

/// What to try when the daemon refuses a request with `errno`.
fn refusal_hint(file: &str, errno: i32) -> Option<String> {
    let text = match (file, errno) {
        ("log", libc::EACCES) => {
            "only the mount's owner, and the users an instance names in --log-pushers (for \
             pushes of its logs), may write ctl/log; other users need a mount with --allow-other"
        }
        ("jobs", libc::EACCES | libc::EPERM) => {
            "only the mount's owner can delete jobs: run cairn as that user"
        }
        (_, libc::EACCES) => {
            "control files are writable by the mount's owner only: run cairn as that user"
        }
        ("snapshot" | "verify", libc::ENOENT) => {
            "`cairn instance list` shows the instances; `cairn instance add NAME --path P` defines one"
        }
        ("restore" | "forget", libc::ENOENT) => {
            "`cairn points INSTANCE` lists the points of an instance"
        }
        ("forget", libc::EPERM) => "manual points are forgotten only with --manual",
        ("instance", libc::ENOENT) => "`cairn instance list` shows the instances",
        ("policy", libc::ENOENT) => {
            "`cairn policy list` shows the policies and their instances; `cairn instance list` the instances"
        }
        ("policy", libc::EDQUOT) => {
            "`cairn policy settings --max-policies N --max-instances-per-policy N` raises the quotas"
        }
        ("policy", libc::EPERM) => {
            "the repository is write-once: scheduled points stay until their retention ends"
        }
        ("cancel", libc::ENOENT) => "`cairn jobs` lists the jobs and their states",
        ("restore", libc::EEXIST) => {
            "pick a --target that does not exist or is empty, or --mode in-place to restore over it"
        }
        (_, libc::ENOSPC) => {
            "free some space in the daemon's cache directory (CAIRN_CACHE_DIR), then run it again"
        }
        (_, libc::EIO) => "the daemon could not write to the repository: see its log",
        _ => return None,
    };
    Some(text.to_string())
}

impl Client {
    /// The mount at `dir`; an error naming what to do when it is not a cairn mount.
    pub fn open(dir: &Path) -> Result<Client> {
        let ctl = dir.join(".cairn").join("ctl");
        match std::fs::metadata(&ctl) {
            Ok(m) if m.is_dir() => Ok(Client {
                dir: dir.to_path_buf(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(usage(format!(
                "{} is a cairn mount whose daemon is gone: `cairn umount {}` clears it, then \
                 `cairn mount REPO {}` mounts it again",
                dir.display(),
                dir.display(),
                dir.display()
            ))),
            _ => {
                let what = if mounts::cairn_mount_at(dir).is_some() {
                    "a cairn mount that does not answer"
                } else if dir.is_dir() {
                    "not a cairn mount"
                } else {
                    "not a directory"
                };
                Err(usage(format!(
                    "{} is {what} (no {}): start one with `cairn mount REPO {}`, or point \
                     --mount / {MOUNT_ENV} at a running one",
                    dir.display(),
                    ctl.display(),
                    dir.display()
                )))
            }
        }
    }

    fn meta(&self) -> PathBuf {
        self.dir.join(".cairn")
    }

    /// Writes one request into `ctl/<file>` through a read-write handle and returns the
    /// reply read back from it. A refused request is an error with exit code 2 carrying
    /// the daemon's message.
    pub fn request(&self, file: &str, req: &Request) -> Result<String> {
        self.request_keeping(file, req).map(|(_, reply)| reply)
    }

    /// Like [`request`](Client::request), and returns the handle too (a push writes its
    /// bytes through it).
    pub fn request_keeping(&self, file: &str, req: &Request) -> Result<(File, String)> {
        let path = self.meta().join("ctl").join(file);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                let hint = refusal_hint(file, e.raw_os_error().unwrap_or(0));
                coded(2, format!("cannot open {}: {e}", path.display()), hint)
            })?;
        let line = req.line();
        let written = f.write(line.as_bytes());
        let reply = reply_of(&f);
        match written {
            Ok(n) if n == line.len() => Ok((f, reply)),
            Ok(n) => Err(anyhow::anyhow!(
                "only {n} of {} bytes of the request reached {}",
                line.len(),
                path.display()
            )),
            Err(e) => Err(coded(
                2,
                format!("ctl/{file} refused the request: {}", refusal(&reply, &e)),
                refusal_hint(file, e.raw_os_error().unwrap_or(0)),
            )),
        }
    }

    /// Writes a request that starts a job; returns the job id.
    pub fn start_job(&self, file: &str, req: &Request) -> Result<u64> {
        let reply = self.request(file, req)?;
        reply
            .strip_prefix("job=")
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected reply from ctl/{file}: {reply:?}"))
    }

    /// `jobs/<id>`.
    pub fn job_dir(&self, id: u64) -> PathBuf {
        self.meta().join("jobs").join(id.to_string())
    }

    fn status_path(&self, id: u64) -> PathBuf {
        self.job_dir(id).join("status")
    }

    /// Whether `jobs/<id>/status` is there.
    pub fn has_status(&self, id: u64) -> bool {
        self.status_path(id).is_file()
    }

    /// `jobs/<id>/status`.
    pub fn status(&self, id: u64) -> Result<JobStatus> {
        let path = self.status_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound && self.meta().join("jobs").is_dir() => {
                return Err(usage(format!(
                    "no job {id} in the mount at {}: `cairn jobs` lists the jobs",
                    self.dir.display()
                )))
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot read {}: {e} (did the mount go away? after mounting again, \
                     `cairn jobs {id}` shows the job's state)",
                    path.display()
                ))
            }
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON status", path.display()))
    }

    /// Job ids in the mount, oldest first.
    pub fn job_ids(&self) -> Result<Vec<u64>> {
        let dir = self.meta().join("jobs");
        let mut ids: Vec<u64> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Instance directories at the top of the mount (what `ls` shows), sorted.
    pub fn instances(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != ".cairn")
            .collect();
        names.sort();
        Ok(names)
    }

    /// The point directories of an instance, oldest first.
    pub fn points(&self, instance: &str) -> Result<Vec<String>> {
        Ok(self
            .points_with_times(instance)?
            .into_iter()
            .map(|(_, name)| name)
            .collect())
    }

    /// The point directories of an instance with their times (ns), oldest first.
    pub fn points_with_times(&self, instance: &str) -> Result<Vec<(i64, String)>> {
        let dir = self.dir.join(instance);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(usage(format!(
                    "no instance `{instance}` in the mount at {}: `cairn instance list` shows them",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        // Names sort by time only to the second: order by the point's time (its
        // directory's ctime, to the nanosecond; the mtime is the source directory's),
        // then by name.
        let mut points: Vec<(i64, String)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| {
                use std::os::unix::fs::MetadataExt;
                let time = e
                    .metadata()
                    .map(|m| m.ctime() * 1_000_000_000 + m.ctime_nsec())
                    .unwrap_or(0);
                Some((time, e.file_name().into_string().ok()?))
            })
            .collect();
        points.sort();
        Ok(points)
    }

    /// Deletes a finished job from the mount's history: `rm -r jobs/<id>`.
    pub fn delete_job(&self, id: u64) -> Result<()> {
        let dir = self.meta().join("jobs").join(id.to_string());
        std::fs::remove_dir_all(&dir).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => usage(format!(
                "no job {id} in the mount at {}: `cairn jobs` lists the jobs",
                self.dir.display()
            )),
            Some(libc::EBUSY) => coded(
                2,
                format!("job {id} is queued or running and cannot be deleted"),
                Some(format!(
                    "`cairn cancel {id}` stops it; delete it once it has ended"
                )),
            ),
            Some(errno @ (libc::EACCES | libc::EPERM)) => coded(
                2,
                format!("cannot delete job {id}: {e}"),
                refusal_hint("jobs", errno),
            ),
            _ => anyhow::anyhow!("cannot delete {}: {e}", dir.display()),
        })
    }

    /// Where `latest` of an instance points, if it has points.
    pub fn latest(&self, instance: &str) -> Option<String> {
        std::fs::read_link(self.dir.join(instance).join("latest"))
            .ok()?
            .to_str()
            .map(str::to_string)
    }
}

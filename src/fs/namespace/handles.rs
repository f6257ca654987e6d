//! Open handles: what `open` captures (a point file's layout, a log file version, a
//! dynamic file's content, a control file's reply, a point archive's generator) and the
//! reads and writes served from it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::control_reply::Reply;
use super::inode::NodeRef;
use super::listing::tree_entry;
use super::readme::README_TEXT;
use super::state::Handle;
use super::time_view::OverlayFile;
use super::{FsResult, Inode, Namespace, SIBLING_PREFETCH};
use crate::engine::logs::VersionReader;
use crate::engine::FileLayout;
use crate::model::NodeKind;
use crate::repo::BlobId;
use crate::service::ControlError;
use crate::sync::{LockExt, RwLockExt};

impl Namespace {
    pub(super) fn dynamic_content(&self, inode: &Inode) -> Option<Vec<u8>> {
        Some(match inode {
            Inode::Readme => README_TEXT.as_bytes().to_vec(),
            Inode::Stats => self.stats_text().into_bytes(),
            Inode::Damaged => self.service.damaged_text().into_bytes(),
            Inode::JobStatus(id) => self.service.job_status(*id)?.into_bytes(),
            Inode::JobLog(id) => self.service.job_log(*id)?.into_bytes(),
            Inode::JobDifferences(id) => self.service.job_differences(*id)?.into_bytes(),
            Inode::Policy(name) => self.service.policy_json(name)?.into_bytes(),
            Inode::Restorable(instance) => self.restorable_text(instance).into_bytes(),
            _ => return None,
        })
    }

    /// `.cairn/stats`: the repository's figures and, under `fuse`, the mount's.
    fn stats_text(&self) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(&self.service.stats_text()).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("fuse".into(), self.mount_stats());
        }
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
    }

    /// A dynamic file's size, without building its content where the service can tell it.
    pub(super) fn dynamic_len(&self, inode: &Inode) -> u64 {
        match inode {
            Inode::Events => self.service.events_len(),
            Inode::JobLog(id) => self.service.job_log_len(*id).unwrap_or(0),
            other => self.dynamic_content(other).map_or(0, |c| c.len() as u64),
        }
    }

    /// Opens an inode. Returns the handle and whether it is dynamic (direct I/O, no cache).
    pub fn open(&self, ino: u64, write: bool, uid: u32) -> FsResult<(u64, bool)> {
        let inode = self.inode(ino)?;
        let (handle, dynamic) = match &inode {
            Inode::Ctl(file) => {
                if write && !self.is_owner(uid) && !self.may_open_log(file, uid) {
                    return Err(libc::EACCES);
                }
                (
                    Handle::Control {
                        file,
                        reply: Mutex::new(Reply::default()),
                        upload: Mutex::new(None),
                    },
                    true,
                )
            }
            Inode::JobInput(id) => (self.open_input(*id, write, uid)?, true),
            _ if write => return Err(libc::EROFS),
            Inode::Node(_) | Inode::Linked(..) => {
                let node = self.node_of(&inode)?;
                if node.kind != NodeKind::File {
                    return Err(libc::EINVAL);
                }
                let layout = FileLayout::new(node.content.clone());
                let first_open = self.opened.locked().insert(ino);
                if let (true, Some(r)) = (first_open, inode.node_ref()) {
                    self.prefetch_siblings(r);
                }
                (
                    Handle::Content {
                        layout: Arc::new(layout),
                        next: Mutex::new(0),
                    },
                    false,
                )
            }
            Inode::Dir(..) => return Err(libc::EISDIR),
            Inode::Export(file) => (Handle::Export(Box::new(self.export_reader(file))), false),
            // `logs/` files grow between opens: no page of an older version is kept.
            Inode::LogFile(f) => {
                let version = self.log_version(&f.0, &f.1)?;
                let size = version.size;
                (Handle::Log(VersionReader::new(&f.0, version, size)), true)
            }
            Inode::ViewFile(f, _) => (
                match &*f.file {
                    OverlayFile::Log { version, cut } => {
                        Handle::Log(VersionReader::new(&f.plan.instance, version.clone(), *cut))
                    }
                    OverlayFile::Extra { bytes, .. } => Handle::Snapshot(bytes.to_vec()),
                },
                false,
            ),
            Inode::Events => (
                Handle::Events(self.service.events_snapshot().map_err(|_| libc::EIO)?),
                true,
            ),
            other => (
                Handle::Snapshot(self.dynamic_content(other).ok_or(libc::EISDIR)?),
                true,
            ),
        };
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles.write_locked().insert(fh, Arc::new(handle));
        Ok((fh, dynamic))
    }

    /// Starts downloading the first chunks of the files that follow `at` in its
    /// directory: readers like `tar`, `cp -a` and `rsync` open files in listing order, and
    /// small files are latency-bound, so the next ones are fetched while this one is read.
    fn prefetch_siblings(&self, at: NodeRef) {
        let Ok(tree) = self.tree_id(at.parent).and_then(|id| self.tree(&id)) else {
            return;
        };
        let (parent, pos) = (at.parent, at.index as usize);
        let (from, to) = {
            let mut done = self.prefetched.locked();
            let upto = done.entry(parent).or_insert(0);
            // Refill only when less than half the window is left ahead: batches of many
            // files coalesce into few range requests.
            if *upto > pos + 1 + SIBLING_PREFETCH / 2 {
                return;
            }
            let to = (pos + 1 + SIBLING_PREFETCH).min(tree.nodes.len());
            let from = (pos + 1).max(*upto);
            if from >= to {
                return;
            }
            *upto = to;
            (from, to)
        };
        let opened = self.opened.locked();
        let table = self.table.read_locked();
        let ids: Vec<BlobId> = (from..to)
            .filter(|i| {
                let (key, _) = tree_entry(at.point, parent, &tree.nodes, *i);
                table.find(&key).is_none_or(|ino| !opened.contains(&ino))
            })
            .filter(|i| tree.nodes[*i].kind == NodeKind::File)
            .filter_map(|i| {
                tree.nodes[i].content.iter().find_map(|e| match e {
                    crate::model::Extent::Data { id, .. } => Some(*id),
                    crate::model::Extent::Hole { .. } => None,
                })
            })
            .collect();
        drop(table);
        drop(opened);
        self.content.prefetch_blobs(ids);
    }

    pub(super) fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.handles
            .read_locked()
            .get(&fh)
            .cloned()
            .ok_or(libc::EBADF)
    }

    pub fn release(&self, fh: u64) {
        let handle = self.handles.write_locked().remove(&fh);
        if let Some(Handle::Input(id)) = handle.as_deref() {
            self.service.job_inputs().detach(*id);
        }
    }

    /// Reads from an open handle if that needs no download (dynamic files, chunks in
    /// memory): answered on the session thread, without a hop to a worker.
    pub fn read_now(&self, fh: u64, offset: u64, size: usize) -> Option<FsResult<Vec<u8>>> {
        match &*self.handle(fh).ok()? {
            Handle::Content { layout, next } => {
                // `next` advances only when served here; a miss leaves it to `read`.
                let mut n = next.locked();
                let data = self
                    .content
                    .read_cached(layout, offset, size, *n == offset)?;
                *n = offset + size as u64;
                Some(Ok(data))
            }
            Handle::Log(_) | Handle::Export(_) => None,
            _ => Some(self.read(fh, offset, size)),
        }
    }

    /// Reads from an open handle. May block on object storage: call from a worker.
    pub fn read(&self, fh: u64, offset: u64, size: usize) -> FsResult<Vec<u8>> {
        let slice = |data: &[u8]| {
            let start = (offset as usize).min(data.len());
            let end = start.saturating_add(size).min(data.len());
            data[start..end].to_vec()
        };
        match &*self.handle(fh)? {
            Handle::Snapshot(data) => Ok(slice(data)),
            Handle::Events(snapshot) => self
                .service
                .events_read(snapshot, offset, size)
                .map_err(|_| libc::EIO),
            Handle::Control { reply, .. } => Ok(reply.locked().read(offset, size)),
            Handle::Input(_) => Err(libc::EBADF),
            Handle::Dir { .. } => Err(libc::EISDIR),
            Handle::Export(archive) => archive.read_at(offset, size).map_err(|e| {
                tracing::error!("reading an archive file failed: {e}");
                libc::EIO
            }),
            Handle::Log(reader) => reader.read(self.service.repo(), offset, size).map_err(|e| {
                tracing::error!("reading a log file failed: {e}");
                libc::EIO
            }),
            Handle::Content { layout, next } => {
                let sequential = {
                    let mut n = next.locked();
                    let seq = *n == offset;
                    *n = offset + size as u64;
                    seq
                };
                self.content
                    .read(layout, offset, size, sequential)
                    .map_err(|e| {
                        tracing::error!("read failed: {e}");
                        libc::EIO
                    })
            }
        }
    }

    /// A write into a control file at `offset` (the handle's position): one request. On
    /// error the message is kept as the handle's reply and the write fails with the errno.
    /// A write into a job's input goes into its pipe (and may wait).
    pub fn write(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        uid: u32,
    ) -> std::result::Result<usize, ControlError> {
        let handle = self.handle(fh).map_err(|e| ControlError {
            errno: e,
            message: "bad handle".into(),
        })?;
        if let Handle::Input(id) = &*handle {
            return self
                .service
                .job_inputs()
                .write(*id, offset, data)
                .map_err(|errno| ControlError {
                    errno,
                    message: format!("write into the input of job {id} failed"),
                });
        }
        let Handle::Control {
            file,
            reply,
            upload,
        } = &*handle
        else {
            return Err(ControlError {
                errno: libc::EROFS,
                message: "read-only file".into(),
            });
        };
        if *file == "log" {
            return self.log_write(reply, upload, offset, data, uid);
        }
        let result = match std::str::from_utf8(data) {
            Ok(text) => self.service.submit(file, text, uid),
            Err(_) => Err(ControlError::invalid("a request must be UTF-8 text")),
        };
        let mut r = reply.locked();
        r.answer(result, offset, data.len())
    }
}

//! Open directories: `opendir` takes one snapshot of the entries, and `readdir` and
//! `readdirplus` continue from any offset in it without rebuilding anything. Offsets 1
//! and 2 follow `.` and `..`; entry `i` of the snapshot has offset `i + 3`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::inode::{EntryKind, Inode};
use super::state::Handle;
use super::{Attr, DirEntry, FsResult, Namespace, ROOT};
use crate::sync::RwLockExt;

impl Namespace {
    /// Opens directory `ino`: a handle on a snapshot of its entries.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        if ino == ROOT {
            self.service
                .refresh_if_older(std::time::Duration::from_secs(2));
        }
        let listing = self.listing(ino)?;
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles
            .write_locked()
            .insert(fh, Arc::new(Handle::Dir { dir: ino, listing }));
        Ok(fh)
    }

    pub fn releasedir(&self, fh: u64) {
        self.handles.write_locked().remove(&fh);
    }

    fn dir_handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        let h = self.handle(fh)?;
        match &*h {
            Handle::Dir { .. } => Ok(h),
            _ => Err(libc::EBADF),
        }
    }

    /// Entries from `offset` on, as (inode, offset of the next, kind, name), until `add`
    /// says the reply is full.
    pub fn readdir_at(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, EntryKind, &[u8]) -> bool,
    ) -> FsResult<()> {
        let h = self.dir_handle(fh)?;
        let Handle::Dir { dir, listing } = &*h else {
            return Err(libc::EBADF);
        };
        for pos in offset..listing.len() as u64 + 2 {
            let full = match pos {
                0 => add(*dir, 1, EntryKind::Dir, b"."),
                1 => add(self.parent_of(*dir), 2, EntryKind::Dir, b".."),
                _ => {
                    let i = (pos - 2) as usize;
                    let (ino, kind) = match listing.node(i) {
                        Some(node) => (
                            self.table.read_locked().number(&listing.key(i)),
                            super::attrs::node_kind(node.kind),
                        ),
                        None => {
                            let (key, inode) = listing.entry(i);
                            (self.number_of(&key, &inode), self.kind_of(&inode))
                        }
                    };
                    add(ino, pos + 1, kind, listing.name(i))
                }
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    /// Like [`readdir_at`](Self::readdir_at) with attributes: each entry `add` takes is
    /// held by the kernel from then on (one taken back when the reply was full).
    pub fn readdirplus_at(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&DirEntry, u64) -> bool,
    ) -> FsResult<()> {
        let h = self.dir_handle(fh)?;
        let Handle::Dir { dir, listing } = &*h else {
            return Err(libc::EBADF);
        };
        let here = self.getattr(*dir)?;
        for pos in offset..listing.len() as u64 + 2 {
            let full = match pos {
                0 => add(&dot(b".", here.clone()), 1),
                1 => {
                    let up = self.getattr(self.parent_of(*dir)).unwrap_or(here.clone());
                    add(&dot(b"..", up), 2)
                }
                _ => {
                    let entry = match self.held_entry(listing, (pos - 2) as usize) {
                        Ok(e) => e,
                        // Skipped, as a damaged entry is in a plain listing of it.
                        Err(_) => continue,
                    };
                    let full = add(&entry, pos + 1);
                    if full {
                        self.forget(entry.attr.ino, 1);
                    }
                    full
                }
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    /// The kind of an inode (without its attributes where it can).
    fn kind_of(&self, inode: &Inode) -> EntryKind {
        match inode {
            Inode::Root
            | Inode::Meta
            | Inode::CtlDir
            | Inode::JobsDir
            | Inode::PoliciesDir
            | Inode::Instance(_)
            | Inode::Point(_)
            | Inode::LogsDir(_)
            | Inode::View(..)
            | Inode::Dir(..)
            | Inode::JobDir(_) => EntryKind::Dir,
            Inode::Latest(_) => EntryKind::Symlink,
            Inode::Node(_) | Inode::Linked(..) => self
                .node_of(inode)
                .map_or(EntryKind::File, |n| super::attrs::node_kind(n.kind)),
            _ => EntryKind::File,
        }
    }
}

fn dot(name: &[u8], attr: Attr) -> DirEntry {
    DirEntry {
        name: name.to_vec(),
        attr,
    }
}

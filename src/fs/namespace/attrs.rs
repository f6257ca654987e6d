//! Attributes of the namespace's inodes (kernel terms: kind, size, mode, owner, times)
//! and their extended attributes.

use super::{readme, Attr, EntryKind, FsResult, Inode, Namespace};
use crate::model::{Manifest, Node, NodeKind};

pub(super) fn node_kind(k: NodeKind) -> EntryKind {
    match k {
        NodeKind::File => EntryKind::File,
        NodeKind::Dir => EntryKind::Dir,
        NodeKind::Symlink => EntryKind::Symlink,
        NodeKind::Fifo => EntryKind::Fifo,
        NodeKind::Socket => EntryKind::Socket,
        NodeKind::CharDevice => EntryKind::CharDevice,
        NodeKind::BlockDevice => EntryKind::BlockDevice,
    }
}

impl Namespace {
    pub(super) fn dir_attr(&self, ino: u64, perm: u16, mtime_ns: i64, immutable: bool) -> Attr {
        Attr {
            ino,
            generation: 0,
            kind: EntryKind::Dir,
            size: 0,
            blocks: 0,
            perm,
            nlink: 2,
            uid: self.owner_uid,
            gid: self.owner_gid,
            rdev: 0,
            mtime_ns,
            ctime_ns: mtime_ns,
            immutable,
        }
    }

    pub(super) fn file_attr(&self, ino: u64, perm: u16, size: u64) -> Attr {
        Attr {
            kind: EntryKind::File,
            size,
            blocks: size.div_ceil(512),
            nlink: 1,
            ..self.dir_attr(ino, perm, self.started_ns, false)
        }
    }

    pub(super) fn point_time(&self, instance: &str) -> i64 {
        self.service
            .points(instance)
            .last()
            .map(|p| p.manifest.time_ns)
            .unwrap_or(self.started_ns)
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let attr = self.attr_of(ino, &self.inode(ino)?)?;
        Ok(Attr {
            generation: self.generation(ino),
            ..attr
        })
    }

    /// The attributes of `inode` as number `ino` (generation 0).
    pub(super) fn attr_of(&self, ino: u64, inode: &Inode) -> FsResult<Attr> {
        // The control plane holds the owner's requests (targets, paths, patterns): the
        // owner's only unless shared.
        let (meta_dir, meta_file) = if self.share_control {
            (0o755, 0o444)
        } else {
            (0o700, 0o600)
        };
        Ok(match inode.clone() {
            Inode::Root => self.dir_attr(ino, 0o755, self.started_ns, false),
            Inode::Meta => {
                let perm = self
                    .pusher_modes()
                    .map_or(meta_dir, |(dir, _)| meta_dir | dir);
                self.dir_attr(ino, perm, self.started_ns, false)
            }
            Inode::JobsDir | Inode::JobDir(_) | Inode::PoliciesDir => {
                self.dir_attr(ino, meta_dir, self.started_ns, false)
            }
            Inode::CtlDir => {
                let perm = self.pusher_modes().map_or(0o700, |(dir, _)| dir);
                self.dir_attr(ino, perm, self.started_ns, false)
            }
            Inode::Readme => self.file_attr(ino, 0o444, readme::README_TEXT.len() as u64),
            Inode::Events
            | Inode::Stats
            | Inode::Damaged
            | Inode::JobStatus(_)
            | Inode::JobLog(_)
            | Inode::JobDifferences(_)
            | Inode::Policy(_) => self.file_attr(ino, meta_file, self.dynamic_len(inode)),
            Inode::Ctl("log") => {
                let perm = self.pusher_modes().map_or(0o600, |(_, log)| log);
                self.file_attr(ino, perm, 0)
            }
            Inode::Ctl(_) => self.file_attr(ino, 0o600, 0),
            Inode::JobInput(_) => self.file_attr(ino, 0o200, 0),
            Inode::Instance(name) => self.dir_attr(ino, 0o755, self.point_time(&name), false),
            Inode::Latest(name) => {
                let target = self.latest_name(&name).ok_or(libc::ENOENT)?;
                Attr {
                    kind: EntryKind::Symlink,
                    size: target.len() as u64,
                    perm: 0o777,
                    nlink: 1,
                    ..self.dir_attr(ino, 0o777, self.point_time(&name), false)
                }
            }
            Inode::Point(p) => self.point_root_attr(ino, &p.manifest),
            Inode::Node(_) | Inode::Dir(..) | Inode::Linked(..) => {
                self.node_attr(ino, &*self.node_of(inode)?)
            }
            Inode::LogsDir(name) => self.logs_dir_attr(ino, &name),
            Inode::Restorable(_) => self.file_attr(ino, 0o444, self.dynamic_len(inode)),
            Inode::LogFile(f) => self.log_file_attr(ino, &*self.log_version(&f.0, &f.1)?),
            Inode::View(view, _) => self.view_dir_attr(ino, &view),
            Inode::ViewFile(file, _) => self.view_file_attr(ino, &file),
            Inode::Export(file) => self.export_attr(ino, &file),
        })
    }

    /// A single-directory point's root is that directory as it was, but for its ctime
    /// (which no copy keeps): the point's time, as on every point directory.
    pub(super) fn point_root_attr(&self, ino: u64, manifest: &Manifest) -> Attr {
        match &manifest.root_meta {
            Some(meta) => Attr {
                ctime_ns: manifest.time_ns,
                ..self.node_attr(ino, &meta.to_node())
            },
            None => self.dir_attr(ino, 0o755, manifest.time_ns, true),
        }
    }

    pub(super) fn node_attr(&self, ino: u64, n: &Node) -> Attr {
        let kind = node_kind(n.kind);
        let allocated: u64 = n
            .content
            .iter()
            .filter(|e| matches!(e, crate::model::Extent::Data { .. }))
            .map(|e| e.len())
            .sum();
        Attr {
            ino,
            generation: 0,
            kind,
            size: match kind {
                EntryKind::File => n.size,
                EntryKind::Symlink => n.target.len() as u64,
                _ => 0,
            },
            blocks: allocated.div_ceil(512),
            perm: (n.mode & 0o7777) as u16,
            nlink: if kind == EntryKind::Dir {
                2
            } else {
                n.nlink.clamp(1, u32::MAX as u64) as u32
            },
            uid: n.uid,
            gid: n.gid,
            rdev: n.rdev as u32,
            mtime_ns: n.mtime_ns,
            ctime_ns: n.ctime_ns,
            immutable: true,
        }
    }

    /// The extended attributes of an inode: a node's, or a single-directory point root's.
    pub(super) fn xattrs_of(&self, ino: u64) -> FsResult<Vec<crate::model::Xattr>> {
        Ok(match self.inode(ino)? {
            inode @ (Inode::Node(_) | Inode::Dir(..) | Inode::Linked(..)) => {
                self.node_of(&inode)?.xattrs.clone()
            }
            Inode::Point(p) => root_xattrs(&p.manifest),
            Inode::View(v, _) => match &v.node {
                Some(node) => node.xattrs.clone(),
                None if v.root.is_none() => root_xattrs(&v.plan.base.manifest),
                None => Vec::new(),
            },
            Inode::ViewFile(f, _) => f
                .replaced
                .as_ref()
                .map(|n| n.xattrs.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        Ok(self
            .xattrs_of(ino)?
            .iter()
            .flat_map(|x| x.name.iter().copied().chain([0]))
            .collect())
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        self.xattrs_of(ino)?
            .into_iter()
            .find(|x| x.name == name)
            .map(|x| x.value)
            .ok_or(libc::ENODATA)
    }
}

fn root_xattrs(manifest: &Manifest) -> Vec<crate::model::Xattr> {
    manifest
        .root_meta
        .as_ref()
        .map(|m| m.xattrs.clone())
        .unwrap_or_default()
}

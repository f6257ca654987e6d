//! Time travel: `<instance>/@TIME/` is the instance's state at the second TIME (compact
//! UTC `2026-12-01T103015Z`, or RFC 3339), made from a point-in-time plan when first
//! looked up: the base point's tree, where the plan's log files (cut at that second)
//! and extras replace or join the point's files. It is not listed in the instance's
//! directory. Files from the point are the point's nodes, read by the same content
//! readers as in the point; log files read from the log records; extras from memory.
//! A malformed or unreachable time is ENOENT, with the reason in the mount's log.

use std::sync::Arc;

use super::listing::tree_entry;
use super::time_view::{Overlay, OverlayFile, ViewDir, ViewFile};
use super::{Attr, Child, EntryKind, FsResult, Inode, Key, Listing, Namespace};
use crate::engine::logs::parse_pitr_time;
use crate::sync::{LockExt, RwLockExt};

impl Namespace {
    /// The root of the view `name` (`@TIME`) of an instance, its plan made on first
    /// lookup (and kept while the view is held).
    pub(super) fn time_view(&self, instance: &str, name: &[u8]) -> FsResult<(Key, Inode)> {
        let key = Key::View(instance.to_string(), name.to_vec());
        let held = self.table.read_locked().find(&key);
        if let Some(ino) = held {
            return Ok((key, self.inode(ino)?));
        }
        let shown = String::from_utf8_lossy(name);
        let refuse = |why: String| {
            tracing::warn!("{instance}/{shown}: no such view: {why}");
            libc::ENOENT
        };
        let text = std::str::from_utf8(&name[1..]).map_err(|_| refuse("not UTF-8".into()))?;
        let at_ns = parse_pitr_time(text).map_err(refuse)?;
        // The planner runs under the cache's lock: a burst of lookups of one new second
        // makes one plan.
        let (plan, overlay) = self
            .plans
            .locked()
            .get_or_make(instance, at_ns, || {
                (self.planner)(&self.service, instance, at_ns)
            })
            .map_err(refuse)?;
        let view = ViewDir {
            plan,
            root: None,
            node: None,
            overlay,
        };
        let inode = Inode::View(Arc::new(view), Arc::new(key.clone()));
        Ok((key, inode))
    }

    /// A view directory's entries: its base tree's nodes (as the point's), with the
    /// overlay's files replacing or joining them, in name order.
    pub(super) fn view_listing(&self, ino: u64, view: &ViewDir) -> FsResult<Listing> {
        let root = view.root.unwrap_or(ino);
        let tree = match self.tree_id(ino) {
            Ok(id) => Some(self.tree(&id)?),
            Err(libc::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let overlay = &view.overlay;
        let nodes = tree.as_ref().map_or(&[][..], |t| &t.nodes[..]);
        let mut out = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            out.push(if let Some(file) = overlay.files.get(&n.name) {
                view_file(ino, &n.name, view, file, Some(Arc::new(n.clone())))
            } else if let Some(sub) = overlay.dirs.get(&n.name) {
                let node = (n.kind == crate::model::NodeKind::Dir).then(|| Arc::new(n.clone()));
                view_dir(ino, root, &n.name, view, sub, node)
            } else {
                let (key, inode) = tree_entry(root, ino, nodes, i);
                Child::new(n.name.clone(), key, inode)
            });
        }
        let known = |name: &Vec<u8>| nodes.binary_search_by(|n| n.name.cmp(name)).is_ok();
        for (name, file) in overlay.files.iter().filter(|(n, _)| !known(n)) {
            out.push(view_file(ino, name, view, file, None));
        }
        for (name, sub) in overlay.dirs.iter().filter(|(n, _)| !known(n)) {
            out.push(view_dir(ino, root, name, view, sub, None));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Listing::Entries(out))
    }

    /// A view directory: the point's root or directory as it was; a directory only the
    /// overlay has is 0755, timed at the view's second.
    pub(super) fn view_dir_attr(&self, ino: u64, view: &ViewDir) -> Attr {
        let base = &view.plan.base.manifest;
        match (&view.node, view.root) {
            (Some(node), _) => self.node_attr(ino, node),
            (None, None) => self.point_root_attr(ino, base),
            (None, Some(_)) => self.dir_attr(ino, 0o755, view.plan.at_ns, true),
        }
    }

    /// A view's file: a log file keeps the owner and mode of the point's file it
    /// replaces (0644 and the mount's owner when new) with the log's size and mtime; an
    /// extra has its mode and the view's second.
    pub(super) fn view_file_attr(&self, ino: u64, f: &ViewFile) -> Attr {
        let (size, mtime_ns, perm) = match &*f.file {
            OverlayFile::Log { version, cut } => (*cut, version.mtime_ns, 0o644),
            OverlayFile::Extra { bytes, mode } => {
                (bytes.len() as u64, f.plan.at_ns, (mode & 0o7777) as u16)
            }
        };
        let base = match (&f.replaced, &*f.file) {
            (Some(node), OverlayFile::Log { .. }) => self.node_attr(ino, node),
            _ => Attr {
                perm,
                ..self.dir_attr(ino, perm, mtime_ns, true)
            },
        };
        Attr {
            kind: EntryKind::File,
            size,
            blocks: size.div_ceil(512),
            nlink: 1,
            mtime_ns,
            ctime_ns: mtime_ns,
            ..base
        }
    }
}

fn view_file(
    parent: u64,
    name: &[u8],
    view: &ViewDir,
    file: &Arc<OverlayFile>,
    replaced: Option<Arc<crate::model::Node>>,
) -> Child {
    let key = Key::Named(parent, name.to_vec());
    let file = ViewFile {
        plan: view.plan.clone(),
        file: file.clone(),
        replaced,
    };
    let inode = Inode::ViewFile(Arc::new(file), Arc::new(key.clone()));
    Child::new(name, key, inode)
}

fn view_dir(
    parent: u64,
    root: u64,
    name: &[u8],
    view: &ViewDir,
    overlay: &Arc<Overlay>,
    node: Option<Arc<crate::model::Node>>,
) -> Child {
    let key = Key::Named(parent, name.to_vec());
    let dir = ViewDir {
        plan: view.plan.clone(),
        root: Some(root),
        node,
        overlay: overlay.clone(),
    };
    let inode = Inode::View(Arc::new(dir), Arc::new(key.clone()));
    Child::new(name, key, inode)
}

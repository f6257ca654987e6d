//! What a verify's walk found below a tree (the damaged paths and their causes), how a
//! subtree's findings are seen from its parent, and a point's [`Damage`] made of them.

use std::sync::Arc;

use crate::catalog::PointRecord;

/// One damaged point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    pub instance: String,
    pub point: String,
    /// Damaged files and directories, relative to the point root (`.` for the root
    /// itself), lossy UTF-8, sorted.
    pub paths: Vec<String>,
    /// Why: the missing or corrupt objects, sorted.
    pub causes: Vec<String>,
}

/// Damage found below a tree: `path` is relative to that tree (empty: the tree itself).
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) path: Vec<u8>,
    pub(super) causes: Vec<Arc<str>>,
}

/// Hits of a subtree named `name`, as seen from its parent.
pub(super) fn prefix_hits(out: &mut Vec<Hit>, name: &[u8], sub: &[Hit]) {
    for h in sub {
        let mut path = name.to_vec();
        if !h.path.is_empty() {
            path.push(b'/');
            path.extend_from_slice(&h.path);
        }
        out.push(Hit {
            path,
            causes: h.causes.clone(),
        });
    }
}

pub(super) fn damage_of(p: &PointRecord, hits: &[Hit]) -> Option<Damage> {
    if hits.is_empty() {
        return None;
    }
    let mut paths: Vec<String> = hits
        .iter()
        .map(|h| {
            if h.path.is_empty() {
                ".".to_string()
            } else {
                String::from_utf8_lossy(&h.path).into_owned()
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    let mut causes: Vec<String> = hits
        .iter()
        .flat_map(|h| h.causes.iter().map(|c| c.to_string()))
        .collect();
    causes.sort();
    causes.dedup();
    Some(Damage {
        instance: p.manifest.instance.clone(),
        point: p.manifest.name.clone(),
        paths,
        causes,
    })
}

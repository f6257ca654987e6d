//! What a restore is asked, and its checks before anything is read: the request, which
//! paths it covers ([`Scope`]), what an in-place restore leaves alone ([`Protected`]), and
//! the destinations it swaps into ([`Dest`]).

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::engine::{EngineError, InvalidRequest, Result};
use crate::model::names::check_instance_name;
use crate::model::{Layout, Manifest, ModelError};

/// Deeper trees are refused (no path that deep could be opened anyway: PATH_MAX).
pub(crate) const MAX_DEPTH: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Into `target`, which must not exist or be an empty directory.
    New,
    /// Over the point's source paths (or over `target` for a single-directory point).
    InPlace,
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub instance: String,
    /// A point name or `latest`.
    pub point: String,
    /// `New`: required, absolute. `InPlace`: `None` restores over the point's source paths;
    /// `Some(dir)` over that directory instead (single-directory points only).
    pub target: Option<PathBuf>,
    /// Globs on paths relative to the point root; empty restores everything. A directory
    /// that matches brings everything under it. `*` does not cross `/`, `**` does.
    pub includes: Vec<String>,
    pub mode: RestoreMode,
    /// In place: also delete the original's entries that the point's backup excluded
    /// (rsync's `--delete-excluded`). By default they are left alone.
    pub delete_excluded: bool,
    /// Restore every intact file and skip the damaged ones (named in
    /// [`RestoreOutcome::skipped`](super::RestoreOutcome::skipped)) instead of failing the whole restore.
    pub skip_damaged: bool,
}

/// Which paths are restored: `None` = all of them.
pub(super) struct Scope(pub(super) Option<GlobSet>);

impl Scope {
    pub(super) fn matches(&self, rel: &Path) -> bool {
        self.0.as_ref().is_none_or(|g| g.is_match(rel))
    }
}

/// What the point's backup excluded, which an in-place restore leaves alone in the
/// original unless asked to delete it too. Globs match as in the backup: against paths
/// relative to each source, and an excluded directory keeps everything below it.
pub(super) struct Protected {
    globs: Option<GlobSet>,
    /// Point paths start with the source's name (several sources): it is not matched.
    per_path: bool,
}

impl Protected {
    pub(super) fn of(req: &RestoreRequest, m: &Manifest) -> Result<Protected> {
        let wanted =
            req.mode == RestoreMode::InPlace && !req.delete_excluded && !m.excludes.is_empty();
        Ok(Protected {
            globs: wanted
                .then(|| crate::engine::backup::build_excludes(&m.excludes))
                .transpose()?,
            per_path: m.layout == Layout::PerPath,
        })
    }

    /// Whether the original's entry at `prel` (relative to the point root) is kept.
    pub(super) fn protects(&self, prel: &Path) -> bool {
        let Some(globs) = &self.globs else {
            return false;
        };
        let mut components = prel.components();
        if self.per_path {
            components.next();
        }
        components
            .as_path()
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| globs.is_match(a))
    }
}

pub(super) fn check_request(req: &RestoreRequest) -> Result<Scope> {
    check_instance_name(&req.instance)?;
    match (&req.target, req.mode) {
        (None, RestoreMode::New) => {
            return Err(EngineError::Invalid(InvalidRequest::Incomplete(
                "a restore into a new location needs a target directory",
            )))
        }
        (Some(t), _) => check_path(t, "target")?,
        (None, RestoreMode::InPlace) => {}
    }
    Ok(Scope(include_globs(&req.includes)?))
}

/// The globs of `--include` patterns (see [`RestoreRequest::includes`]): `None` for none.
/// Exports select with the same rules.
pub(crate) fn include_globs(includes: &[String]) -> Result<Option<GlobSet>> {
    if includes.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for g in includes {
        let pattern = g.trim_start_matches("./").trim_matches('/');
        if pattern.is_empty() {
            return Err(EngineError::Invalid(InvalidRequest::BadPattern(format!(
                "include `{g}` is empty"
            ))));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                EngineError::Invalid(InvalidRequest::BadPattern(format!(
                    "include glob `{g}`: {e}"
                )))
            })?;
        set.add(glob);
    }
    let set = set.build().map_err(|e| {
        EngineError::Invalid(InvalidRequest::BadPattern(format!("include globs: {e}")))
    })?;
    Ok(Some(set))
}

/// An absolute path with a last component and no `..`.
pub(crate) fn check_path(path: &Path, what: &str) -> Result<()> {
    if !path.is_absolute()
        || path.file_name().is_none()
        || path.components().any(|c| c == Component::ParentDir)
    {
        return Err(EngineError::Invalid(InvalidRequest::BadPath(format!(
            "{what} {} must be an absolute path to a directory entry, without `..`",
            path.display()
        ))));
    }
    Ok(())
}

/// One place a restore swaps something into.
pub(super) struct Dest {
    pub(super) path: PathBuf,
    /// `None`: the point's root tree is this directory. `Some(name)`: the root tree's
    /// entry of that name is this path ([`Layout::PerPath`] in place).
    pub(super) root_entry: Option<Vec<u8>>,
}

pub(super) fn destinations(req: &RestoreRequest, m: &Manifest) -> Result<Vec<Dest>> {
    if req.mode == RestoreMode::InPlace && !m.streams.is_empty() {
        return Err(EngineError::Invalid(InvalidRequest::StreamsNeedTarget {
            point: m.name.clone(),
            streams: m.streams.join(", "),
        }));
    }
    let dests = match (req.mode, m.layout, &req.target) {
        (RestoreMode::New, _, Some(t)) | (RestoreMode::InPlace, Layout::Single, Some(t)) => {
            vec![Dest {
                path: t.clone(),
                root_entry: None,
            }]
        }
        (RestoreMode::InPlace, Layout::PerPath, Some(_)) => {
            return Err(EngineError::Invalid(InvalidRequest::SeveralSources(
                m.name.clone(),
            )))
        }
        (RestoreMode::InPlace, layout, None) => {
            let mut out = Vec::new();
            for p in &m.paths {
                let path = PathBuf::from(p);
                check_path(&path, "source path")?;
                let name = path.file_name().map(|n| n.as_bytes().to_vec());
                out.push(Dest {
                    path,
                    root_entry: if layout == Layout::Single { None } else { name },
                });
            }
            if out.is_empty() || (layout == Layout::Single && out.len() != 1) {
                return Err(ModelError::Manifest(format!(
                    "point {} lists {} source paths for its layout",
                    m.name,
                    out.len()
                ))
                .into());
            }
            out
        }
        (RestoreMode::New, _, None) => unreachable!("checked by check_request"),
    };
    for d in &dests {
        let parent = d.path.parent().unwrap_or(Path::new("/"));
        if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
            return Err(EngineError::Invalid(InvalidRequest::BadPath(format!(
                "{} is not an existing directory",
                parent.display()
            ))));
        }
    }
    Ok(dests)
}

/// A new target must not exist or be an empty directory; returns whether it exists.
pub(crate) fn check_new_target(target: &Path) -> Result<bool> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(EngineError::io("inspecting", target, e)),
        Ok(md) if md.is_dir() => {
            let mut rd = fs::read_dir(target).map_err(|e| EngineError::io("listing", target, e))?;
            if rd.next().is_none() {
                Ok(true)
            } else {
                Err(EngineError::Invalid(InvalidRequest::TargetNotEmpty(
                    target.to_path_buf(),
                )))
            }
        }
        Ok(_) => Err(EngineError::Invalid(InvalidRequest::TargetNotADirectory(
            target.to_path_buf(),
        ))),
    }
}

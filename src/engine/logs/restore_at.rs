//! A point-in-time restore into a new directory: the plan first (so that every refusal
//! writes nothing), then the base point restored by the engine's restore into a hidden
//! stage next to the target, the planned log files and extras written over it, and the
//! stage renamed into place. A failure midway removes the stage: the target is never
//! seen half restored. A restore killed midway leaves its stage, which the next restore
//! into the same directory removes (as for plain restores).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::engine::restore::{check_new_target, check_path, stage_path};
use crate::engine::{
    restore, CancelToken, EngineError, InvalidRequest, Progress, RestoreMode, RestoreOutcome,
    RestoreRequest, Result,
};
use crate::model::InstanceConfig;
use crate::repo::Repository;

use super::pitr::plan_at;
use super::plan::PitrPlan;
use super::timeline::Timeline;

/// A restore of an instance as it was at one second.
#[derive(Debug, Clone)]
pub struct PitrRequest {
    /// The instance (its log globs say where log files go in the view).
    pub config: InstanceConfig,
    /// The second (ns at its start): writes before `at_ns + 1 s` are in.
    pub at_ns: i64,
    /// Absolute; must not exist or be an empty directory.
    pub target: PathBuf,
    /// When this process's last archive pass looked, if it knows.
    pub last_pass_ns: Option<i64>,
}

/// What a point-in-time restore did.
#[derive(Debug, Clone)]
pub struct PitrOutcome {
    /// The base point's restore.
    pub restore: RestoreOutcome,
    /// The second restored (ns at its start).
    pub at_ns: i64,
    /// Log files written, and their bytes.
    pub logs: u64,
    pub log_bytes: u64,
    /// The extras written, relative to the target.
    pub extras: Vec<PathBuf>,
}

pub fn restore_at(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &PitrRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PitrOutcome> {
    check_path(&req.target, "target")?;
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    progress.phase("planning");
    let plan = plan_at(repo, catalog, &req.config, req.at_ns, req.last_pass_ns)?;
    let parent = req.target.parent().unwrap_or(Path::new("/"));
    if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
        return Err(EngineError::Invalid(InvalidRequest::BadPath(format!(
            "{} is not an existing directory",
            parent.display()
        ))));
    }
    check_new_target(&req.target)?;
    let stage = stage_path(&req.target)?;
    let result = stage_and_swap(repo, catalog, req, &plan, &stage, progress, cancel);
    if result.is_err() && fs::symlink_metadata(&stage).is_ok() {
        if let Err(e) = fs::remove_dir_all(&stage) {
            progress.warn(&format!("removing {}: {e}", stage.display()));
        }
    }
    result
}

fn stage_and_swap(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &PitrRequest,
    plan: &PitrPlan,
    stage: &Path,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PitrOutcome> {
    let base = RestoreRequest {
        instance: plan.instance.clone(),
        point: plan.base.manifest.name.clone(),
        target: Some(stage.to_path_buf()),
        includes: Vec::new(),
        mode: RestoreMode::New,
        delete_excluded: false,
        skip_damaged: false,
    };
    let restored = restore(repo, catalog, &base, progress, cancel)?;
    progress.phase("writing logs");
    let timeline = Timeline::load(catalog, &plan.instance)?;
    let mut out = PitrOutcome {
        restore: restored,
        at_ns: plan.at_ns,
        logs: 0,
        log_bytes: 0,
        extras: Vec::new(),
    };
    for log in &plan.logs {
        cancel.check()?;
        let (file, dest) = replace_file(stage, &log.path, 0o644)?;
        let mut w = BufWriter::new(file);
        out.log_bytes += timeline.write_version(repo, &log.version, Some(log.cut), &mut w)?;
        finish(w, &dest)?;
        out.logs += 1;
    }
    for extra in &plan.extras {
        let (file, dest) = replace_file(stage, &extra.path, extra.mode)?;
        let mut w = BufWriter::new(file);
        w.write_all(&extra.bytes)
            .map_err(|e| EngineError::io("writing", &dest, e))?;
        finish(w, &dest)?;
        if extra.mode != 0 {
            fs::set_permissions(&dest, fs::Permissions::from_mode(extra.mode))
                .map_err(|e| EngineError::io("setting the mode of", &dest, e))?;
        }
        out.extras.push(extra.path.clone());
    }
    cancel.check()?;
    progress.phase("swapping");
    fs::rename(stage, &req.target).map_err(|e| EngineError::io("renaming into", &req.target, e))?;
    let parent = req.target.parent().unwrap_or(Path::new("/"));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io("syncing", parent, e))?;
    Ok(out)
}

fn finish(w: BufWriter<File>, dest: &Path) -> Result<()> {
    let file = w
        .into_inner()
        .map_err(|e| EngineError::io("writing", dest, e.into_error()))?;
    file.sync_all()
        .map_err(|e| EngineError::io("syncing", dest, e))
}

/// Creates the file `rel` under `root` anew, making missing directories (each like its
/// parent: mode and owner) and replacing a file or symlink there (its mode and owner are
/// kept). Nothing is followed: an existing component that is not a directory is refused.
fn replace_file(root: &Path, rel: &Path, mode: u32) -> Result<(File, PathBuf)> {
    let mut dir = root.to_path_buf();
    let names: Vec<_> = rel.components().collect();
    let Some((Component::Normal(name), parents)) = names.split_last() else {
        return Err(bad_place(rel));
    };
    for c in parents {
        let Component::Normal(c) = c else {
            return Err(bad_place(rel));
        };
        let next = dir.join(c);
        match fs::symlink_metadata(&next) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Err(bad_place(rel)),
            Err(_) => {
                let parent = fs::symlink_metadata(&dir)
                    .map_err(|e| EngineError::io("inspecting", &dir, e))?;
                fs::create_dir(&next).map_err(|e| EngineError::io("creating", &next, e))?;
                fs::set_permissions(&next, fs::Permissions::from_mode(parent.mode() & 0o7777))
                    .map_err(|e| EngineError::io("setting the mode of", &next, e))?;
                // Best effort: only root can give a file away.
                let _ = std::os::unix::fs::lchown(&next, Some(parent.uid()), Some(parent.gid()));
            }
        }
        dir = next;
    }
    let path = dir.join(name);
    let owner = match fs::symlink_metadata(&path) {
        Ok(md) if md.is_dir() => return Err(bad_place(rel)),
        Ok(md) => {
            fs::remove_file(&path).map_err(|e| EngineError::io("replacing", &path, e))?;
            Some((md.mode() & 0o7777, md.uid(), md.gid()))
        }
        Err(_) => None,
    };
    let dir_md = fs::symlink_metadata(&dir).map_err(|e| EngineError::io("inspecting", &dir, e))?;
    let (mode, uid, gid) = owner.unwrap_or((mode, dir_md.uid(), dir_md.gid()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| EngineError::io("creating", &path, e))?;
    let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
    Ok((file, path))
}

fn bad_place(rel: &Path) -> EngineError {
    EngineError::Invalid(InvalidRequest::BadPath(format!(
        "the view's {} has no place in the restored point (a component is not a directory)",
        rel.display()
    )))
}

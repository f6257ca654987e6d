//! What a time-travel directory (`<instance>/@TIME/`) is made of: a plan's log files and
//! extras as an overlay tree on its base point's tree. A leaf of types, so that the inode
//! model and the code that lists and reads views share them without a cycle.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::Arc;

use crate::engine::logs::{plan_at, FileVersion, PitrPlan};
use crate::model::Node;
use crate::service::Service;

/// A file of a view that is not the base point's.
#[derive(Debug)]
pub(super) enum OverlayFile {
    /// The first `cut` bytes of a log file version.
    Log { version: Arc<FileVersion>, cut: u64 },
    /// Bytes held in memory (recovery settings, `replay.sh`).
    Extra { bytes: Arc<Vec<u8>>, mode: u32 },
}

/// The files a view puts in one directory, and its subdirectories that hold some.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    pub dirs: BTreeMap<Vec<u8>, Arc<Overlay>>,
    pub files: BTreeMap<Vec<u8>, Arc<OverlayFile>>,
}

/// Building an overlay: subdirectories still mutable.
#[derive(Default)]
struct Builder {
    dirs: BTreeMap<Vec<u8>, Builder>,
    files: BTreeMap<Vec<u8>, Arc<OverlayFile>>,
}

impl Builder {
    /// Puts `file` at `path`; a path that is not a plain relative one is skipped.
    fn put(&mut self, path: &Path, file: OverlayFile) {
        let mut names = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => names.push(n.as_bytes().to_vec()),
                Component::CurDir => {}
                _ => {
                    tracing::warn!("a point-in-time view skips the path {}", path.display());
                    return;
                }
            }
        }
        let Some(leaf) = names.pop() else {
            return;
        };
        let mut dir = self;
        for n in names {
            dir = dir.dirs.entry(n).or_default();
        }
        dir.dirs.remove(&leaf);
        dir.files.insert(leaf, Arc::new(file));
    }

    fn build(self) -> Overlay {
        Overlay {
            dirs: self
                .dirs
                .into_iter()
                .map(|(n, b)| (n, Arc::new(b.build())))
                .collect(),
            files: self.files,
        }
    }
}

impl Overlay {
    /// A plan's log files and extras, by directory.
    pub fn of(plan: &PitrPlan) -> Overlay {
        let mut b = Builder::default();
        for log in &plan.logs {
            let file = OverlayFile::Log {
                version: Arc::new(log.version.clone()),
                cut: log.cut.min(log.version.size),
            };
            b.put(&log.path, file);
        }
        for extra in &plan.extras {
            let file = OverlayFile::Extra {
                bytes: Arc::new(extra.bytes.clone()),
                mode: extra.mode,
            };
            b.put(&extra.path, file);
        }
        b.build()
    }
}

/// A directory of a view: its root, or a directory on the way to an overlay file.
#[derive(Debug)]
pub(super) struct ViewDir {
    pub plan: Arc<PitrPlan>,
    /// The view root's inode; `None` for the root itself.
    pub root: Option<u64>,
    /// The base point's directory here (`None` for the root, which is the point's root,
    /// and for a directory only the overlay has).
    pub node: Option<Arc<Node>>,
    pub overlay: Arc<Overlay>,
}

/// A file of a view from its overlay.
#[derive(Debug)]
pub(super) struct ViewFile {
    pub plan: Arc<PitrPlan>,
    pub file: Arc<OverlayFile>,
    /// The base point's file it replaces (its owner, mode and xattrs are kept).
    pub replaced: Option<Arc<Node>>,
}

/// Makes the plan of a view: the state of an instance (by name) at a second (ns at its
/// start), or why there is none.
pub type Planner =
    Arc<dyn Fn(&Service, &str, i64) -> std::result::Result<PitrPlan, String> + Send + Sync>;

/// The plan of the logs (the default [`Planner`](super::Planner)).
pub(super) fn plan_from_logs(
    service: &Service,
    instance: &str,
    at_ns: i64,
) -> Result<PitrPlan, String> {
    let config = service
        .instance(instance)
        .ok_or_else(|| format!("no instance `{instance}`"))?;
    plan_at(
        service.repo(),
        service.catalog(),
        &config,
        at_ns,
        service.log_last_pass_ns(instance),
    )
    .map_err(|e| e.to_string())
}

/// How many plans [`PlanCache`] keeps.
const PLANS_KEPT: usize = 8;

/// The plans of the views looked up last, newest first, by instance and second: names
/// of one second (`@…Z`, RFC 3339 with an offset) share one plan, made once.
#[derive(Default)]
pub(super) struct PlanCache {
    plans: Vec<KeptPlan>,
}

/// A plan kept: its instance and second, the plan and its overlay.
type KeptPlan = ((String, i64), Arc<PitrPlan>, Arc<Overlay>);

impl PlanCache {
    /// The plan and overlay of `instance` at `at_ns`, made by `make` when not kept.
    pub fn get_or_make(
        &mut self,
        instance: &str,
        at_ns: i64,
        make: impl FnOnce() -> std::result::Result<PitrPlan, String>,
    ) -> std::result::Result<(Arc<PitrPlan>, Arc<Overlay>), String> {
        let key = (instance.to_string(), at_ns);
        let entry = match self.plans.iter().position(|(k, ..)| *k == key) {
            Some(i) => self.plans.remove(i),
            None => {
                let plan = make()?;
                let overlay = Arc::new(Overlay::of(&plan));
                (key, Arc::new(plan), overlay)
            }
        };
        let found = (entry.1.clone(), entry.2.clone());
        self.plans.insert(0, entry);
        self.plans.truncate(PLANS_KEPT);
        Ok(found)
    }
}

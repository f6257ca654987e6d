//! Planning a point-in-time view: the base point (the newest taken before the second's
//! end) and every log file cut by its kind's rule (docs/FORMAT.md, 9.4): Redis AOF at its
//! `#TS:` annotations, PostgreSQL WAL staged with recovery settings, MariaDB binlogs with
//! `replay.sh`, any other file at the size it had at the last pass before the end.
//! Every refusal (a second outside the range, a gap it needs) comes before anything is
//! written.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::engine::Result;
use crate::model::names::check_instance_name;
use crate::model::{InstanceConfig, NodeKind};
use crate::repo::Repository;

use super::base::BaseView;
use super::cutoff::Cutoff;
use super::mariadb::{plan_binlogs, BINLOG_MAGIC};
use super::plan::{PitrPlan, PlannedLog};
use super::postgres::{is_wal_name, plan_wal};
use super::range::{base_points, check_gaps, check_in_range, range_of};
use super::redis_aof::AofCut;
use super::time::NS;
use super::timeline::Timeline;

/// The view of `config`'s instance at the second starting at `at_ns` (a time within a
/// second names that second). `last_pass_ns`: when this process's last archive pass
/// looked, if it knows (the newest record's time is used too). Reads the catalog as it
/// is: refresh it first to see other writers' points and records.
pub fn plan_at(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    config: &InstanceConfig,
    at_ns: i64,
    last_pass_ns: Option<i64>,
) -> Result<PitrPlan> {
    let instance = config.name.as_str();
    check_instance_name(instance)?;
    let at_ns = at_ns.div_euclid(NS) * NS;
    let end_ns = at_ns + NS;
    let timeline = Timeline::load(catalog, instance)?;
    let points = base_points(catalog, instance)?;
    let range = range_of(&points, &timeline, last_pass_ns);
    let range = check_in_range(instance, range.as_ref(), &points, at_ns)?;
    let Some(base) = points.iter().rev().find(|p| p.manifest.time_ns < end_ns) else {
        unreachable!("check_in_range found a point before the end");
    };
    let records = timeline.records();
    let upto_ns = timeline
        .first_from(end_ns)
        .or(records.len().checked_sub(1))
        .map(|i| records[i].record.time_ns);
    check_gaps(instance, range, at_ns, base.manifest.time_ns, upto_ns)?;

    let cut = Cutoff::new(&timeline, at_ns)?;
    let view = BaseView::new(repo, catalog, base.clone());
    let globs = &config.logs.globs;
    let mut logs = Vec::new();
    let mut extras = Vec::new();
    let (mut binlogs, mut indexes, mut wal) = (Vec::new(), Vec::new(), false);
    let names: BTreeSet<&String> = cut.before.keys().chain(cut.after.keys()).collect();
    for name in names {
        if is_wal_name(name) {
            wal = true;
            continue;
        }
        if let Some(v) = cut.after.get(name) {
            if name.ends_with(".index") {
                indexes.push(v);
                continue;
            }
            if cut.head(repo, v, BINLOG_MAGIC.len() as u64)? == BINLOG_MAGIC {
                binlogs.push(v);
                continue;
            }
            if name.ends_with(".aof") {
                let mut scan = AofCut::new(at_ns / NS);
                timeline.write_version(repo, v, None, &mut scan)?;
                if scan.timestamps {
                    logs.push(PlannedLog {
                        path: view.place(globs, name),
                        version: v.clone(),
                        cut: scan.cut(),
                    });
                    continue;
                }
            }
        }
        // Any other file: as the last pass before the end saw it, unless the point was
        // taken later and holds it (its copy is newer, and still before the end).
        if let Some(v) = cut.before.get(name) {
            let path = view.place(globs, name);
            let newer_in_point = v.time_ns < base.manifest.time_ns
                && view.node(&path)?.is_some_and(|n| n.kind == NodeKind::File);
            if !newer_in_point {
                logs.push(PlannedLog {
                    path,
                    version: v.clone(),
                    cut: v.size,
                });
            }
        }
    }
    if wal {
        let (l, e) = plan_wal(&view, &cut, instance)?;
        logs.extend(l);
        extras.extend(e);
    }
    if !binlogs.is_empty() {
        let (l, e) = plan_binlogs(&view, &cut, instance, binlogs, indexes)?;
        logs.extend(l);
        extras.extend(e);
    } else {
        // An `.index` with no binlog is any other file.
        logs.extend(indexes.into_iter().filter_map(|v| {
            let v = cut.before.get(&v.name)?;
            Some(PlannedLog {
                path: view.place(globs, &v.name),
                version: v.clone(),
                cut: v.size,
            })
        }));
    }
    logs.sort_by(|a, b| a.path.cmp(&b.path));
    extras.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(PitrPlan {
        instance: instance.to_string(),
        at_ns,
        base: base.clone(),
        logs,
        extras,
    })
}

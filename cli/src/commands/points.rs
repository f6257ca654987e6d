//! `cairn points [INSTANCE] [--since T] [--until T] [--kind manual|scheduled|safety|failed|damaged]..`:
//! lists backup points, oldest first (newest last): the point directories of a mount, or
//! the catalog of a repository opened with `--repo`. `--kind safety` lists the safety
//! points in-place restores took; `--kind failed` lists the failed scheduled runs (failed
//! scheduled snapshot jobs) instead of, or beside, points. Of one instance it also shows
//! the restorable range (`restorable`).

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use std::collections::HashMap;

use cairn::catalog::{JobRow, PointQuery};
use cairn::engine;
use cairn::model::manifest::point_kind_of_name;
use cairn::model::PointKind;
use cairn::service::{JobKind, JobState};

use super::{print_json, restorable, Invocation, Status};
use crate::client::{Client, Target, TargetArgs};
use crate::human_units;
use crate::repo_args;
use crate::time_args::TimeRangeArgs;

#[derive(Args, Debug)]
pub struct PointsArgs {
    /// Only this instance's points.
    pub instance: Option<String>,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    /// Only points of this kind (repeat for several): manual, scheduled, safety (taken by
    /// in-place restores of what they replaced; never `latest`), or failed (the failed
    /// scheduled runs), or damaged (points `cairn repair` marked as lacking data, with the
    /// damaged paths; no longer listed once a later backup stored the data again).
    /// Default: every point (manual, scheduled and safety).
    #[arg(long = "kind", value_enum, value_name = "KIND")]
    pub kinds: Vec<ListedKind>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print one JSON object (`{"points": [...]}`, failed runs as `{"failed": [...]}`)
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListedKind {
    Manual,
    Scheduled,
    Safety,
    Failed,
    Damaged,
}

/// What a listing wants, resolved from the arguments.
struct Wanted {
    since: Option<i64>,
    until: Option<i64>,
    /// Which kinds of points (empty: none).
    points: Vec<PointKind>,
    failed: bool,
    damaged: bool,
}

impl Wanted {
    fn new(args: &PointsArgs) -> Result<Wanted> {
        let (since, until) = args.range.range()?;
        let all = args.kinds.is_empty();
        let has = |k| all || args.kinds.contains(&k);
        let mut points = Vec::new();
        if has(ListedKind::Manual) {
            points.push(PointKind::Manual);
        }
        if has(ListedKind::Scheduled) {
            points.push(PointKind::Scheduled);
        }
        if has(ListedKind::Safety) {
            points.push(PointKind::Safety);
        }
        Ok(Wanted {
            since,
            until,
            points,
            failed: args.kinds.contains(&ListedKind::Failed),
            damaged: args.kinds.contains(&ListedKind::Damaged),
        })
    }

    fn in_range(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// The catalog query for the wanted points (`None`: no points are wanted); its
    /// result still needs [`wants`](Self::wants) when several kinds are wanted.
    fn point_query(&self) -> Option<PointQuery> {
        let kind = match self.points.as_slice() {
            [] => return None,
            [one] => Some(*one),
            _ => None,
        };
        Some(PointQuery {
            since_ns: self.since,
            until_ns: self.until,
            kind,
        })
    }

    fn wants(&self, kind: PointKind) -> bool {
        self.points.contains(&kind)
    }
}

fn kind_name(kind: PointKind) -> &'static str {
    match kind {
        PointKind::Manual => "manual",
        PointKind::Scheduled => "scheduled",
        PointKind::Safety => "safety",
    }
}

/// A failed scheduled run, as listed.
struct FailedRun {
    instance: String,
    job: u64,
    time_ns: i64,
    error: String,
}

impl FailedRun {
    fn from_row(r: &JobRow) -> FailedRun {
        let status: Value = serde_json::from_str(&r.status).unwrap_or_default();
        FailedRun {
            instance: r.instance.clone().unwrap_or_default(),
            job: r.id,
            time_ns: r.created_ns,
            error: status["error"].as_str().unwrap_or("").to_string(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "instance": self.instance,
            "kind": "failed",
            "job": self.job,
            "time": human_units::rfc3339(self.time_ns),
            "error": self.error,
        })
    }
}

pub fn run(inv: &Invocation<'_>, args: &PointsArgs) -> Result<Status> {
    let wanted = Wanted::new(args)?;
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &wanted, &repo),
        Target::Mount(client) => through_mount(&client, args, &wanted),
    }
}

/// Prints the failed runs (after the points, if any were printed).
fn print_failed(failed: &[FailedRun], after_points: bool) {
    if failed.is_empty() {
        return;
    }
    if after_points {
        println!();
    }
    let iw = failed
        .iter()
        .map(|f| f.instance.len())
        .max()
        .unwrap_or(0)
        .max("INSTANCE".len());
    println!(
        "{:<iw$}  {:>6}  {:<23}  FAILED SCHEDULED RUN",
        "INSTANCE", "JOB", "TIME"
    );
    for f in failed {
        println!(
            "{:<iw$}  {:>6}  {:<23}  {}",
            f.instance,
            f.job,
            human_units::time(f.time_ns),
            f.error
        );
    }
}

fn say_none(args: &PointsArgs, hint: &str) {
    let filtered =
        !args.kinds.is_empty() || args.range.since.is_some() || args.range.until.is_some();
    match (&args.instance, filtered) {
        (Some(i), true) => eprintln!("nothing in instance `{i}` matches"),
        (None, true) => eprintln!("nothing matches"),
        (Some(i), false) => eprintln!("no points in instance `{i}` yet: {hint}"),
        (None, false) => eprintln!("no points yet: {hint}"),
    }
}

/// The point directories under `<mnt>/<instance>/` (all instances when none is named);
/// kinds from the names, times from the directories; failed runs from `jobs/`.
fn through_mount(client: &Client, args: &PointsArgs, wanted: &Wanted) -> Result<Status> {
    let instances = match &args.instance {
        Some(i) => vec![i.clone()],
        None => client.instances()?,
    };
    let mut rows = Vec::new();
    for i in &instances {
        for (time_ns, name) in client.points_with_times(i)? {
            let kind = point_kind_of_name(&name).unwrap_or(PointKind::Manual);
            if wanted.points.contains(&kind) && wanted.in_range(time_ns) {
                rows.push((i.clone(), name, kind, time_ns));
            }
        }
    }
    // Damaged points (`.cairn/damaged`), besides the kinds asked for: (instance, name) ->
    // damaged paths.
    let mut damaged: HashMap<(String, String), Vec<String>> = HashMap::new();
    if wanted.damaged {
        let path = client.dir.join(".cairn/damaged");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{} holds a line that is not JSON", path.display()))?;
            let (i, p) = (v["instance"].as_str(), v["point"].as_str());
            let (Some(i), Some(p)) = (i, p) else { continue };
            let time_ns = v["time_ns"].as_i64().unwrap_or(0);
            if args.instance.as_ref().is_some_and(|want| want != i) || !wanted.in_range(time_ns) {
                continue;
            }
            if !rows.iter().any(|(ri, rp, _, _)| ri == i && rp == p) {
                let kind = point_kind_of_name(p).unwrap_or(PointKind::Manual);
                rows.push((i.to_string(), p.to_string(), kind, time_ns));
            }
            let paths = v["paths"].as_array().into_iter().flatten();
            let paths = paths
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            damaged.insert((i.to_string(), p.to_string()), paths);
        }
        rows.sort_by_key(|r| r.3);
    }
    let mut failed = Vec::new();
    if wanted.failed {
        for id in client.job_ids()? {
            let Ok(s) = client.status(id) else {
                continue; // deleted since it was listed
            };
            let time_ns = chrono::DateTime::parse_from_rfc3339(&s.created)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .unwrap_or(0);
            let instance = s.instance.clone().unwrap_or_default();
            if s.kind == JobKind::Snapshot
                && s.state == JobState::Failed
                && s.request["schedule"].is_object()
                && args.instance.as_ref().is_none_or(|i| *i == instance)
                && wanted.in_range(time_ns)
            {
                failed.push(FailedRun {
                    instance,
                    job: id,
                    time_ns,
                    error: s.error.unwrap_or_default(),
                });
            }
        }
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(i, p, kind, t)| {
                let mut v = json!({
                    "instance": i,
                    "name": p,
                    "kind": kind_name(*kind),
                    "time": human_units::rfc3339(*t),
                    "path": client.dir.join(i).join(p),
                });
                if let Some(paths) = damaged.get(&(i.clone(), p.clone())) {
                    v["damaged_paths"] = json!(paths);
                }
                v
            })
            .collect();
        let mut out = json!({ "points": list });
        if wanted.failed {
            out["failed"] = failed.iter().map(FailedRun::json).collect();
        }
        if let Some(i) = &args.instance {
            out["restorable"] = restorable::through_mount(client, i);
        }
        print_json(&out)?;
        return Ok(Status::Success);
    }
    if let Some(i) = &args.instance {
        restorable::print(&restorable::through_mount(client, i));
    }
    if rows.is_empty() && failed.is_empty() {
        match &args.instance {
            Some(i) => say_none(args, &format!("`cairn snapshot {i}` takes one")),
            None => say_none(args, "`cairn snapshot INSTANCE` takes one"),
        }
        return Ok(Status::Success);
    }
    for (i, p, _, _) in &rows {
        if args.instance.is_some() {
            println!("{p}");
        } else {
            println!("{i}/{p}");
        }
        for path in damaged.get(&(i.clone(), p.clone())).into_iter().flatten() {
            println!("  DAMAGED  {path}");
        }
    }
    print_failed(&failed, !rows.is_empty());
    Ok(Status::Success)
}

fn direct(inv: &Invocation<'_>, args: &PointsArgs, wanted: &Wanted, repo: &str) -> Result<Status> {
    let repo = repo_args::open_repository(inv.global, repo)?;
    let catalog = repo_args::open_catalog(&repo)?;
    let mut points = Vec::new();
    if let Some(q) = wanted.point_query() {
        points = catalog
            .points_matching(args.instance.as_deref(), &q)
            .context("cannot list the points in the local catalog")?;
        points.retain(|p| wanted.wants(p.manifest.point_kind()));
    }
    // Damaged points (their marks), besides the kinds asked for: id -> damaged paths.
    let mut damaged: HashMap<String, Vec<String>> = HashMap::new();
    if wanted.damaged {
        let marked = engine::repair::damaged_points(&repo, &catalog, args.instance.as_deref())
            .context("cannot read the damage marks")?;
        for m in marked {
            if !wanted.in_range(m.point.manifest.time_ns) {
                continue;
            }
            damaged.insert(m.point.id.to_hex(), m.mark.paths);
            if !points.iter().any(|p| p.id == m.point.id) {
                points.push(m.point);
            }
        }
        points.sort_by_key(|p| p.manifest.time_ns);
    }
    let failed: Vec<FailedRun> = if wanted.failed {
        catalog
            .failed_scheduled_jobs(args.instance.as_deref(), wanted.since, wanted.until)
            .context("cannot list the failed jobs in the local catalog")?
            .iter()
            .map(FailedRun::from_row)
            .collect()
    } else {
        Vec::new()
    };
    if args.json {
        let list: Vec<_> = points
            .iter()
            .map(|p| {
                let m = &p.manifest;
                let mut v = json!({
                    "instance": m.instance,
                    "name": m.name,
                    "id": p.id.to_hex(),
                    "kind": kind_name(m.point_kind()),
                    "time": human_units::rfc3339(m.time_ns),
                    "time_ns": m.time_ns,
                    "files": m.stats.files,
                    "dirs": m.stats.dirs,
                    "bytes": m.stats.bytes,
                    "new_bytes": m.stats.new_bytes,
                    "stored_bytes": m.stats.stored_bytes,
                    "host": m.host,
                    "paths": m.paths,
                    "parent": m.parent,
                    "warning_count": m.stats.warnings,
                    "warnings": m.warnings,
                });
                if let Some(paths) = damaged.get(&p.id.to_hex()) {
                    v["damaged_paths"] = json!(paths);
                }
                v
            })
            .collect();
        let mut out = json!({ "points": list });
        if wanted.failed {
            out["failed"] = failed.iter().map(FailedRun::json).collect();
        }
        if let Some(i) = &args.instance {
            out["restorable"] = restorable::direct(&catalog, i)?;
        }
        print_json(&out)?;
        return Ok(Status::Success);
    }
    if let Some(i) = &args.instance {
        restorable::print(&restorable::direct(&catalog, i)?);
    }
    if points.is_empty() && failed.is_empty() {
        say_none(
            args,
            "`cairn snapshot INSTANCE --repo REPO --path P` takes one",
        );
        return Ok(Status::Success);
    }
    if !points.is_empty() {
        let width = points
            .iter()
            .map(|p| p.manifest.instance.len())
            .max()
            .unwrap_or(0)
            .max("INSTANCE".len());
        let name_width = points
            .iter()
            .map(|p| p.manifest.name.len())
            .max()
            .unwrap_or(0)
            .max("POINT".len());
        println!(
            "{:<width$}  {:<name_width$}  {:<9}  {:<23}  {:>9}  {:>10}  {:>8}",
            "INSTANCE", "POINT", "KIND", "TIME", "FILES", "BYTES", "WARNINGS"
        );
        for p in &points {
            let m = &p.manifest;
            println!(
                "{:<width$}  {:<name_width$}  {:<9}  {:<23}  {:>9}  {:>10}  {:>8}",
                m.instance,
                m.name,
                kind_name(m.point_kind()),
                human_units::time(m.time_ns),
                m.stats.files,
                human_units::bytes(m.stats.bytes),
                m.stats.warnings
            );
            for path in damaged.get(&p.id.to_hex()).into_iter().flatten() {
                println!("  DAMAGED  {path}");
            }
        }
    }
    print_failed(&failed, !points.is_empty());
    Ok(Status::Success)
}

//! `cairn points [INSTANCE]`: lists backup points, oldest first (newest last): the point
//! directories of a mount, or the catalog of a repository opened with `--repo`.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::model::PointKind;

use super::{print_json, Invocation, Status};
use crate::client::{Client, Target, TargetArgs};
use crate::human_units;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct PointsArgs {
    /// Only this instance's points.
    pub instance: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print one JSON object (`{"points": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn kind_name(kind: PointKind) -> &'static str {
    match kind {
        PointKind::Manual => "manual",
        PointKind::Scheduled => "scheduled",
    }
}

pub fn run(inv: &Invocation<'_>, args: &PointsArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => through_mount(&client, args),
    }
}

/// The point directories under `<mnt>/<instance>/` (all instances when none is named).
fn through_mount(client: &Client, args: &PointsArgs) -> Result<Status> {
    let instances = match &args.instance {
        Some(i) => vec![i.clone()],
        None => client.instances()?,
    };
    let mut rows = Vec::new();
    for i in &instances {
        for p in client.points(i)? {
            rows.push((i.clone(), p));
        }
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(i, p)| {
                json!({
                    "instance": i,
                    "name": p,
                    "path": client.dir.join(i).join(p),
                })
            })
            .collect();
        print_json(&json!({ "points": list }))?;
        return Ok(Status::Success);
    }
    if rows.is_empty() {
        match &args.instance {
            Some(i) => eprintln!("no points in instance `{i}` yet: `cairn snapshot {i}` takes one"),
            None => eprintln!("no points yet: `cairn snapshot INSTANCE` takes one"),
        }
        return Ok(Status::Success);
    }
    for (i, p) in &rows {
        if args.instance.is_some() {
            println!("{p}");
        } else {
            println!("{i}/{p}");
        }
    }
    Ok(Status::Success)
}

fn direct(inv: &Invocation<'_>, args: &PointsArgs, repo: &str) -> Result<Status> {
    let repo = repo_args::open_repository(inv.global, repo)?;
    let catalog = repo_args::open_catalog(&repo)?;
    let points = catalog
        .points(args.instance.as_deref())
        .context("cannot list the points in the local catalog")?;
    if args.json {
        let list: Vec<_> = points
            .iter()
            .map(|p| {
                let m = &p.manifest;
                json!({
                    "instance": m.instance,
                    "name": m.name,
                    "id": p.id.to_hex(),
                    "kind": kind_name(m.kind),
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
                })
            })
            .collect();
        print_json(&json!({ "points": list }))?;
        return Ok(Status::Success);
    }
    if points.is_empty() {
        match &args.instance {
            Some(i) => eprintln!("no points in instance `{i}`"),
            None => {
                eprintln!("no points yet: `cairn snapshot INSTANCE --repo REPO --path P` takes one")
            }
        }
        return Ok(Status::Success);
    }
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
        "{:<width$}  {:<name_width$}  {:<9}  {:<23}  {:>9}  {:>10}",
        "INSTANCE", "POINT", "KIND", "TIME", "FILES", "BYTES"
    );
    for p in &points {
        let m = &p.manifest;
        println!(
            "{:<width$}  {:<name_width$}  {:<9}  {:<23}  {:>9}  {:>10}",
            m.instance,
            m.name,
            kind_name(m.kind),
            human_units::time(m.time_ns),
            m.stats.files,
            human_units::bytes(m.stats.bytes)
        );
    }
    Ok(Status::Success)
}

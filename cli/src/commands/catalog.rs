//! `cairn catalog rebuild REPO`: regenerates the local catalog from the repository.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use cairn::catalog::{self, Catalog};

use super::{print_json, Invocation, Status};
use crate::repo_args;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Drop the local catalog's contents and reload them from the repository's objects.
    Rebuild(RebuildArgs),
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// The repository (a path, file://, s3://, gs:// or az:// URL).
    #[arg(value_name = "REPO", env = "CAIRN_REPO")]
    pub repo: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(inv: &Invocation<'_>, cmd: &CatalogCommand) -> Result<Status> {
    match cmd {
        CatalogCommand::Rebuild(args) => rebuild(inv, args),
    }
}

fn rebuild(inv: &Invocation<'_>, args: &RebuildArgs) -> Result<Status> {
    let repo = repo_args::open_repository(inv.global, &args.repo)?;
    let path = catalog::default_path(&repo.config().id);
    let catalog = Catalog::open(&path)
        .with_context(|| format!("cannot open the local catalog {}", path.display()))?;
    let stats = catalog
        .rebuild(&repo)
        .context("cannot rebuild the local catalog from the repository")?;
    let points = catalog.points(None)?.len();
    let instances = catalog.instances()?.len();
    let packs = catalog.packs()?;
    let missing_packs = packs.iter().filter(|p| !p.2).count();
    let packs = packs.len() - missing_packs;
    let (data_blobs, tree_blobs) = catalog.blob_counts()?;
    if args.json {
        print_json(&json!({
            "catalog": path,
            "index_segments": stats.new_segments,
            "bad_index_segments": stats.bad_segments,
            "recovered_packs": stats.recovered_packs,
            "packs": packs,
            "missing_packs": missing_packs,
            "data_blobs": data_blobs,
            "tree_blobs": tree_blobs,
            "instances": instances,
            "points": points,
            "bad_points": stats.bad_points,
        }))?;
    } else {
        println!("rebuilt {}", path.display());
        println!(
            "index      {} segments, {} packs ({} found without an index segment)",
            stats.new_segments, packs, stats.recovered_packs
        );
        println!("blobs      {data_blobs} data, {tree_blobs} trees");
        println!("points     {points} in {instances} instance(s)");
        if missing_packs > 0 {
            eprintln!(
                "warning: {missing_packs} pack(s) named by the index are missing; \
                 `cairn verify --repo REPO` names the points they damage"
            );
        }
        if stats.bad_segments > 0 || stats.bad_points > 0 {
            eprintln!(
                "warning: skipped {} unreadable index segment(s) and {} unreadable point(s); \
                 `cairn verify --repo REPO` tells what they affect",
                stats.bad_segments, stats.bad_points
            );
        }
    }
    Ok(Status::Success)
}

//! `cairn init REPO`: creates a repository and its local catalog.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::repo::{layout, InitOptions, RepoError, Repository};

use super::{print_json, Invocation, Status};
use crate::{password, repo_args};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to create it: a path, file:///ABS/PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX
    /// or az://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Store data unencrypted (no password). Anyone who can read the storage can read
    /// the backups.
    #[arg(long)]
    pub no_encryption: bool,
    /// Store Reed-Solomon parity for every pack, PERCENT % of its size (1 to 50; 0, the
    /// default, stores none): a pack damaged in a few places (flipped bytes, a zeroed
    /// 4 KiB page) is corrected when read. Cannot be changed later.
    #[arg(long, value_name = "PERCENT", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=50))]
    pub ecc: u8,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(inv: &Invocation<'_>, args: &InitArgs) -> Result<Status> {
    let store = repo_args::open_store(inv.global, &args.repo)?;
    // Before asking for a password that would not be used.
    if store.head(layout::CONFIG).is_ok() {
        return Err(RepoError::AlreadyExists(store.description().to_string()).into());
    }
    let mut opts = if args.no_encryption {
        InitOptions::unencrypted()
    } else {
        InitOptions::encrypted(&password::for_new_repository(
            inv.global.password_file.as_deref(),
        )?)
    };
    opts.ecc_percent = (args.ecc > 0).then_some(args.ecc);
    let repo = Repository::init(store, &opts)
        .with_context(|| format!("cannot create a repository at {}", args.repo))?;
    let catalog = repo_args::open_catalog(&repo)?;
    let config = repo.config();
    if args.json {
        print_json(&json!({
            "id": config.id,
            "location": repo.store().description(),
            "encryption": config.encryption,
            "ecc_percent": config.ecc.map(|e| e.percent),
            "catalog": catalog.path(),
        }))?;
    } else {
        println!(
            "created repository {} at {}",
            config.id,
            repo.store().description()
        );
        if config.encrypted() {
            println!(
                "encryption: {} (without the password the backups cannot be read: keep it safe)",
                config.encryption
            );
        } else {
            println!("encryption: none");
        }
        if let Some(ecc) = config.ecc {
            println!("parity:     {}% Reed-Solomon parity per pack", ecc.percent);
        }
        println!("catalog:    {}", catalog.path().display());
    }
    Ok(Status::Success)
}

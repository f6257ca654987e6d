//! `cairn init REPO [--like LIKE]`: creates a repository (with another one's keys and
//! chunker parameters) and its local catalog.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use std::path::PathBuf;

use cairn::repo::{layout, InitOptions, KdfParams, RepoError, Repository};

use super::{print_json, Invocation, Status};
use crate::{password, repo_args};

/// LIKE's password, when --like-password-file is not given.
const LIKE_ENV: &str = "CAIRN_LIKE_PASSWORD";

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
    /// 4 KiB page) is corrected when read. Cannot be changed later. With --like: LIKE's
    /// setting unless given.
    #[arg(long, value_name = "PERCENT", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=50))]
    pub ecc: u8,
    /// Make it like the repository LIKE: the same keys (so blob ids are equal), chunker
    /// parameters and pack settings, its own id and key file (sealed with this
    /// repository's password); `cairn copy` between the two moves stored blobs as they
    /// are. LIKE's password: --like-password-file, else CAIRN_LIKE_PASSWORD, else the new
    /// repository's.
    #[arg(long, value_name = "LIKE", conflicts_with = "no_encryption")]
    pub like: Option<String>,
    /// Read LIKE's password from FILE (one trailing newline is ignored).
    #[arg(
        long,
        env = "CAIRN_LIKE_PASSWORD_FILE",
        value_name = "FILE",
        requires = "like"
    )]
    pub like_password_file: Option<PathBuf>,
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
    let ecc = (args.ecc > 0).then_some(args.ecc);
    let like = match &args.like {
        Some(like) => Some(open_like(inv, args, like)?),
        None => None,
    };
    let created = match &like {
        Some((like, password)) => {
            Repository::init_like(store, like, password.as_deref(), KdfParams::default(), ecc)
        }
        None => {
            let mut opts = if args.no_encryption {
                InitOptions::unencrypted()
            } else {
                InitOptions::encrypted(&password::for_new_repository(
                    inv.global.password_file.as_deref(),
                )?)
            };
            opts.ecc_percent = ecc;
            Repository::init(store, &opts)
        }
    };
    let repo = created.with_context(|| format!("cannot create a repository at {}", args.repo))?;
    let catalog = repo_args::open_catalog(&repo)?;
    let config = repo.config();
    if args.json {
        print_json(&json!({
            "id": config.id,
            "location": repo.store().description(),
            "encryption": config.encryption,
            "ecc_percent": config.ecc.map(|e| e.percent),
            "catalog": catalog.path(),
            "like": like.as_ref().map(|(l, _)| l.config().id.clone()),
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
        if let Some((like, _)) = &like {
            println!(
                "like:       {} (the same keys and chunker parameters: `cairn copy` moves \
                 its stored blobs as they are)",
                like.config().id
            );
        }
    }
    Ok(Status::Success)
}

/// The repository `--like` names, and the password of the new one (`None` when LIKE is
/// unencrypted: so is the new one). LIKE opens with --like-password-file or
/// CAIRN_LIKE_PASSWORD, else with the new repository's password.
fn open_like(
    inv: &Invocation<'_>,
    args: &InitArgs,
    like: &str,
) -> Result<(Repository, Option<Vec<u8>>)> {
    let store = repo_args::open_store(inv.global, like)?;
    let supplied = password::supplied_from(args.like_password_file.as_deref(), LIKE_ENV)?;
    let cannot = || format!("cannot open the repository at {like}");
    let new_password = || password::for_new_repository(inv.global.password_file.as_deref());
    match Repository::open(store.clone(), supplied.as_deref()) {
        Ok(repo) if !repo.config().encrypted() => Ok((repo, None)),
        Ok(repo) => Ok((repo, Some(new_password()?))),
        Err(RepoError::PasswordRequired) => {
            let password = new_password()?;
            let repo = Repository::open(store, Some(&password)).with_context(cannot)?;
            Ok((repo, Some(password)))
        }
        Err(e) => Err(e).with_context(cannot),
    }
}

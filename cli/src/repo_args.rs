//! Arguments shared by the commands that open a repository directly, and opening it:
//! location, S3 overrides, password, local catalog.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use cairn::catalog::{self, Catalog};
use cairn::repo::{RepoError, Repository};
use cairn::store::{Location, S3Options, Store};

use crate::password;

/// Flags every command accepts.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Read the repository password from FILE (one trailing newline is ignored) instead of
    /// CAIRN_PASSWORD or a prompt.
    #[arg(long, global = true, env = "CAIRN_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
}

/// S3 settings; unset ones come from the usual AWS_* variables.
#[derive(Args, Debug)]
#[command(next_help_heading = "S3 options (otherwise from AWS_* variables)")]
pub struct S3Args {
    /// S3 endpoint, e.g. http://127.0.0.1:8333 (plain http is allowed).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (else AWS_REGION / AWS_DEFAULT_REGION).
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id (else AWS_ACCESS_KEY_ID).
    #[arg(long, global = true, value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (else AWS_SECRET_ACCESS_KEY, which other users cannot see in
    /// the process list: prefer it).
    #[arg(long, global = true, value_name = "SECRET")]
    pub s3_secret_access_key: Option<String>,
}

impl S3Args {
    fn options(&self) -> S3Options {
        S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
        }
    }
}

/// `--repo REPO` (or CAIRN_REPO) for commands that work on a repository directly.
#[derive(Args, Debug)]
pub struct RepoArgs {
    /// The repository: a path, file:///ABS/PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or
    /// az://CONTAINER/PREFIX.
    #[arg(long, env = "CAIRN_REPO", value_name = "REPO")]
    pub repo: String,
}

/// Opens the object store a repository argument names.
pub fn open_store(global: &GlobalArgs, text: &str) -> Result<Store> {
    let location = Location::parse(text)?.with_s3_options(global.s3.options());
    Store::open(&location).with_context(|| format!("cannot open the storage at {text}"))
}

/// Opens the repository at `text`, asking for the password only if it is encrypted and
/// none was supplied.
pub fn open_repository(global: &GlobalArgs, text: &str) -> Result<Repository> {
    let supplied = password::supplied(global.password_file.as_deref())?;
    Ok(open_repository_with(global, text, supplied, true)?.0)
}

/// Opens the repository at `text` with the `supplied` password; when none was supplied
/// and `may_ask`, asks on the terminal if the repository is encrypted. Returns the
/// password that opened it (None for an unencrypted repository).
pub fn open_repository_with(
    global: &GlobalArgs,
    text: &str,
    supplied: Option<Vec<u8>>,
    may_ask: bool,
) -> Result<(Repository, Option<Vec<u8>>)> {
    let store = open_store(global, text)?;
    let mut used = supplied.clone();
    let mut result = Repository::open(store.clone(), supplied.as_deref());
    if supplied.is_none() && may_ask {
        let mut attempt = 0;
        loop {
            match &result {
                Err(RepoError::PasswordRequired) => {}
                Err(RepoError::WrongPassword) if attempt < 3 && password::can_ask() => {}
                _ => break,
            }
            let pw = password::ask_existing(text, attempt)?;
            attempt += 1;
            result = Repository::open(store.clone(), Some(&pw));
            used = Some(pw);
        }
    }
    let repo = result.with_context(|| format!("cannot open the repository at {text}"))?;
    if !repo.config().encrypted() {
        used = None;
    }
    Ok((repo, used))
}

/// Opens a repository and its catalog, brought up to date, for a command that runs the
/// engine in this process (`--repo`); `--no-wait` makes no sense there.
pub fn open_direct(
    global: &GlobalArgs,
    text: &str,
    no_wait: bool,
) -> Result<(Repository, Arc<Catalog>)> {
    let (repo, catalog) = open_for_engine(global, text, no_wait)?;
    refresh(&repo, &catalog)?;
    Ok((repo, catalog))
}

/// [`open_direct`] without the refresh, for a command whose engine call refreshes the
/// catalog before it reads it (backup, restore, verify, prune, dumps): one refresh, not
/// two, so one set of listings of the store.
pub fn open_for_engine(
    global: &GlobalArgs,
    text: &str,
    no_wait: bool,
) -> Result<(Repository, Arc<Catalog>)> {
    if no_wait {
        return Err(crate::failure::usage(
            "--no-wait works through a mount (--mount DIR), not with --repo",
        ));
    }
    let repo = open_repository(global, text)?;
    let catalog = open_catalog_unrefreshed(&repo)?;
    Ok((repo, catalog))
}

/// Opens the repository's local catalog at its default place and brings it up to date.
pub fn open_catalog(repo: &Repository) -> Result<Arc<Catalog>> {
    let catalog = open_catalog_unrefreshed(repo)?;
    refresh(repo, &catalog)?;
    Ok(catalog)
}

/// Opens the repository's local catalog at its default place as it is.
pub fn open_catalog_unrefreshed(repo: &Repository) -> Result<Arc<Catalog>> {
    let path = catalog::default_path(&repo.config().id);
    let catalog = Catalog::open(&path)
        .with_context(|| format!("cannot open the local catalog {}", path.display()))?;
    Ok(Arc::new(catalog))
}

fn refresh(repo: &Repository, catalog: &Catalog) -> Result<()> {
    catalog
        .refresh(repo)
        .context("cannot bring the local catalog up to date with the repository")?;
    Ok(())
}

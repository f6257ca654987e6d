//! Which mount or repository a command talks to: `--mount DIR` ([`MountPointArg`]), or
//! `--repo`/`--mount` for the commands that work either way ([`TargetArgs`]), and the
//! `--json`/`--no-wait` of commands that start a job ([`JobArgs`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::control::{Client, MOUNT_ENV};
use crate::failure::usage;

/// `--mount DIR` for commands that talk to a running mount.
#[derive(Args, Debug)]
pub struct MountPointArg {
    /// A directory where `cairn mount` serves the repository (else CAIRN_MOUNT).
    #[arg(long = "mount", value_name = "DIR")]
    pub mount: Option<PathBuf>,
}

impl MountPointArg {
    /// `--mount`, else CAIRN_MOUNT.
    pub fn dir(&self) -> Option<PathBuf> {
        self.mount.clone().or_else(|| {
            std::env::var_os(MOUNT_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// The mount to talk to; a usage error when none was given.
    pub fn client(&self) -> Result<Client> {
        match self.dir() {
            Some(dir) => Client::open(&dir),
            None => Err(usage(format!(
                "no mount given: pass --mount DIR or set {MOUNT_ENV} to a directory where \
                 `cairn mount REPO DIR` runs"
            ))),
        }
    }
}

/// Where `snapshot`, `restore`, `verify` and `points` work: a running mount, or a
/// repository opened directly. `--repo` wins, then `--mount`, then CAIRN_REPO, then
/// CAIRN_MOUNT.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Open the repository directly and work in this process (else CAIRN_REPO, unless
    /// --mount is given): a path, file:///ABS/PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX
    /// or az://CONTAINER/PREFIX.
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// Talk to the running mount at DIR through its control files (else CAIRN_MOUNT).
    #[arg(long = "mount", value_name = "DIR", conflicts_with = "repo")]
    pub mount: Option<PathBuf>,
}

/// What a [`TargetArgs`] resolved to.
pub enum Target {
    Repo(String),
    Mount(Client),
}

pub const REPO_ENV: &str = "CAIRN_REPO";

impl TargetArgs {
    fn env(name: &str) -> Option<std::ffi::OsString> {
        std::env::var_os(name).filter(|v| !v.is_empty())
    }

    /// Whether the command works on the repository directly.
    pub fn is_direct(&self) -> bool {
        self.repo.is_some() || (self.mount.is_none() && Self::env(REPO_ENV).is_some())
    }

    pub fn resolve(&self) -> Result<Target> {
        if let Some(r) = &self.repo {
            return Ok(Target::Repo(r.clone()));
        }
        if let Some(m) = &self.mount {
            return Ok(Target::Mount(Client::open(m)?));
        }
        if let Some(r) = Self::env(REPO_ENV) {
            return Ok(Target::Repo(r.to_string_lossy().into_owned()));
        }
        if let Some(m) = Self::env(MOUNT_ENV) {
            return Ok(Target::Mount(Client::open(Path::new(&m))?));
        }
        Err(usage(format!(
            "no mount or repository given: pass --mount DIR (or set {MOUNT_ENV}) to use a \
             running `cairn mount`, or --repo REPO (or set {REPO_ENV}) to open the repository \
             directly"
        )))
    }
}

/// `--json` and `--no-wait` of the commands that start a job.
#[derive(Args, Debug, Clone, Copy)]
pub struct JobArgs {
    /// Print one JSON object on stdout at the end instead of text (through a mount: the
    /// job's final status).
    #[arg(long)]
    pub json: bool,
    /// Through a mount: print the job id and return at once instead of following the job.
    #[arg(long)]
    pub no_wait: bool,
}

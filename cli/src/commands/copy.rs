//! `cairn copy [INSTANCE [POINT..]] --from A --to B`: copies points (every instance's
//! when no instance is named: a whole repository) from A into B (made like A when it
//! does not exist yet), then verifies B's copies. Without --from, the source is the mount (--mount DIR or CAIRN_MOUNT) and the
//! copy is a job of its daemon (`ctl/copy`). Exit 0 when done and B verifies, 1 when
//! the verify found damage or the job failed.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::engine::{self, CopyRequest};
use cairn::repo::{layout, KdfParams, Repository};
use cairn::store::StoreError;

use super::{print_json, Invocation, Status};
use crate::client::{self, report, JobArgs, MountPointArg, Request};
use crate::progress::TermProgress;
use crate::{failure, password, repo_args};

/// B's password, when --to-password-file is not given.
const TO_ENV: &str = "CAIRN_TO_PASSWORD";

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Only this instance (else every instance: the whole repository).
    #[arg(value_name = "INSTANCE")]
    pub instance: Option<String>,
    /// Only these points (names or `latest`) of INSTANCE (else all of its points).
    #[arg(value_name = "POINT", requires = "instance")]
    pub points: Vec<String>,
    /// The repository to copy from (A; its password: --password-file or CAIRN_PASSWORD).
    /// Without it, the mounted repository is the source (--mount or CAIRN_MOUNT).
    #[arg(long, value_name = "REPO")]
    pub from: Option<String>,
    /// The repository to copy into (B): a path, file:///ABS/PATH, s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX or az://CONTAINER/PREFIX. With --from, a B that does not exist
    /// yet is made like A (as `cairn init B --like A`, with B's password).
    #[arg(long, value_name = "REPO")]
    pub to: String,
    /// Read B's password from FILE (else CAIRN_TO_PASSWORD, else A's password). Through
    /// a mount the daemon reads FILE.
    #[arg(long, env = "CAIRN_TO_PASSWORD_FILE", value_name = "FILE")]
    pub to_password_file: Option<std::path::PathBuf>,
    /// Verify B's copies with their data too (else their structure only).
    #[arg(long)]
    pub read_data: bool,
    /// Do not verify B at the end.
    #[arg(long, conflicts_with = "read_data")]
    pub no_verify: bool,
    #[command(flatten)]
    pub mount: MountPointArg,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &CopyArgs) -> Result<Status> {
    let Some(from) = &args.from else {
        return through_mount(inv, args);
    };
    if args.job.no_wait {
        return Err(failure::usage(
            "--no-wait works through a mount (without --from), not with --from",
        ));
    }
    let global = inv.global;
    let supplied = password::supplied(global.password_file.as_deref())?;
    let (source, used) = repo_args::open_repository_with(global, from, supplied.clone(), true)?;
    // B's password: its own, else the one that opened A (also when A needed none).
    let to_password = password::supplied_from(args.to_password_file.as_deref(), TO_ENV)?
        .or(used)
        .or(supplied);
    let to_store = repo_args::open_store(global, &args.to)?;
    let created = matches!(to_store.head(layout::CONFIG), Err(StoreError::NotFound(_)));
    let target = if created {
        // A migration to new storage: B is made like A (`init --like`).
        let password = source
            .config()
            .encrypted()
            .then_some(to_password.clone())
            .flatten();
        let target = Repository::init_like(
            to_store,
            &source,
            password.as_deref(),
            KdfParams::default(),
            None,
        )
        .with_context(|| format!("cannot create a repository at {}", args.to))?;
        eprintln!(
            "created repository {} at {} like {from}",
            target.config().id,
            target.store().description()
        );
        target
    } else {
        repo_args::open_repository_with(global, &args.to, to_password, true)?.0
    };
    if source.config().id == target.config().id {
        return Err(failure::usage(format!(
            "{from} and {} are the same repository (id {}): nothing to copy",
            args.to,
            source.config().id
        )));
    }
    let source_catalog = repo_args::open_catalog_unrefreshed(&source)?;
    let target_catalog = repo_args::open_catalog_unrefreshed(&target)?;
    let req = CopyRequest {
        instance: args.instance.clone(),
        points: args.points.clone(),
        verify: !args.no_verify,
        read_data: args.read_data,
    };
    let progress = TermProgress::new("starting", "points", false);
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::copy(
            &source,
            &source_catalog,
            &target,
            &target_catalog,
            &req,
            &progress,
            inv.interrupts.token(),
        )
    };
    progress.finish();
    let outcome = outcome.context("the copy could not complete")?;
    let ok = outcome.verify.as_ref().is_none_or(|v| v.is_ok());
    let mut value = serde_json::to_value(&outcome)?;
    if args.job.json {
        value["ok"] = json!(ok);
        value["created"] = json!(created);
        print_json(&value)?;
    } else {
        report::print_copy(&value, args.read_data);
    }
    Ok(if ok {
        Status::Success
    } else {
        Status::ProblemFound
    })
}

/// `ctl/copy` of the mount: the daemon copies its repository into `--to`.
fn through_mount(inv: &Invocation<'_>, args: &CopyArgs) -> Result<Status> {
    if std::env::var_os(TO_ENV).is_some() && args.to_password_file.is_none() {
        return Err(failure::usage(format!(
            "through a mount the daemon opens --to itself: give its password with \
             --to-password-file FILE ({TO_ENV} is for copies with --from)"
        )));
    }
    let client = args.mount.client()?;
    let mut req = Request::new().kv("to", &args.to);
    if let Some(i) = &args.instance {
        req = req.kv("instance", i);
    }
    for p in &args.points {
        req = req.kv("point", p);
    }
    if let Some(f) = &args.to_password_file {
        let f = super::absolute(f)?;
        req = req.kv("to-password-file", f.to_string_lossy());
    }
    req = req.kv("read-data", if args.read_data { "true" } else { "false" });
    req = req.kv("verify", if args.no_verify { "false" } else { "true" });
    client::run_job(inv, &client, "copy", &req, args.job)
}

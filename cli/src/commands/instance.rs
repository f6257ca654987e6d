//! `cairn instance add|list|remove`: a mount's instances, through `ctl/instance` and the
//! mount's top-level directories.

use std::path::PathBuf;

use anyhow::Result;
use cairn::service::control::MAX_HOOK_TIMEOUT_SECS;
use cairn::service::log_control::MAX_LOG_EVERY_SECS;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{absolute, print_json, Invocation, Status};
use crate::client::{MountPointArg, Request};
use crate::failure::usage;

#[derive(Subcommand, Debug)]
pub enum InstanceCommand {
    /// Define an instance: a name, the paths its snapshots back up, and the commands
    /// whose output they store (with neither, it is fed by `cairn snapshot NAME --stdin
    /// FILE` only).
    Add(Box<AddArgs>),
    /// List the instances of the mount (what `ls` shows at its top).
    List(ListArgs),
    /// Remove an instance's definition (its points stay).
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The instance's name (1-240 of A-Z a-z 0-9 _ -).
    pub name: String,
    /// A file or directory its snapshots back up (repeat for several; none inside
    /// another, no two ending in the same name). Without --path and --command the
    /// instance is fed by stdin only: each snapshot needs --stdin NAME (`pg_dump app |
    /// cairn snapshot NAME --stdin app.sql`), and it cannot be bound to a policy.
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A command (run with /bin/sh -c) whose stdout each snapshot stores as the file
    /// named by the --as that goes with it, e.g. --command pg_dumpall --as all.sql;
    /// repeat the pair for several. Taken after the paths, in order; a command that
    /// exits non-zero fails the snapshot.
    #[arg(long = "command", value_name = "CMD")]
    pub commands: Vec<String>,
    /// The file name of the output of the --command in the same position.
    #[arg(long = "as", value_name = "NAME")]
    pub names: Vec<String>,
    /// Skip entries whose path relative to their source matches GLOB (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    #[command(flatten)]
    pub mount: MountPointArg,
    #[command(flatten)]
    pub hooks: HookArgs,
    #[command(flatten)]
    pub logs: LogArgs,
}

/// The instance's log files, archived between points for restores at a time
/// (docs/CONTROL.md, "Logs").
#[derive(Args, Debug)]
#[command(next_help_heading = "Logs (archived between points, for restore --at)")]
pub struct LogArgs {
    /// Archive the files an absolute GLOB matches (repeatable), e.g. --log
    /// '/var/lib/redis/appendonlydir/*': every --log-every seconds, what is new.
    #[arg(long = "log", value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Seconds between two archive passes, 1-86400 [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_LOG_EVERY_SECS))]
    pub log_every: Option<u64>,
    /// Users (names or uids, comma-separated) who may push this instance's logs through
    /// the mount (`cairn log push`, e.g. PostgreSQL's archive_command as postgres), and
    /// do nothing else. They reach the mount only if it has --allow-other.
    #[arg(long, value_name = "USERS")]
    pub log_pushers: Option<String>,
}

impl LogArgs {
    /// The log keys given, as `(key, value)` of the control grammar.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        self.globs
            .iter()
            .map(|g| ("log", g.clone()))
            .chain(self.log_every.map(|s| ("log-every", s.to_string())))
            .chain(self.log_pushers.clone().map(|u| ("log-pushers", u)))
            .collect()
    }
}

/// Commands the daemon runs with `/bin/sh -c` around the instance's jobs
/// (docs/CONTROL.md, "Hooks").
#[derive(Args, Debug)]
#[command(next_help_heading = "Hooks (run by the daemon with /bin/sh -c; output in the job's log)")]
pub struct HookArgs {
    /// Run CMD before each snapshot (manual or scheduled), with CAIRN_INSTANCE,
    /// CAIRN_JOB and CAIRN_POINT (the name the point is to get) in its environment: if
    /// it fails (non-zero exit, a signal, the timeout), so does the job, with the tail
    /// of its stderr, and no point is made.
    #[arg(long, value_name = "CMD")]
    pub before: Option<String>,
    /// Run CMD after each snapshot whose --before ran (or that has none), also after a
    /// failure or a cancel (CAIRN_RESULT=success|failure); if it fails, the point stays
    /// and the job carries a warning.
    #[arg(long, value_name = "CMD")]
    pub after: Option<String>,
    /// Run CMD before each restore (CAIRN_POINT is the point restored, CAIRN_TARGET
    /// where to): if it fails, so does the job, and nothing is written.
    #[arg(long, value_name = "CMD")]
    pub restore_before: Option<String>,
    /// Run CMD after each restore, whether it succeeded or failed (CAIRN_RESULT says
    /// which); if it fails, that is a warning.
    #[arg(long, value_name = "CMD")]
    pub restore_after: Option<String>,
    /// Kill a hook's process group (SIGTERM, SIGKILL 5 s later) after SECS seconds,
    /// 1-86400, and fail it [default: 600].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_HOOK_TIMEOUT_SECS))]
    pub hook_timeout: Option<u64>,
}

impl HookArgs {
    /// The hooks given, as `(key, value)` of the control grammar.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let commands = [
            ("before", &self.before),
            ("after", &self.after),
            ("restore-before", &self.restore_before),
            ("restore-after", &self.restore_after),
        ];
        commands
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
            .chain(self.hook_timeout.map(|t| ("hook-timeout", t.to_string())))
            .collect()
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub mount: MountPointArg,
    /// Print one JSON object (`{"instances": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The instance whose definition to remove.
    pub name: String,
    #[command(flatten)]
    pub mount: MountPointArg,
}

pub fn run(_inv: &Invocation<'_>, cmd: &InstanceCommand) -> Result<Status> {
    match cmd {
        InstanceCommand::Add(args) => {
            let client = args.mount.client()?;
            let mut req = Request::verb("add").kv("name", &args.name);
            let mut paths = Vec::new();
            for p in &args.paths {
                let p = absolute(p)?;
                req = req.path("path", &p)?;
                paths.push(p);
            }
            for g in &args.excludes {
                req = req.kv("exclude", g);
            }
            if args.commands.len() != args.names.len() {
                return Err(usage(format!(
                    "{} --command and {} --as: give each command the file name of its \
                     output (--command CMD --as NAME)",
                    args.commands.len(),
                    args.names.len()
                )));
            }
            for (c, n) in args.commands.iter().zip(&args.names) {
                req = req.kv("command", c).kv("as", n);
            }
            let mut hooks = args.hooks.pairs();
            hooks.extend(args.logs.pairs());
            for (k, v) in &hooks {
                req = req.kv(k, v.as_str());
            }
            client.request("instance", &req)?;
            println!("added instance {}", args.name);
            for p in &paths {
                println!("  path     {}", p.display());
            }
            for g in &args.excludes {
                println!("  exclude  {g}");
            }
            for (c, n) in args.commands.iter().zip(&args.names) {
                println!("  command  {c}  (as {n})");
            }
            for (k, v) in &hooks {
                println!("  {k:<8} {v}");
            }
            if paths.is_empty() && args.commands.is_empty() {
                println!("  (no path, no command: fed by --stdin only)");
                println!(
                    "`... | cairn snapshot {} --stdin FILE` takes a point of it",
                    args.name
                );
            } else {
                println!("`cairn snapshot {}` takes a point of it", args.name);
            }
            Ok(Status::Success)
        }
        InstanceCommand::Remove(args) => {
            let client = args.mount.client()?;
            client.request("instance", &Request::verb("remove").kv("name", &args.name))?;
            println!(
                "removed instance {} (its points stay in the repository)",
                args.name
            );
            Ok(Status::Success)
        }
        InstanceCommand::List(args) => {
            let client = args.mount.client()?;
            let mut rows = Vec::new();
            for name in client.instances()? {
                let points = client.points(&name).map(|p| p.len()).unwrap_or(0);
                let latest = client.latest(&name);
                rows.push((name, points, latest));
            }
            if args.json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(n, p, l)| json!({"name": n, "points": p, "latest": l}))
                    .collect();
                print_json(&json!({ "instances": list }))?;
                return Ok(Status::Success);
            }
            if rows.is_empty() {
                eprintln!("no instances yet: `cairn instance add NAME --path P` defines one");
                return Ok(Status::Success);
            }
            let width = rows
                .iter()
                .map(|r| r.0.len())
                .max()
                .unwrap_or(0)
                .max("INSTANCE".len());
            println!("{:<width$}  {:>6}  LATEST", "INSTANCE", "POINTS");
            for (name, points, latest) in &rows {
                println!(
                    "{name:<width$}  {points:>6}  {}",
                    latest.as_deref().unwrap_or("-")
                );
            }
            Ok(Status::Success)
        }
    }
}

//! `cairn policy ...`: a mount's policies, through `ctl/policy` and `.cairn/policies/`.
//! The daemon checks every value; this only spells the request.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{print_json, Invocation, Status};
use crate::client::{finish_job, Client, JobArgs, MountPointArg, Request};
use crate::failure::usage;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Define a policy: when scheduled points are taken and how long they are kept.
    Create(CreateArgs),
    /// Change a policy's schedule, retention or time zone.
    Update(UpdateArgs),
    /// Delete a policy (its instances' points stay).
    Delete(NameArgs),
    /// Let a policy's schedule run.
    Enable(NameArgs),
    /// Stop a policy's schedule (slots passed while disabled are not caught up).
    Disable(NameArgs),
    /// Bind an instance to a policy (moving it from the policy it was bound to).
    Bind(BindArgs),
    /// Unbind an instance from its policy (its points stay).
    Unbind(UnbindArgs),
    /// Take a scheduled point of the policy's instances now.
    RunNow(RunNowArgs),
    /// List the policies.
    List(ListArgs),
    /// Show one policy as JSON.
    Show(NameArgs),
    /// Show or change the repository's quotas and write-once protection.
    Settings(SettingsArgs),
}

/// Schedule and retention, all optional (the daemon says what a new policy lacks).
#[derive(Args, Debug, Default)]
pub struct Spec {
    /// Times of day, HH:MM, comma-separated, at least 1 h apart (1 to 24 of them).
    #[arg(long, value_name = "HH:MM,..")]
    pub times: Option<String>,
    /// Run on these weekdays: mon,tue,wed,thu,fri,sat,sun.
    #[arg(long, value_name = "DAYS", conflicts_with = "every_days")]
    pub weekdays: Option<String>,
    /// Run every N days (1 to 30), counting from today.
    #[arg(long, value_name = "N")]
    pub every_days: Option<String>,
    /// Keep scheduled points for N days (1 to 99999).
    #[arg(long, value_name = "N", conflicts_with_all = ["keep_count", "keep_forever"])]
    pub keep_days: Option<String>,
    /// Keep the newest N scheduled points (1 to 99999).
    #[arg(long, value_name = "N", conflicts_with = "keep_forever")]
    pub keep_count: Option<String>,
    /// Keep scheduled points until deleted by hand.
    #[arg(long)]
    pub keep_forever: bool,
    /// The IANA time zone of the times and days (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
}

impl Spec {
    fn add_to(&self, mut req: Request) -> Request {
        let keys = [
            ("times", &self.times),
            ("weekdays", &self.weekdays),
            ("every-days", &self.every_days),
            ("keep-days", &self.keep_days),
            ("keep-count", &self.keep_count),
            ("tz", &self.tz),
        ];
        for (key, value) in keys {
            if let Some(v) = value {
                req = req.kv(key, v);
            }
        }
        if self.keep_forever {
            req = req.kv("keep", "forever");
        }
        req
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The policy's name (1-240 of A-Z a-z 0-9 _ -).
    pub name: String,
    #[command(flatten)]
    pub spec: Spec,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub name: String,
    #[command(flatten)]
    pub spec: Spec,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The policy.
    pub name: String,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct BindArgs {
    /// The policy.
    pub name: String,
    /// The instance it covers from now on.
    pub instance: String,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct UnbindArgs {
    pub instance: String,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct RunNowArgs {
    pub name: String,
    /// Only this instance of the policy.
    #[arg(long)]
    pub instance: Option<String>,
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub mount: MountPointArg,
    /// Print one JSON object (`{"policies": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SettingsArgs {
    /// How many policies the repository may have.
    #[arg(long, value_name = "N")]
    pub max_policies: Option<String>,
    /// How many instances one policy may cover.
    #[arg(long, value_name = "N")]
    pub max_instances_per_policy: Option<String>,
    /// Forbid deleting scheduled points before their retention ends (cannot be undone).
    #[arg(long)]
    pub write_once: bool,
    #[command(flatten)]
    pub mount: MountPointArg,
}

fn policies(client: &Client) -> Result<Vec<Value>> {
    let dir = client.dir.join(".cairn").join("policies");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names.iter().map(|n| show(client, n)).collect()
}

fn show(client: &Client, name: &str) -> Result<Value> {
    let path = client.dir.join(".cairn").join("policies").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => usage(format!(
            "no policy `{name}`: `cairn policy list` shows the policies"
        )),
        _ => anyhow::anyhow!("cannot read {}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `mon,wed` or `every 2 days`.
fn days(p: &Value) -> String {
    if let Some(list) = p["days"]["weekdays"].as_array() {
        return list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(",");
    }
    match p["days"]["every-days"]["every"].as_u64() {
        Some(1) => "daily".into(),
        Some(n) => format!("every {n} days"),
        None => "-".into(),
    }
}

fn keep(p: &Value) -> String {
    match (&p["keep"]["days"], &p["keep"]["count"]) {
        (Value::Number(n), _) => format!("{n} days"),
        (_, Value::Number(n)) => format!("last {n}"),
        _ => "forever".into(),
    }
}

fn list(args: &ListArgs) -> Result<Status> {
    let client = args.mount.client()?;
    let all = policies(&client)?;
    if args.json {
        print_json(&json!({ "policies": all }))?;
        return Ok(Status::Success);
    }
    if all.is_empty() {
        eprintln!("no policies yet: `cairn policy create NAME --times 03:00 --every-days 1 --keep-days 7` defines one");
        return Ok(Status::Success);
    }
    let strings = |v: &Value| -> String {
        v.as_array()
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows = vec![[
        "NAME",
        "ENABLED",
        "TIMES",
        "DAYS",
        "KEEP",
        "ZONE",
        "INSTANCES",
        "NEXT RUN",
    ]
    .map(String::from)];
    for p in &all {
        rows.push([
            p["name"].as_str().unwrap_or("-").to_string(),
            if p["enabled"] == true { "yes" } else { "no" }.to_string(),
            strings(&p["times"]),
            days(p),
            keep(p),
            p["time_zone"].as_str().unwrap_or("UTC").to_string(),
            strings(&p["bound"]),
            p["next_run"].as_str().unwrap_or("-").to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(Status::Success)
}

pub fn run(inv: &Invocation<'_>, cmd: &PolicyCommand) -> Result<Status> {
    let simple = |mount: &MountPointArg, req: Request| -> Result<Status> {
        let reply = mount.client()?.request("policy", &req)?;
        println!("{reply}");
        Ok(Status::Success)
    };
    match cmd {
        PolicyCommand::Create(a) => {
            let mut req = a.spec.add_to(Request::verb("create").kv("name", &a.name));
            if a.disabled {
                req = req.kv("enabled", "false");
            }
            simple(&a.mount, req)
        }
        PolicyCommand::Update(a) => simple(
            &a.mount,
            a.spec.add_to(Request::verb("update").kv("name", &a.name)),
        ),
        PolicyCommand::Delete(a) => simple(&a.mount, Request::verb("delete").kv("name", &a.name)),
        PolicyCommand::Enable(a) => simple(&a.mount, Request::verb("enable").kv("name", &a.name)),
        PolicyCommand::Disable(a) => simple(&a.mount, Request::verb("disable").kv("name", &a.name)),
        PolicyCommand::Bind(a) => simple(
            &a.mount,
            Request::verb("bind")
                .kv("name", &a.name)
                .kv("instance", &a.instance),
        ),
        PolicyCommand::Unbind(a) => simple(
            &a.mount,
            Request::verb("unbind").kv("instance", &a.instance),
        ),
        PolicyCommand::RunNow(a) => {
            let client = a.mount.client()?;
            let mut req = Request::verb("run-now").kv("name", &a.name);
            if let Some(i) = &a.instance {
                req = req.kv("instance", i);
            }
            let reply = client.request("policy", &req)?;
            let ids: Vec<u64> = reply
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("job=")?.parse().ok())
                .collect();
            if a.job.no_wait {
                if a.job.json {
                    print_json(&json!({ "jobs": ids }))?;
                } else {
                    ids.iter().for_each(|id| println!("{id}"));
                }
                return Ok(Status::Success);
            }
            let mut status = Status::Success;
            for id in ids {
                status = finish_job(inv, &client, id, a.job.json)?;
            }
            Ok(status)
        }
        PolicyCommand::List(a) => list(a),
        PolicyCommand::Show(a) => {
            let client = a.mount.client()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&show(&client, &a.name)?)?
            );
            Ok(Status::Success)
        }
        PolicyCommand::Settings(a) => {
            let mut req = Request::verb("settings");
            if let Some(n) = &a.max_policies {
                req = req.kv("max-policies", n);
            }
            if let Some(n) = &a.max_instances_per_policy {
                req = req.kv("max-instances-per-policy", n);
            }
            if a.write_once {
                req = req.kv("write-once", "true");
            }
            simple(&a.mount, req)
        }
    }
}

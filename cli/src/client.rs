//! Talking to a running mount through its control files: finding the mount, writing one
//! request and reading the reply from the same handle, following a job's status.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::commands::{print_json, Invocation, Status};
use crate::failure::{coded, usage};
use crate::human_units;
use crate::mounts;
use crate::progress::TermProgress;

pub const MOUNT_ENV: &str = "CAIRN_MOUNT";

/// How often a followed job's status is read.
const POLL: Duration = Duration::from_millis(200);

/// `--mount DIR` for commands that talk to a running mount.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// A directory where `cairn mount` serves the repository (else CAIRN_MOUNT).
    #[arg(long = "mount", value_name = "DIR")]
    pub mount: Option<PathBuf>,
}

impl MountArgs {
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

/// A mount's control plane.
pub struct Client {
    pub dir: PathBuf,
}

/// One request line: an optional verb and `key=value` words.
#[derive(Debug, Default, Clone)]
pub struct Request {
    verb: Option<&'static str>,
    pairs: Vec<(&'static str, String)>,
}

impl Request {
    pub fn new() -> Request {
        Request::default()
    }

    pub fn verb(verb: &'static str) -> Request {
        Request {
            verb: Some(verb),
            pairs: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &'static str, value: impl Into<String>) -> Request {
        self.pairs.push((key, value.into()));
        self
    }

    pub fn path(self, key: &'static str, path: &Path) -> Result<Request> {
        let text = path.to_str().ok_or_else(|| {
            usage(format!(
                "{} is not valid UTF-8, which control requests cannot carry",
                path.display()
            ))
        })?;
        Ok(self.kv(key, text))
    }

    /// The request as one line (with its newline): `key="value"` words, or one JSON
    /// object when a value holds a control character a line cannot carry.
    pub fn line(&self) -> String {
        if self
            .pairs
            .iter()
            .any(|(_, v)| v.chars().any(|c| c.is_control()))
        {
            let mut obj = serde_json::Map::new();
            if let Some(v) = self.verb {
                obj.insert("op".into(), json!(v));
            }
            for (k, v) in &self.pairs {
                match obj.get_mut(*k) {
                    Some(Value::Array(a)) => a.push(json!(v)),
                    Some(one) => *one = json!([one.clone(), v]),
                    None => {
                        obj.insert(k.to_string(), json!(v));
                    }
                }
            }
            return format!("{}\n", Value::Object(obj));
        }
        let mut words: Vec<String> = self.verb.iter().map(|v| v.to_string()).collect();
        words.extend(self.pairs.iter().map(|(k, v)| format!("{k}={}", quote(v))));
        format!("{}\n", words.join(" "))
    }
}

/// `"value"` with `"` and `\` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reads a whole file through positioned reads, so that it works on a handle that was
/// also written to.
fn read_all_at(f: &File) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read_at(&mut buf, out.len() as u64)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// What to try when the daemon refuses a request with `errno`.
fn refusal_hint(file: &str, errno: i32) -> Option<String> {
    let text = match (file, errno) {
        ("jobs", libc::EACCES | libc::EPERM) => {
            "only the mount's owner can delete jobs: run cairn as that user"
        }
        (_, libc::EACCES) => {
            "control files are writable by the mount's owner only: run cairn as that user"
        }
        ("snapshot" | "verify", libc::ENOENT) => {
            "`cairn instance list` shows the instances; `cairn instance add NAME --path P` defines one"
        }
        ("restore" | "forget", libc::ENOENT) => {
            "`cairn points INSTANCE` lists the points of an instance"
        }
        ("forget", libc::EPERM) => "manual points are forgotten only with --manual",
        ("instance", libc::ENOENT) => "`cairn instance list` shows the instances",
        ("policy", libc::ENOENT) => {
            "`cairn policy list` shows the policies and their instances; `cairn instance list` the instances"
        }
        ("policy", libc::EDQUOT) => {
            "`cairn policy settings --max-policies N --max-instances-per-policy N` raises the quotas"
        }
        ("policy", libc::EPERM) => {
            "the repository is write-once: scheduled points stay until their retention ends"
        }
        ("cancel", libc::ENOENT) => "`cairn jobs` lists the jobs and their states",
        ("restore", libc::EEXIST) => {
            "pick a --target that does not exist or is empty, or --mode in-place to restore over it"
        }
        (_, libc::ENOSPC) => {
            "free some space in the daemon's cache directory (CAIRN_CACHE_DIR), then run it again"
        }
        (_, libc::EIO) => "the daemon could not write to the repository: see its log",
        _ => return None,
    };
    Some(text.to_string())
}

impl Client {
    /// The mount at `dir`; an error naming what to do when it is not a cairn mount.
    pub fn open(dir: &Path) -> Result<Client> {
        let ctl = dir.join(".cairn").join("ctl");
        match std::fs::metadata(&ctl) {
            Ok(m) if m.is_dir() => Ok(Client {
                dir: dir.to_path_buf(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(usage(format!(
                "{} is a cairn mount whose daemon is gone: `cairn umount {}` clears it, then \
                 `cairn mount REPO {}` mounts it again",
                dir.display(),
                dir.display(),
                dir.display()
            ))),
            _ => {
                let what = if mounts::cairn_mount_at(dir).is_some() {
                    "a cairn mount that does not answer"
                } else if dir.is_dir() {
                    "not a cairn mount"
                } else {
                    "not a directory"
                };
                Err(usage(format!(
                    "{} is {what} (no {}): start one with `cairn mount REPO {}`, or point \
                     --mount / {MOUNT_ENV} at a running one",
                    dir.display(),
                    ctl.display(),
                    dir.display()
                )))
            }
        }
    }

    fn meta(&self) -> PathBuf {
        self.dir.join(".cairn")
    }

    /// Writes one request into `ctl/<file>` through a read-write handle and returns the
    /// reply read back from it. A refused request is an error with exit code 2 carrying
    /// the daemon's message.
    pub fn request(&self, file: &str, req: &Request) -> Result<String> {
        let path = self.meta().join("ctl").join(file);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                let hint = refusal_hint(file, e.raw_os_error().unwrap_or(0));
                coded(2, format!("cannot open {}: {e}", path.display()), hint)
            })?;
        let line = req.line();
        let written = f.write(line.as_bytes());
        let reply = read_all_at(&f)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        match written {
            Ok(n) if n == line.len() => Ok(reply),
            Ok(n) => Err(anyhow::anyhow!(
                "only {n} of {} bytes of the request reached {}",
                line.len(),
                path.display()
            )),
            Err(e) => {
                let message = reply
                    .strip_prefix("error: ")
                    .map(str::to_string)
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| e.to_string());
                Err(coded(
                    2,
                    format!("ctl/{file} refused the request: {message}"),
                    refusal_hint(file, e.raw_os_error().unwrap_or(0)),
                ))
            }
        }
    }

    /// Writes a request that starts a job; returns the job id.
    pub fn start_job(&self, file: &str, req: &Request) -> Result<u64> {
        let reply = self.request(file, req)?;
        reply
            .strip_prefix("job=")
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected reply from ctl/{file}: {reply:?}"))
    }

    fn status_path(&self, id: u64) -> PathBuf {
        self.meta().join("jobs").join(id.to_string()).join("status")
    }

    /// Whether `jobs/<id>/status` is there.
    pub fn has_status(&self, id: u64) -> bool {
        self.status_path(id).is_file()
    }

    /// `jobs/<id>/status`.
    pub fn status(&self, id: u64) -> Result<Value> {
        let path = self.status_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound && self.meta().join("jobs").is_dir() => {
                return Err(usage(format!(
                    "no job {id} in the mount at {}: `cairn jobs` lists the jobs",
                    self.dir.display()
                )))
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot read {}: {e} (did the mount go away? after mounting again, \
                     `cairn jobs {id}` shows the job's state)",
                    path.display()
                ))
            }
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON status", path.display()))
    }

    /// Job ids in the mount, oldest first.
    pub fn job_ids(&self) -> Result<Vec<u64>> {
        let dir = self.meta().join("jobs");
        let mut ids: Vec<u64> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Instance directories at the top of the mount (what `ls` shows), sorted.
    pub fn instances(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != ".cairn")
            .collect();
        names.sort();
        Ok(names)
    }

    /// The point directories of an instance, oldest first.
    pub fn points(&self, instance: &str) -> Result<Vec<String>> {
        Ok(self
            .points_with_times(instance)?
            .into_iter()
            .map(|(_, name)| name)
            .collect())
    }

    /// The point directories of an instance with their times (ns), oldest first.
    pub fn points_with_times(&self, instance: &str) -> Result<Vec<(i64, String)>> {
        let dir = self.dir.join(instance);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(usage(format!(
                    "no instance `{instance}` in the mount at {}: `cairn instance list` shows them",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        // Names sort by time only to the second: order by the point's time (its
        // directory's ctime, to the nanosecond; the mtime is the source directory's),
        // then by name.
        let mut points: Vec<(i64, String)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| {
                use std::os::unix::fs::MetadataExt;
                let time = e
                    .metadata()
                    .map(|m| m.ctime() * 1_000_000_000 + m.ctime_nsec())
                    .unwrap_or(0);
                Some((time, e.file_name().into_string().ok()?))
            })
            .collect();
        points.sort();
        Ok(points)
    }

    /// Deletes a finished job from the mount's history: `rm -r jobs/<id>`.
    pub fn delete_job(&self, id: u64) -> Result<()> {
        let dir = self.meta().join("jobs").join(id.to_string());
        std::fs::remove_dir_all(&dir).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => usage(format!(
                "no job {id} in the mount at {}: `cairn jobs` lists the jobs",
                self.dir.display()
            )),
            Some(libc::EBUSY) => coded(
                2,
                format!("job {id} is queued or running and cannot be deleted"),
                Some(format!(
                    "`cairn cancel {id}` stops it; delete it once it has ended"
                )),
            ),
            Some(errno @ (libc::EACCES | libc::EPERM)) => coded(
                2,
                format!("cannot delete job {id}: {e}"),
                refusal_hint("jobs", errno),
            ),
            _ => anyhow::anyhow!("cannot delete {}: {e}", dir.display()),
        })
    }

    /// Where `latest` of an instance points, if it has points.
    pub fn latest(&self, instance: &str) -> Option<String> {
        std::fs::read_link(self.dir.join(instance).join("latest"))
            .ok()?
            .to_str()
            .map(str::to_string)
    }
}

fn is_finished(state: &str) -> bool {
    !matches!(state, "queued" | "running" | "")
}

/// Starts a job through `ctl/<file>` and, unless `--no-wait`, follows it to its end:
/// exit status 0 when it succeeded, 1 when it failed, was cancelled or interrupted, 130
/// when Ctrl-C gave up on it (after asking the daemon to cancel it).
pub fn run_job(
    inv: &Invocation<'_>,
    client: &Client,
    file: &str,
    req: &Request,
    opts: JobArgs,
) -> Result<Status> {
    let id = client.start_job(file, req)?;
    if opts.no_wait {
        if opts.json {
            print_json(&json!({ "job": id }))?;
        } else {
            println!("{id}");
        }
        return Ok(Status::Success);
    }
    finish_job(inv, client, id, opts.json)
}

/// Follows job `id` to its end and reports it (see [`run_job`]).
pub fn finish_job(inv: &Invocation<'_>, client: &Client, id: u64, json: bool) -> Result<Status> {
    let status = follow(inv, client, id)?;
    let state = status["state"].as_str().unwrap_or("").to_string();
    if json {
        print_json(&status)?;
    } else if state == "succeeded" {
        print_result(&status);
    }
    if state == "succeeded" {
        let skipped = status["result"]["skipped"].as_array();
        return Ok(if skipped.is_some_and(|s| !s.is_empty()) {
            Status::SkippedDamaged
        } else {
            Status::Success
        });
    }
    let error = status["error"].as_str().unwrap_or("no cause recorded");
    Err(coded(
        1,
        format!("job {id} ({}) {state}: {error}", describe(&status)),
        Some(format!(
            "`cairn jobs {id}` shows its status; {} has its log",
            client
                .meta()
                .join("jobs")
                .join(id.to_string())
                .join("log")
                .display()
        )),
    ))
}

/// `snapshot of db`, `verify of everything`.
fn describe(status: &Value) -> String {
    let kind = status["kind"].as_str().unwrap_or("job");
    match status["instance"].as_str() {
        Some(i) => format!("{kind} of {i}"),
        None => format!("{kind} of all instances"),
    }
}

fn noun(kind: &str) -> &'static str {
    match kind {
        "verify" | "prune" => "objects",
        "forget" => "points",
        _ => "files",
    }
}

/// Polls the job's status every 200 ms until it ends, drawing progress on a terminal.
/// Ctrl-C writes `job=ID` into `ctl/cancel`, waits a little for the job to stop and
/// ends with exit code 130.
fn follow(inv: &Invocation<'_>, client: &Client, id: u64) -> Result<Value> {
    let first = client.status(id)?;
    let kind = first["kind"].as_str().unwrap_or("job").to_string();
    let progress = TermProgress::new("queued", noun(&kind), false);
    let armed = inv
        .interrupts
        .arm_saying("cancelling the job (interrupt again to stop waiting)");
    let mut status = first;
    loop {
        let state = status["state"].as_str().unwrap_or("");
        if is_finished(state) {
            progress.finish();
            return Ok(status);
        }
        if inv.interrupts.token().is_cancelled() {
            break;
        }
        show(&progress, &status);
        pause_unless_cancelled(inv.interrupts.token(), POLL);
        if inv.interrupts.token().is_cancelled() {
            break;
        }
        status = client.status(id)?;
    }
    progress.finish();
    // Ctrl-C: ask the daemon to cancel, then give it a moment to stop.
    let cancel = client.request("cancel", &Request::new().kv("job", id.to_string()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut state = String::new();
    while Instant::now() < deadline {
        match client.status(id) {
            Ok(s) if is_finished(s["state"].as_str().unwrap_or("")) => {
                state = s["state"].as_str().unwrap_or("").to_string();
                break;
            }
            Ok(_) => std::thread::sleep(POLL),
            Err(_) => break,
        }
    }
    drop(armed);
    let message = match (cancel, state.as_str()) {
        (Err(e), "") => format!("interrupted; could not cancel job {id}: {e}"),
        (Ok(_), "") => format!("interrupted; asked job {id} to cancel, and it is still stopping"),
        (_, "cancelled") => format!("interrupted; job {id} was cancelled"),
        (_, other) => format!("interrupted; job {id} ended anyway ({other})"),
    };
    Err(coded(
        130,
        message,
        Some(format!("`cairn jobs {id}` shows its state")),
    ))
}

/// Sleeps `total`, in short steps, so Ctrl-C is acted on at once rather than at the next
/// poll (by which time a short job may have finished).
fn pause_unless_cancelled(token: &cairn::engine::CancelToken, total: Duration) {
    const STEP: Duration = Duration::from_millis(10);
    let end = Instant::now() + total;
    while !token.is_cancelled() {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep(STEP.min(end - now));
    }
}

fn show(progress: &TermProgress, status: &Value) {
    use cairn::engine::Progress;
    let p = &status["progress"];
    if status["state"] == "queued" {
        progress.phase("queued (waiting for the instance's earlier jobs)");
    } else {
        progress.phase(
            p["phase"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("running"),
        );
    }
    if p["total_files"].is_u64() || p["total_bytes"].is_u64() {
        progress.set_total(
            p["total_files"].as_u64().unwrap_or(0),
            p["total_bytes"].as_u64().unwrap_or(0),
        );
    }
    progress.set_counts(
        p["files"].as_u64().unwrap_or(0),
        p["bytes"].as_u64().unwrap_or(0),
    );
}

/// Seconds between a status's `started` and `finished`.
fn duration(status: &Value) -> Option<Duration> {
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(status[k].as_str()?).ok();
    let d = t("finished")? - t("started")?;
    d.to_std().ok()
}

fn print_warnings(result: &Value) {
    for w in result["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("warning: {w}");
        }
    }
}

/// Prints what a succeeded job produced, as the direct commands do.
/// Names the damaged files a `restore --skip-damaged` left out.
pub fn print_skipped<'a>(paths: impl Iterator<Item = &'a str>) {
    let paths: Vec<&str> = paths.collect();
    for p in &paths {
        println!("SKIPPED    {p} (damaged)");
    }
    if !paths.is_empty() {
        println!(
            "skipped    {} damaged file(s): everything else was restored (exit code 3)",
            paths.len()
        );
    }
}

pub fn print_result(status: &Value) {
    let r = &status["result"];
    let instance = status["instance"].as_str().unwrap_or("");
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let elapsed = duration(status);
    let tail = |bytes: u64| {
        if let Some(d) = elapsed {
            println!("duration   {}", human_units::duration(d));
            println!(
                "throughput {}/s",
                human_units::bytes(human_units::bytes_per_sec(bytes, d))
            );
        }
    };
    print_warnings(r);
    match status["kind"].as_str().unwrap_or("") {
        "snapshot" => {
            let s = &r["stats"];
            println!(
                "point      {instance}/{}",
                r["point"].as_str().unwrap_or("?")
            );
            println!(
                "files      {} ({} read, the rest unchanged), {} directories",
                u(&s["files"]),
                u(&s["files_read"]),
                u(&s["dirs"])
            );
            println!("bytes      {}", human_units::bytes(u(&s["bytes"])));
            println!("new        {}", human_units::bytes(u(&s["new_bytes"])));
            println!("stored     {}", human_units::bytes(u(&s["stored_bytes"])));
            tail(u(&s["bytes"]));
        }
        "restore" => {
            let req = &status["request"];
            println!(
                "restored   {instance}/{}",
                r["point"].as_str().unwrap_or("?")
            );
            match req["target"].as_str() {
                Some(t) => println!("into       {t}"),
                None => println!("into       the original paths"),
            }
            println!(
                "files      {} ({} written, {} removed)",
                u(&r["files"]),
                u(&r["written"]),
                u(&r["removed"])
            );
            println!("bytes      {}", human_units::bytes(u(&r["bytes"])));
            if let Some(s) = r["safety_point"].as_str() {
                println!(
                    "safety     {instance}/{s} holds what was there before (restore it to undo)"
                );
            }
            print_skipped(
                r["skipped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
            tail(u(&r["bytes"]));
        }
        "verify" => {
            let read_data = status["request"]["read_data"].as_bool().unwrap_or(false);
            println!(
                "checked    {} points, {} trees, {} blobs, {} packs{}",
                u(&r["points_checked"]),
                u(&r["trees_checked"]),
                u(&r["blobs_checked"]),
                u(&r["packs_checked"]),
                if read_data {
                    format!(", read {}", human_units::bytes(u(&r["bytes_read"])))
                } else {
                    " (structure only; --read-data also checks the data)".to_string()
                }
            );
            for h in r["healed"].as_array().into_iter().flatten() {
                println!("HEALED     {}", h.as_str().unwrap_or_default());
            }
            println!("ok: no damage found");
        }
        _ => println!("{}", serde_json::to_string_pretty(r).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_quote_values_and_fall_back_to_json_for_control_characters() {
        let r = Request::verb("add")
            .kv("name", "db")
            .kv("path", "/srv/a \"b\" \\c")
            .kv("path", "/x");
        assert_eq!(
            r.line(),
            "add name=\"db\" path=\"/srv/a \\\"b\\\" \\\\c\" path=\"/x\"\n"
        );
        let r = Request::verb("add")
            .kv("name", "db")
            .kv("path", "/a\nb")
            .kv("path", "/c");
        let line = r.line();
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            v,
            json!({"op": "add", "name": "db", "path": ["/a\nb", "/c"]})
        );
    }

    #[test]
    fn requests_round_trip_through_the_daemon_grammar() {
        let r = Request::new()
            .kv("instance", "db")
            .kv("point", "latest")
            .kv("target", "/t/with \"quotes\" and \\ and 'single'");
        let parsed = cairn::service::control::parse_restore(&r.line()).unwrap();
        assert_eq!(
            parsed.target.unwrap(),
            PathBuf::from("/t/with \"quotes\" and \\ and 'single'")
        );
        let r = Request::new()
            .kv("instance", "db")
            .kv("target", "/a\tb\nc")
            .kv("point", "latest");
        let parsed = cairn::service::control::parse_restore(&r.line()).unwrap();
        assert_eq!(parsed.target.unwrap(), PathBuf::from("/a\tb\nc"));
    }
}

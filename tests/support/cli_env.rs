//! A private work directory for the `cairn` binary (repository, cache, mount point,
//! sources) and how to run cairn in it with a time limit: what the mount and daemon tests
//! drive the CLI through.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli_run::{cairn_bin, exit_code, Run};
use super::daemon::{is_whole_cairn_mount, Daemon};

/// A CLI command (following a job included) must end within this.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Reads a child's pipe to its end on a thread of its own, so that a chatty child cannot
/// block on a full pipe while it is waited for.
pub fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Waits for a child with a time limit; kills it (and fails) when the limit passes.
pub fn wait_status(what: &str, child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child with a time limit (see [`wait_status`]), its output drained.
pub fn wait_limited(what: &str, mut child: Child, limit: Duration) -> Run {
    let out_reader = drain(child.stdout.take().unwrap());
    let err_reader = drain(child.stderr.take().unwrap());
    let status = wait_status(what, &mut child, limit);
    Run {
        code: exit_code(status),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        what: what.to_string(),
    }
}

/// Reads `jobs/<id>/status` through the mount until `pred` holds; panics after `limit`.
pub fn wait_job(
    mnt: &Path,
    id: u64,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let path = mnt.join(format!(".cairn/jobs/{id}/status"));
    let start = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(&path) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if pred(&v) {
                    return v;
                }
                assert!(
                    start.elapsed() < limit,
                    "job {id}: not {what} within {limit:?}: {v}"
                );
            }
        }
        assert!(
            start.elapsed() < limit,
            "job {id}: no status within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private work directory (repository, cache, mount point, sources) and how to run
/// cairn in it.
pub struct Env {
    dir: tempfile::TempDir,
    pub password: Option<String>,
    /// A repository URL instead of the local `repo` directory, and the variables that
    /// reach its store.
    repo_url: Option<String>,
    vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            password: None,
            repo_url: None,
            vars: Vec::new(),
        }
    }

    /// An environment whose repository is encrypted with `password` (CAIRN_PASSWORD).
    pub fn with_password(password: &str) -> Env {
        Env {
            password: Some(password.to_string()),
            ..Env::new()
        }
    }

    /// An environment whose repository is `url`, reached with the variables `vars`.
    pub fn with_repository(url: String, vars: Vec<(String, String)>) -> Env {
        Env {
            repo_url: Some(url),
            vars,
            ..Env::new()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> String {
        match &self.repo_url {
            Some(url) => url.clone(),
            None => self.path("repo").to_str().unwrap().to_string(),
        }
    }

    pub fn mnt(&self) -> PathBuf {
        self.path("mnt")
    }

    pub fn mnt_str(&self) -> String {
        self.mnt().to_str().unwrap().to_string()
    }

    /// A clean environment: no terminal, no inherited cairn settings, a private cache,
    /// and CAIRN_MOUNT pointing at this mount point.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cairn_bin());
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("CAIRN_CACHE_DIR", self.path("cache"))
            .env("CAIRN_MOUNT", self.mnt())
            .env_remove("CAIRN_REPO")
            .env_remove("CAIRN_PASSWORD_FILE")
            .env_remove("RUST_LOG")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        match &self.password {
            Some(p) => cmd.env("CAIRN_PASSWORD", p),
            None => cmd.env_remove("CAIRN_PASSWORD"),
        };
        cmd
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run cairn: {e}"))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        wait_limited(
            &format!("cairn {}", args.join(" ")),
            self.spawn(args),
            COMMAND_LIMIT,
        )
    }

    pub fn init(&self) {
        let mut args = vec!["init"];
        if self.password.is_none() {
            args.push("--no-encryption");
        }
        let repo = self.repo();
        args.push(&repo);
        self.run(&args).ok();
        fs::create_dir_all(self.mnt()).unwrap();
    }

    /// `cairn mount --background`: returns the guard of the daemon it started.
    pub fn mount_background(&self) -> Daemon {
        self.mount_background_with(&[])
    }

    /// [`Env::mount_background`] with `extra` options (`--allow-other`, say).
    pub fn mount_background_with(&self, extra: &[&str]) -> Daemon {
        let (repo, mnt) = (self.repo(), self.mnt_str());
        let mut args = vec!["mount", "--background", "--json"];
        args.extend_from_slice(extra);
        args.extend([repo.as_str(), mnt.as_str()]);
        let run = self.run(&args);
        // Whatever happened, a daemon that did start is guarded from here on.
        let pid = serde_json::from_str::<Value>(run.stdout.trim())
            .ok()
            .and_then(|v| v["pid"].as_u64());
        let daemon = Daemon::new(self.mnt(), pid.map(|p| p as i32), None);
        let run = run.ok();
        let v = run.json();
        assert!(
            v["log"].as_str().is_some_and(|l| Path::new(l).is_file()),
            "{v}"
        );
        assert!(is_whole_cairn_mount(&self.mnt()), "mounted when it returns");
        assert!(self.mnt().join(".cairn/README").is_file());
        daemon
    }

    /// `cairn mount` in the foreground as a child of this test; returns once mounted.
    pub fn mount_foreground(&self) -> Daemon {
        let (repo, mnt) = (self.repo(), self.mnt_str());
        let child = self.spawn(&["mount", &repo, &mnt]);
        let pid = child.id() as i32;
        let mut daemon = Daemon::new(self.mnt(), Some(pid), Some(child));
        let start = Instant::now();
        while !(is_whole_cairn_mount(&self.mnt()) && self.mnt().join(".cairn/README").is_file()) {
            if let Some(status) = daemon.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                let _ = daemon
                    .child
                    .as_mut()
                    .unwrap()
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err);
                panic!("cairn mount exited ({status}) before mounting:\n{err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the foreground mount did not appear within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }
}

pub fn job_id(run: &Run) -> u64 {
    run.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("--no-wait prints a job id: {}", run.describe()))
}

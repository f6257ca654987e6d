//! A working directory with its own catalog cache, and how to run the `cairn` binary in
//! it against a local repository: what the plain CLI tests drive it through.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cli_run::{cairn_bin, Run};

pub const PASSWORD: &str = "correct horse battery staple";

/// A working directory with its own catalog cache, and how to run cairn in it.
pub struct Cli {
    pub work: PathBuf,
    pub password: Option<String>,
}

impl Cli {
    pub fn new(work: &Path) -> Cli {
        Cli {
            work: work.to_path_buf(),
            password: Some(PASSWORD.to_string()),
        }
    }

    pub fn without_password(work: &Path) -> Cli {
        Cli {
            work: work.to_path_buf(),
            password: None,
        }
    }

    pub fn repo(&self) -> String {
        self.work.join("repo").to_str().unwrap().to_string()
    }

    /// A clean environment: no terminal, no inherited cairn settings, a private cache.
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.current_dir(&self.work)
            .env("CAIRN_CACHE_DIR", self.work.join("cache"))
            .env_remove("CAIRN_REPO")
            .env_remove("CAIRN_PASSWORD_FILE")
            .env_remove("RUST_LOG")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null());
        match &self.password {
            Some(p) => cmd.env("CAIRN_PASSWORD", p),
            None => cmd.env_remove("CAIRN_PASSWORD"),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cairn_bin());
        self.configure(&mut cmd).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run cairn: {e}"));
        Run::from_output(format!("cairn {}", args.join(" ")), out)
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run cairn: {e}"))
    }
}

/// Bytes of the finished pack objects under `repo/packs` (in-progress uploads of the
/// local store carry a `#` in their name).
pub fn pack_bytes(repo: &Path) -> u64 {
    let mut total = 0;
    let Ok(dirs) = fs::read_dir(repo.join("packs")) else {
        return 0;
    };
    for d in dirs.flatten() {
        for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
            if !f.file_name().to_string_lossy().contains('#') {
                total += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

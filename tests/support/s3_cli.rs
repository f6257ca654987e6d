//! The CLI on an encrypted S3 repository through a counting proxy ([`FaultProxy`] without
//! rules), with a source of many small directories: for tests that count requests or
//! look at the local blob cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cli_env::Env;
use super::fixture::{assert_same_tree, noise, SourceTree};
use super::s3::{cli_vars, s3_env, unique_prefix};
use super::s3_fault_proxy::{FaultProxy, Seen};

/// A CLI environment whose encrypted repository is on S3 through a counting proxy.
pub struct Counted {
    pub proxy: FaultProxy,
    pub env: Env,
}

/// `None` (after s3_env's loud warning; a panic with CI=true) when there is no S3 server.
pub fn counted(tag: &str) -> Option<Counted> {
    let s3 = s3_env()?;
    let proxy = FaultProxy::start(&s3.endpoint);
    let url = format!("s3://{}/{}", s3.bucket, unique_prefix(tag));
    let mut env = Env::with_repository(url, cli_vars(s3, &proxy.endpoint()));
    env.password = Some("requests".into());
    env.init();
    Some(Counted { proxy, env })
}

impl Counted {
    /// 120 directories of 5 small files (many trees, one data pack).
    pub fn source(&self) -> PathBuf {
        let src = SourceTree::new(&self.env.path("src"));
        for d in 0..120u64 {
            for f in 0..5u64 {
                let rel = format!("g{}/d{d:03}/f{f}.txt", d % 7);
                src.file(&rel, &noise(d * 10 + f, 1500));
            }
        }
        src.root
    }

    pub fn snapshot(&self, src: &Path) {
        let (repo, path) = (self.env.repo(), src.to_str().unwrap().to_string());
        self.env
            .run(&["snapshot", "data", "--repo", &repo, "--path", &path])
            .ok();
    }

    /// Restores the latest point into `rel` (a new directory) and checks it against `src`.
    pub fn restore(&self, src: &Path, rel: &str) {
        let (repo, target) = (self.env.repo(), self.env.path(rel));
        let target_arg = target.to_str().unwrap();
        self.env
            .run(&[
                "restore", "data", "latest", "--repo", &repo, "--target", target_arg,
            ])
            .ok();
        assert_same_tree(src, &target);
    }

    /// The requests since the last call, with their count by kind.
    pub fn take(&self) -> (Vec<Seen>, BTreeMap<String, usize>) {
        let seen = self.proxy.take_seen();
        let mut kinds = BTreeMap::new();
        for s in &seen {
            *kinds.entry(s.kind.clone()).or_default() += 1;
        }
        (seen, kinds)
    }
}

/// The blob cache files under the CLI's cache directory (`<cache>/<repo id>/blob-cache`).
pub fn blob_cache_files(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(repos) = std::fs::read_dir(env.path("cache")) else {
        return out;
    };
    for repo in repos.flatten() {
        if let Ok(files) = std::fs::read_dir(repo.path().join("blob-cache")) {
            out.extend(files.flatten().map(|f| f.path()));
        }
    }
    out.sort();
    out
}

//! The prune lease after a crash (issue 10, item 8), through the real `cairn prune`: a
//! lease whose holder was a process of this host that is gone is taken over at once; a
//! live lease of another host makes prune wait (and says how to break it), and
//! `--break-lease` takes it over and records an event.

use cairn::repo::process::ProcessId;
use cairn::repo::{Lease, LeaseHolder, Repository};
use cairn::store::{Location, Store};

use crate::support::cli_env::Env;

const HOUR_NS: i64 = 3_600 * 1_000_000_000;

fn plant(env: &Env, holder: LeaseHolder) {
    let store = Store::open(&Location::Local(env.path("repo"))).unwrap();
    let repo = Repository::open(store, None).unwrap();
    // A prune that died holding the lease: it is never released.
    std::mem::forget(
        Lease::acquire(&repo, &holder, cairn::service::now_ns(), 6 * HOUR_NS, false).unwrap(),
    );
}

fn dead_process() -> ProcessId {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    ProcessId {
        pid: child.id(),
        ..ProcessId::current().unwrap()
    }
}

#[test]
fn a_crashed_prunes_lease_on_this_host_is_taken_over_at_once() {
    let env = Env::new();
    env.init();
    let repo = env.path("repo");
    let repo = repo.to_str().unwrap();
    plant(
        &env,
        LeaseHolder {
            host: cairn::model::hostname(),
            process: Some(dead_process()),
        },
    );
    let out = env.run(&["prune", "--repo", repo, "--json"]).ok().json();
    assert_eq!(out["lease_taken_over"]["reason"], "holder-gone", "{out}");
}

#[test]
fn another_hosts_lease_waits_until_broken_and_the_break_is_an_event() {
    let env = Env::new();
    env.init();
    let repo = env.path("repo");
    let repo = repo.to_str().unwrap();
    plant(
        &env,
        LeaseHolder {
            host: "elsewhere".into(),
            process: None,
        },
    );
    env.run(&["prune", "--repo", repo])
        .code(1)
        .stderr_has("host `elsewhere`")
        .stderr_has("--break-lease");
    let out = env
        .run(&["prune", "--repo", repo, "--break-lease", "--json"])
        .ok()
        .json();
    assert_eq!(out["lease_taken_over"]["reason"], "broken", "{out}");
    assert_eq!(
        out["lease_taken_over"]["previous"]["host"], "elsewhere",
        "{out}"
    );
    let events = env
        .run(&[
            "events",
            "--repo",
            repo,
            "--kind",
            "prune-lease-taken-over",
            "--json",
        ])
        .ok()
        .json();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"]["reason"], "broken");
    // The lease is released: the next prune needs nothing.
    let out = env.run(&["prune", "--repo", repo, "--json"]).ok().json();
    assert!(out.get("lease_taken_over").is_none(), "{out}");
}

//! `cairn check` and `cairn diff` through a real FUSE mount (the [`Daemon`] guard and its
//! watchdog detach it whatever happens): `ctl/check` becomes a `check` job whose status
//! ends with the counts, whose `jobs/<id>/differences` lists the planted differences as
//! JSON lines, and which the CLI follows and prints with diff(1)'s exit codes.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::check::{differences, expected, make_tree, plant};
use crate::support::cli_env::{job_id, wait_job, Env, COMMAND_LIMIT};
use crate::support::fixture::noise;
use crate::support::mount::{fuse_available, job_of, request};

fn lines(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    let list: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    serde_json::json!({ "differences": list })
}

/// The files named `<id>.jsonl` under `dir`.
fn differences_files(dir: &Path, id: u64) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(differences_files(&path, id));
        } else if entry.file_name().to_str() == Some(&format!("{id}.jsonl")) {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_check_job_lists_its_differences_in_the_mount() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    fs::write(src.join("big"), noise(5, 3_000_000)).unwrap();
    let daemon = env.mount_background();
    let mnt = env.mnt();
    env.run(&["instance", "add", "w", "--path", src.to_str().unwrap()])
        .ok();
    env.run(&["snapshot", "w", "--label", "first"]).ok();

    // Clean: exit 0, through the job.
    let clean = env.run(&["check", "w", "--json"]).code(0).json();
    assert_eq!(clean["counts"]["differ"], 0, "{clean}");
    assert!(clean["job"].as_u64().is_some(), "{clean}");

    plant(&src);
    let args = [
        "check", "w", "latest", "--ignore", "ignored", "--ignore", "*.tmp",
    ];
    let report = env.run(&[&args[..], &["--json"]].concat()).code(1).json();
    assert_eq!(differences(&report), expected(true), "{report}");
    let id = report["job"].as_u64().unwrap();

    // The job's own files: its status ends with the counts, its differences are JSON
    // lines, and `differences` is listed in its directory.
    let job = mnt.join(format!(".cairn/jobs/{id}"));
    let listed: Vec<String> = fs::read_dir(&job)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(listed.contains(&"differences".to_string()), "{listed:?}");
    assert_eq!(
        differences(&lines(&job.join("differences"))),
        expected(true)
    );
    let status: Value =
        serde_json::from_str(&fs::read_to_string(job.join("status")).unwrap()).unwrap();
    assert_eq!(status["kind"], "check", "{status}");
    assert_eq!(status["state"], "succeeded", "{status}");
    let counts = &status["result"]["counts"];
    for (key, want) in [
        ("differ", 6),
        ("only_in_point", 1),
        ("only_in_live", 1),
        ("errors", 0),
        ("ignored", 2),
    ] {
        assert_eq!(counts[key], want, "{key}: {status}");
    }
    assert!(counts["same"].as_u64().unwrap() > 0, "{status}");

    // The text form, and checksum=false written by hand into ctl/check.
    let text = env.run(&args).code(1);
    assert!(
        text.stdout.contains("changed  mode.txt  (mode)"),
        "{}",
        text.describe()
    );
    let ctl = mnt.join(".cairn/ctl/check");
    let by_hand = request(
        &ctl,
        "instance=w ignore=ignored ignore=*.tmp checksum=false\n",
    )
    .unwrap_or_else(|e| panic!("ctl/check refused: {e:?}"));
    let no_wait = env
        .run(&[&args[..], &["--checksum", "false", "--no-wait"]].concat())
        .ok();
    for id in [job_of(&by_hand), job_id(&no_wait)] {
        let status = wait_job(&mnt, id, COMMAND_LIMIT, "finished", |v| {
            v["state"] == "succeeded"
        });
        assert_eq!(status["result"]["live_bytes_read"], 0, "{status}");
        let quick = lines(&mnt.join(format!(".cairn/jobs/{id}/differences")));
        assert_eq!(differences(&quick), expected(false));
    }

    // A bandwidth cap, on the job's own figures.
    let capped = env
        .run(&["check", "w", "--bandwidth", "3", "--threads", "2", "--json"])
        .json();
    let read = capped["live_bytes_read"].as_u64().unwrap() as f64;
    let elapsed = capped["elapsed_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!(read >= 3_000_000.0, "{capped}");
    assert!(read <= 3e6 * elapsed * 1.2 + (1 << 20) as f64, "{capped}");

    // A refused request: exit 2, nothing queued.
    env.run(&["check", "w", "--threads", "0"]).code(2);
    env.run(&["check", "w", "nope"]).code(2);

    // Deleting the job deletes its differences, kept beside the catalog.
    let kept = differences_files(&env.path("cache"), id);
    assert_eq!(kept.len(), 1, "{kept:?}");
    env.run(&["jobs", "delete", &id.to_string()]).ok();
    assert!(!kept[0].exists(), "{kept:?}");
    drop(daemon);
}

#[test]
fn diff_through_the_mount_compares_two_points() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let daemon = env.mount_background();
    env.run(&["instance", "add", "w", "--path", src.to_str().unwrap()])
        .ok();
    env.run(&["snapshot", "w", "--label", "a"]).ok();
    plant(&src);
    env.run(&["snapshot", "w", "--label", "b"]).ok();
    let points = env.run(&["points", "w", "--json"]).ok().json();
    let names: Vec<&str> = points["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let r = env
        .run(&["diff", "w", names[0], names[1], "--json"])
        .code(1)
        .json();
    // The ignored directory and the scratch file are differences between points.
    let mut want = expected(true);
    want.push("added ignored/more-junk ()".into());
    want.push("added scratch.tmp ()".into());
    want.sort_by_key(|l| l.split(' ').nth(1).unwrap_or_default().to_string());
    assert_eq!(differences(&r), want, "{r}");
    env.run(&["diff", "w", names[1], names[1]]).code(0);
    drop(daemon);
}

//! `cairn policy ...` as the real binary against a real mount.

use crate::support::cli_env::Env;
use crate::support::mount::fuse_available;

#[test]
fn policy_commands_create_bind_list_show_run_now_and_refuse_bad_input() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"policy data\n").unwrap();
    let _daemon = env.mount_background();
    env.run(&["instance", "add", "db", "--path", src.to_str().unwrap()])
        .ok();

    env.run(&[
        "policy",
        "create",
        "nightly",
        "--times",
        "03:00,15:00",
        "--weekdays",
        "mon,wed,fri",
        "--keep-days",
        "7",
        "--tz",
        "Europe/Berlin",
    ])
    .ok()
    .stdout_has("ok policy=nightly");
    env.run(&[
        "policy",
        "create",
        "bad",
        "--times",
        "03:00,03:30",
        "--every-days",
        "1",
        "--keep-forever",
    ])
    .code(2)
    .stderr_has("1 h apart");
    env.run(&["policy", "bind", "nightly", "ghost"])
        .code(2)
        .stderr_has("no instance `ghost`");
    env.run(&["policy", "bind", "nightly", "db"])
        .ok()
        .stdout_has("bound instance=db");
    env.run(&["policy", "update", "nightly", "--keep-count", "3"])
        .ok();

    let list = env.run(&["policy", "list", "--json"]).ok().json();
    let p = &list["policies"][0];
    assert_eq!(p["name"], "nightly", "{list}");
    assert_eq!(p["bound"], serde_json::json!(["db"]), "{list}");
    assert_eq!(p["keep"], serde_json::json!({"count": 3}), "{list}");
    let table = env.run(&["policy", "list"]).ok();
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("nightly")
                && l.contains("mon,wed,fri")
                && l.contains("last 3")
                && l.contains("Europe/Berlin")),
        "{}",
        table.stdout
    );
    let shown = env.run(&["policy", "show", "nightly"]).ok();
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["times"], serde_json::json!(["03:00", "15:00"]));

    let run = env
        .run(&["policy", "run-now", "nightly", "--json"])
        .ok()
        .json();
    assert_eq!(run["state"], "succeeded", "{run}");
    let point = run["result"]["point"].as_str().unwrap().to_string();
    assert!(point.ends_with("-auto"), "{point}");
    assert!(env.mnt().join("db").join(&point).join("a.txt").is_file());

    env.run(&["policy", "disable", "nightly"]).ok();
    env.run(&["policy", "unbind", "db"]).ok();
    env.run(&["policy", "delete", "nightly"]).ok();
    env.run(&["policy", "show", "nightly"])
        .code(2)
        .stderr_has("no policy `nightly`");
    assert!(
        env.mnt().join("db").join(&point).is_dir(),
        "deleting the policy keeps its points"
    );
    env.run(&["policy", "settings", "--max-policies", "0"])
        .code(2)
        .stderr_has("1 to 99999");
}

#[test]
fn a_direct_forget_honours_write_once() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"kept\n").unwrap();
    // A daemon (the library) sets the repository up: write-once, a policy, a point.
    let store =
        cairn::store::Store::open(&cairn::store::Location::Local(env.path("repo"))).unwrap();
    let repo = cairn::repo::Repository::open(store, None).unwrap();
    let t = crate::support::repos::TestRepo::open_catalog(repo, &env.path("daemon"));
    let service = cairn::service::Service::start(t.repo, t.catalog, 1).unwrap();
    for (file, text) in [
        ("instance", format!("add name=db path={}", src.display())),
        ("policy", "settings write-once=true".to_string()),
        (
            "policy",
            "create name=p times=03:00 every-days=1 keep-days=30".to_string(),
        ),
        ("policy", "bind name=p instance=db".to_string()),
        ("policy", "run-now name=p".to_string()),
    ] {
        service
            .submit(file, &text, 0)
            .unwrap_or_else(|e| panic!("{text}: {}", e.message));
    }
    service.wait_idle();
    let point = service.points("db").pop().unwrap().manifest.name;
    service.shutdown();

    let repo_arg = env.path("repo");
    let repo_arg = repo_arg.to_str().unwrap();
    env.run(&["forget", "db", &point, "--repo", repo_arg])
        .code(2)
        .stderr_has("write-once");
    env.run(&["forget", "db", "latest", "--repo", repo_arg])
        .code(2)
        .stderr_has("kept by policy `p`");
    env.run(&["points", "db", "--repo", repo_arg])
        .ok()
        .stdout_has(&point);
}

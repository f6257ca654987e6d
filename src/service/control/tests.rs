//! Unit tests of the control grammar: what each control file accepts and refuses.

use super::*;

#[test]
fn words_with_quotes_and_json() {
    let w = parse_words("add name=db path=\"/srv/my data\" exclude='*.tmp'\n").unwrap();
    assert_eq!(w.verb.as_deref(), Some("add"));
    assert_eq!(
        w.pairs,
        vec![
            ("name".into(), "db".into()),
            ("path".into(), "/srv/my data".into()),
            ("exclude".into(), "*.tmp".into())
        ]
    );
    let j = parse_words(r#"{"op":"add","name":"db","path":["/a","/b"]}"#).unwrap();
    assert_eq!(j.verb.as_deref(), Some("add"));
    assert_eq!(j.pairs.len(), 3);
    let esc = parse_words(r#"target="/a \"b\" \\c""#).unwrap();
    assert_eq!(esc.pairs[0].1, r#"/a "b" \c"#);
}

#[test]
fn malformed_lines_are_refused() {
    for bad in [
        "",
        "   \n",
        "key=\"unclosed",
        "a=1\nb=2",
        "=value",
        "k=\"x\"y",
        "k=a\"b",
        "{not json",
        "[1,2]",
        r#"{"k":{"nested":1}}"#,
        "add extra name=x",
    ] {
        assert!(
            parse_words(bad).is_err() || parse_instance(bad).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn typed_requests() {
    assert_eq!(
        parse_instance("add name=db path=/srv/db path=/etc exclude=*.log").unwrap(),
        InstanceRequest::Add {
            name: "db".into(),
            paths: vec!["/srv/db".into(), "/etc".into()],
            excludes: vec!["*.log".into()],
            hooks: Hooks::default(),
            commands: Vec::new(),
            logs: Default::default(),
        }
    );
    assert!(parse_instance("add name=db path=relative").is_err());
    assert!(parse_instance("add name=db path=/a/../etc").is_err());
    assert!(parse_instance("add name=d:b path=/a").is_err());
    // No path and no command: an instance fed by stdin only.
    assert_eq!(
        parse_instance("add name=db").unwrap(),
        InstanceRequest::Add {
            name: "db".into(),
            paths: Vec::new(),
            excludes: Vec::new(),
            hooks: Hooks::default(),
            commands: Vec::new(),
            logs: Default::default(),
        }
    );
    assert!(parse_instance("add name=db path=/a colour=red").is_err());
    let Ok(InstanceRequest::Add {
        commands, paths, ..
    }) = parse_instance(
        "add name=pg command='pg_dumpall -c' as=all.sql command=\"redis-cli --rdb -\" as=dump.rdb",
    )
    else {
        panic!("command sources without paths refused");
    };
    assert!(paths.is_empty());
    let pairs: Vec<_> = commands.iter().map(|c| (&*c.command, &*c.name)).collect();
    assert_eq!(
        pairs,
        [
            ("pg_dumpall -c", "all.sql"),
            ("redis-cli --rdb -", "dump.rdb")
        ]
    );
    for bad in [
        "add name=pg command=x",
        "add name=pg as=x",
        "add name=pg command=a as=x command=b",
        "add name=pg command=a as=x command=b as=x",
        "add name=pg command=a as=a/b",
        "add name=pg command=a as=..",
        "add name=pg command='' as=x",
        "add name=pg path=/srv/data command=a as=data",
    ] {
        assert!(parse_instance(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        parse_instance("remove name=db").unwrap(),
        InstanceRequest::Remove { name: "db".into() }
    );
    assert_eq!(
        parse_snapshot("instance=db name=before-upgrade").unwrap(),
        SnapshotRequest {
            instance: "db".into(),
            label: Some("before-upgrade".into()),
            schedule: None,
            stdin: None,
        }
    );
    assert!(parse_snapshot("instance=db name=auto").is_err());
    let r = parse_snapshot("instance=db stdin=app.sql").unwrap();
    assert_eq!(r.stdin.as_deref(), Some("app.sql"));
    for bad in ["stdin=a/b", "stdin=..", "stdin=", "stdin=a stdin=b"] {
        assert!(
            parse_snapshot(&format!("instance=db {bad}")).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        parse_stdin_end("end job=7 bytes=12").unwrap(),
        (7, Some(12))
    );
    assert_eq!(parse_stdin_end("end job=7").unwrap(), (7, None));
    for bad in [
        "job=7",
        "end",
        "end job=x",
        "end job=7 bytes=-1",
        "end job=7 other=1",
    ] {
        assert!(parse_stdin_end(bad).is_err(), "{bad}");
    }
    assert!(parse_snapshot("instance=db instance=x").is_err());
    let r = parse_restore("instance=db point=latest target=/srv/r include=data/*.rdb include=x")
        .unwrap();
    assert_eq!(r.includes.len(), 2);
    assert!(!r.in_place);
    assert!(
        parse_restore("instance=db point=latest").is_err(),
        "new needs a target"
    );
    assert!(parse_restore("instance=db point=latest target=rel").is_err());
    assert!(parse_restore("instance=db point=nope target=/x").is_err());
    assert!(
        parse_restore("instance=db point=latest mode=in-place")
            .unwrap()
            .in_place
    );
    assert!(parse_restore("instance=db point=latest mode=sideways target=/x").is_err());
    assert!(!r.skip_damaged);
    assert!(
        parse_restore("instance=db point=latest target=/x skip-damaged=true")
            .unwrap()
            .skip_damaged
    );
    assert!(parse_restore("instance=db point=latest target=/x skip-damaged=maybe").is_err());
    assert!(parse_verify("read-data=true").unwrap().read_data);
    assert_eq!(
        parse_verify("\n").unwrap(),
        VerifyControl {
            instance: None,
            point: None,
            read_data: false
        }
    );
    assert!(parse_verify("read-data=maybe").is_err());
    assert!(parse_verify("point=latest").is_err());
    assert_eq!(
        parse_forget("instance=db point=latest point=2026-11-22T030000Z-auto manual=true").unwrap(),
        ForgetControl {
            instance: "db".into(),
            points: vec!["latest".into(), "2026-11-22T030000Z-auto".into()],
            manual: true
        }
    );
    assert!(!parse_forget("instance=db point=latest").unwrap().manual);
    assert!(parse_forget("instance=db").is_err());
    assert!(parse_forget("instance=db point=../x").is_err());
    assert!(parse_forget("instance=db point=latest manual=perhaps").is_err());
    assert!(parse_forget("instance=db point=latest colour=red").is_err());
    assert_eq!(
        parse_prune("\n").unwrap(),
        PruneControl {
            dry_run: false,
            grace_hours: None,
            break_lease: false,
        }
    );
    assert!(parse_prune("dry-run=true").unwrap().dry_run);
    assert!(parse_prune("break-lease=true").unwrap().break_lease);
    assert!(!parse_prune("").unwrap().break_lease);
    assert!(parse_prune("break-lease=maybe").is_err());
    assert_eq!(parse_prune("grace-hours=0").unwrap().grace_hours, Some(0));
    assert!(parse_prune("grace-hours=-1").is_err());
    assert!(parse_prune("grace-hours=99999").is_err());
    assert!(parse_prune("dry-run=true force=yes").is_err());
    assert!(parse_prune("now dry-run=true").is_err());
    assert_eq!(parse_cancel("job=17").unwrap(), 17);
    assert!(parse_cancel("job=x").is_err());
    assert!(parse_snapshot("{\"instance\":\"db\"}").is_ok());
}

#[test]
fn hook_keys_of_add() {
    let req = parse_instance(
        "add name=r path=/var/lib/redis before='redis-cli bgsave' after=true \
         restore-before=\"systemctl stop redis\" restore-after='systemctl start redis' \
         hook-timeout=30",
    )
    .unwrap();
    let InstanceRequest::Add { hooks, .. } = req else {
        panic!("not an add: {req:?}");
    };
    assert_eq!(
        hooks,
        Hooks {
            before: Some("redis-cli bgsave".into()),
            after: Some("true".into()),
            restore_before: Some("systemctl stop redis".into()),
            restore_after: Some("systemctl start redis".into()),
            timeout_secs: Some(30),
        }
    );
    let json =
        parse_instance(r#"{"op":"add","name":"r","path":"/a","after":"x","hook-timeout":86400}"#)
            .unwrap();
    let InstanceRequest::Add { hooks, .. } = json else {
        panic!("not an add");
    };
    assert_eq!(hooks.after.as_deref(), Some("x"));
    assert_eq!(hooks.timeout_secs(), 86_400);
    for (bad, says) in [
        (
            "before=x hook-timeout=0",
            "hook-timeout must be whole seconds from 1 to 86400, got `0`",
        ),
        ("before=x hook-timeout=abc", "got `abc`"),
        ("before=x hook-timeout=86401", "got `86401`"),
        ("before=x hook-timeout=-1", "got `-1`"),
        ("hook-timeout=5", "hook-timeout= applies to hooks"),
        ("before=''", "`before=` needs a command"),
        ("before=a before=b", "`before` given more than once"),
        ("restore-after=' '", "`restore-after=` needs a command"),
    ] {
        let e = parse_instance(&format!("add name=r path=/a {bad}")).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {}", e.message);
        assert_eq!(e.errno, libc::EINVAL);
    }
}

#[test]
fn log_keys_of_add() {
    let Ok(InstanceRequest::Add { logs, paths, .. }) = parse_instance(
        "add name=pg log-pushers=root log=/var/lib/pg/wal/* log-every=5 command=true as=x",
    ) else {
        panic!("log keys refused");
    };
    assert!(paths.is_empty());
    assert_eq!(logs.globs, vec!["/var/lib/pg/wal/*".to_string()]);
    assert_eq!((logs.every_secs, logs.pushers.len()), (Some(5), 1));
    assert!(parse_instance("add name=pg log=wal/*").is_err());
    assert!(parse_instance("add name=pg log=/w/* log-every=0").is_err());
}

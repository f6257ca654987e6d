//! Point-in-time restore at the engine level, without servers: the time forms, the
//! restorable range, each log kind's cut (Redis AOF at `#TS:`, PostgreSQL WAL staged with
//! recovery settings, MariaDB binlogs with `replay.sh`, any other file at the last pass
//! before the second's end), and every refusal writing nothing. The log records are
//! written with chosen times, as passes at those times would have.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cairn::engine::logs::{
    compact_pitr_time, parse_pitr_time, plan_at, record_id_hex, restorable_range, restore_at,
    PitrOutcome, PitrPlan, PitrRequest,
};
use cairn::engine::{backup, BackupRequest, CancelToken, EngineError, NoProgress};
use cairn::model::instance::LogSources;
use cairn::model::{InstanceConfig, LogPiece, LogRecord};

use crate::support::repos::TestRepo;

const NS: i64 = 1_000_000_000;
/// The second the tests start at: 2027-01-15T08:00:00Z.
const T: i64 = 1_800_000_000;

fn at(second: i64, ms: i64) -> i64 {
    (T + second) * NS + ms * 1_000_000
}

fn config(name: &str, paths: &[&Path], globs: &[String]) -> InstanceConfig {
    InstanceConfig {
        version: 2,
        name: name.into(),
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        excludes: Vec::new(),
        hooks: Default::default(),
        commands: Vec::new(),
        logs: LogSources {
            globs: globs.to_vec(),
            every_secs: Some(1),
            pushers: Vec::new(),
        },
    }
}

fn point(t: &TestRepo, instance: &str, dir: &Path, time_ns: i64) -> String {
    let mut req = BackupRequest::new(instance, vec![dir.to_path_buf()]);
    req.time_ns = Some(time_ns);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
        .unwrap()
        .manifest
        .name
}

/// Writes the instance's next log record at `time_ns`: for each file, the bytes of its
/// version 1 from `offset` (the file then is `offset + len` bytes long). Returns its key.
fn record(t: &TestRepo, instance: &str, time_ns: i64, files: &[(&str, u64, &[u8])]) -> String {
    let last = t.catalog.log_records(instance).unwrap().pop();
    let mut data = Vec::new();
    let pieces = files
        .iter()
        .map(|(file, offset, bytes)| {
            data.extend_from_slice(bytes);
            LogPiece {
                file: file.to_string(),
                generation: 1,
                offset: *offset,
                len: bytes.len() as u64,
                size: offset + bytes.len() as u64,
                mtime_ns: time_ns,
            }
        })
        .collect();
    let r = LogRecord {
        version: 1,
        instance: instance.into(),
        seq: last.as_ref().map_or(1, |e| e.record.seq + 1),
        time_ns,
        parent: last.map(|e| record_id_hex(&e.key).to_string()),
        pieces,
    };
    let key = r.write(&t.repo, &data).unwrap();
    t.catalog.insert_log_record(&key, &r).unwrap();
    key
}

fn plan(t: &TestRepo, c: &InstanceConfig, second: i64) -> Result<PitrPlan, EngineError> {
    plan_at(&t.repo, &t.catalog, c, at(second, 0), None)
}

fn restore(
    t: &TestRepo,
    c: &InstanceConfig,
    second: i64,
    target: &Path,
) -> Result<PitrOutcome, EngineError> {
    let req = PitrRequest {
        config: c.clone(),
        at_ns: at(second, 0),
        target: target.to_path_buf(),
        last_pass_ns: None,
    };
    restore_at(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

fn paths(p: &PitrPlan) -> Vec<String> {
    p.logs
        .iter()
        .map(|l| l.path.display().to_string())
        .collect()
}

/// A SET as Redis appends it.
fn set(key: &str) -> String {
    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n1\r\n", key.len())
}

fn ts(second: i64) -> String {
    format!("#TS:{}\r\n", T + second)
}

#[test]
fn pitr_times_parse_to_their_second_and_garbage_is_refused() {
    let z = parse_pitr_time("2027-01-15T08:00:00Z").unwrap();
    assert_eq!(z, T * NS);
    assert_eq!(parse_pitr_time("2027-01-15T16:00:00+08:00"), Ok(z));
    assert_eq!(parse_pitr_time("2027-01-15T080000Z"), Ok(z));
    assert_eq!(compact_pitr_time(z + 5 * NS + 1), "2027-01-15T080005Z");
    for bad in [
        "garbage",
        "2027-01-15T08:00:00",
        "2027-01-15T08:00:00.250Z",
        "2027-02-30T08:00:00Z",
    ] {
        let e = parse_pitr_time(bad).unwrap_err();
        assert!(e.contains(bad) && e.contains("RFC 3339"), "{bad}: {e}");
    }
}

#[test]
fn pitr_redis_aof_is_cut_at_the_first_later_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("redis");
    let aofdir = data.join("appendonlydir");
    fs::create_dir_all(&aofdir).unwrap();
    let incr = "appendonly.aof.1.incr.aof";
    let manifest = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
    fs::write(aofdir.join("appendonly.aof.manifest"), manifest).unwrap();
    fs::write(aofdir.join(incr), format!("{}{}", ts(0), set("k0"))).unwrap();
    fs::write(data.join("dump.rdb"), b"REDIS0011-old").unwrap();
    let c = config("r", &[&data], &[format!("{}/*", aofdir.display())]);
    // The point at 0.5 s; passes at 1.2, 2.3, 3.1 and 4.5 s. Bytes of second 2 arrive
    // in two passes; the pass at 3.1 also holds second 3's first write.
    point(&t, "r", &data, at(0, 500));
    let s0 = format!("{}{}", ts(0), set("k0"));
    let s1 = format!("{}{}", ts(1), set("k1"));
    let s2a = format!("{}{}", ts(2), set("k2a"));
    let s2b = set("k2b");
    let s3 = format!("{}{}", ts(3), set("k3"));
    let s4 = format!("{}{}", ts(4), set("k4"));
    let mut size = 0u64;
    for (time, text) in [
        (at(1, 200), format!("{s0}{s1}")),
        (at(2, 300), s2a.clone()),
        (at(3, 100), format!("{s2b}{s3}")),
        (at(4, 500), s4.clone()),
    ] {
        let mut files: Vec<(&str, u64, &[u8])> = vec![(incr, size, text.as_bytes())];
        if size == 0 {
            files.push(("appendonly.aof.manifest", 0, manifest.as_bytes()));
            files.push(("appendonly.aof.1.base.rdb", 0, b"REDIS0011-base"));
        }
        record(&t, "r", time, &files);
        size += text.len() as u64;
    }
    let range = restorable_range(&t.catalog, "r", None).unwrap().unwrap();
    assert_eq!(
        (range.earliest_ns, range.latest_second_ns),
        (at(0, 0), at(3, 0))
    );
    assert!(range.gaps.is_empty());

    let expect = [
        (0, s0.clone()),
        (1, format!("{s0}{s1}")),
        (2, format!("{s0}{s1}{s2a}{s2b}")),
        (3, format!("{s0}{s1}{s2a}{s2b}{s3}")),
    ];
    for (second, content) in expect {
        // The base and manifest as the last pass before the end saw them (none before
        // 1.2 s: the point's copies stay); the AOF as the next pass saw it, cut.
        let p = plan(&t, &c, second).unwrap();
        let mut want = vec!["appendonlydir/appendonly.aof.1.incr.aof"];
        if second > 0 {
            want.insert(0, "appendonlydir/appendonly.aof.1.base.rdb");
            want.push("appendonlydir/appendonly.aof.manifest");
        }
        assert_eq!(paths(&p), want, "second {second}");
        let target = tmp.path().join(format!("at{second}"));
        let out = restore(&t, &c, second, &target).unwrap();
        assert_eq!(out.logs as usize, want.len());
        assert_eq!(
            fs::read_to_string(target.join("appendonlydir").join(incr)).unwrap(),
            content,
            "second {second}"
        );
        // The point's other files are there; the manifest is the archived one.
        assert_eq!(fs::read(target.join("dump.rdb")).unwrap(), b"REDIS0011-old");
        assert_eq!(
            fs::read_to_string(target.join("appendonlydir/appendonly.aof.manifest")).unwrap(),
            manifest
        );
    }
    // Second 4 is not archived whole (the last pass looked at 4.5 s).
    let e = plan(&t, &c, 4).unwrap_err().to_string();
    assert!(e.contains("2027-01-15T08:00:03Z"), "{e}");
    // With a later pass that found nothing new, it is.
    let p = plan_at(&t.repo, &t.catalog, &c, at(4, 0), Some(at(5, 100))).unwrap();
    assert_eq!(p.logs[1].cut, size);
}

#[test]
fn pitr_other_files_are_cut_at_the_last_pass_before_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("app");
    let logs = tmp.path().join("var-log");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&logs).unwrap();
    fs::write(data.join("state"), b"state").unwrap();
    let c = config("a", &[&data], &[format!("{}/*.log", logs.display())]);
    point(&t, "a", &data, at(0, 100));
    record(&t, "a", at(1, 500), &[("app.log", 0, b"0123456789")]);
    record(&t, "a", at(2, 500), &[("app.log", 10, b"abcdefghij")]);
    record(&t, "a", at(3, 500), &[("other.log", 0, b"x")]);
    let p = plan(&t, &c, 0).unwrap();
    assert!(
        p.logs.is_empty(),
        "nothing archived before 1 s: {:?}",
        paths(&p)
    );
    let p = plan(&t, &c, 1).unwrap();
    assert_eq!(paths(&p), ["logs/app.log"]);
    assert_eq!(p.logs[0].cut, 10);
    // Into an empty directory.
    let target = tmp.path().join("t2");
    fs::create_dir(&target).unwrap();
    restore(&t, &c, 2, &target).unwrap();
    assert_eq!(
        fs::read(target.join("logs/app.log")).unwrap(),
        b"0123456789abcdefghij"
    );
    assert_eq!(fs::read(target.join("state")).unwrap(), b"state");
    assert!(!target.join("logs/other.log").exists());

    // A file in the point, archived before the point was taken: the point's copy is
    // newer, and stays; archived after it, the archived version replaces it.
    fs::write(data.join("app.journal"), b"journal at the point").unwrap();
    let c = config("j", &[&data], &[format!("{}/*.journal", data.display())]);
    record(&t, "j", at(5, 100), &[("app.journal", 0, b"journal")]);
    point(&t, "j", &data, at(5, 600));
    record(&t, "j", at(7, 0), &[("app.journal", 7, b" later")]);
    assert!(plan(&t, &c, 5).unwrap().logs.is_empty());
    assert!(plan(&t, &c, 6).unwrap().logs.is_empty());
    let p = plan_at(&t.repo, &t.catalog, &c, at(7, 0), Some(at(8, 0))).unwrap();
    assert_eq!(paths(&p), ["app.journal"]);
    assert_eq!(p.logs[0].cut, 13);
}

/// A data directory as pg_basebackup -Fp leaves it, started in segment 2.
fn pg_data(dir: &Path) {
    fs::create_dir_all(dir.join("pg_wal")).unwrap();
    fs::write(dir.join("PG_VERSION"), "15\n").unwrap();
    fs::write(
        dir.join("postgresql.auto.conf"),
        "# Do not edit this file manually!\nwork_mem = '8MB'",
    )
    .unwrap();
    fs::write(
        dir.join("backup_label"),
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
         CHECKPOINT LOCATION: 0/2000060\n",
    )
    .unwrap();
}

fn seg(n: u32) -> String {
    format!("0000000100000000{n:08X}")
}

#[test]
fn pitr_postgres_stages_wal_and_recovery_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("pgdata");
    pg_data(&data);
    let c = config("pg", &[&data], &[]);
    record(&t, "pg", at(-5, 0), &[(&seg(1), 0, b"wal-1")]);
    point(&t, "pg", &data, at(0, 0));
    for (s, n) in [(1, 2), (2, 3), (3, 4)] {
        let name = seg(n);
        record(&t, "pg", at(s, 200), &[(&name, 0, name.as_bytes())]);
    }
    record(
        &t,
        "pg",
        at(4, 0),
        &[("00000002.history", 0, b"1\t0/5000000\tno recovery target\n")],
    );
    let p = plan(&t, &c, 1).unwrap();
    assert_eq!(
        paths(&p),
        [
            format!("pg_wal_archive/{}", seg(2)),
            format!("pg_wal_archive/{}", seg(3)),
            format!("pg_wal_archive/{}", seg(4)),
            "pg_wal_archive/00000002.history".to_string(),
        ]
    );
    let target = tmp.path().join("restored");
    let out = restore(&t, &c, 1, &target).unwrap();
    assert_eq!(out.extras.len(), 2);
    let conf = fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert_eq!(
        conf,
        "# Do not edit this file manually!\nwork_mem = '8MB'\n\
         # Added by cairn: point-in-time recovery to 2027-01-15T08:00:01Z, every commit made before 2027-01-15 08:00:02+00.\n\
         restore_command = 'cp \"pg_wal_archive/%f\" \"%p\"'\n\
         recovery_target_time = '2027-01-15 08:00:02+00'\n\
         recovery_target_inclusive = off\n\
         recovery_target_action = 'promote'\n\
         # The restored server must not archive into the instance's archive.\n\
         archive_mode = off\n"
    );
    assert_eq!(fs::read(target.join("recovery.signal")).unwrap(), b"");
    assert_eq!(
        fs::read(target.join("pg_wal_archive").join(seg(3))).unwrap(),
        seg(3).as_bytes()
    );
    assert!(!target.join("pg_wal_archive").join(seg(1)).exists());
    assert_eq!(
        fs::read_to_string(target.join("PG_VERSION")).unwrap(),
        "15\n"
    );

    // Segment 3 never archived: a restore that needs it is a gap, naming it.
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    point(&t, "pg", &data, at(0, 0));
    record(&t, "pg", at(1, 200), &[(&seg(2), 0, b"2")]);
    record(&t, "pg", at(3, 200), &[(&seg(4), 0, b"4")]);
    let e = plan(&t, &c, 2).unwrap_err().to_string();
    assert!(e.contains(&seg(3)) && e.contains("gap"), "{e}");
    // A second whose recovery ends in segment 2 does not need it.
    let p = plan_at(&t.repo, &t.catalog, &c, at(0, 0), Some(at(1, 0))).unwrap();
    assert_eq!(paths(&p), [format!("pg_wal_archive/{}", seg(2))]);
}

#[test]
fn pitr_mariadb_places_binlogs_and_writes_replay_sh() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("mysql");
    fs::create_dir_all(&data).unwrap();
    fs::write(
        data.join("xtrabackup_binlog_info"),
        "mysql-bin.000002\t385\t0-1-5\n",
    )
    .unwrap();
    fs::write(data.join("ibdata1"), b"pages").unwrap();
    let c = config("m", &[&data], &[format!("{}/mysql-bin.*", data.display())]);
    let log = |n: u32| [b"\xfebin".as_slice(), format!("binlog {n}").as_bytes()].concat();
    record(&t, "m", at(-3, 0), &[("mysql-bin.000001", 0, &log(1))]);
    point(&t, "m", &data, at(0, 0));
    record(
        &t,
        "m",
        at(1, 500),
        &[
            ("mysql-bin.000002", 0, &log(2)),
            (
                "mysql-bin.index",
                0,
                b"./mysql-bin.000001\n./mysql-bin.000002\n",
            ),
        ],
    );
    record(&t, "m", at(2, 500), &[("mysql-bin.000003", 0, &log(3))]);
    record(&t, "m", at(5, 500), &[("mysql-bin.000004", 0, &log(4))]);
    let p = plan(&t, &c, 1).unwrap();
    assert_eq!(
        paths(&p),
        [
            "binlogs/mysql-bin.000002",
            "binlogs/mysql-bin.000003",
            "binlogs/mysql-bin.index"
        ]
    );
    let target = tmp.path().join("restored");
    restore(&t, &c, 1, &target).unwrap();
    let script = target.join("replay.sh");
    assert_eq!(
        fs::read_to_string(&script).unwrap(),
        "#!/bin/bash\n\
         # Written by cairn: replays the binlogs of instance `m` from its point\n\
         # 2027-01-15T080000Z (mysql-bin.000002 at 385) up to 2027-01-15T08:00:01Z: every event before 2027-01-15 08:00:02 UTC.\n\
         # Start a server on the restored data directory, then: ./replay.sh [mariadb options]\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")/binlogs\"\n\
         TZ=UTC mariadb-binlog --start-position=385 --stop-datetime='2027-01-15 08:00:02' \\\n  \
         'mysql-bin.000002' 'mysql-bin.000003' \\\n  | mariadb \"$@\"\n"
    );
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::read(target.join("binlogs/mysql-bin.000003")).unwrap(),
        log(3)
    );
    assert_eq!(fs::read(target.join("ibdata1")).unwrap(), b"pages");

    // No recorded position: refused, naming the files it reads.
    fs::remove_file(data.join("xtrabackup_binlog_info")).unwrap();
    point(&t, "m", &data, at(1, 800));
    let e = plan(&t, &c, 1).unwrap_err().to_string();
    assert!(
        e.contains("binlog-position") && e.contains("records no binlog position"),
        "{e}"
    );
}

/// Every name under a directory, recursively.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(tree(&p));
        }
    }
    out.sort();
    out
}

#[test]
fn pitr_refusals_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("app");
    let logs = tmp.path().join("var-log");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("state"), b"state").unwrap();
    let c = config("a", &[&data], &[format!("{}/*.log", logs.display())]);
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let target = out.join("t");
    // No point yet.
    let e = restore(&t, &c, 1, &target).unwrap_err().to_string();
    assert!(e.contains("instance `a` has no point before"), "{e}");
    point(&t, "a", &data, at(10, 300));
    // No logs: refused, not the point alone.
    let e = restore(&t, &c, 11, &target).unwrap_err().to_string();
    assert!(e.contains("no archived logs"), "{e}");
    record(&t, "a", at(11, 0), &[("app.log", 0, b"one ")]);
    let gone = record(&t, "a", at(12, 0), &[("app.log", 4, b"two ")]);
    record(&t, "a", at(13, 0), &[("app.log", 8, b"three ")]);
    record(&t, "a", at(20, 0), &[("app.log", 14, b"four")]);
    let refusals = [
        (
            9,
            "the earliest restorable second is 2027-01-15T08:00:10Z".to_string(),
        ),
        (
            20,
            "after the latest restorable second of instance `a`, 2027-01-15T08:00:19Z".into(),
        ),
    ];
    for (second, text) in &refusals {
        let e = restore(&t, &c, *second, &target).unwrap_err().to_string();
        assert!(e.contains(text.as_str()), "{second}: {e}");
    }
    // A deleted record: a gap, for the seconds that need it.
    t.repo.store().delete(&gone).unwrap();
    t.catalog.refresh(&t.repo).unwrap();
    let range = restorable_range(&t.catalog, "a", None).unwrap().unwrap();
    assert_eq!(range.gaps.len(), 1);
    for second in [11, 12, 15] {
        let e = restore(&t, &c, second, &target).unwrap_err().to_string();
        assert!(
            e.contains("gap") && e.contains("records 2..2"),
            "{second}: {e}"
        );
    }
    // A target that is not empty.
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("x"), b"x").unwrap();
    let e = restore(&t, &c, 10, &target).unwrap_err().to_string();
    assert!(e.contains("is not empty"), "{e}");
    point(&t, "a", &data, at(14, 0));
    fs::remove_file(target.join("x")).unwrap();
    fs::remove_dir(&target).unwrap();
    // From the point after the gap, app.log's bytes 4..8 are still unknown: refused.
    let e = restore(&t, &c, 15, &target).unwrap_err().to_string();
    assert!(e.contains("gap") && e.contains("app.log"), "{e}");
    assert!(tree(&out).is_empty(), "{:?}", tree(&out));
    // A second before the gap needs none of it.
    restore(&t, &c, 10, &target).unwrap();
    assert_eq!(fs::read(target.join("state")).unwrap(), b"state");
}

#[test]
fn pitr_redis_aof_archived_by_real_passes_restores_each_second() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let data = tmp.path().join("redis");
    let aofdir = data.join("appendonlydir");
    fs::create_dir_all(&aofdir).unwrap();
    let incr = aofdir.join("appendonly.aof.1.incr.aof");
    fs::write(&incr, b"").unwrap();
    let globs = vec![format!("{}/*", aofdir.display())];
    let c = config("r", &[&data], &globs);
    let req = BackupRequest::new("r", vec![data.clone()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    let mut archiver = cairn::engine::logs::LogArchiver::load(&t.catalog, "r").unwrap();
    // Writes as Redis makes them: an annotation when the second changed, then the SET.
    let mut written: Vec<(i64, String)> = Vec::new();
    let mut write = |key: &str| {
        let now = cairn::model::now_ns().div_euclid(NS);
        let mut text = String::new();
        if written.last().is_none_or(|(s, _)| *s != now) {
            text.push_str(&format!("#TS:{now}\r\n"));
        }
        text.push_str(&set(key));
        let mut f = fs::OpenOptions::new().append(true).open(&incr).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        written.push((now, text));
    };
    let mut pass = || archiver.pass(&t.repo, &t.catalog, &globs).unwrap();
    write("k1");
    pass();
    write("k2");
    std::thread::sleep(std::time::Duration::from_millis(600));
    pass();
    write("k3");
    std::thread::sleep(std::time::Duration::from_millis(600));
    write("k4");
    pass();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let last = pass();
    assert!(last.records.is_empty(), "nothing new: no record");
    let range = restorable_range(&t.catalog, "r", Some(last.time_ns))
        .unwrap()
        .unwrap();
    let first = written[0].0;
    let newest = written.last().unwrap().0;
    assert!(range.latest_second_ns >= newest * NS, "{range:?}");
    for second in first..=newest {
        let want: String = written
            .iter()
            .filter(|(s, _)| *s <= second)
            .map(|(_, t)| t.as_str())
            .collect();
        let target = tmp.path().join(format!("at{second}"));
        let req = PitrRequest {
            config: c.clone(),
            at_ns: second * NS,
            target: target.clone(),
            last_pass_ns: Some(last.time_ns),
        };
        restore_at(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
        let got =
            fs::read_to_string(target.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
        assert_eq!(got, want, "second {second}");
    }
}

#[test]
fn pitr_log_files_go_to_their_place_in_a_per_path_point() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let etc = tmp.path().join("etc");
    let var = tmp.path().join("var");
    fs::create_dir_all(&etc).unwrap();
    fs::create_dir_all(var.join("spool")).unwrap();
    fs::write(var.join("spool/queue.log"), b"old").unwrap();
    let c = config(
        "p",
        &[&etc, &var],
        &[format!("{}/spool/*.log", var.display())],
    );
    let mut req = BackupRequest::new("p", vec![etc.clone(), var.clone()]);
    req.time_ns = Some(at(0, 0));
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    record(&t, "p", at(1, 0), &[("queue.log", 0, b"old and new")]);
    record(&t, "p", at(3, 0), &[("pushed.wal", 0, b"x")]);
    let p = plan(&t, &c, 2).unwrap();
    assert_eq!(paths(&p), ["var/spool/queue.log"]);
    let target = tmp.path().join("restored");
    restore(&t, &c, 2, &target).unwrap();
    assert_eq!(
        fs::read(target.join("var/spool/queue.log")).unwrap(),
        b"old and new"
    );
    assert!(target.join("etc").is_dir());
    let p = plan_at(&t.repo, &t.catalog, &c, at(3, 0), Some(at(4, 0))).unwrap();
    assert_eq!(paths(&p), ["logs/pushed.wal", "var/spool/queue.log"]);
}

#[test]
fn pitr_a_failure_after_the_base_is_restored_leaves_no_target() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let target = out.join("t");
    // A WAL segment's object damaged: the plan (which reads no byte of a segment)
    // passes, the restore of the base too, then reading the segment fails.
    let pg = tmp.path().join("pgdata");
    pg_data(&pg);
    let c = config("pg", &[&pg], &[]);
    point(&t, "pg", &pg, at(0, 0));
    let key = record(&t, "pg", at(1, 0), &[(&seg(2), 0, b"wal")]);
    record(&t, "pg", at(3, 0), &[(&seg(3), 0, b"wal")]);
    let object = tmp.path().join("repo").join(&key);
    assert!(object.is_file(), "{}", object.display());
    fs::write(&object, b"damaged").unwrap();
    assert_eq!(plan(&t, &c, 2).unwrap().logs.len(), 2);
    let e = restore(&t, &c, 2, &target).unwrap_err().to_string();
    assert!(e.contains(&key), "{e}");
    assert!(tree(&out).is_empty(), "{:?}", tree(&out));

    let data = tmp.path().join("app");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("state"), b"state").unwrap();
    let c = config("a", &[&data], &[format!("{}/spool/*", data.display())]);
    // A point whose log directory is a symlink: nothing is written through it.
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("spool")).unwrap();
    point(&t, "a", &data, at(1, 500));
    record(&t, "a", at(2, 0), &[("q.log", 0, b"queued")]);
    record(&t, "a", at(4, 0), &[("q.log", 6, b" more")]);
    let e = restore(&t, &c, 2, &target).unwrap_err().to_string();
    assert!(e.contains("no place in the restored point"), "{e}");
    assert!(tree(&out).is_empty() && tree(&elsewhere).is_empty());
}

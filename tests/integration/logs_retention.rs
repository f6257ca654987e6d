//! Log records and the points: forget + prune delete exactly the log records no kept
//! point needs (a file still appended to keeps every piece), never another instance's,
//! all of them once no point is left; a file whose version expired is archived again
//! whole; verify is clean on a healthy (or pruned) archive and names the instance and
//! the time range of a missing or corrupted record, through the library and the CLI.

use std::path::{Path, PathBuf};

use cairn::engine::logs::{LogArchiver, Timeline};
use cairn::engine::{
    backup, prune, verify, BackupRequest, CancelToken, NoProgress, PruneOutcome, PruneRequest,
    VerifyReport, VerifyRequest,
};
use cairn::model::PointKind;

use crate::logs_archive::{append, objects, records};
use crate::prune::forget_point;
use crate::support::cli_repo::Cli;
use crate::support::fixture::noise;
use crate::support::repos::TestRepo;

/// An instance `db` with a source directory and log files in `logs/`.
struct Db {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    t: TestRepo,
    src: PathBuf,
    logs: PathBuf,
    archiver: LogArchiver,
}

impl Db {
    fn new() -> Db {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().to_path_buf();
        let t = TestRepo::local(&work);
        let (src, logs) = (work.join("src"), work.join("logs"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(src.join("data"), noise(9, 5_000)).unwrap();
        let archiver = LogArchiver::load(&t.catalog, "db").unwrap();
        Db {
            _tmp: tmp,
            work,
            t,
            src,
            logs,
            archiver,
        }
    }

    fn log(&self, name: &str, data: &[u8]) {
        append(&self.logs.join(name), data);
    }

    /// One pass; returns the number of records it wrote.
    fn pass(&mut self) -> usize {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let globs = vec![format!("{}/*", self.logs.display())];
        let out = self.archiver.pass(&self.t.repo, &self.t.catalog, &globs);
        out.unwrap().records.len()
    }

    /// A scheduled point; returns its name.
    fn point(&self) -> String {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut req = BackupRequest::new("db", vec![self.src.clone()]);
        req.kind = PointKind::Scheduled;
        let out = backup(
            &self.t.repo,
            &self.t.catalog,
            &req,
            &NoProgress,
            &CancelToken::new(),
        );
        out.unwrap().manifest.name
    }

    fn forget(&self, name: &str) {
        forget_point(&self.t, name);
    }

    fn prune(&self, dry_run: bool) -> PruneOutcome {
        let req = PruneRequest {
            dry_run,
            grace_ns: 0,
            ..Default::default()
        };
        let (repo, catalog) = (&self.t.repo, &self.t.catalog);
        prune(repo, catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
    }

    fn verify(&self) -> VerifyReport {
        let req = VerifyRequest::default();
        let (repo, catalog) = (&self.t.repo, &self.t.catalog);
        verify(repo, catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
    }

    fn seqs(&self) -> Vec<u64> {
        records(&self.t, "db")
            .iter()
            .map(|e| e.record.seq)
            .collect()
    }

    /// The object file of the record of `seq` in the local repository.
    fn record_file(&self, seq: u64) -> PathBuf {
        let key = records(&self.t, "db")
            .into_iter()
            .find(|e| e.record.seq == seq)
            .unwrap()
            .key;
        self.work.join("repo").join(key)
    }
}

fn read(t: &TestRepo, instance: &str, name: &str) -> Vec<u8> {
    let timeline = Timeline::load(&t.catalog, instance).unwrap();
    timeline.read_file(&t.repo, name, None).unwrap()
}

/// Five records around two points A and B:
/// r1 wal1 start, [A], r2 wal1 rest + wal2, r3 aof start, [B], r4 aof, r5 wal3.
/// While A is kept all stay (wal1 grew after A); once A goes, r1 and r2 may go, and r3
/// stays: it holds the start of the AOF, which grows after B.
fn history(db: &mut Db) -> (String, String) {
    db.log("wal1", &noise(1, 1_000));
    assert_eq!(db.pass(), 1);
    let a = db.point();
    db.log("wal1", &noise(2, 500));
    db.log("wal2", &noise(3, 500));
    assert_eq!(db.pass(), 1);
    db.log("aof", &noise(4, 100));
    assert_eq!(db.pass(), 1);
    let b = db.point();
    db.log("aof", &noise(5, 100));
    assert_eq!(db.pass(), 1);
    db.log("wal3", &noise(6, 300));
    assert_eq!(db.pass(), 1);
    (a, b)
}

#[test]
fn prune_deletes_the_log_records_no_kept_point_needs() {
    let mut db = Db::new();
    // Another instance's records, older than all of db's points and with no point of
    // its own... and one with a point older than its records: prune keeps the latter.
    let mut kv = LogArchiver::load(&db.t.catalog, "kv").unwrap();
    let kv_src = db.work.join("kv-src");
    std::fs::create_dir_all(&kv_src).unwrap();
    std::fs::write(kv_src.join("dump.rdb"), b"rdb").unwrap();
    let mut req = BackupRequest::new("kv", vec![kv_src.clone()]);
    req.kind = PointKind::Scheduled;
    backup(
        &db.t.repo,
        &db.t.catalog,
        &req,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    let kv_logs = db.work.join("kv-logs");
    std::fs::create_dir_all(&kv_logs).unwrap();
    append(&kv_logs.join("aof"), b"SET k v\n");
    let kv_globs = vec![format!("{}/*", kv_logs.display())];
    kv.pass(&db.t.repo, &db.t.catalog, &kv_globs).unwrap();

    let (a, b) = history(&mut db);
    assert_eq!(db.seqs(), vec![1, 2, 3, 4, 5]);
    // With both points kept nothing goes.
    let kept = db.prune(false);
    assert_eq!(kept.log_records_deleted, 0, "{kept:?}");

    db.forget(&a);
    let before = objects(&db.t);
    let dry = db.prune(true);
    assert_eq!(
        (dry.log_records_deleted, dry.log_bytes_deleted),
        (2, 2_000),
        "{dry:?}"
    );
    assert_eq!(objects(&db.t), before, "a dry run deleted something");
    assert_eq!(db.seqs(), vec![1, 2, 3, 4, 5]);

    let done = db.prune(false);
    assert_eq!(
        (done.log_records_deleted, done.log_bytes_deleted),
        (2, 2_000),
        "{done:?}"
    );
    assert_eq!(db.seqs(), vec![3, 4, 5], "the two oldest records went");
    // What B needs is all there: the AOF from byte 0, wal3; wal1 and wal2 expired.
    let aof: Vec<u8> = [noise(4, 100), noise(5, 100)].concat();
    assert_eq!(read(&db.t, "db", "aof"), aof);
    assert_eq!(read(&db.t, "db", "wal3"), noise(6, 300));
    assert_eq!(read(&db.t, "db", "wal1"), Vec::<u8>::new());
    assert_eq!(read(&db.t, "db", "wal2"), Vec::<u8>::new());
    let timeline = Timeline::load(&db.t.catalog, "db").unwrap();
    assert_eq!(
        timeline.gaps(),
        vec![],
        "a chain may start after expired records"
    );
    // The other instance's records are untouched; verify is clean, chain and all.
    assert_eq!(records(&db.t, "kv").len(), 1);
    let report = db.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.log_records_checked, 4);
    // A second prune finds nothing more.
    assert_eq!(db.prune(false).log_records_deleted, 0);

    // The last point goes: the instance has nothing to restore from, its logs go.
    db.forget(&b);
    let gone = db.prune(false);
    assert_eq!(gone.log_records_deleted, 3, "{gone:?}");
    assert!(db.seqs().is_empty());
    assert_eq!(records(&db.t, "kv").len(), 1);
    // The AOF grows on: its version expired, so it is archived again, whole.
    db.log("aof", &noise(8, 100));
    assert_eq!(db.pass(), 1);
    let entries = records(&db.t, "db");
    let piece = &entries[0].record.pieces[0];
    assert_eq!(entries[0].record.seq, 6);
    assert_eq!((piece.generation, piece.offset, piece.len), (2, 0, 300));
    assert_eq!(read(&db.t, "db", "aof"), [aof, noise(8, 100)].concat());
    assert!(db.verify().is_ok());
}

#[test]
fn verify_names_the_instance_and_range_of_a_missing_or_corrupt_record() {
    let mut db = Db::new();
    history(&mut db);
    let report = db.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.log_records_checked, 5);

    // A record in the middle goes missing.
    let times: Vec<i64> = records(&db.t, "db")
        .iter()
        .map(|e| e.record.time_ns)
        .collect();
    std::fs::remove_file(db.record_file(3)).unwrap();
    let report = db.verify();
    assert!(!report.is_ok());
    assert_eq!(report.log_damage.len(), 1, "{report:?}");
    let d = &report.log_damage[0];
    assert_eq!((d.instance.as_str(), d.first_seq, d.last_seq), ("db", 3, 3));
    assert_eq!((d.after_ns, d.before_ns), (Some(times[1]), Some(times[3])));
    assert!(
        d.message
            .starts_with("logs of instance db: record 3 missing: point-in-time restore between "),
        "{}",
        d.message
    );
    assert!(d.message.ends_with(" is impossible"), "{}", d.message);
    // The timeline the restore uses says so too.
    let gaps = Timeline::load(&db.t.catalog, "db").unwrap().gaps();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].missing, 3..4);

    // Another one next to it: one range of two records.
    std::fs::remove_file(db.record_file(2)).unwrap();
    let report = db.verify();
    assert_eq!(report.log_damage.len(), 1, "{report:?}");
    let d = &report.log_damage[0];
    assert_eq!((d.first_seq, d.last_seq), (2, 3));
    assert!(d.message.contains("records 2..3 missing"), "{}", d.message);
    assert_eq!((d.after_ns, d.before_ns), (Some(times[0]), Some(times[3])));

    // A flipped byte in the newest record: unreadable, the range open at its end.
    let newest = db.record_file(5);
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let report = db.verify();
    assert_eq!(report.log_damage.len(), 2, "{report:?}");
    let d = &report.log_damage[1];
    assert_eq!((d.first_seq, d.last_seq, d.before_ns), (5, 5, None));
    assert!(d.message.contains("record 5 unreadable"), "{}", d.message);
    assert!(
        d.message.contains("point-in-time restore after "),
        "{}",
        d.message
    );

    // The CLI: exit 1, the damage in the text and in the JSON.
    let cli = Cli::new(&db.work);
    let repo = cli.repo();
    let run = cli.run(&["verify", "--repo", &repo]).code(1);
    let run = run.stdout_has("DAMAGED    logs of instance db: records 2..3 missing");
    run.stdout_has("2 damaged log range(s)");
    let json = cli
        .run(&["verify", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["log_records_checked"], 3);
    assert_eq!(json["log_damage"][0]["instance"], "db");
    assert_eq!(json["log_damage"][0]["first_seq"], 2);
    assert_eq!(json["log_damage"][1]["first_seq"], 5);
}

#[test]
fn verify_of_one_instance_reads_only_its_logs() {
    let mut db = Db::new();
    history(&mut db);
    // Another instance's record is corrupt; verifying db does not see it.
    let mut kv = LogArchiver::load(&db.t.catalog, "kv").unwrap();
    let out = kv
        .push(&db.t.repo, &db.t.catalog, "seg", &b"bytes"[..])
        .unwrap();
    let file = db.work.join("repo").join(&out.records[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let req = VerifyRequest {
        instance: Some("db".into()),
        ..Default::default()
    };
    let report = verify(
        &db.t.repo,
        &db.t.catalog,
        &req,
        &NoProgress,
        &CancelToken::new(),
    );
    let report = report.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.log_records_checked, 5);
    let all = db.verify();
    assert_eq!(all.log_damage.len(), 1, "{all:?}");
    assert_eq!(all.log_damage[0].instance, "kv");
    assert!(
        all.log_damage[0].message.contains("record 1 unreadable"),
        "{}",
        all.log_damage[0].message
    );
    assert!(Path::new(&file).exists());
}

//! The catalog's SQLite schema, versioned with numbered migrations, and its two groups
//! of tables: the cache, rebuilt from the repository, and the history, kept.

use rusqlite::Connection;

/// Cache (rebuilt from the repository): what the objects say, loaded by `refresh` and
/// emptied by `rebuild` before it reloads them. Code: `catalog/cache/`.
pub const CACHE_TABLES: &[&str] = &[
    "blobs",          // where each blob is read from (index segments, pack headers)
    "blob_copies",    // the blob's other locations
    "segment_packs",  // which index segment lists which pack
    "packs",          // packs the index or a listing of packs/ named
    "index_segments", // segments already read
    "points",         // point manifests
    "forgotten",      // forget records
    "condemned",      // packs pending prune plans condemn
    "prune_plans",    // pending prune plans
    "log_records",    // log records (their JSON, not their bytes)
];

/// History (kept; never rebuilt): what only this machine knows, which no object of the
/// repository records, so `rebuild` never drops it. Code: `catalog/history/`.
pub const HISTORY_TABLES: &[&str] = &[
    "jobs",       // the daemon's jobs (docs/CONTROL.md)
    "events",     // the daemon's audit events
    "damaged",    // blob copies found damaged (packs are never rewritten to say so)
    "repository", // what was seen of the repository (whether it was encrypted)
];

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the index and points cache.
    "CREATE TABLE packs (
         rowid INTEGER PRIMARY KEY,
         id BLOB NOT NULL UNIQUE,
         length INTEGER NOT NULL,
         -- 1 while the last listing of packs/ showed it
         present INTEGER NOT NULL DEFAULT 1
     );
     CREATE TABLE blobs (
         id BLOB PRIMARY KEY,
         pack INTEGER NOT NULL REFERENCES packs(rowid),
         kind INTEGER NOT NULL,
         offset INTEGER NOT NULL,
         length INTEGER NOT NULL,
         raw_len INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX blobs_by_pack ON blobs(pack);
     CREATE TABLE index_segments (name TEXT PRIMARY KEY) WITHOUT ROWID;
     CREATE TABLE points (
         id TEXT PRIMARY KEY,
         instance TEXT NOT NULL,
         name TEXT NOT NULL,
         kind TEXT NOT NULL,
         time_ns INTEGER NOT NULL,
         root BLOB NOT NULL,
         parent TEXT,
         manifest TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX points_by_instance ON points(instance, time_ns, name);",
    // 1 -> 2: the daemon's jobs and audit events.
    "CREATE TABLE jobs (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         kind TEXT NOT NULL,
         instance TEXT,
         state TEXT NOT NULL,
         request TEXT NOT NULL,
         status TEXT NOT NULL,
         log TEXT NOT NULL DEFAULT '',
         created_ns INTEGER NOT NULL
     );
     CREATE TABLE events (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         time_ns INTEGER NOT NULL,
         kind TEXT NOT NULL,
         line TEXT NOT NULL
     );",
    // 2 -> 3: forgotten points, every location of a blob, which segment lists which
    // pack, and the packs pending prune plans condemn. The index cache is emptied so
    // that the next refresh reloads it with every location (a cache: nothing is lost).
    "CREATE TABLE forgotten (
         id TEXT PRIMARY KEY,
         instance TEXT NOT NULL,
         parent TEXT
     ) WITHOUT ROWID;
     -- locations of blobs besides the one in `blobs` (stored twice, or repacked)
     CREATE TABLE blob_copies (
         id BLOB NOT NULL,
         pack INTEGER NOT NULL REFERENCES packs(rowid),
         kind INTEGER NOT NULL,
         offset INTEGER NOT NULL,
         length INTEGER NOT NULL,
         raw_len INTEGER NOT NULL,
         PRIMARY KEY (id, pack)
     ) WITHOUT ROWID;
     CREATE INDEX blob_copies_by_pack ON blob_copies(pack);
     CREATE TABLE segment_packs (
         segment TEXT NOT NULL,
         pack INTEGER NOT NULL REFERENCES packs(rowid),
         PRIMARY KEY (segment, pack)
     ) WITHOUT ROWID;
     CREATE INDEX segment_packs_by_pack ON segment_packs(pack);
     CREATE TABLE prune_plans (
         name TEXT PRIMARY KEY,
         created_ns INTEGER NOT NULL,
         not_before_ns INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE condemned (
         pack BLOB NOT NULL,
         plan TEXT NOT NULL,
         PRIMARY KEY (pack, plan)
     ) WITHOUT ROWID;
     DELETE FROM blobs; DELETE FROM packs; DELETE FROM index_segments;",
    // 3 -> 4: who asked for a job; indexes for event queries by time and kind, and for
    // a job history by instance and state.
    "ALTER TABLE jobs ADD COLUMN uid INTEGER;
     CREATE INDEX events_by_time ON events(time_ns);
     CREATE INDEX events_by_kind ON events(kind, time_ns);
     CREATE INDEX jobs_by_instance ON jobs(instance, state, created_ns);
     CREATE INDEX jobs_by_state ON jobs(state, created_ns);",
    // 4 -> 5: blob copies known to be damaged (by pack id: kept across a rebuild).
    "CREATE TABLE damaged (
         id BLOB NOT NULL,
         pack BLOB NOT NULL,
         cause TEXT NOT NULL,
         found_ns INTEGER NOT NULL,
         PRIMARY KEY (id, pack)
     ) WITHOUT ROWID;",
    // 5 -> 6: what this machine has seen of the repository (whether it was encrypted),
    // kept across a rebuild, so that a config replaced by an unencrypted one is refused.
    "CREATE TABLE repository (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // 6 -> 7: log records (docs/FORMAT.md 9.3), without their bytes.
    "CREATE TABLE log_records (
         instance TEXT NOT NULL,
         seq INTEGER NOT NULL,
         key TEXT NOT NULL UNIQUE,
         time_ns INTEGER NOT NULL,
         record TEXT NOT NULL,
         PRIMARY KEY (instance, seq)
     ) WITHOUT ROWID;",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Ok(version);
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(SCHEMA_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_bring_an_old_catalog_up_to_date_and_keep_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        // A version-3 catalog with one job and one event.
        for (i, sql) in MIGRATIONS.iter().take(3).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO jobs (kind, state, request, status, created_ns)
                 VALUES ('snapshot', 'failed', '{}', '{}', 5);
             INSERT INTO events (time_ns, kind, line) VALUES (7, 'ctl/snapshot', '{}');",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        let (uid, n): (Option<i64>, i64) = conn
            .query_row(
                "SELECT uid, (SELECT COUNT(*) FROM events) FROM jobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((uid, n), (None, 1));
        // Queries by kind and by time range seek an index.
        for (sql, index) in [
            (
                "SELECT line FROM events WHERE time_ns >= 1 AND time_ns <= 2 AND kind IN ('x')",
                "events_by_kind",
            ),
            (
                "SELECT line FROM events WHERE time_ns >= 1 AND time_ns <= 2",
                "events_by_time",
            ),
        ] {
            let plan: String = conn
                .query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [], |r| r.get(3))
                .unwrap();
            assert!(plan.starts_with("SEARCH") && plan.contains(index), "{plan}");
        }
    }

    #[test]
    fn every_table_is_either_cache_or_history() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let mut tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut grouped: Vec<String> = CACHE_TABLES
            .iter()
            .chain(HISTORY_TABLES)
            .map(|t| t.to_string())
            .collect();
        tables.sort();
        grouped.sort();
        assert_eq!(tables, grouped);
    }
}

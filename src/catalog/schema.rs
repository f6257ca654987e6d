//! The catalog's SQLite schema, versioned with numbered migrations.

use rusqlite::Connection;

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

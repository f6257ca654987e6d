//! Job rows: the daemon's memory across restarts, and the rule that keeps their number
//! bounded. The job's status is stored as the JSON document `jobs/<id>/status` shows;
//! the service owns its shape.
//!
//! A *failed scheduled job* is a `snapshot` job whose request JSON has a `"schedule"`
//! object (a policy's scheduler asked for it) and whose state is `failed`; `cairn points
//! --kind failed` lists them.

use rusqlite::{params, OptionalExtension};

use crate::catalog::{Catalog, Result};

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: u64,
    pub kind: String,
    pub instance: Option<String>,
    pub state: String,
    pub request: String,
    pub status: String,
    pub log: String,
    pub created_ns: i64,
    /// Who asked for it; `None` when the daemon started it on its own (a schedule).
    pub uid: Option<u32>,
}

/// Failed scheduled jobs kept per instance (the newest ones)...
pub const FAILED_SCHEDULED_KEEP: usize = 10;
/// ...and for how long.
pub const FAILED_SCHEDULED_DAYS: i64 = 30;
/// Other finished jobs are kept this long...
pub const FINISHED_JOB_DAYS: i64 = 90;
/// ...and at most this many of them (the newest).
pub const FINISHED_JOB_KEEP: usize = 1000;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

const COLUMNS: &str = "id, kind, instance, state, request, status, log, created_ns, uid";

/// SQL condition of a failed scheduled job.
const FAILED_SCHEDULED: &str = "kind = 'snapshot' AND state = 'failed'
     AND json_extract(request, '$.schedule') IS NOT NULL";

/// SQL condition of a finished job.
const FINISHED: &str = "state NOT IN ('queued', 'running')";

impl Catalog {
    /// Inserts a job and returns its id (ids are never reused).
    pub fn insert_job(
        &self,
        kind: &str,
        instance: Option<&str>,
        state: &str,
        request: &str,
        created_ns: i64,
        uid: Option<u32>,
    ) -> Result<u64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (kind, instance, state, request, status, created_ns, uid)
             VALUES (?1, ?2, ?3, ?4, '{}', ?5, ?6)",
            params![kind, instance, state, request, created_ns, uid],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(conn.last_insert_rowid() as u64)
    }

    pub fn update_job(&self, id: u64, state: &str, status: &str, log: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET state = ?2, status = ?3, log = ?4 WHERE id = ?1",
                params![id as i64, state, status, log],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    pub fn job(&self, id: u64) -> Result<Option<JobRow>> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
            [id as i64],
            row_to_job,
        )
        .optional()
        .map_err(|e| self.sql_err(e))
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>> {
        self.job_rows(&format!("SELECT {COLUMNS} FROM jobs ORDER BY id"), [])
    }

    /// Every job's id, oldest first (no other column read).
    pub fn job_ids(&self) -> Result<Vec<u64>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id FROM jobs ORDER BY id")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, i64>(0).map(|id| id as u64))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.sql_err(e))
    }

    /// A job's stored status document, if there is such a job.
    pub fn job_status(&self, id: u64) -> Result<Option<String>> {
        self.job_column(id, "status")
    }

    /// A job's stored log, if there is such a job.
    pub fn job_log(&self, id: u64) -> Result<Option<String>> {
        self.job_column(id, "log")
    }

    /// The byte length of a job's stored log, without reading it.
    pub fn job_log_len(&self, id: u64) -> Result<Option<u64>> {
        let len: Option<i64> = self.job_column(id, "LENGTH(CAST(log AS BLOB))")?;
        Ok(len.map(|n| n.max(0) as u64))
    }

    /// One value (`expr` of its columns) of job `id`'s row.
    fn job_column<T: rusqlite::types::FromSql>(&self, id: u64, expr: &str) -> Result<Option<T>> {
        self.conn()
            .query_row(
                &format!("SELECT {expr} FROM jobs WHERE id = ?1"),
                [id as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))
    }

    /// Removes a job row; whether there was one.
    pub fn delete_job(&self, id: u64) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM jobs WHERE id = ?1", [id as i64])
            .map_err(|e| self.sql_err(e))?;
        Ok(n > 0)
    }

    /// Failed scheduled jobs of one instance (or all), created in `[since, until]`,
    /// oldest first.
    pub fn failed_scheduled_jobs(
        &self,
        instance: Option<&str>,
        since_ns: Option<i64>,
        until_ns: Option<i64>,
    ) -> Result<Vec<JobRow>> {
        self.job_rows(
            &format!(
                "SELECT {COLUMNS} FROM jobs WHERE {FAILED_SCHEDULED}
                   AND (?1 IS NULL OR instance = ?1)
                   AND created_ns >= ?2 AND created_ns <= ?3
                 ORDER BY created_ns, id"
            ),
            params![
                instance,
                since_ns.unwrap_or(i64::MIN),
                until_ns.unwrap_or(i64::MAX)
            ],
        )
    }

    /// Applies the failed-scheduled-job rule to one instance: keeps its newest
    /// [`FAILED_SCHEDULED_KEEP`] failed scheduled jobs of the last
    /// [`FAILED_SCHEDULED_DAYS`] days and removes the others. Returns how many it removed.
    /// The scheduler calls this after recording a failure.
    pub fn expire_failed_scheduled_jobs(&self, instance: &str, now_ns: i64) -> Result<usize> {
        let conn = self.conn();
        conn.execute(
            &format!(
                "DELETE FROM jobs WHERE {FAILED_SCHEDULED} AND instance = ?1
                   AND (created_ns < ?2 OR id NOT IN (
                        SELECT id FROM jobs WHERE {FAILED_SCHEDULED} AND instance = ?1
                        ORDER BY created_ns DESC, id DESC LIMIT ?3))"
            ),
            params![
                instance,
                now_ns - FAILED_SCHEDULED_DAYS * DAY_NS,
                FAILED_SCHEDULED_KEEP as i64
            ],
        )
        .map_err(|e| self.sql_err(e))
    }

    /// Applies the whole retention rule of the job history: failed scheduled jobs as
    /// [`expire_failed_scheduled_jobs`](Self::expire_failed_scheduled_jobs) for every
    /// instance; every other finished job is kept [`FINISHED_JOB_DAYS`] days, and at most
    /// the newest [`FINISHED_JOB_KEEP`] of them. Queued and running jobs are never
    /// removed. Returns how many rows it removed.
    pub fn expire_job_history(&self, now_ns: i64) -> Result<usize> {
        let instances: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT DISTINCT instance FROM jobs WHERE {FAILED_SCHEDULED}
                       AND instance IS NOT NULL"
                ))
                .map_err(|e| self.sql_err(e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| self.sql_err(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.sql_err(e))?
        };
        let mut removed = 0;
        for i in &instances {
            removed += self.expire_failed_scheduled_jobs(i, now_ns)?;
        }
        let others = format!("{FINISHED} AND NOT ({FAILED_SCHEDULED})");
        removed += self
            .conn()
            .execute(
                &format!(
                    "DELETE FROM jobs WHERE {others}
                       AND (created_ns < ?1 OR id NOT IN (
                            SELECT id FROM jobs WHERE {others}
                            ORDER BY created_ns DESC, id DESC LIMIT ?2))"
                ),
                params![
                    now_ns - FINISHED_JOB_DAYS * DAY_NS,
                    FINISHED_JOB_KEEP as i64
                ],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(removed)
    }

    fn job_rows(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params, row_to_job)
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.sql_err(e))
    }
}

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get::<_, i64>(0)? as u64,
        kind: r.get(1)?,
        instance: r.get(2)?,
        state: r.get(3)?,
        request: r.get(4)?,
        status: r.get(5)?,
        log: r.get(6)?,
        created_ns: r.get(7)?,
        uid: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        (dir, c)
    }

    const SCHEDULED: &str = r#"{"instance":"db","label":null,"schedule":{"policy":"p","slot":"1970-01-01T00:00:00Z","slot_ns":0,"time_ns":0,"trigger":"slot"}}"#;
    const MANUAL: &str = r#"{"instance":"db","label":null}"#;

    #[test]
    fn failed_scheduled_jobs_are_listed_by_instance_and_time() {
        let (_d, c) = catalog();
        let f1 = c
            .insert_job("snapshot", Some("db"), "failed", SCHEDULED, 100, None)
            .unwrap();
        let f2 = c
            .insert_job("snapshot", Some("db"), "failed", SCHEDULED, 200, None)
            .unwrap();
        c.insert_job("snapshot", Some("db"), "failed", MANUAL, 150, Some(0))
            .unwrap();
        c.insert_job("snapshot", Some("db"), "succeeded", SCHEDULED, 160, None)
            .unwrap();
        c.insert_job("snapshot", Some("www"), "failed", SCHEDULED, 170, None)
            .unwrap();
        let ids = |rows: Vec<JobRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(c.failed_scheduled_jobs(Some("db"), None, None).unwrap()),
            vec![f1, f2]
        );
        assert_eq!(
            ids(c
                .failed_scheduled_jobs(Some("db"), Some(101), None)
                .unwrap()),
            vec![f2]
        );
        assert_eq!(
            ids(c
                .failed_scheduled_jobs(Some("db"), Some(100), Some(199))
                .unwrap()),
            vec![f1]
        );
        assert_eq!(c.failed_scheduled_jobs(None, None, None).unwrap().len(), 3);
    }

    #[test]
    fn failed_scheduled_jobs_keep_the_last_ten_of_thirty_days_per_instance() {
        let (_d, c) = catalog();
        let now = 100 * DAY_NS;
        // One too old, then twelve recent ones, on two instances; a manual failure.
        let old = c
            .insert_job(
                "snapshot",
                Some("db"),
                "failed",
                SCHEDULED,
                now - 31 * DAY_NS,
                None,
            )
            .unwrap();
        let mut recent = Vec::new();
        for i in 0..12 {
            recent.push(
                c.insert_job(
                    "snapshot",
                    Some("db"),
                    "failed",
                    SCHEDULED,
                    now - 12 + i,
                    None,
                )
                .unwrap(),
            );
        }
        let other = c
            .insert_job(
                "snapshot",
                Some("www"),
                "failed",
                SCHEDULED,
                now - 40 * DAY_NS,
                None,
            )
            .unwrap();
        let manual = c
            .insert_job(
                "snapshot",
                Some("db"),
                "failed",
                MANUAL,
                now - 40 * DAY_NS,
                Some(0),
            )
            .unwrap();
        assert_eq!(c.expire_failed_scheduled_jobs("db", now).unwrap(), 3);
        let left: Vec<u64> = c
            .failed_scheduled_jobs(Some("db"), None, None)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, recent[2..].to_vec(), "the newest ten");
        assert!(c.job(old).unwrap().is_none());
        assert!(c.job(other).unwrap().is_some(), "other instances untouched");
        assert!(c.job(manual).unwrap().is_some(), "manual jobs untouched");
    }

    #[test]
    fn the_job_history_forgets_old_finished_jobs_but_never_live_ones() {
        let (_d, c) = catalog();
        let now = 1000 * DAY_NS;
        let old = now - (FINISHED_JOB_DAYS + 1) * DAY_NS;
        let running = c
            .insert_job("snapshot", Some("db"), "running", MANUAL, old, Some(0))
            .unwrap();
        let queued = c
            .insert_job("verify", None, "queued", "{}", old, Some(0))
            .unwrap();
        let old_done = c
            .insert_job("verify", None, "succeeded", "{}", old, Some(0))
            .unwrap();
        let old_failed_scheduled = c
            .insert_job("snapshot", Some("db"), "failed", SCHEDULED, old, None)
            .unwrap();
        let mut newest = Vec::new();
        for i in 0..FINISHED_JOB_KEEP + 5 {
            newest.push(
                c.insert_job(
                    "verify",
                    None,
                    "failed",
                    "{}",
                    now - 10_000 + i as i64,
                    Some(0),
                )
                .unwrap(),
            );
        }
        assert_eq!(c.expire_job_history(now).unwrap(), 1 + 1 + 5);
        for live in [running, queued] {
            assert!(c.job(live).unwrap().is_some());
        }
        for gone in [old_done, old_failed_scheduled, newest[0], newest[4]] {
            assert!(c.job(gone).unwrap().is_none(), "{gone}");
        }
        assert!(c.job(newest[5]).unwrap().is_some());
        assert_eq!(c.jobs().unwrap().len(), FINISHED_JOB_KEEP + 2);
    }

    #[test]
    fn deleting_a_job_removes_its_row() {
        let (_d, c) = catalog();
        let id = c
            .insert_job("verify", None, "failed", "{}", 1, Some(1000))
            .unwrap();
        assert_eq!(c.job(id).unwrap().unwrap().uid, Some(1000));
        assert!(c.delete_job(id).unwrap());
        assert!(!c.delete_job(id).unwrap());
        assert!(c.job(id).unwrap().is_none());
        let next = c
            .insert_job("verify", None, "queued", "{}", 2, None)
            .unwrap();
        assert!(next > id, "ids are never reused");
    }

    #[test]
    fn one_column_of_a_job_reads_as_its_row_says() {
        let (_d, c) = catalog();
        assert_eq!(c.job_ids().unwrap(), Vec::<u64>::new());
        let a = c
            .insert_job("verify", None, "queued", "{}", 1, None)
            .unwrap();
        let b = c
            .insert_job("prune", None, "queued", "{}", 2, None)
            .unwrap();
        c.update_job(
            b,
            "running",
            r#"{"id":2,"état":"✓"}"#,
            "phase: ß\nzwei 日本\n",
        )
        .unwrap();
        assert_eq!(c.job_ids().unwrap(), vec![a, b]);
        for id in [a, b] {
            let row = c.job(id).unwrap().unwrap();
            assert_eq!(c.job_status(id).unwrap(), Some(row.status));
            assert_eq!(c.job_log_len(id).unwrap(), Some(row.log.len() as u64));
            assert_eq!(c.job_log(id).unwrap(), Some(row.log));
        }
        assert_eq!(c.job_log_len(b).unwrap(), Some(22));
        assert_eq!(c.job_status(b + 1).unwrap(), None);
        assert_eq!(c.job_log_len(b + 1).unwrap(), None);
    }
}

//! Job and event rows: the daemon's memory across restarts. The job's status is stored as
//! the JSON document `jobs/<id>/status` shows; the service owns its shape.

use rusqlite::{params, OptionalExtension};

use super::{Catalog, Result};

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
}

impl Catalog {
    /// Inserts a job and returns its id (ids are never reused).
    pub fn insert_job(
        &self,
        kind: &str,
        instance: Option<&str>,
        state: &str,
        request: &str,
        created_ns: i64,
    ) -> Result<u64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (kind, instance, state, request, status, created_ns) VALUES (?1, ?2, ?3, ?4, '{}', ?5)",
            params![kind, instance, state, request, created_ns],
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
            "SELECT id, kind, instance, state, request, status, log, created_ns FROM jobs WHERE id = ?1",
            [id as i64],
            row_to_job,
        )
        .optional()
        .map_err(|e| self.sql_err(e))
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, kind, instance, state, request, status, log, created_ns FROM jobs ORDER BY id")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], row_to_job)
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.sql_err(e))
    }

    /// Deletes the failed scheduled jobs (those whose request has a `schedule`) of an
    /// instance beyond the newest `keep`, and those created before `before_ns`.
    pub fn trim_failed_scheduled_jobs(
        &self,
        instance: &str,
        keep: usize,
        before_ns: i64,
    ) -> Result<usize> {
        self.conn()
            .execute(
                "DELETE FROM jobs WHERE instance = ?1 AND state = 'failed'
                   AND json_extract(request, '$.schedule') IS NOT NULL
                   AND (created_ns < ?2 OR id NOT IN (
                     SELECT id FROM jobs WHERE instance = ?1 AND state = 'failed'
                       AND json_extract(request, '$.schedule') IS NOT NULL
                     ORDER BY id DESC LIMIT ?3))",
                params![instance, before_ns, keep as i64],
            )
            .map_err(|e| self.sql_err(e))
    }

    pub fn append_event(&self, time_ns: i64, kind: &str, line: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO events (time_ns, kind, line) VALUES (?1, ?2, ?3)",
                params![time_ns, kind, line],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Event lines (JSON) in order.
    pub fn events(&self) -> Result<Vec<String>> {
        self.strings("SELECT line FROM events ORDER BY id")
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
    })
}

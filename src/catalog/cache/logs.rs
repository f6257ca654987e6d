//! The log records the catalog knows (their JSON, not their bytes): an instance's
//! archive history in seq order, refreshed from one listing of `logs/`.

use std::collections::HashSet;

use rusqlite::params;

use crate::catalog::{Catalog, Result};
use crate::model::{LogRecord, ModelError};
use crate::repo::{layout, Repository};

use super::top_level::TopLevel;

/// A log record as the catalog knows it: its object key and its pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecordEntry {
    pub key: String,
    pub record: LogRecord,
}

impl Catalog {
    pub fn insert_log_record(&self, key: &str, record: &LogRecord) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO log_records (instance, seq, key, time_ns, record)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.instance,
                record.seq as i64,
                key,
                record.time_ns,
                serde_json::to_string(record).expect("a log record serializes"),
            ],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// An instance's log records, in seq order.
    pub fn log_records(&self, instance: &str) -> Result<Vec<LogRecordEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, record FROM log_records WHERE instance = ?1 ORDER BY seq")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([instance], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json) = row.map_err(|e| self.sql_err(e))?;
            let record = serde_json::from_str(&json)
                .map_err(|e| ModelError::LogRecord(format!("{key} in the catalog: {e}")))?;
            out.push(LogRecordEntry { key, record });
        }
        Ok(out)
    }

    /// The instances that have log records, sorted.
    pub fn log_instances(&self) -> Result<Vec<String>> {
        self.strings("SELECT DISTINCT instance FROM log_records ORDER BY instance")
    }

    /// The seq of an instance's oldest log record (`None`: it has none). Retention
    /// deletes the oldest records, so a record of a lower seq expired.
    pub fn oldest_log_seq(&self, instance: &str) -> Result<Option<u64>> {
        let conn = self.conn();
        let seq: Option<i64> = conn
            .query_row(
                "SELECT MIN(seq) FROM log_records WHERE instance = ?1",
                [instance],
                |r| r.get(0),
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(seq.map(|s| s as u64))
    }

    /// Forgets a log record (after its object was deleted).
    pub fn remove_log_record(&self, key: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM log_records WHERE key = ?1", [key])
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    pub(super) fn refresh_logs(&self, repo: &Repository, top: &TopLevel) -> Result<()> {
        let known = self.strings::<HashSet<String>>("SELECT key FROM log_records")?;
        let mut listed = HashSet::new();
        for obj in top.list(repo, layout::LOGS)? {
            if LogRecord::parse_key(&obj.key).is_none() {
                tracing::warn!(key = %obj.key, "ignoring object with a malformed log record key");
                continue;
            }
            listed.insert(obj.key.clone());
            if known.contains(&obj.key) {
                continue;
            }
            match LogRecord::read(repo, &obj.key) {
                Ok((record, _)) => self.insert_log_record(&obj.key, &record)?,
                Err(e) => tracing::warn!(key = %obj.key, "skipping unreadable log record: {e}"),
            }
        }
        for key in known.difference(&listed) {
            self.remove_log_record(key)?;
        }
        Ok(())
    }
}

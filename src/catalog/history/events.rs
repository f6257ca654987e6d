//! The audit trail's rows: one JSON line per event, with its time and kind beside it so
//! that queries by time range and kind use an index instead of reading every line.

use rusqlite::types::Value as SqlValue;

use crate::catalog::{Catalog, Result};

/// Which events a query wants: a closed time range (either end open when `None`) and,
/// when `kinds` is not empty, only those kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub kinds: Vec<String>,
}

impl EventQuery {
    /// Whether an event of `kind` at `time_ns` is wanted (the rule the SQL query applies,
    /// for readers of the `events` file).
    pub fn matches(&self, time_ns: i64, kind: &str) -> bool {
        self.since_ns.is_none_or(|s| time_ns >= s)
            && self.until_ns.is_none_or(|u| time_ns <= u)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }
}

impl Catalog {
    pub fn append_event(&self, time_ns: i64, kind: &str, line: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO events (time_ns, kind, line) VALUES (?1, ?2, ?3)",
                rusqlite::params![time_ns, kind, line],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Every event line (JSON), in the order they were recorded.
    pub fn events(&self) -> Result<Vec<String>> {
        self.strings("SELECT line FROM events ORDER BY id")
    }

    /// The id and byte length (UTF-8) of the first `limit` event lines recorded after
    /// event `after_id`, in the order recorded. Ids only grow, and no event is ever
    /// removed.
    pub fn event_lengths_after(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, u64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, LENGTH(CAST(line AS BLOB)) FROM events WHERE id > ?1
                 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([after_id, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.sql_err(e))
    }

    /// Hands the lines of the events after `after_id` up to `upto_id` (ids), in the
    /// order recorded, to `line` until it returns `false`.
    pub fn event_lines_between(
        &self,
        after_id: i64,
        upto_id: i64,
        mut line: impl FnMut(&str) -> bool,
    ) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT line FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id")
            .map_err(|e| self.sql_err(e))?;
        let mut rows = stmt
            .query([after_id, upto_id])
            .map_err(|e| self.sql_err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql_err(e))? {
            let text: String = row.get(0).map_err(|e| self.sql_err(e))?;
            if !line(&text) {
                break;
            }
        }
        Ok(())
    }

    /// The event lines `q` wants, oldest first.
    pub fn query_events(&self, q: &EventQuery) -> Result<Vec<String>> {
        // Open ends as the extreme times, not `COALESCE(?, time_ns)`: a range the index
        // can seek.
        let mut sql = String::from("SELECT line FROM events WHERE time_ns >= ?1 AND time_ns <= ?2");
        let mut args: Vec<SqlValue> = vec![
            q.since_ns.unwrap_or(i64::MIN).into(),
            q.until_ns.unwrap_or(i64::MAX).into(),
        ];
        if !q.kinds.is_empty() {
            let marks: Vec<String> = (0..q.kinds.len()).map(|i| format!("?{}", i + 3)).collect();
            sql.push_str(&format!(" AND kind IN ({})", marks.join(", ")));
            args.extend(q.kinds.iter().map(|k| SqlValue::Text(k.clone())));
        }
        sql.push_str(" ORDER BY time_ns, id");
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.sql_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_by_time_range_and_kind_agree_with_matches() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let rows = [
            (100, "point-created"),
            (200, "job-failed"),
            (200, "point-created"),
            (300, "instance-added"),
            (400, "point-deleted"),
        ];
        // Recorded out of time order: queries sort by time.
        for (t, k) in rows.iter().rev() {
            c.append_event(*t, k, &format!("{t} {k}")).unwrap();
        }
        let queries = [
            EventQuery::default(),
            EventQuery {
                since_ns: Some(200),
                ..Default::default()
            },
            EventQuery {
                until_ns: Some(200),
                ..Default::default()
            },
            EventQuery {
                since_ns: Some(150),
                until_ns: Some(350),
                kinds: vec!["point-created".into(), "instance-added".into()],
            },
            EventQuery {
                kinds: vec!["nothing-like-this".into()],
                ..Default::default()
            },
        ];
        let expected: [&[&str]; 5] = [
            // At one time, in the order recorded.
            &[
                "100 point-created",
                "200 point-created",
                "200 job-failed",
                "300 instance-added",
                "400 point-deleted",
            ],
            &[
                "200 point-created",
                "200 job-failed",
                "300 instance-added",
                "400 point-deleted",
            ],
            &["100 point-created", "200 point-created", "200 job-failed"],
            &["200 point-created", "300 instance-added"],
            &[],
        ];
        for (q, want) in queries.iter().zip(expected) {
            let mut got = c.query_events(q).unwrap();
            assert_eq!(got, want, "{q:?}");
            // The same selection by `matches`, over every row.
            let mut by_match: Vec<String> = rows
                .iter()
                .filter(|(t, k)| q.matches(*t, k))
                .map(|(t, k)| format!("{t} {k}"))
                .collect();
            got.sort();
            by_match.sort();
            assert_eq!(got, by_match, "{q:?}");
        }
    }
}

//! Verify of the log archives (docs/FORMAT.md, 9.3): every log record of the selected
//! instances is read, authenticated and decoded, and the chain is followed. A run of
//! missing seqs (a gap), an unreadable record, or a record whose parent is not the
//! record before it is damage, named with the instance and the time range in which a
//! point-in-time restore is impossible (between the intact records on either side). The
//! chain may start after seq 1: the records before it expired.

use std::collections::BTreeMap;

use crate::model::log_record::LOG_RECORD_PLAIN_MAX;
use crate::model::{LogRecord, LogRecordId};
use crate::repo::{layout, RepoError};

use super::super::Result;
use super::log_damage::LogDamage;
use super::{blame, Verifier};

/// One record as read: its id (from its key) and what it says, or why it cannot be read.
type Read = (LogRecordId, std::result::Result<LogRecord, String>);

impl Verifier<'_> {
    /// Checks the log records of `instance` (every instance's when `None`), into the
    /// report.
    pub(super) fn check_logs(&mut self, instance: Option<&str>) -> Result<()> {
        let prefix = match instance {
            Some(i) => layout::instance_key(layout::LOGS, i, ""),
            None => layout::LOGS.to_string(),
        };
        let mut by_instance: BTreeMap<String, BTreeMap<u64, Vec<Read>>> = BTreeMap::new();
        for obj in self.repo.store().list(&prefix).map_err(RepoError::from)? {
            self.cancel.check()?;
            let Some((instance, seq, id)) = LogRecord::parse_key(&obj.key) else {
                self.problem(format!("{}: not a log record's key", obj.key));
                continue;
            };
            self.report.log_records_checked += 1;
            let read = match self.repo.get_sealed_zstd(&obj.key, LOG_RECORD_PLAIN_MAX) {
                Ok(plain) => LogRecord::decode(self.repo.key(), &obj.key, &plain)
                    .map(|(record, _)| record)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(blame(e)?),
            };
            by_instance
                .entry(instance)
                .or_default()
                .entry(seq)
                .or_default()
                .push((id, read));
        }
        for (instance, records) in by_instance {
            let damage = chain_damage(&instance, &records);
            self.report.log_damage.extend(damage);
        }
        Ok(())
    }
}

/// A run of bad records being gathered.
struct Run {
    /// The first and last seq of the run.
    seqs: (u64, u64),
    causes: Vec<String>,
}

/// The damage in one instance's chain (records by seq).
fn chain_damage(instance: &str, records: &BTreeMap<u64, Vec<Read>>) -> Vec<LogDamage> {
    let mut damage = Vec::new();
    let mut run: Option<Run> = None;
    let mut after_ns: Option<i64> = None;
    let mut prev: Option<(u64, Option<LogRecordId>)> = None;
    let add = |run: &mut Option<Run>, seqs: (u64, u64), cause: String| {
        let r = run.get_or_insert(Run {
            seqs,
            causes: Vec::new(),
        });
        r.seqs.1 = seqs.1;
        r.causes.push(cause);
    };
    for (&seq, reads) in records {
        if let Some((p, _)) = prev.filter(|(p, _)| seq > p + 1) {
            let missing = match seq - p {
                2 => format!("record {} missing", p + 1),
                _ => format!("records {}..{} missing", p + 1, seq - 1),
            };
            add(&mut run, (p + 1, seq - 1), missing);
        }
        let [(id, read)] = reads.as_slice() else {
            let fork = format!("{} records of seq {seq} (a fork)", reads.len());
            add(&mut run, (seq, seq), fork);
            prev = Some((seq, None));
            continue;
        };
        match read {
            Err(cause) => add(
                &mut run,
                (seq, seq),
                format!("record {seq} unreadable: {cause}"),
            ),
            Ok(record) => {
                let expected = prev.filter(|(p, _)| *p + 1 == seq).and_then(|(_, id)| id);
                let parent = record.parent.as_deref().and_then(LogRecordId::from_hex);
                if expected.is_some_and(|e| Some(e) != parent) {
                    add(
                        &mut run,
                        (seq, seq),
                        format!(
                            "record {seq} does not name record {} as its parent",
                            seq - 1
                        ),
                    );
                }
                if let Some(r) = run.take() {
                    damage.push(LogDamage::new(
                        instance,
                        r.seqs,
                        r.causes,
                        after_ns,
                        Some(record.time_ns),
                    ));
                }
                after_ns = Some(record.time_ns);
            }
        }
        prev = Some((seq, Some(*id)));
    }
    if let Some(r) = run.take() {
        damage.push(LogDamage::new(instance, r.seqs, r.causes, after_ns, None));
    }
    damage
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log_record::LOG_RECORD_VERSION;

    fn id(n: u8) -> LogRecordId {
        LogRecordId([n; 32])
    }

    /// Record `seq` naming record `parent` (by its id), at second `seq`.
    fn good(seq: u64, parent: u8) -> Read {
        let record = LogRecord {
            version: LOG_RECORD_VERSION,
            instance: "pg".into(),
            seq,
            time_ns: seq as i64 * 1_000_000_000,
            parent: (seq > 1).then(|| id(parent).to_hex()),
            pieces: Vec::new(),
        };
        (id(seq as u8), Ok(record))
    }

    fn chain(reads: Vec<(u64, Vec<Read>)>) -> Vec<LogDamage> {
        chain_damage("pg", &reads.into_iter().collect())
    }

    #[test]
    fn a_chain_that_starts_late_is_whole_and_a_broken_link_or_fork_is_damage() {
        assert_eq!(
            chain(vec![(4, vec![good(4, 3)]), (5, vec![good(5, 4)])]),
            vec![]
        );
        // Record 5 names another record than 4.
        let d = chain(vec![(4, vec![good(4, 3)]), (5, vec![good(5, 9)])]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].first_seq, d[0].last_seq), (5, 5));
        assert!(
            d[0].message.contains("does not name record 4"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].after_ns, Some(4_000_000_000));
        // Two records of seq 2, then an intact 3: one range, between 1 and 3.
        let d = chain(vec![
            (1, vec![good(1, 0)]),
            (2, vec![good(2, 1), (id(7), Err("x".into()))]),
            (3, vec![good(3, 2)]),
        ]);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].message.contains("2 records of seq 2"),
            "{}",
            d[0].message
        );
        let range = (d[0].after_ns, d[0].before_ns);
        assert_eq!(range, (Some(1_000_000_000), Some(3_000_000_000)));
        assert!(d[0]
            .message
            .contains("between 1970-01-01T00:00:01Z and 1970-01-01T00:00:03Z"));
    }
}

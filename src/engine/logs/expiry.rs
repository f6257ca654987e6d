//! Which of an instance's log records retention lets go (docs/FORMAT.md, 9.3 and 12.4):
//! the oldest records, as long as each is older than the oldest kept point and every
//! piece it holds belongs to a file version whose newest piece is too, and no version
//! they hold keeps a piece in a record that stays. What stays is then a chain that
//! starts after the expired records, and every file version it holds is whole.

use std::collections::{HashMap, HashSet};

use crate::catalog::LogRecordEntry;

/// How many of `records` (one instance's, in seq order) may be deleted, from the oldest:
/// with `oldest_point_ns` the time of the instance's oldest kept point (`None`: it has
/// no point left, and every record may go).
pub fn expirable(records: &[LogRecordEntry], oldest_point_ns: Option<i64>) -> usize {
    let Some(point_ns) = oldest_point_ns else {
        return records.len();
    };
    // The time of each (file, generation)'s newest piece.
    let mut newest: HashMap<(&str, u32), i64> = HashMap::new();
    for e in records {
        for p in &e.record.pieces {
            let t = newest.entry((p.file.as_str(), p.generation)).or_default();
            *t = (*t).max(e.record.time_ns);
        }
    }
    let old = |e: &LogRecordEntry| {
        e.record.time_ns < point_ns
            && e.record
                .pieces
                .iter()
                .all(|p| newest[&(p.file.as_str(), p.generation)] < point_ns)
    };
    let mut count = records.iter().take_while(|e| old(e)).count();
    // Shrink until no version of the deleted records has a piece in a kept record.
    loop {
        let kept: HashSet<(&str, u32)> = records[count..]
            .iter()
            .flat_map(|e| &e.record.pieces)
            .map(|p| (p.file.as_str(), p.generation))
            .collect();
        let first_shared = records[..count].iter().position(|e| {
            e.record
                .pieces
                .iter()
                .any(|p| kept.contains(&(p.file.as_str(), p.generation)))
        });
        match first_shared {
            Some(i) => count = i,
            None => return count,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::log_record::LOG_RECORD_VERSION;
    use crate::model::{LogPiece, LogRecord};

    /// A record at second `seq` holding pieces (file, generation, offset, len).
    pub(in crate::engine::logs) fn entry(
        seq: u64,
        pieces: &[(&str, u32, u64, u64)],
    ) -> LogRecordEntry {
        LogRecordEntry {
            key: format!("logs/pg/{seq:012}-{}", "0".repeat(64)),
            record: LogRecord {
                version: LOG_RECORD_VERSION,
                instance: "pg".into(),
                seq,
                time_ns: seq as i64 * 1_000_000_000,
                parent: (seq > 1).then(|| "0".repeat(64)),
                pieces: pieces
                    .iter()
                    .map(|&(file, generation, offset, len)| LogPiece {
                        file: file.into(),
                        generation,
                        offset,
                        len,
                        size: offset + len,
                        mtime_ns: 0,
                    })
                    .collect(),
            },
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn finished_files_before_the_point_expire_and_growing_ones_stay() {
        let records = vec![
            entry(1, &[("w1", 1, 0, 10)]),
            entry(2, &[("w1", 1, 10, 10)]),
            entry(3, &[("aof", 1, 0, 10)]),
            entry(4, &[("w2", 1, 0, 10)]),
            entry(5, &[("aof", 1, 10, 10)]),
        ];
        // The point at second 4.5: w1 is done, the AOF still grows after it.
        assert_eq!(expirable(&records, Some(4 * S + S / 2)), 2);
        // At second 2: w1's newest piece is not older than it.
        assert_eq!(expirable(&records, Some(2 * S)), 0);
        // At second 10: everything is older.
        assert_eq!(expirable(&records, Some(10 * S)), 5);
        assert_eq!(expirable(&records, None), 5);
        assert_eq!(expirable(&records, Some(0)), 0);
    }

    #[test]
    fn a_version_is_kept_whole_and_the_chain_has_no_hole() {
        // Record 1 holds the start of the AOF, which grows after the point: nothing
        // before it goes, not even record 2 (that would leave a hole in the chain).
        let records = vec![
            entry(1, &[("aof", 1, 0, 10), ("w1", 1, 0, 5)]),
            entry(2, &[("w2", 1, 0, 5)]),
            entry(3, &[("aof", 1, 10, 10)]),
        ];
        assert_eq!(expirable(&records, Some(2 * S + S / 2)), 0);
        // w1's version is split over records 1 and 3 and record 3 stays: 1 and 2 stay.
        let records = vec![
            entry(1, &[("w1", 1, 0, 10)]),
            entry(2, &[("w0", 1, 0, 10)]),
            entry(3, &[("w1", 1, 10, 10)]),
            entry(4, &[("w2", 1, 0, 10)]),
        ];
        assert_eq!(expirable(&records, Some(3 * S + S / 2)), 3);
        assert_eq!(expirable(&records, Some(3 * S)), 0);
        // A rewritten file: its old version expires, the new one stays.
        let records = vec![
            entry(1, &[("aof", 1, 0, 10)]),
            entry(2, &[("aof", 2, 0, 4)]),
            entry(3, &[("aof", 2, 4, 4)]),
        ];
        assert_eq!(expirable(&records, Some(2 * S + S / 2)), 1);
    }
}

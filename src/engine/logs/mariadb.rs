//! MariaDB/MySQL binlogs in a point-in-time view: the binlog files (they start with the
//! magic `\xfebin`) and their `.index`, as archived by the first record at or after the
//! second's end, at `binlogs/` in the view, and a `replay.sh` that replays them into a
//! server started on the base point: `mariadb-binlog` from the point's binlog position,
//! stopping at the first event of the next second (`--stop-datetime`, in UTC).
//!
//! The position is read from the point: `xtrabackup_binlog_info` or
//! `mariadb_backup_binlog_info` (mariadb-backup writes them), or `binlog-position`
//! (`FILE POS`, e.g. from `SHOW MASTER STATUS` in a before-hook), at the point's root or
//! in one of its top directories.

use std::path::{Path, PathBuf};

use crate::engine::{EngineError, InvalidRequest, Result};

use super::base::BaseView;
use super::cutoff::Cutoff;
use super::plan::{PlannedExtra, PlannedLog};
use super::time::{format_pitr_time, second};
use super::timeline::FileVersion;

pub const BINLOG_MAGIC: &[u8] = b"\xfebin";
/// Where the binlogs go in the view, and the script beside them.
pub const BINLOGS_DIR: &str = "binlogs";
pub const REPLAY_SCRIPT: &str = "replay.sh";
/// The files a base point's binlog position is read from, in this order.
pub const POSITION_FILES: [&str; 3] = [
    "xtrabackup_binlog_info",
    "mariadb_backup_binlog_info",
    "binlog-position",
];

/// A binlog's number: the digits after its last dot.
fn number(name: &str) -> Option<(&str, u64)> {
    let (stem, digits) = name.rsplit_once('.')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Some((stem, digits.parse().ok()?)))
        .flatten()
}

/// The binlogs of the view from the base point's position on, and `replay.sh`.
/// `binlogs` are the versions that start with the magic, `indexes` the `.index` files.
pub(super) fn plan_binlogs(
    base: &BaseView,
    cut: &Cutoff,
    instance: &str,
    binlogs: Vec<&FileVersion>,
    indexes: Vec<&FileVersion>,
) -> Result<(Vec<PlannedLog>, Vec<PlannedExtra>)> {
    let point = &base.record.manifest.name;
    let (file, pos) = position(base)?.ok_or_else(|| {
        EngineError::Invalid(InvalidRequest::Refused(format!(
            "the log archive of `{instance}` holds binlogs, but its point {point} records no \
             binlog position to replay them from (no {} at its root or in a top directory)",
            POSITION_FILES.join(", ")
        )))
    })?;
    let gap = |message: String| EngineError::LogGap {
        instance: instance.to_string(),
        message,
    };
    let (stem, first) = number(&file)
        .ok_or_else(|| gap(format!("binlog position names {file:?}, not a binlog")))?;
    let mut chosen: Vec<(u64, &FileVersion)> = binlogs
        .into_iter()
        .filter_map(|v| match number(&v.name) {
            Some((s, n)) if s == stem && n >= first => Some((n, v)),
            _ => None,
        })
        .collect();
    chosen.sort_by_key(|(n, _)| *n);
    for (expected, (n, v)) in (first..).zip(chosen.iter()) {
        if *n != expected {
            return Err(gap(format!(
                "binlog {stem}.{expected:0width$} is not archived, and the replay to {} needs it",
                format_pitr_time(cut.at_ns),
                width = v.name.len() - stem.len() - 1
            )));
        }
    }
    if chosen.is_empty() {
        return Err(gap(format!(
            "binlog {file} (the position of point {point}) is not archived"
        )));
    }
    let place = |v: &FileVersion| PlannedLog {
        path: Path::new(BINLOGS_DIR).join(&v.name),
        version: v.clone(),
        cut: v.size,
    };
    let names: Vec<&str> = chosen.iter().map(|(_, v)| v.name.as_str()).collect();
    let mut logs: Vec<PlannedLog> = chosen.iter().map(|(_, v)| place(v)).collect();
    logs.extend(indexes.into_iter().map(place));
    let script = replay_script(instance, point, &file, pos, cut, &names);
    Ok((
        logs,
        vec![PlannedExtra {
            path: PathBuf::from(REPLAY_SCRIPT),
            bytes: script.into_bytes(),
            mode: 0o755,
        }],
    ))
}

/// `FILE POS` from the first position file the point has.
fn position(base: &BaseView) -> Result<Option<(String, u64)>> {
    for dir in base.top_dirs()? {
        for name in POSITION_FILES {
            let Some((text, _)) = base.read_small(&dir.join(name))? else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            let mut words = text.split_whitespace();
            let file = words.next().and_then(|f| Path::new(f).file_name());
            let pos = words.next().and_then(|p| p.parse().ok());
            if let (Some(file), Some(pos)) = (file, pos) {
                return Ok(Some((file.to_string_lossy().into_owned(), pos)));
            }
        }
    }
    Ok(None)
}

fn replay_script(
    instance: &str,
    point: &str,
    file: &str,
    pos: u64,
    cut: &Cutoff,
    names: &[&str],
) -> String {
    let stop = second(cut.end_ns).format("%Y-%m-%d %H:%M:%S");
    let files: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "'\\''")))
        .collect();
    format!(
        "#!/bin/bash\n\
         # Written by cairn: replays the binlogs of instance `{instance}` from its point\n\
         # {point} ({file} at {pos}) up to {at}: every event before {stop} UTC.\n\
         # Start a server on the restored data directory, then: ./{REPLAY_SCRIPT} [mariadb options]\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")/{BINLOGS_DIR}\"\n\
         TZ=UTC mariadb-binlog --start-position={pos} --stop-datetime='{stop}' \\\n  {} \\\n  | mariadb \"$@\"\n",
        files.join(" "),
        at = format_pitr_time(cut.at_ns),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_numbers() {
        assert_eq!(number("mysql-bin.000012"), Some(("mysql-bin", 12)));
        assert_eq!(number("mysql-bin.index"), None);
        assert_eq!(number("x."), None);
    }
}

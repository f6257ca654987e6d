//! PostgreSQL WAL in a point-in-time view: the archived segments (24 hex digits), timeline
//! histories (`*.history`) and backup labels (`*.backup`) staged inside the base point's
//! data directory at `pg_wal_archive/`, with `recovery.signal` and recovery settings
//! appended to the point's `postgresql.auto.conf`, so that the server started on the
//! view replays to the second by itself.
//!
//! PostgreSQL stops before the first commit whose time reaches `recovery_target_time`
//! when `recovery_target_inclusive` is off: the target is the second's end, so every
//! commit made during the second is in and none after. The restore command is relative:
//! PostgreSQL runs it in the data directory, so a copy of the view works anywhere. The
//! restored server archives nothing (`archive_mode = off`): its new timeline must not
//! mix into the instance's archive.

use std::path::Path;

use crate::engine::{EngineError, InvalidRequest, Result};

use super::base::BaseView;
use super::cutoff::Cutoff;
use super::plan::{PlannedExtra, PlannedLog};
use super::time::format_pitr_time;
use super::timeline::FileVersion;

/// Where the segments are staged, inside the data directory.
pub const WAL_ARCHIVE_DIR: &str = "pg_wal_archive";
const DEFAULT_SEGMENT: u64 = 16 << 20;

/// A WAL segment name (timeline, log, segment: 8 hex digits each), a timeline history,
/// a backup history file, or a partial segment.
pub(super) fn is_wal_name(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match name.split_once('.') {
        None => hex(name, 24),
        Some((tli, "history")) => hex(tli, 8),
        Some((seg, "partial")) => hex(seg, 24),
        Some((seg, rest)) => {
            hex(seg, 24) && rest.strip_suffix(".backup").is_some_and(|off| hex(off, 8))
        }
    }
}

/// A segment's timeline and number (segments of `size` bytes).
fn segment(name: &str, size: u64) -> Option<(u32, u64)> {
    if name.len() != 24 || !is_wal_name(name) {
        return None;
    }
    let field = |i: usize| u64::from_str_radix(&name[i..i + 8], 16).ok();
    let per_log = 0x1_0000_0000 / size;
    Some((field(0)? as u32, field(8)? * per_log + field(16)?))
}

fn segment_size(v: &FileVersion) -> u64 {
    if v.size.is_power_of_two() && ((1 << 20)..=(1 << 30)).contains(&v.size) {
        v.size
    } else {
        DEFAULT_SEGMENT
    }
}

/// The WAL of the view: every segment from the base backup's start on, and the
/// settings that replay it to the end of the second.
pub(super) fn plan_wal(
    base: &BaseView,
    cut: &Cutoff,
    instance: &str,
) -> Result<(Vec<PlannedLog>, Vec<PlannedExtra>)> {
    let point = &base.record.manifest.name;
    let datadir = base.dir_with("PG_VERSION")?.ok_or_else(|| {
        EngineError::Invalid(InvalidRequest::Refused(format!(
            "the log archive of `{instance}` holds PostgreSQL WAL, but its point {point} \
             holds no data directory (no PG_VERSION at its root or in a top directory)"
        )))
    })?;
    let newest = cut.newest();
    let wal: Vec<&FileVersion> = newest.values().filter(|v| is_wal_name(&v.name)).collect();
    let size = wal
        .iter()
        .find(|v| v.name.len() == 24)
        .map_or(DEFAULT_SEGMENT, |v| segment_size(v));
    // The backup's first segment, from its label; else the oldest archived.
    let label = base.read_small(&datadir.join("backup_label"))?;
    let start = label
        .and_then(|(text, _)| start_segment(&String::from_utf8_lossy(&text)))
        .or_else(|| {
            wal.iter()
                .find(|v| v.name.len() == 24)
                .map(|v| v.name.clone())
        });
    let Some((tli, first)) = start.as_deref().and_then(|s| segment(s, size)) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let in_point: Vec<String> = base
        .list(&datadir.join("pg_wal"))?
        .into_iter()
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .collect();
    let archived: std::collections::BTreeSet<u64> = wal
        .iter()
        .filter_map(|v| segment(&v.name, size))
        .filter(|(t, _)| *t == tli)
        .map(|(_, n)| n)
        .collect();
    let present = |n: u64| archived.contains(&n) || in_point.contains(&segment_name(tli, n, size));
    // Recovery needs every segment up to those archived by the first record at or after
    // the second's end; a segment the point holds in its pg_wal fills a hole.
    let needed_upto = wal
        .iter()
        .filter(|v| cut.after.contains_key(&v.name))
        .filter_map(|v| segment(&v.name, size))
        .filter(|(t, _)| *t == tli)
        .map(|(_, n)| n)
        .max()
        .unwrap_or(first);
    let mut run_end = first;
    while present(run_end) {
        run_end += 1;
    }
    if run_end <= needed_upto {
        return Err(missing(instance, cut, &segment_name(tli, run_end, size)));
    }
    // Later segments too, while consecutive: PostgreSQL stops at the target by itself
    // and needs a commit after it to know it reached it.
    let logs = wal
        .iter()
        .filter(|v| match segment(&v.name, size) {
            None => true,
            Some((t, n)) => t > tli || (t == tli && (first..run_end).contains(&n)),
        })
        .map(|v| PlannedLog {
            path: datadir.join(WAL_ARCHIVE_DIR).join(&v.name),
            version: (*v).clone(),
            cut: v.size,
        })
        .collect();
    let extras = recovery_files(base, &datadir, cut)?;
    Ok((logs, extras))
}

/// `recovery.signal`, and `postgresql.auto.conf` as the point has it plus the settings.
fn recovery_files(base: &BaseView, datadir: &Path, cut: &Cutoff) -> Result<Vec<PlannedExtra>> {
    let conf = datadir.join("postgresql.auto.conf");
    let (mut bytes, mode) = base.read_small(&conf)?.unwrap_or((Vec::new(), 0o600));
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(recovery_settings(cut.at_ns).as_bytes());
    Ok(vec![
        PlannedExtra {
            path: conf,
            bytes,
            mode,
        },
        PlannedExtra {
            path: datadir.join("recovery.signal"),
            bytes: Vec::new(),
            mode: 0o600,
        },
    ])
}

/// The lines appended to `postgresql.auto.conf` (the last setting of a name wins).
/// `at_ns`: the second's start.
pub fn recovery_settings(at_ns: i64) -> String {
    let end = super::time::second(at_ns + super::time::NS).format("%Y-%m-%d %H:%M:%S+00");
    format!(
        "# Added by cairn: point-in-time recovery to {at}, every commit made before {end}.\n\
         restore_command = 'cp \"{WAL_ARCHIVE_DIR}/%f\" \"%p\"'\n\
         recovery_target_time = '{end}'\n\
         recovery_target_inclusive = off\n\
         recovery_target_action = 'promote'\n\
         # The restored server must not archive into the instance's archive.\n\
         archive_mode = off\n",
        at = format_pitr_time(at_ns),
    )
}

fn segment_name(tli: u32, n: u64, size: u64) -> String {
    let per_log = 0x1_0000_0000 / size;
    format!("{tli:08X}{:08X}{:08X}", n / per_log, n % per_log)
}

/// `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)` of a backup label.
fn start_segment(label: &str) -> Option<String> {
    let line = label
        .lines()
        .find(|l| l.starts_with("START WAL LOCATION:"))?;
    let name = line.split("(file ").nth(1)?.trim_end_matches(')').trim();
    (name.len() == 24 && is_wal_name(name)).then(|| name.to_string())
}

fn missing(instance: &str, cut: &Cutoff, name: &str) -> EngineError {
    EngineError::LogGap {
        instance: instance.to_string(),
        message: format!(
            "WAL segment {name} is not archived, and the recovery to {} needs it",
            format_pitr_time(cut.at_ns)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_segments_and_labels() {
        for n in [
            "000000010000000000000002",
            "00000002.history",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000002.partial",
        ] {
            assert!(is_wal_name(n), "{n}");
        }
        for n in ["00000001000000000000002", "binlog.000001", "x.history"] {
            assert!(!is_wal_name(n), "{n}");
        }
        let s = 16 << 20;
        assert_eq!(segment("0000000100000001000000FF", s), Some((1, 0x1FF)));
        assert_eq!(segment_name(1, 0x200, s), "000000010000000200000000");
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nX: y\n";
        assert_eq!(
            start_segment(label).as_deref(),
            Some("000000010000000000000002")
        );
    }
}

//! The times a point-in-time restore is asked for: RFC 3339 with an offset or `Z`
//! (`2026-12-01T10:30:15+08:00`, `2026-12-01T02:30:15Z`) or the mount's compact UTC form
//! (`2026-12-01T103015Z`), always to the second. A time names a whole second: the restore
//! holds every write made before its end. Fractions of a second are refused (they would
//! suggest a precision the rule does not have), and so is a time without an offset (its
//! zone would be a guess).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

pub(super) const NS: i64 = 1_000_000_000;

/// The start (ns since the epoch) of the second `text` names.
pub fn parse_pitr_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let refuse = |why: &str| {
        Err(format!(
            "time {text:?} {why}: give RFC 3339 to the second with an offset or Z \
             (2026-12-01T10:30:15+08:00, 2026-12-01T02:30:15Z) or the compact UTC form \
             2026-12-01T103015Z"
        ))
    };
    if text.contains('.') || text.contains(',') {
        return refuse("has a fraction of a second (a time covers its whole second)");
    }
    let parsed = if let Some(compact) = text.strip_suffix('Z').filter(|t| t.len() == 17) {
        NaiveDateTime::parse_from_str(compact, "%Y-%m-%dT%H%M%S")
            .ok()
            .map(|n| Utc.from_utc_datetime(&n))
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    };
    let Some(time) = parsed else {
        return if DateTime::parse_from_rfc3339(&format!("{text}Z")).is_ok() {
            refuse("has no offset")
        } else {
            refuse("is not a time")
        };
    };
    if time.timestamp_subsec_nanos() != 0 {
        return refuse("is not a whole second");
    }
    Ok(time.timestamp() * NS)
}

/// `2026-12-01T10:30:15Z`: the second that starts at `ns`, as messages name it.
pub fn format_pitr_time(ns: i64) -> String {
    second(ns).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-12-01T103015Z`: the second that starts at `ns`, as the mount names it.
pub fn compact_pitr_time(ns: i64) -> String {
    second(ns).format("%Y-%m-%dT%H%M%SZ").to_string()
}

/// The UTC second `ns` lies in.
pub(super) fn second(ns: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ns.div_euclid(NS), 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_name_the_same_second() {
        let ns = parse_pitr_time("2026-12-01T02:30:15Z").unwrap();
        assert_eq!(ns % NS, 0);
        assert_eq!(parse_pitr_time("2026-12-01T10:30:15+08:00"), Ok(ns));
        assert_eq!(parse_pitr_time("2026-12-01T023015Z"), Ok(ns));
        assert_eq!(format_pitr_time(ns + 999_999_999), "2026-12-01T02:30:15Z");
        assert_eq!(compact_pitr_time(ns), "2026-12-01T023015Z");
        assert_eq!(parse_pitr_time(&compact_pitr_time(ns)), Ok(ns));
    }

    #[test]
    fn fractions_local_times_and_garbage_are_refused() {
        for (text, why) in [
            ("2026-12-01T02:30:15.5Z", "fraction"),
            ("2026-12-01T02:30:15", "no offset"),
            ("yesterday", "not a time"),
            ("2026-12-01T023015", "not a time"),
            ("2026-13-01T02:30:15Z", "not a time"),
            ("", "not a time"),
        ] {
            let e = parse_pitr_time(text).unwrap_err();
            assert!(e.contains(why) && e.contains("RFC 3339"), "{text}: {e}");
        }
    }
}

//! Schedule math, pure: the instants at which a policy's slots fall, in its time zone.
//!
//! A slot is a local date the policy runs on (a listed weekday, or `anchor + k * every`)
//! at one of its times of day. Local times are resolved to instants in the policy's time
//! zone: a time that does not exist on that date (skipped by a DST change) runs once at
//! the first valid instant after it; a time that occurs twice (clocks going back) runs
//! once, at its first occurrence. Two times that resolve to one instant run once.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::policy::{local_date, Day, Days, Policy, TimeOfDay};

const NS: i64 = 1_000_000_000;
/// The longest range [`slots`] looks at: older slots of a long downtime are irrelevant
/// (only the newest missed one matters for a catch-up).
pub const MAX_RANGE_DAYS: i64 = 400;

/// Whether the policy runs on this local date.
pub fn runs_on(days: &Days, date: NaiveDate) -> bool {
    match days {
        Days::Weekdays(list) => list.contains(&Day::of(date)),
        Days::EveryDays { every, anchor } => {
            (date - *anchor).num_days().rem_euclid(i64::from(*every)) == 0
        }
    }
}

/// The instant a local time on a local date maps to (see the module comment).
pub fn resolve(tz: &Tz, date: NaiveDate, time: TimeOfDay) -> Option<i64> {
    let local = date.and_hms_opt(time.hour(), time.minute(), 0)?;
    first_valid(tz, local).map(|t| t.timestamp() * NS)
}

fn first_valid(tz: &Tz, local: NaiveDateTime) -> Option<chrono::DateTime<Utc>> {
    // DST gaps are whole minutes and at most a few hours long.
    for minute in 0..=24 * 60 {
        let t = local + Duration::minutes(minute);
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return Some(x.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    None
}

/// The policy's slots in `(after_ns, until_ns]`, oldest first, each once. Ranges longer
/// than [`MAX_RANGE_DAYS`] are cut to their newest part.
pub fn slots(policy: &Policy, after_ns: i64, until_ns: i64) -> Vec<i64> {
    let Ok(tz) = policy.tz() else {
        return Vec::new();
    };
    if until_ns <= after_ns {
        return Vec::new();
    }
    let after_ns = after_ns.max(until_ns - MAX_RANGE_DAYS * 86_400 * NS);
    // A day either side: a slot's instant may fall on another UTC date than its local one.
    let first = local_date(&tz, after_ns) - Duration::days(1);
    let last = local_date(&tz, until_ns) + Duration::days(1);
    let mut out = Vec::new();
    let mut date = first;
    while date <= last {
        if runs_on(&policy.days, date) {
            for time in &policy.times {
                if let Some(t) = resolve(&tz, date, *time) {
                    if t > after_ns && t <= until_ns {
                        out.push(t);
                    }
                }
            }
        }
        date += Duration::days(1);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The policy's first slot after `after_ns` (looking at most a year ahead).
pub fn next_slot(policy: &Policy, after_ns: i64) -> Option<i64> {
    let mut from = after_ns;
    for _ in 0..12 {
        let to = from + 31 * 86_400 * NS;
        if let Some(t) = slots(policy, from, to).first() {
            return Some(*t);
        }
        from = to;
    }
    None
}

/// The local date of an instant in the policy's zone (UTC if the zone is unknown).
pub fn policy_date(policy: &Policy, ns: i64) -> NaiveDate {
    local_date(&policy.tz().unwrap_or(Tz::UTC), ns)
}

/// An instant as RFC 3339 in UTC, to the second (for names and messages).
pub fn utc(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{parse_times, DaysSpec, Keep, PolicyChange};

    fn ns(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp()
            * NS
    }

    fn policy(times: &str, days: DaysSpec, tz: &str, created: &str) -> Policy {
        Policy::create(
            "p",
            &PolicyChange {
                times: Some(parse_times(times).unwrap()),
                days: Some(days),
                keep: Some(Keep::Forever),
                time_zone: Some(tz.into()),
                enabled: None,
            },
            ns(created),
        )
        .unwrap()
    }

    fn names(v: &[i64]) -> Vec<String> {
        v.iter().map(|t| utc(*t)).collect()
    }

    #[test]
    fn weekdays_in_a_week() {
        // 2026-11-23 is a Monday.
        let p = policy(
            "03:00,15:00",
            DaysSpec::Weekdays(vec![Day::Mon, Day::Wed, Day::Fri]),
            "UTC",
            "2026-11-22T00:00:00Z",
        );
        let s = slots(&p, ns("2026-11-22T00:00:00Z"), ns("2026-11-29T00:00:00Z"));
        assert_eq!(
            names(&s),
            [
                "2026-11-23T03:00:00Z",
                "2026-11-23T15:00:00Z",
                "2026-11-25T03:00:00Z",
                "2026-11-25T15:00:00Z",
                "2026-11-27T03:00:00Z",
                "2026-11-27T15:00:00Z",
            ]
        );
        // The range is (after, until]: a slot at `after` is not in it, one at `until` is.
        let s = slots(&p, ns("2026-11-23T03:00:00Z"), ns("2026-11-23T15:00:00Z"));
        assert_eq!(names(&s), ["2026-11-23T15:00:00Z"]);
        assert_eq!(
            next_slot(&p, ns("2026-11-27T15:00:00Z"))
                .map(utc)
                .as_deref(),
            Some("2026-11-30T03:00:00Z")
        );
    }

    #[test]
    fn every_n_days_is_anchored_at_creation_and_crosses_a_leap_day() {
        let p = policy(
            "01:00",
            DaysSpec::EveryDays(3),
            "UTC",
            "2028-02-25T12:00:00Z",
        );
        let s = slots(&p, ns("2028-02-25T00:00:00Z"), ns("2028-03-10T00:00:00Z"));
        assert_eq!(
            names(&s),
            [
                "2028-02-25T01:00:00Z",
                "2028-02-28T01:00:00Z",
                "2028-03-02T01:00:00Z",
                "2028-03-05T01:00:00Z",
                "2028-03-08T01:00:00Z",
            ]
        );
        let daily = policy(
            "23:30",
            DaysSpec::EveryDays(1),
            "UTC",
            "2028-02-27T00:00:00Z",
        );
        let s = slots(
            &daily,
            ns("2028-02-28T00:00:00Z"),
            ns("2028-03-01T00:00:00Z"),
        );
        assert_eq!(names(&s), ["2028-02-28T23:30:00Z", "2028-02-29T23:30:00Z"]);
        // Dates before the anchor follow the same rhythm.
        assert!(runs_on(
            &p.days,
            NaiveDate::from_ymd_opt(2028, 2, 22).unwrap()
        ));
        assert!(!runs_on(
            &p.days,
            NaiveDate::from_ymd_opt(2028, 2, 23).unwrap()
        ));
    }

    #[test]
    fn dst_gap_runs_once_at_the_first_valid_instant() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let p = policy(
            "02:30,04:00",
            DaysSpec::EveryDays(1),
            "Europe/Berlin",
            "2026-03-27T12:00:00Z",
        );
        let s = slots(&p, ns("2026-03-28T00:00:00Z"), ns("2026-03-30T12:00:00Z"));
        assert_eq!(
            names(&s),
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-28T03:00:00Z", // 04:00 CET
                "2026-03-29T01:00:00Z", // 02:30 does not exist: 03:00 CEST
                "2026-03-29T02:00:00Z", // 04:00 CEST
                "2026-03-30T00:30:00Z", // 02:30 CEST
                "2026-03-30T02:00:00Z",
            ]
        );
        // Two times falling into one instant run once.
        let p = policy(
            "02:00,03:00",
            DaysSpec::EveryDays(1),
            "Europe/Berlin",
            "2026-03-27T12:00:00Z",
        );
        let s = slots(&p, ns("2026-03-29T00:00:00Z"), ns("2026-03-29T12:00:00Z"));
        assert_eq!(names(&s), ["2026-03-29T01:00:00Z"]);
    }

    #[test]
    fn dst_overlap_runs_once() {
        // America/New_York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 is twice.
        let p = policy(
            "01:30,12:00",
            DaysSpec::EveryDays(1),
            "America/New_York",
            "2026-10-30T12:00:00Z",
        );
        let s = slots(&p, ns("2026-11-01T00:00:00Z"), ns("2026-11-02T00:00:00Z"));
        assert_eq!(
            names(&s),
            ["2026-11-01T05:30:00Z", "2026-11-01T17:00:00Z"] // 01:30 EDT, 12:00 EST
        );
    }

    #[test]
    fn long_ranges_are_cut_to_the_newest_part() {
        let p = policy(
            "00:00",
            DaysSpec::EveryDays(1),
            "UTC",
            "2020-01-01T00:00:00Z",
        );
        let s = slots(&p, ns("2020-01-01T00:00:00Z"), ns("2026-01-01T00:00:00Z"));
        assert_eq!(s.len() as i64, MAX_RANGE_DAYS);
        assert_eq!(utc(*s.last().unwrap()), "2026-01-01T00:00:00Z");
        assert!(slots(&p, 10, 10).is_empty());
    }
}

//! `--since T` / `--until T`: a time as RFC 3339 (`2026-11-22T03:00:00Z`, any offset), a
//! day (`2026-11-22`, midnight UTC), or an age back from now (`90s`, `30m`, `2h`, `7d`,
//! `2w`). Both ends are inclusive. RFC 3339 is read by chrono (humantime's reader takes
//! only `Z`, no other offset), ages by humantime.

use anyhow::Result;
use clap::Args;

use crate::failure::usage;

#[derive(Args, Debug, Clone, Copy, Default)]
pub struct TimeRangeArgs {
    /// Only from this time on: RFC 3339 (2026-11-22T03:00:00Z), a day (2026-11-22, UTC), or
    /// an age such as 90s, 30m, 2h, 7d, 2w (that long ago).
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    pub since: Option<i64>,
    /// Only up to this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    pub until: Option<i64>,
}

impl TimeRangeArgs {
    /// The range as (since, until) in ns; a usage error when it is empty.
    pub fn range(&self) -> Result<(Option<i64>, Option<i64>)> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s > u {
                return Err(usage(format!(
                    "--since ({}) is after --until ({}): nothing can match",
                    crate::human_units::rfc3339(s),
                    crate::human_units::rfc3339(u)
                )));
            }
        }
        Ok((self.since, self.until))
    }
}

fn parse_now(text: &str) -> Result<i64, String> {
    parse_time(text, cairn::model::now_ns())
}

/// `text` as ns since the epoch, ages counted back from `now_ns`.
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return t
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("`{text}` is out of range"));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .ok_or_else(|| format!("`{text}` is out of range"));
    }
    match age(text) {
        Some(Ok(ago)) => i64::try_from(ago.as_nanos())
            .ok()
            .and_then(|ago| now_ns.checked_sub(ago))
            .ok_or_else(|| format!("`{text}` is too long ago")),
        Some(Err(humantime::DurationError::NumberOverflow)) => {
            Err(format!("`{text}` is too long ago"))
        }
        _ => Err(format!(
            "`{text}` is not a time: use RFC 3339 (2026-11-22T03:00:00Z), a day (2026-11-22) \
             or an age (90s, 30m, 2h, 7d, 2w)"
        )),
    }
}

/// An age in the documented form, digits and one of `s`, `m`, `h`, `d`, `w`, read by
/// humantime; `None` for any other text. (humantime alone reads more, such as `2y` as
/// 365.25 days, which is no calendar year.)
fn age(text: &str) -> Option<Result<std::time::Duration, humantime::DurationError>> {
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit());
    let has_number = unit.len() < text.len();
    (has_number && matches!(unit, "s" | "m" | "h" | "d" | "w"))
        .then(|| humantime::parse_duration(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_and_relative() {
        let now = 1_795_000_000 * 1_000_000_000;
        assert_eq!(
            parse_time("2026-11-22T03:00:00Z", now).unwrap(),
            chrono::DateTime::parse_from_rfc3339("2026-11-22T04:00:00+01:00")
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        );
        assert_eq!(
            parse_time("2026-11-22T03:00:00.5Z", now).unwrap() % 1_000_000_000,
            500_000_000
        );
        assert_eq!(
            parse_time("2026-11-22", now).unwrap(),
            parse_time("2026-11-22T00:00:00Z", now).unwrap()
        );
        assert_eq!(parse_time("90s", now).unwrap(), now - 90_000_000_000);
        assert_eq!(parse_time("2h", now).unwrap(), now - 7200 * 1_000_000_000);
        assert_eq!(
            parse_time("7d", now).unwrap(),
            now - 7 * 86_400 * 1_000_000_000
        );
        assert_eq!(
            parse_time("1w", now).unwrap(),
            parse_time("7d", now).unwrap()
        );
        assert_eq!(parse_time("0m", now).unwrap(), now);
        for bad in [
            "",
            "2",
            "h",
            "2y",
            "-2h",
            "2026-13-01",
            "yesterday",
            "99999999999999w",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_range_is_refused() {
        let r = TimeRangeArgs {
            since: Some(2),
            until: Some(1),
        };
        assert!(r.range().is_err());
        let r = TimeRangeArgs {
            since: Some(1),
            until: Some(1),
        };
        assert_eq!(r.range().unwrap(), (Some(1), Some(1)));
    }
}

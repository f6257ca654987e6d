//! Policies: `policies/<name>`, sealed JSON, replaced on every change and deleted with the
//! policy (its points stay). A policy says when scheduled points are taken (times of day
//! in a time zone, on weekdays or every N days), how long they are kept, and which
//! instances it covers. Every value is validated here, on creation and on every read.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::names::{invalid_name, is_valid_instance_name};
use crate::repo::layout;

pub use super::policy_settings::{PolicySettings, SETTINGS_KEY};

pub const POLICY_VERSION: u32 = 1;
pub const MAX_TIMES: usize = 24;
pub const MAX_EVERY_DAYS: u32 = 30;
pub const MAX_KEEP: u32 = 99_999;

/// Why a policy or a value of one is refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad<T>(message: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(message.into()))
}

/// A time of day, in minutes after local midnight; written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub fn new(hour: u32, minute: u32) -> Option<TimeOfDay> {
        (hour < 24 && minute < 60).then(|| TimeOfDay((hour * 60 + minute) as u16))
    }

    pub fn hour(self) -> u32 {
        u32::from(self.0 / 60)
    }

    pub fn minute(self) -> u32 {
        u32::from(self.0 % 60)
    }

    pub fn minutes(self) -> u32 {
        u32::from(self.0)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl FromStr for TimeOfDay {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<TimeOfDay, PolicyError> {
        let parsed = s.split_once(':').and_then(|(h, m)| {
            let digits = |x: &str, max: usize| {
                (!x.is_empty() && x.len() <= max && x.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| x.parse::<u32>().ok())
                    .flatten()
            };
            let (h, m) = (digits(h, 2)?, digits(m, 2).filter(|_| m.len() == 2)?);
            TimeOfDay::new(h, m)
        });
        parsed.ok_or_else(|| PolicyError(format!("invalid time `{s}`: use HH:MM, 00:00 to 23:59")))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TimeOfDay, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    pub fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }

    fn parse(s: &str) -> Result<Day, PolicyError> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        NAMES
            .iter()
            .position(|n| s.eq_ignore_ascii_case(n))
            .map(|i| Day::ALL[i])
            .ok_or_else(|| {
                PolicyError(format!(
                    "invalid weekday `{s}`: use mon, tue, wed, thu, fri, sat, sun"
                ))
            })
    }
}

/// Which days a policy runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Days {
    /// On these weekdays (local time).
    Weekdays(Vec<Day>),
    /// Every `every` days, on the days `anchor + k * every` (local dates, `YYYY-MM-DD`).
    EveryDays { every: u32, anchor: NaiveDate },
}

/// How long a policy keeps its scheduled points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// Points younger than this many days.
    Days(u32),
    /// The newest this many scheduled points.
    Count(u32),
    Forever,
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Days(n) => write!(f, "keep-days={n}"),
            Keep::Count(n) => write!(f, "keep-count={n}"),
            Keep::Forever => write!(f, "keep=forever"),
        }
    }
}

/// An instance covered by a policy, and since when (ns since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub instance: String,
    pub bound_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub version: u32,
    pub name: String,
    pub enabled: bool,
    /// Sorted, at least an hour apart (also across midnight).
    pub times: Vec<TimeOfDay>,
    pub days: Days,
    pub keep: Keep,
    /// An IANA time zone name; times and days are local to it.
    pub time_zone: String,
    pub instances: Vec<Binding>,
    pub created_ns: i64,
    pub updated_ns: i64,
}

/// The schedule part of a `days` request, before an anchor is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaysSpec {
    Weekdays(Vec<Day>),
    EveryDays(u32),
}

/// Fields of a create or update request; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    pub times: Option<Vec<TimeOfDay>>,
    pub days: Option<DaysSpec>,
    pub keep: Option<Keep>,
    pub time_zone: Option<String>,
    pub enabled: Option<bool>,
}

impl Policy {
    pub fn object_key(name: &str) -> String {
        layout::object_key(layout::POLICIES, name)
    }

    /// A new policy from a request that gives every field (the time zone defaults to UTC).
    pub fn create(name: &str, change: &PolicyChange, now_ns: i64) -> Result<Policy, PolicyError> {
        let missing = |key: &str| PolicyError(format!("a new policy needs {key}"));
        let time_zone = change.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let tz = parse_time_zone(&time_zone)?;
        let policy = Policy {
            version: POLICY_VERSION,
            name: name.to_string(),
            enabled: change.enabled.unwrap_or(true),
            times: change
                .times
                .clone()
                .ok_or_else(|| missing("`times=HH:MM,..`"))?,
            days: anchor_days(
                change
                    .days
                    .clone()
                    .ok_or_else(|| missing("`weekdays=mon,..` or `every-days=N`"))?,
                &tz,
                now_ns,
            ),
            keep: change
                .keep
                .ok_or_else(|| missing("`keep-days=N`, `keep-count=N` or `keep=forever`"))?,
            time_zone,
            instances: Vec::new(),
            created_ns: now_ns,
            updated_ns: now_ns,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// This policy with `change` applied (validated; `self` is untouched).
    pub fn updated(&self, change: &PolicyChange, now_ns: i64) -> Result<Policy, PolicyError> {
        let mut p = self.clone();
        if let Some(tz) = &change.time_zone {
            parse_time_zone(tz)?;
            p.time_zone = tz.clone();
        }
        if let Some(times) = &change.times {
            p.times = times.clone();
        }
        if let Some(days) = &change.days {
            p.days = match (days, &self.days) {
                // Same period: keep the anchor, so the days do not shift.
                (DaysSpec::EveryDays(n), Days::EveryDays { every, anchor }) if n == every => {
                    Days::EveryDays {
                        every: *n,
                        anchor: *anchor,
                    }
                }
                _ => anchor_days(days.clone(), &p.tz()?, now_ns),
            };
        }
        if let Some(keep) = change.keep {
            p.keep = keep;
        }
        if let Some(enabled) = change.enabled {
            p.enabled = enabled;
        }
        p.updated_ns = now_ns;
        p.validate()?;
        Ok(p)
    }

    pub fn tz(&self) -> Result<Tz, PolicyError> {
        parse_time_zone(&self.time_zone)
    }

    /// Checks every rule a stored or requested policy must follow.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return bad(format!("unknown policy version {}", self.version));
        }
        if !is_valid_instance_name(&self.name) {
            return bad(invalid_name("policy", &self.name));
        }
        check_times(&self.times)?;
        match &self.days {
            Days::Weekdays(days) => {
                if days.is_empty() {
                    return bad("`weekdays=` needs at least one day");
                }
                if days.windows(2).any(|w| w[0] >= w[1]) {
                    return bad("weekdays must be distinct");
                }
            }
            Days::EveryDays { every, .. } => {
                if !(1..=MAX_EVERY_DAYS).contains(every) {
                    return bad(format!("`every-days={every}`: use 1 to {MAX_EVERY_DAYS}"));
                }
            }
        }
        match self.keep {
            Keep::Days(n) | Keep::Count(n) if !(1..=MAX_KEEP).contains(&n) => {
                return bad(format!("{}: use 1 to {MAX_KEEP}", self.keep));
            }
            _ => {}
        }
        self.tz()?;
        let mut seen = std::collections::BTreeSet::new();
        for b in &self.instances {
            if !is_valid_instance_name(&b.instance) || !seen.insert(&b.instance) {
                return bad(format!("invalid or repeated instance `{}`", b.instance));
            }
        }
        Ok(())
    }

    pub fn decode(key_name: &str, json: &[u8]) -> Result<Policy, PolicyError> {
        let p: Policy = serde_json::from_slice(json)
            .map_err(|e| PolicyError(format!("undecodable policy: {e}")))?;
        if p.name != key_name {
            return bad("policy stored under another name");
        }
        p.validate()?;
        Ok(p)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("policy serializes")
    }

    pub fn binding(&self, instance: &str) -> Option<&Binding> {
        self.instances.iter().find(|b| b.instance == instance)
    }
}

fn anchor_days(spec: DaysSpec, tz: &Tz, now_ns: i64) -> Days {
    match spec {
        DaysSpec::Weekdays(mut days) => {
            days.sort();
            Days::Weekdays(days)
        }
        DaysSpec::EveryDays(every) => Days::EveryDays {
            every,
            anchor: local_date(tz, now_ns),
        },
    }
}

/// The local calendar date of an instant in `tz`.
pub fn local_date(tz: &Tz, ns: i64) -> NaiveDate {
    tz.timestamp_nanos(ns).date_naive()
}

fn check_times(times: &[TimeOfDay]) -> Result<(), PolicyError> {
    if times.is_empty() || times.len() > MAX_TIMES {
        return bad(format!("a policy has 1 to {MAX_TIMES} times of day"));
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    if sorted != times {
        return bad("times of day must be in order");
    }
    let gaps = sorted
        .windows(2)
        .map(|w| (w[0], w[1], w[1].minutes() - w[0].minutes()));
    let wrap = (sorted.len() > 1).then(|| {
        let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
        (last, first, first.minutes() + 24 * 60 - last.minutes())
    });
    for (a, b, gap) in gaps.chain(wrap) {
        if gap < 60 {
            return bad(format!(
                "times {a} and {b} are {gap} minutes apart: times of day must be at least 1 h apart (also across midnight)"
            ));
        }
    }
    Ok(())
}

/// `03:00,15:00` -> sorted times (validated: 1..=24, an hour apart).
pub fn parse_times(text: &str) -> Result<Vec<TimeOfDay>, PolicyError> {
    let mut times = text
        .split(',')
        .map(|t| t.trim().parse())
        .collect::<Result<Vec<TimeOfDay>, _>>()?;
    times.sort();
    check_times(&times)?;
    Ok(times)
}

/// `mon,wed,fri` -> sorted distinct days.
pub fn parse_weekdays(text: &str) -> Result<Vec<Day>, PolicyError> {
    let mut days = text
        .split(',')
        .map(|d| Day::parse(d.trim()))
        .collect::<Result<Vec<Day>, _>>()?;
    days.sort();
    let n = days.len();
    days.dedup();
    if days.len() != n {
        return bad(format!("`weekdays={text}` names a day twice"));
    }
    Ok(days)
}

pub fn parse_time_zone(name: &str) -> Result<Tz, PolicyError> {
    name.parse::<Tz>().map_err(|_| {
        PolicyError(format!(
            "unknown time zone `{name}`: use an IANA name such as UTC, Europe/Berlin or America/New_York"
        ))
    })
}

/// A number in `1..=max` for `key`.
pub fn parse_count(key: &str, text: &str, max: u32) -> Result<u32, PolicyError> {
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => bad(format!(
            "`{key}={text}`: use a whole number from 1 to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(times: &str, days: DaysSpec, keep: Keep) -> PolicyChange {
        PolicyChange {
            times: Some(parse_times(times).unwrap()),
            days: Some(days),
            keep: Some(keep),
            ..PolicyChange::default()
        }
    }

    #[test]
    fn times_parse_and_must_be_an_hour_apart() {
        let t = parse_times("15:00,03:00").unwrap();
        assert_eq!(
            t.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            ["03:00", "15:00"]
        );
        let all: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
        assert_eq!(parse_times(&all.join(",")).unwrap().len(), 24);
        let err = parse_times("03:00,03:30").unwrap_err().0;
        assert!(err.contains("1 h apart"), "{err}");
        let err = parse_times("23:30,00:10").unwrap_err().0;
        assert!(err.contains("across midnight"), "{err}");
        assert!(parse_times("00:00,23:00").is_ok());
        for bad in [
            "24:00", "3:5", "03:60", "", "03:00,", "0300", "-1:00", "03:00:00",
        ] {
            assert!(parse_times(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_times("3:05").unwrap()[0].to_string(), "03:05");
    }

    #[test]
    fn weekdays_zones_and_counts() {
        assert_eq!(
            parse_weekdays("fri,mon,Wed").unwrap(),
            vec![Day::Mon, Day::Wed, Day::Fri]
        );
        assert!(parse_weekdays("mon,mon").unwrap_err().0.contains("twice"));
        assert!(parse_weekdays("monday").is_err());
        assert!(parse_time_zone("Europe/Berlin").is_ok());
        assert!(parse_time_zone("Mars/Olympus")
            .unwrap_err()
            .0
            .contains("IANA"));
        assert_eq!(parse_count("keep-days", "99999", MAX_KEEP), Ok(99_999));
        for bad in ["0", "100000", "-1", "x", ""] {
            assert!(parse_count("keep-days", bad, MAX_KEEP).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_update_roundtrip() {
        let now = 1_795_000_000_000_000_000; // 2026-11-18
        let p = Policy::create(
            "nightly",
            &change("03:00", DaysSpec::EveryDays(2), Keep::Days(7)),
            now,
        )
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.time_zone, "UTC");
        let Days::EveryDays { anchor, .. } = p.days else {
            panic!("every-days")
        };
        assert_eq!(anchor.to_string(), "2026-11-18");
        let json = p.encode();
        assert_eq!(Policy::decode("nightly", &json).unwrap(), p);
        assert!(Policy::decode("other", &json).is_err());
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""times":["03:00"]"#), "{text}");
        assert!(text.contains(r#""keep":{"days":7}"#), "{text}");
        assert!(
            text.contains(r#""every-days":{"every":2,"anchor":"2026-11-18"}"#),
            "{text}"
        );

        // Same period keeps the anchor; a new period starts today.
        let later = now + 3 * 86_400_000_000_000;
        let u = p
            .updated(
                &PolicyChange {
                    days: Some(DaysSpec::EveryDays(2)),
                    keep: Some(Keep::Forever),
                    ..PolicyChange::default()
                },
                later,
            )
            .unwrap();
        assert_eq!(u.days, p.days);
        assert_eq!(u.keep, Keep::Forever);
        let u = p
            .updated(
                &PolicyChange {
                    days: Some(DaysSpec::EveryDays(3)),
                    ..PolicyChange::default()
                },
                later,
            )
            .unwrap();
        assert!(
            matches!(u.days, Days::EveryDays { every: 3, anchor } if anchor.to_string() == "2026-11-21")
        );
    }

    #[test]
    fn invalid_policies_are_refused() {
        let ok = change("03:00", DaysSpec::Weekdays(vec![Day::Mon]), Keep::Count(3));
        assert!(Policy::create("bad name", &ok, 0)
            .unwrap_err()
            .0
            .contains("policy name"));
        assert!(Policy::create(&"x".repeat(256), &ok, 0).is_err());
        assert!(Policy::create(&"x".repeat(255), &ok, 0).is_ok());
        let mut c = ok.clone();
        c.keep = Some(Keep::Days(0));
        assert!(Policy::create("p", &c, 0)
            .unwrap_err()
            .0
            .contains("1 to 99999"));
        let mut c = ok.clone();
        c.days = Some(DaysSpec::EveryDays(31));
        assert!(Policy::create("p", &c, 0)
            .unwrap_err()
            .0
            .contains("every-days"));
        let mut c = ok.clone();
        c.days = Some(DaysSpec::Weekdays(vec![]));
        assert!(Policy::create("p", &c, 0).is_err());
        let mut c = ok.clone();
        c.time_zone = Some("Nowhere/Land".into());
        assert!(Policy::create("p", &c, 0)
            .unwrap_err()
            .0
            .contains("time zone"));
        let mut c = ok;
        c.times = None;
        assert!(Policy::create("p", &c, 0).unwrap_err().0.contains("times="));
    }
}

//! Retention rules, pure: which scheduled points a policy's `keep` still retains, which it
//! lets go, and whether one `keep` retains at least what another does. Manual points are
//! never a policy's to expire, and the last remaining point of an instance always stays.

use std::collections::BTreeSet;

use super::{Keep, Manifest, PointKind};

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Names of the scheduled points `keep` still retains at `now_ns` (`points` oldest first).
pub fn retained(keep: Keep, points: &[&Manifest], now_ns: i64) -> BTreeSet<String> {
    let scheduled = points.iter().filter(|p| p.kind == PointKind::Scheduled);
    match keep {
        Keep::Forever => scheduled.map(|p| p.name.clone()).collect(),
        Keep::Days(n) => scheduled
            .filter(|p| now_ns - p.time_ns < i64::from(n) * DAY_NS)
            .map(|p| p.name.clone())
            .collect(),
        Keep::Count(n) => {
            let all: Vec<&&Manifest> = scheduled.collect();
            all[all.len().saturating_sub(n as usize)..]
                .iter()
                .map(|p| p.name.clone())
                .collect()
        }
    }
}

/// The scheduled points retention removes now: those `keep` no longer retains, except
/// those in `in_use` and never every point of the instance (`points` oldest first).
pub fn expired(
    keep: Keep,
    points: &[&Manifest],
    now_ns: i64,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    let keep_names = retained(keep, points, now_ns);
    let mut out: Vec<String> = points
        .iter()
        .filter(|p| p.kind == PointKind::Scheduled)
        .map(|p| p.name.clone())
        .filter(|n| !keep_names.contains(n) && !in_use.contains(n))
        .collect();
    let remaining = points.iter().filter(|p| !out.contains(&p.name)).count();
    if remaining == 0 {
        out.pop(); // the newest stays
    }
    out
}

/// Whether going from retention `old` to `new` keeps every point `old` would keep.
pub fn keeps_at_least(old: Keep, new: Keep) -> bool {
    match (old, new) {
        (_, Keep::Forever) => true,
        (Keep::Days(a), Keep::Days(b)) | (Keep::Count(a), Keep::Count(b)) => b >= a,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::point_name;
    use crate::repo::BlobId;

    fn point(day: i64, kind: PointKind) -> Manifest {
        let time_ns = day * DAY_NS;
        Manifest {
            name: point_name(time_ns, kind, None),
            kind,
            time_ns,
            root: BlobId([0; 32]),
            ..crate::model::manifest::example(None)
        }
    }

    fn days(names: &[String]) -> Vec<i64> {
        names
            .iter()
            .map(|n| {
                chrono::NaiveDate::parse_from_str(&n[..10], "%Y-%m-%d")
                    .unwrap()
                    .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                    .num_days()
            })
            .collect()
    }

    #[test]
    fn days_count_and_forever() {
        let pts: Vec<_> = (1..=10)
            .map(|d| {
                point(
                    d,
                    if d == 2 {
                        PointKind::Manual
                    } else {
                        PointKind::Scheduled
                    },
                )
            })
            .collect();
        let pts: Vec<&Manifest> = pts.iter().collect();
        let none = BTreeSet::new();
        let now = 10 * DAY_NS + 1;
        // Younger than 3 days: days 8, 9, 10 stay.
        assert_eq!(
            days(&expired(Keep::Days(3), &pts, now, &none)),
            [1, 3, 4, 5, 6, 7]
        );
        // The newest 4 scheduled points stay; the manual one is not counted nor removed.
        assert_eq!(
            days(&expired(Keep::Count(4), &pts, now, &none)),
            [1, 3, 4, 5, 6]
        );
        assert!(expired(Keep::Forever, &pts, now, &none).is_empty());
        let reading: BTreeSet<String> = [pts[0].name.clone()].into();
        assert_eq!(
            days(&expired(Keep::Count(4), &pts, now, &reading)),
            [3, 4, 5, 6]
        );
    }

    #[test]
    fn the_last_point_stays() {
        let pts: Vec<_> = (1..=3).map(|d| point(d, PointKind::Scheduled)).collect();
        let pts: Vec<&Manifest> = pts.iter().collect();
        let gone = expired(Keep::Days(1), &pts, 100 * DAY_NS, &BTreeSet::new());
        assert_eq!(days(&gone), [1, 2]);
        let one = point(1, PointKind::Scheduled);
        let one = [&one];
        assert!(expired(Keep::Days(1), &one, 100 * DAY_NS, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn loosening_is_detected() {
        assert!(keeps_at_least(Keep::Days(7), Keep::Days(8)));
        assert!(!keeps_at_least(Keep::Days(7), Keep::Days(6)));
        assert!(keeps_at_least(Keep::Count(3), Keep::Forever));
        assert!(!keeps_at_least(Keep::Forever, Keep::Days(99_999)));
        assert!(!keeps_at_least(Keep::Days(7), Keep::Count(1000)));
    }
}

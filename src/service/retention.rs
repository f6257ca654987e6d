//! Retention: which scheduled points a policy still keeps, which it lets go, and the
//! write-once check that the forget path consults. Manual points are never a policy's to
//! expire, the last remaining point of an instance always stays, and a point that a
//! queued or running restore reads is left for a later run.

use std::collections::BTreeSet;

use crate::catalog::PointRecord;
use crate::engine::{self, CancelToken, ForgetRequest, Progress};
use crate::model::{Keep, PointKind};

use super::Service;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Names of the scheduled points `keep` still retains at `now_ns` (`points` oldest first).
pub fn retained(keep: Keep, points: &[PointRecord], now_ns: i64) -> BTreeSet<String> {
    let scheduled = points
        .iter()
        .filter(|p| p.manifest.kind == PointKind::Scheduled);
    match keep {
        Keep::Forever => scheduled.map(|p| p.manifest.name.clone()).collect(),
        Keep::Days(n) => scheduled
            .filter(|p| now_ns - p.manifest.time_ns < i64::from(n) * DAY_NS)
            .map(|p| p.manifest.name.clone())
            .collect(),
        Keep::Count(n) => {
            let all: Vec<&PointRecord> = scheduled.collect();
            all[all.len().saturating_sub(n as usize)..]
                .iter()
                .map(|p| p.manifest.name.clone())
                .collect()
        }
    }
}

/// The scheduled points retention removes now: those `keep` no longer retains, except
/// those in `in_use` and never every point of the instance (`points` oldest first).
pub fn expired(
    keep: Keep,
    points: &[PointRecord],
    now_ns: i64,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    let keep_names = retained(keep, points, now_ns);
    let mut out: Vec<String> = points
        .iter()
        .filter(|p| p.manifest.kind == PointKind::Scheduled)
        .map(|p| p.manifest.name.clone())
        .filter(|n| !keep_names.contains(n) && !in_use.contains(n))
        .collect();
    let remaining = points
        .iter()
        .filter(|p| !out.contains(&p.manifest.name))
        .count();
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

impl Service {
    /// Points that queued or running restores of `instance` will read.
    fn points_in_use(&self, instance: &str) -> BTreeSet<String> {
        let latest = crate::catalog::latest_of(self.points(instance)).map(|p| p.manifest.name);
        self.lock()
            .live
            .values()
            .filter(|j| j.kind == "restore" && j.instance.as_deref() == Some(instance))
            .filter_map(|j| j.request.get("point")?.as_str().map(str::to_string))
            .filter_map(|p| {
                if p == "latest" {
                    latest.clone()
                } else {
                    Some(p)
                }
            })
            .collect()
    }

    /// Applies the retention of the policy `instance` is bound to; returns the names of
    /// the points it removed.
    pub(super) fn expire_points(
        &self,
        instance: &str,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> engine::Result<Vec<String>> {
        let Some(policy) = self.bound_policy(instance) else {
            return Ok(Vec::new());
        };
        let points = self.points(instance);
        let names = expired(
            policy.keep,
            &points,
            self.now_ns(),
            &self.points_in_use(instance),
        );
        if names.is_empty() {
            return Ok(names);
        }
        progress.phase("expiring points");
        let req = ForgetRequest {
            instance: instance.to_string(),
            points: names,
            allow_manual: false,
        };
        let out = engine::forget(self.repo(), self.catalog(), &req, progress, cancel)?;
        self.lock().generation += 1;
        Ok(out.removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::{point_name, MANIFEST_VERSION};
    use crate::model::{Layout, Manifest, ManifestId, PointStats};
    use crate::repo::BlobId;

    fn point(day: i64, kind: PointKind) -> PointRecord {
        let time_ns = day * DAY_NS;
        PointRecord {
            id: ManifestId([day as u8; 32]),
            manifest: Manifest {
                version: MANIFEST_VERSION,
                instance: "db".into(),
                name: point_name(time_ns, kind, None),
                kind,
                time_ns,
                parent: None,
                root: BlobId([0; 32]),
                layout: Layout::Single,
                paths: vec!["/srv".into()],
                host: "h".into(),
                stats: PointStats::default(),
                excludes: Vec::new(),
                root_meta: None,
            },
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
        let reading: BTreeSet<String> = [pts[0].manifest.name.clone()].into();
        assert_eq!(
            days(&expired(Keep::Count(4), &pts, now, &reading)),
            [3, 4, 5, 6]
        );
    }

    #[test]
    fn the_last_point_stays() {
        let pts: Vec<_> = (1..=3).map(|d| point(d, PointKind::Scheduled)).collect();
        let gone = expired(Keep::Days(1), &pts, 100 * DAY_NS, &BTreeSet::new());
        assert_eq!(days(&gone), [1, 2]);
        let one = [point(1, PointKind::Scheduled)];
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

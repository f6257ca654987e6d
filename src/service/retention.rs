//! Retention in the daemon: after a scheduled point, the points the bound policy no
//! longer keeps ([`crate::model::retention`]) are forgotten, except a point that a queued
//! or running restore reads, which is left for a later run.

use std::collections::BTreeSet;

use crate::engine::{self, CancelToken, ForgetRequest, Progress};
use crate::model::retention::expired;
use crate::model::Manifest;

use super::daemon::Service;
use super::jobs::JobKind;

impl Service {
    /// Points that queued or running restores of `instance` will read.
    fn points_in_use(&self, instance: &str) -> BTreeSet<String> {
        let latest = crate::catalog::latest_of(self.points(instance)).map(|p| p.manifest.name);
        self.lock()
            .live
            .values()
            .filter(|j| j.kind == JobKind::Restore && j.instance.as_deref() == Some(instance))
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
        let manifests: Vec<&Manifest> = points.iter().map(|p| &p.manifest).collect();
        let names = expired(
            policy.keep,
            &manifests,
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

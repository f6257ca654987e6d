//! The restorable range of an instance as the control plane tells it (`range
//! instance=NAME` in `ctl/log`, `cairn points NAME`): one JSON object, from the engine's
//! `restorable_range` and this daemon's last archive pass of the instance.

use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::engine::logs::{format_pitr_time, restorable_range, RestorableRange};

use super::daemon::Service;
use super::grammar::ControlError;

/// `{"earliest": T, "latest": T, "gaps": [{"after": T|null, "before": T|null,
/// "missing_records": [first, end)}]}`, or `null` without a point or logs.
pub fn range_json(range: Option<&RestorableRange>) -> Value {
    let Some(r) = range else {
        return Value::Null;
    };
    let gaps: Vec<Value> = r
        .gaps
        .iter()
        .map(|g| {
            json!({
                "after": g.after_ns.map(format_pitr_time),
                "before": g.before_ns.map(format_pitr_time),
                "missing_records": [g.missing.start, g.missing.end],
            })
        })
        .collect();
    json!({
        "earliest": format_pitr_time(r.earliest_ns),
        "latest": format_pitr_time(r.latest_second_ns),
        "gaps": gaps,
    })
}

/// The restorable range of `instance` in `catalog`, as [`range_json`] writes it.
pub fn restorable(
    catalog: &Catalog,
    instance: &str,
    last_pass_ns: Option<i64>,
) -> crate::engine::Result<Value> {
    let range = restorable_range(catalog, instance, last_pass_ns)?;
    Ok(range_json(range.as_ref()))
}

impl Service {
    /// `{"instance": NAME, "restorable": ...}` as one line (the reply of `range`).
    pub(super) fn restorable_json(&self, instance: &str) -> Result<String, ControlError> {
        let range = restorable(
            &self.inner.catalog,
            instance,
            self.log_last_pass_ns(instance),
        )
        .map_err(super::log_archiver::engine_refusal)?;
        Ok(format!(
            "{}\n",
            json!({"instance": instance, "restorable": range})
        ))
    }
}

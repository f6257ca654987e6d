//! The restorable range `cairn points INSTANCE` shows: the seconds a restore `--at` can
//! reach (from the first point to the last archived second, and the gaps in the logs),
//! asked of the daemon (`range instance=NAME` in `ctl/log`) or computed from the catalog
//! with `--repo`. `null` when the instance has no point or no archived logs.

use anyhow::Result;
use serde_json::Value;

use cairn::catalog::Catalog;

use crate::client::{Client, Request};

/// The range through a mount (`null` when the daemon does not tell one).
pub fn through_mount(client: &Client, instance: &str) -> Value {
    let req = Request::verb("range").kv("instance", instance);
    client
        .request("log", &req)
        .ok()
        .and_then(|reply| serde_json::from_str::<Value>(&reply).ok())
        .map_or(Value::Null, |v| v["restorable"].clone())
}

/// The range from this machine's catalog.
pub fn direct(catalog: &Catalog, instance: &str) -> Result<Value> {
    Ok(cairn::service::log_range::restorable(
        catalog, instance, None,
    )?)
}

/// `restorable: EARLIEST .. LATEST (gaps: none)`, or each gap; nothing for `null`.
pub fn print(range: &Value) {
    if range.is_null() {
        return;
    }
    let gaps: Vec<String> = range["gaps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| {
                    let side = |k: &str| g[k].as_str().unwrap_or("the end").to_string();
                    format!("after {} before {}", side("after"), side("before"))
                })
                .collect()
        })
        .unwrap_or_default();
    let gaps = if gaps.is_empty() {
        "none".to_string()
    } else {
        gaps.join(", ")
    };
    println!(
        "restorable: {} .. {} (gaps: {gaps})",
        range["earliest"].as_str().unwrap_or("?"),
        range["latest"].as_str().unwrap_or("?")
    );
}

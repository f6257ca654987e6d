//! What a finished job produced, printed as the direct commands print it: the point and
//! its figures, the restore counts, the verify report.

use std::time::Duration;

use cairn::repo::CorrectedPack;
use cairn::service::{JobKind, JobStatus};
use serde_json::Value;

use crate::human_units;

/// Seconds between a status's `started` and `finished`.
fn duration(status: &JobStatus) -> Option<Duration> {
    let t = |v: &Option<String>| chrono::DateTime::parse_from_rfc3339(v.as_deref()?).ok();
    let d = t(&status.finished)? - t(&status.started)?;
    d.to_std().ok()
}

fn print_warnings(result: &Value) {
    for w in result["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("warning: {w}");
        }
    }
}

/// Names the damaged files a `restore --skip-damaged` left out.
pub fn print_skipped<'a>(paths: impl Iterator<Item = &'a str>) {
    let paths: Vec<&str> = paths.collect();
    for p in &paths {
        println!("SKIPPED    {p} (damaged)");
    }
    if !paths.is_empty() {
        println!(
            "skipped    {} damaged file(s): everything else was restored (exit code 3)",
            paths.len()
        );
    }
}

/// Names the packs a restore or a verify read corrected from their parity.
pub fn print_corrected(packs: &[CorrectedPack]) {
    for c in packs {
        println!("CORRECTED  {}", c.describe());
    }
}

/// The `corrected` list of a job's result.
fn corrected_of(result: &Value) -> Vec<CorrectedPack> {
    serde_json::from_value(result["corrected"].clone()).unwrap_or_default()
}

/// Prints what a succeeded job produced, as the direct commands do.
pub fn print_result(status: &JobStatus) {
    let r = status.result.as_ref().unwrap_or(&Value::Null);
    let instance = status.instance.as_deref().unwrap_or("");
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let elapsed = duration(status);
    let tail = |bytes: u64| {
        if let Some(d) = elapsed {
            println!("duration   {}", human_units::duration(d));
            println!(
                "throughput {}/s",
                human_units::bytes(human_units::bytes_per_sec(bytes, d))
            );
        }
    };
    print_warnings(r);
    match status.kind {
        JobKind::Snapshot => {
            let s = &r["stats"];
            println!(
                "point      {instance}/{}",
                r["point"].as_str().unwrap_or("?")
            );
            println!(
                "files      {} ({} read, the rest unchanged), {} directories",
                u(&s["files"]),
                u(&s["files_read"]),
                u(&s["dirs"])
            );
            println!("bytes      {}", human_units::bytes(u(&s["bytes"])));
            println!("new        {}", human_units::bytes(u(&s["new_bytes"])));
            println!("stored     {}", human_units::bytes(u(&s["stored_bytes"])));
            tail(u(&s["bytes"]));
        }
        JobKind::Restore => {
            let req = &status.request;
            println!(
                "restored   {instance}/{}",
                r["point"].as_str().unwrap_or("?")
            );
            match req["target"].as_str() {
                Some(t) => println!("into       {t}"),
                None => println!("into       the original paths"),
            }
            println!(
                "files      {} ({} written, {} removed)",
                u(&r["files"]),
                u(&r["written"]),
                u(&r["removed"])
            );
            println!("bytes      {}", human_units::bytes(u(&r["bytes"])));
            if let Some(s) = r["safety_point"].as_str() {
                println!(
                    "safety     {instance}/{s} holds what was there before (restore it to undo)"
                );
            }
            print_skipped(
                r["skipped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
            print_corrected(&corrected_of(r));
            tail(u(&r["bytes"]));
        }
        JobKind::Verify => {
            let read_data = status.request["read_data"].as_bool().unwrap_or(false);
            println!(
                "checked    {} points, {} trees, {} blobs, {} packs{}",
                u(&r["points_checked"]),
                u(&r["trees_checked"]),
                u(&r["blobs_checked"]),
                u(&r["packs_checked"]),
                if read_data {
                    format!(", read {}", human_units::bytes(u(&r["bytes_read"])))
                } else {
                    " (structure only; --read-data also checks the data)".to_string()
                }
            );
            for h in r["healed"].as_array().into_iter().flatten() {
                println!("HEALED     {}", h.as_str().unwrap_or_default());
            }
            print_corrected(&corrected_of(r));
            println!("ok: no damage found");
        }
        JobKind::Repair => super::repair_report::print_outcome(r),
        _ => println!("{}", serde_json::to_string_pretty(r).unwrap_or_default()),
    }
}

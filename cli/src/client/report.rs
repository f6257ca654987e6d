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
        JobKind::Copy => {
            let read_data = status.request["read_data"].as_bool().unwrap_or(false);
            print_copy(r, read_data);
        }
        _ => println!("{}", serde_json::to_string_pretty(r).unwrap_or_default()),
    }
}

/// Prints what a copy did (a direct `copy`'s outcome, or a copy job's result): each point
/// copied, the counts, and the verify of the target.
pub fn print_copy(r: &Value, read_data: bool) {
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let rechunked = r["rechunked"].as_bool().unwrap_or(false);
    if rechunked {
        println!("re-chunking: the target has other keys or chunker parameters");
    }
    for c in r["copied"].as_array().into_iter().flatten() {
        let (instance, point, name) = (
            c["instance"].as_str().unwrap_or("?"),
            c["point"].as_str().unwrap_or("?"),
            c["name"].as_str().unwrap_or("?"),
        );
        if point == name {
            println!("copied     {instance}/{point}");
        } else {
            println!("copied     {instance}/{point} as {instance}/{name}");
        }
    }
    println!(
        "points     {} copied, {} skipped (already there)",
        u(&r["points_copied"]),
        u(&r["points_skipped"])
    );
    println!(
        "blobs      {} copied, {} uploaded ({} bytes), re-chunked: {}",
        u(&r["blobs_copied"]),
        human_units::bytes(u(&r["bytes_uploaded"])),
        u(&r["bytes_uploaded"]),
        if rechunked { "yes" } else { "no" }
    );
    if u(&r["instances_defined"]) > 0 {
        println!(
            "instances  {} definition(s) copied",
            u(&r["instances_defined"])
        );
    }
    if u(&r["log_records_copied"]) > 0 {
        println!(
            "logs       {} log record(s) copied",
            u(&r["log_records_copied"])
        );
    }
    let v = &r["verify"];
    if v.is_null() {
        println!("verify     not run (--no-verify)");
        return;
    }
    let damaged = v["damaged"].as_array().map_or(0, Vec::len);
    let problems = v["problems"].as_array().map_or(0, Vec::len);
    for d in v["damaged"].as_array().into_iter().flatten() {
        println!(
            "DAMAGED    {}/{}",
            d["instance"].as_str().unwrap_or("?"),
            d["point"].as_str().unwrap_or("?")
        );
    }
    for p in v["problems"].as_array().into_iter().flatten() {
        println!("PROBLEM    {}", p.as_str().unwrap_or_default());
    }
    println!(
        "verify     {} points, {} trees, {} blobs, {} packs{}: {}",
        u(&v["points_checked"]),
        u(&v["trees_checked"]),
        u(&v["blobs_checked"]),
        u(&v["packs_checked"]),
        if read_data {
            " with their data"
        } else {
            " (structure)"
        },
        if damaged + problems == 0 {
            "ok".to_string()
        } else {
            format!("{damaged} damaged point(s), {problems} problem(s)")
        }
    );
}

//! What a repair did, printed from its outcome's JSON (the engine's, or a job's result):
//! the direct command and a followed `ctl/repair` job print it alike, and exit 1 while
//! points remain damaged.

use serde_json::Value;

use crate::commands::Status;
use crate::human_units;

/// Exit 1 when points remain damaged.
pub fn status_of(outcome: &Value) -> Status {
    match outcome["damaged_points"].as_array() {
        Some(points) if !points.is_empty() => Status::ProblemFound,
        _ => Status::Success,
    }
}

/// Prints a repair's outcome (its JSON, as the engine and the job give it).
pub fn print_outcome(o: &Value) {
    let u = |k: &str| o[k].as_u64().unwrap_or(0);
    let would = if o["dry_run"].as_bool().unwrap_or(false) {
        "would be "
    } else {
        ""
    };
    println!("checked    {} packs", u("packs_checked"));
    println!(
        "rebuilt    {} index segment(s) {would}written for {} pack(s) no segment listed",
        u("segments_rebuilt"),
        u("packs_reindexed")
    );
    for p in o["damaged_packs"].as_array().into_iter().flatten() {
        println!(
            "DAMAGED    {}: {} ({} blob(s) readable, {} not)",
            p["pack"].as_str().unwrap_or("?"),
            p["why"].as_str().unwrap_or(""),
            p["blobs_readable"].as_u64().unwrap_or(0),
            p["blobs_unreadable"].as_u64().unwrap_or(0)
        );
    }
    println!(
        "salvaged   {} pack(s) {would}salvaged: {} blob(s) {would}moved ({})",
        u("packs_salvaged"),
        u("blobs_moved"),
        human_units::bytes(u("bytes_moved"))
    );
    println!(
        "removed    {} damaged pack(s) {would}removed, {} missing; {} index segment(s) {would}rewritten",
        u("packs_removed"),
        u("packs_missing"),
        u("segments_rewritten")
    );
    println!(
        "lost       {} blob(s) have no readable copy",
        u("blobs_lost")
    );
    for p in o["damaged_points"].as_array().into_iter().flatten() {
        let new = if p["newly_marked"].as_bool().unwrap_or(false) {
            ""
        } else {
            " (already marked)"
        };
        println!(
            "DAMAGED    {}/{}{new}",
            p["instance"].as_str().unwrap_or("?"),
            p["point"].as_str().unwrap_or("?")
        );
        for path in p["paths"].as_array().into_iter().flatten() {
            println!("  path     {}", path.as_str().unwrap_or(""));
        }
    }
    if u("marks_cleared") > 0 {
        println!(
            "healed     {} damage mark(s) {would}cleared (their points read whole again)",
            u("marks_cleared")
        );
    }
    match status_of(o) {
        Status::Success => println!("ok: the repository is whole"),
        _ => println!(
            "damaged    {} point(s) {would}marked damaged ({} newly): `cairn points --kind damaged` lists them",
            o["damaged_points"].as_array().map_or(0, Vec::len),
            u("points_marked")
        ),
    }
}

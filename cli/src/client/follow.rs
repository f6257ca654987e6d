//! Following a job a mount runs: start it, poll its status, draw its progress, cancel it
//! on Ctrl-C, and end with the exit status its end calls for.

use std::time::{Duration, Instant};

use anyhow::Result;
use cairn::service::{JobKind, JobState, JobStatus};
use serde_json::json;

use super::control::Client;
use super::report::print_result;
use super::request::Request;
use super::target::JobArgs;
use crate::commands::{print_json, Invocation, Status};
use crate::failure::coded;
use crate::progress::TermProgress;

/// How often a followed job's status is read.
const POLL: Duration = Duration::from_millis(200);

/// Starts a job through `ctl/<file>` and, unless `--no-wait`, follows it to its end:
/// exit status 0 when it succeeded, 1 when it failed, was cancelled or interrupted, 130
/// when Ctrl-C gave up on it (after asking the daemon to cancel it).
pub fn run_job(
    inv: &Invocation<'_>,
    client: &Client,
    file: &str,
    req: &Request,
    opts: JobArgs,
) -> Result<Status> {
    let id = client.start_job(file, req)?;
    if opts.no_wait {
        if opts.json {
            print_json(&json!({ "job": id }))?;
        } else {
            println!("{id}");
        }
        return Ok(Status::Success);
    }
    finish_job(inv, client, id, opts.json)
}

/// Follows job `id` to its end and reports it (see [`run_job`]).
pub fn finish_job(inv: &Invocation<'_>, client: &Client, id: u64, json: bool) -> Result<Status> {
    let status = follow(inv, client, id)?;
    if json {
        print_json(&serde_json::to_value(&status)?)?;
    } else if status.state == JobState::Succeeded {
        print_result(&status);
    }
    if status.state == JobState::Succeeded && status.kind == JobKind::Repair {
        let outcome = status.result.clone().unwrap_or_default();
        return Ok(super::repair_report::status_of(&outcome));
    }
    if status.state == JobState::Succeeded {
        let skipped = status.result.as_ref().and_then(|r| r["skipped"].as_array());
        return Ok(if skipped.is_some_and(|s| !s.is_empty()) {
            Status::SkippedDamaged
        } else {
            Status::Success
        });
    }
    let error = status.error.as_deref().unwrap_or("no cause recorded");
    Err(coded(
        1,
        format!("job {id} ({}) {}: {error}", describe(&status), status.state),
        Some(format!(
            "`cairn jobs {id}` shows its status; {} has its log",
            client.job_dir(id).join("log").display()
        )),
    ))
}

/// `snapshot of db`, `verify of everything`.
fn describe(status: &JobStatus) -> String {
    let kind = status.kind;
    match &status.instance {
        Some(i) => format!("{kind} of {i}"),
        None => format!("{kind} of all instances"),
    }
}

fn noun(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Verify | JobKind::Prune => "objects",
        JobKind::Repair => "packs",
        JobKind::Forget | JobKind::Copy => "points",
        _ => "files",
    }
}

/// Polls the job's status every 200 ms until it ends, drawing progress on a terminal.
/// Ctrl-C writes `job=ID` into `ctl/cancel`, waits a little for the job to stop and
/// ends with exit code 130.
pub fn follow(inv: &Invocation<'_>, client: &Client, id: u64) -> Result<JobStatus> {
    let first = client.status(id)?;
    let progress = TermProgress::new("queued", noun(first.kind), false);
    let armed = inv
        .interrupts
        .arm_saying("cancelling the job (interrupt again to stop waiting)");
    let mut status = first;
    loop {
        if status.state.is_finished() {
            progress.finish();
            return Ok(status);
        }
        if inv.interrupts.token().is_cancelled() {
            break;
        }
        show(&progress, &status);
        pause_unless_cancelled(inv.interrupts.token(), POLL);
        if inv.interrupts.token().is_cancelled() {
            break;
        }
        status = client.status(id)?;
    }
    progress.finish();
    // Ctrl-C: ask the daemon to cancel, then give it a moment to stop.
    let cancel = client.request("cancel", &Request::new().kv("job", id.to_string()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended = None;
    while Instant::now() < deadline {
        match client.status(id) {
            Ok(s) if s.state.is_finished() => {
                ended = Some(s.state);
                break;
            }
            Ok(_) => std::thread::sleep(POLL),
            Err(_) => break,
        }
    }
    drop(armed);
    let message = match (cancel, ended) {
        (Err(e), None) => format!("interrupted; could not cancel job {id}: {e}"),
        (Ok(_), None) => format!("interrupted; asked job {id} to cancel, and it is still stopping"),
        (_, Some(JobState::Cancelled)) => format!("interrupted; job {id} was cancelled"),
        (_, Some(other)) => format!("interrupted; job {id} ended anyway ({other})"),
    };
    Err(coded(
        130,
        message,
        Some(format!("`cairn jobs {id}` shows its state")),
    ))
}

/// Sleeps `total`, in short steps, so Ctrl-C is acted on at once rather than at the next
/// poll (by which time a short job may have finished).
fn pause_unless_cancelled(token: &cairn::engine::CancelToken, total: Duration) {
    const STEP: Duration = Duration::from_millis(10);
    let end = Instant::now() + total;
    while !token.is_cancelled() {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep(STEP.min(end - now));
    }
}

fn show(progress: &TermProgress, status: &JobStatus) {
    use cairn::engine::Progress;
    let p = status.progress();
    if status.state == JobState::Queued {
        progress.phase("queued (waiting for the instance's earlier jobs)");
    } else {
        progress.phase(
            p.phase
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("running"),
        );
    }
    if p.total_files.is_some() || p.total_bytes.is_some() {
        progress.set_total(p.total_files.unwrap_or(0), p.total_bytes.unwrap_or(0));
    }
    progress.set_counts(p.files, p.bytes);
}

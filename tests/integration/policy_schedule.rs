//! The scheduler, driven through the library on a manual clock: weeks of schedule in
//! milliseconds, with real backups into a real repository and catalog.

use std::time::Duration;

use cairn::service::Service;

use crate::support::fixture::noise;
use crate::support::repos::second_machine;
use crate::support::schedule::{ns, Rig};

const HALF_HOUR: Duration = Duration::from_secs(1800);

fn state_of(job: &serde_json::Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn trigger_of(job: &serde_json::Value) -> &str {
    job["request"]["schedule"]["trigger"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn weekly_policy_takes_one_point_per_slot() {
    // 2026-11-22 is a Sunday.
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok(
        "policy",
        "create name=nightly times=03:00,15:00 weekdays=mon,wed,fri keep=forever",
    );
    rig.ok("policy", "bind name=nightly instance=db");
    rig.run_until("2026-11-29T00:00:00Z", HALF_HOUR);
    assert_eq!(
        rig.points("db"),
        [
            "2026-11-23T030000Z-auto",
            "2026-11-23T150000Z-auto",
            "2026-11-25T030000Z-auto",
            "2026-11-25T150000Z-auto",
            "2026-11-27T030000Z-auto",
            "2026-11-27T150000Z-auto",
        ]
    );
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 6);
    for j in &jobs {
        assert_eq!(state_of(j), "succeeded", "{j}");
        assert_eq!(trigger_of(j), "slot", "{j}");
        assert_eq!(j["request"]["schedule"]["policy"], "nightly");
    }
    for p in rig.service.points("db") {
        assert_eq!(p.manifest.kind, cairn::model::PointKind::Scheduled);
    }
}

#[test]
fn every_n_days_several_times_a_day_with_count_retention() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let manual = rig.ok("snapshot", "instance=db name=before-policy");
    rig.service.wait_idle();
    assert!(manual.starts_with("job="), "{manual}");
    rig.ok(
        "policy",
        "create name=twice times=06:00,18:00 every-days=2 keep-count=3",
    );
    rig.ok("policy", "bind name=twice instance=db");
    rig.run_until("2026-11-29T00:00:00Z", HALF_HOUR);
    let points = rig.points("db");
    let scheduled: Vec<&String> = points.iter().filter(|p| p.ends_with("-auto")).collect();
    // Slots on the 22nd, 24th, 26th and 28th; the newest three stay.
    assert_eq!(
        scheduled,
        [
            "2026-11-26T180000Z-auto",
            "2026-11-28T060000Z-auto",
            "2026-11-28T180000Z-auto"
        ]
    );
    assert!(
        points.iter().any(|p| p.ends_with("-before-policy")),
        "the manual point stays: {points:?}"
    );
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 9, "one manual and eight scheduled jobs");
    let last = jobs.last().unwrap();
    assert_eq!(
        last["result"]["expired"],
        serde_json::json!(["2026-11-26T060000Z-auto"])
    );
    // Every point retention forgot is an event of the job that forgot it.
    let deleted = rig.events("point-deleted");
    let names: Vec<&str> = deleted
        .iter()
        .map(|e| e["point"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        5,
        "eight scheduled points, three kept: {names:?}"
    );
    assert_eq!(names.last(), Some(&"2026-11-26T060000Z-auto"));
    assert!(deleted
        .iter()
        .all(|e| e["outcome"]["by"] == "retention" && e["instance"] == "db" && e["uid"].is_null()));
    assert_eq!(deleted.last().unwrap()["job"], last["id"]);
}

#[test]
fn retention_by_days_expires_only_old_scheduled_points() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok("snapshot", "instance=db name=keep-me");
    rig.service.wait_idle();
    rig.ok(
        "policy",
        "create name=daily times=03:00 every-days=1 keep-days=2",
    );
    rig.ok("policy", "bind name=daily instance=db");
    rig.run_until("2026-11-28T04:00:00Z", HALF_HOUR);
    let points = rig.points("db");
    let scheduled: Vec<&String> = points.iter().filter(|p| p.ends_with("-auto")).collect();
    // At 2026-11-28T03:00 the point of the 26th is two days old: expired.
    assert_eq!(
        scheduled,
        ["2026-11-27T030000Z-auto", "2026-11-28T030000Z-auto"]
    );
    assert!(points.iter().any(|p| p.ends_with("-keep-me")), "{points:?}");
    let last = rig.jobs().pop().unwrap();
    assert_eq!(
        last["result"]["expired"],
        serde_json::json!(["2026-11-26T030000Z-auto"])
    );
}

#[test]
fn failed_slots_are_retried_at_most_three_times_a_day_and_kept_as_failed_jobs() {
    let rig = Rig::new("2026-11-21T23:30:00Z");
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    rig.ok(
        "policy",
        &format!(
            "create name=hourly times={} every-days=1 keep=forever",
            hours.join(",")
        ),
    );
    rig.ok("policy", "bind name=hourly instance=db");
    std::fs::remove_dir_all(&rig.src).unwrap();

    rig.run_until("2026-11-22T23:30:00Z", HALF_HOUR);
    let jobs = rig.jobs();
    let triggers: Vec<&str> = jobs.iter().map(trigger_of).collect();
    assert_eq!(triggers, ["slot", "retry", "retry", "retry"]);
    for j in &jobs {
        assert_eq!(state_of(j), "failed", "{j}");
        let error = j["error"].as_str().unwrap();
        assert!(error.contains("src"), "the cause names the source: {error}");
    }
    assert_eq!(
        jobs.iter()
            .map(|j| j["request"]["schedule"]["slot"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "2026-11-22T00:00:00Z",
            "2026-11-22T01:00:00Z",
            "2026-11-22T02:00:00Z",
            "2026-11-22T03:00:00Z"
        ]
    );
    assert_eq!(rig.events("policy-slot-skipped").len(), 20);

    // Each later day: three retries (00:00, 01:00, 02:00). 4 + 3 + 3 = 10 kept; the
    // 11th and later push the oldest out.
    rig.run_until("2026-11-24T23:30:00Z", HALF_HOUR);
    assert_eq!(rig.jobs().len(), 10);
    rig.run_until("2026-11-25T23:30:00Z", HALF_HOUR);
    let jobs = rig.jobs();
    assert_eq!(
        jobs.len(),
        10,
        "only the last 10 failed scheduled jobs stay"
    );
    assert_eq!(
        jobs[0]["request"]["schedule"]["slot"],
        "2026-11-22T03:00:00Z"
    );
    assert_eq!(
        jobs[9]["request"]["schedule"]["slot"],
        "2026-11-25T02:00:00Z"
    );
    assert!(rig.points("db").is_empty());

    // The source is back: the next slot (a retry) succeeds.
    std::fs::create_dir_all(&rig.src).unwrap();
    std::fs::write(rig.src.join("data.txt"), b"back\n").unwrap();
    rig.run_until("2026-11-26T00:30:00Z", HALF_HOUR);
    let last = rig.jobs().pop().unwrap();
    assert_eq!(state_of(&last), "succeeded", "{last}");
    assert_eq!(trigger_of(&last), "retry");
    assert_eq!(rig.points("db"), ["2026-11-26T000000Z-auto"]);

    // Failed jobs are kept for 30 days.
    rig.ok("policy", "update name=hourly times=03:00 keep-count=1");
    rig.run_until("2026-12-27T04:00:00Z", Duration::from_secs(12 * 3600));
    let jobs = rig.jobs();
    assert!(
        jobs.iter().all(|j| state_of(j) == "succeeded"),
        "failed jobs older than 30 days are gone: {:?}",
        jobs.iter().map(state_of).collect::<Vec<_>>()
    );
    assert_eq!(rig.points("db"), ["2026-12-27T030000Z-auto"]);
}

#[test]
fn a_slot_that_finds_the_instance_busy_is_a_failed_job_retried_later() {
    let rig = Rig::new("2026-11-22T02:00:00Z");
    // Enough data that the first run is still going when the next slot comes.
    std::fs::write(rig.src.join("big.bin"), noise(7, 48 << 20)).unwrap();
    rig.ok(
        "policy",
        "create name=p times=03:00,04:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=p instance=db");
    rig.clock.set(ns("2026-11-22T03:00:00Z"));
    rig.service.tick_scheduler();
    rig.clock.set(ns("2026-11-22T04:00:00Z"));
    rig.service.tick_scheduler();
    rig.service.wait_idle();
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 2);
    assert_eq!(state_of(&jobs[0]), "succeeded");
    assert_eq!(state_of(&jobs[1]), "failed");
    let error = jobs[1]["error"].as_str().unwrap();
    assert!(error.contains("busy"), "{error}");
    assert!(error.contains(&format!("job {}", jobs[0]["id"])), "{error}");

    rig.run_until("2026-11-23T03:30:00Z", HALF_HOUR);
    let last = rig.jobs().pop().unwrap();
    assert_eq!(trigger_of(&last), "retry");
    assert_eq!(state_of(&last), "succeeded");
    assert_eq!(
        rig.points("db"),
        ["2026-11-22T030000Z-auto", "2026-11-23T030000Z-auto"]
    );
}

#[test]
fn missed_slots_while_down_give_one_recorded_catch_up_run() {
    // 2026-11-23 is a Monday.
    let mut rig = Rig::new("2026-11-23T00:00:00Z");
    rig.ok(
        "policy",
        "create name=p times=03:00,15:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=p instance=db");
    rig.run_until("2026-11-23T16:00:00Z", HALF_HOUR);
    assert_eq!(rig.points("db").len(), 2);

    // Down from Monday 16:00 to Thursday 10:00: five slots missed.
    rig.clock.set(ns("2026-11-26T10:00:00Z"));
    rig.restart();
    rig.service.tick_scheduler();
    rig.service.wait_idle();
    rig.service.tick_scheduler();
    rig.service.wait_idle();
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 3, "one catch-up run, not five");
    assert_eq!(trigger_of(&jobs[2]), "catch-up");
    assert_eq!(state_of(&jobs[2]), "succeeded");
    let events = rig.events("policy-catch-up");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["instance"], "db");
    assert_eq!(events[0]["uid"], serde_json::Value::Null);
    assert_eq!(events[0]["outcome"]["missed"], 5);
    assert_eq!(events[0]["outcome"]["last_missed"], "2026-11-26T03:00:00Z");
    assert_eq!(events[0]["job"], jobs[2]["id"]);
    assert_eq!(
        rig.points("db").last().map(String::as_str),
        Some("2026-11-26T100000Z-auto")
    );

    rig.run_until("2026-11-26T16:00:00Z", HALF_HOUR);
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 4);
    assert_eq!(trigger_of(&jobs[3]), "slot");
    assert_eq!(
        rig.points("db").last().map(String::as_str),
        Some("2026-11-26T150000Z-auto")
    );
}

#[test]
fn disabled_policies_do_not_run_and_enabling_does_not_catch_up() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok(
        "policy",
        "create name=p times=06:00 every-days=1 keep=forever enabled=false",
    );
    rig.ok("policy", "bind name=p instance=db");
    rig.run_until("2026-11-24T00:00:00Z", HALF_HOUR);
    assert!(rig.jobs().is_empty());
    rig.ok("policy", "enable name=p");
    rig.run_until("2026-11-25T00:00:00Z", HALF_HOUR);
    assert_eq!(rig.points("db"), ["2026-11-24T060000Z-auto"]);
    rig.ok("policy", "disable name=p");
    rig.run_until("2026-11-27T00:00:00Z", HALF_HOUR);
    assert_eq!(rig.points("db").len(), 1);
}

#[test]
fn run_now_takes_a_scheduled_point_off_schedule() {
    let rig = Rig::new("2026-11-22T10:00:00Z");
    rig.ok(
        "policy",
        "create name=p times=03:00 weekdays=mon keep=forever enabled=false",
    );
    let err = rig
        .service
        .submit("policy", "run-now name=p", 0)
        .unwrap_err();
    assert_eq!(err.errno, libc::ENOENT, "{}", err.message);
    rig.ok("policy", "bind name=p instance=db");
    let reply = rig.ok("policy", "run-now name=p");
    assert!(reply.starts_with("job="), "{reply}");
    rig.service.wait_idle();
    let job = rig.jobs().pop().unwrap();
    assert_eq!(state_of(&job), "succeeded", "{job}");
    assert_eq!(trigger_of(&job), "run-now");
    assert_eq!(rig.points("db"), ["2026-11-22T100000Z-auto"]);
    let err = rig
        .service
        .submit("policy", "run-now name=p instance=other", 0)
        .unwrap_err();
    assert_eq!(err.errno, libc::ENOENT);
}

#[test]
fn dst_changes_run_each_slot_once() {
    // Europe/Berlin skips 02:00-03:00 on 2026-03-29: 02:30 runs at 03:00 CEST.
    let rig = Rig::new("2026-03-27T12:00:00Z");
    rig.ok(
        "policy",
        "create name=berlin times=02:30 every-days=1 keep=forever tz=Europe/Berlin",
    );
    rig.ok("policy", "bind name=berlin instance=db");
    rig.run_until("2026-03-31T00:00:00Z", Duration::from_secs(900));
    assert_eq!(
        rig.points("db"),
        [
            "2026-03-28T013000Z-auto",
            "2026-03-29T010000Z-auto",
            "2026-03-30T003000Z-auto"
        ]
    );

    // America/New_York repeats 01:00-02:00 on 2026-11-01: 01:30 runs once.
    let rig = Rig::new("2026-10-31T12:00:00Z");
    rig.ok(
        "policy",
        "create name=ny times=01:30 every-days=1 keep=forever tz=America/New_York",
    );
    rig.ok("policy", "bind name=ny instance=db");
    rig.run_until("2026-11-02T12:00:00Z", Duration::from_secs(900));
    assert_eq!(
        rig.points("db"),
        ["2026-11-01T053000Z-auto", "2026-11-02T063000Z-auto"]
    );
}

#[test]
fn leap_day_has_its_slot() {
    let rig = Rig::new("2028-02-27T13:00:00Z");
    rig.ok(
        "policy",
        "create name=noon times=12:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=noon instance=db");
    rig.run_until("2028-03-01T13:00:00Z", HALF_HOUR);
    assert_eq!(
        rig.points("db"),
        [
            "2028-02-28T120000Z-auto",
            "2028-02-29T120000Z-auto",
            "2028-03-01T120000Z-auto"
        ]
    );
}

#[test]
fn a_slot_another_daemon_took_is_not_taken_twice() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok(
        "policy",
        "create name=p times=03:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=p instance=db");
    rig.run_until("2026-11-22T03:30:00Z", HALF_HOUR);
    assert_eq!(rig.points("db"), ["2026-11-22T030000Z-auto"]);

    // A second daemon on the same repository, with its own catalog, starts after the
    // slot: the slot looks missed to it, but the first daemon took it.
    let t = second_machine(rig.service.repo().store(), &rig.dir.path().join("other"));
    let other = Service::start_with_clock(t.repo, t.catalog, 1, rig.clock.clone()).unwrap();
    assert_eq!(other.bound_policy("db").unwrap().name, "p");
    other.tick_scheduler();
    other.wait_idle();
    let job = other.job_ids().pop().expect("a catch-up job");
    let status: serde_json::Value = serde_json::from_str(&other.job_status(job).unwrap()).unwrap();
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["request"]["schedule"]["trigger"], "catch-up");
    assert_eq!(status["result"]["already_taken"], true, "{status}");
    assert_eq!(status["result"]["point"], "2026-11-22T030000Z-auto");
    rig.service.refresh().unwrap();
    assert_eq!(rig.points("db"), ["2026-11-22T030000Z-auto"]);
    other.shutdown();
}

#[test]
fn retention_leaves_a_point_that_a_queued_restore_will_read() {
    let rig = Rig::new("2026-11-22T10:00:00Z");
    rig.ok(
        "policy",
        "create name=p times=03:00 every-days=1 keep-count=1",
    );
    rig.ok("policy", "bind name=p instance=db");
    rig.ok("policy", "run-now name=p");
    rig.service.wait_idle();
    let first = rig.points("db").pop().unwrap();
    // Enough data that the next run is still going when the restore is queued behind it.
    std::fs::write(rig.src.join("big.bin"), noise(9, 48 << 20)).unwrap();
    rig.clock.set(ns("2026-11-22T11:00:00Z"));
    rig.ok("policy", "run-now name=p");
    let target = rig.dir.path().join("restored");
    rig.ok(
        "restore",
        &format!("instance=db point={first} target={}", target.display()),
    );
    rig.service.wait_idle();
    let jobs = rig.jobs();
    assert_eq!(state_of(&jobs[1]), "succeeded", "{}", jobs[1]);
    assert_eq!(jobs[1]["result"]["expired"], serde_json::json!([]));
    assert_eq!(
        state_of(&jobs[2]),
        "succeeded",
        "the restore read it: {}",
        jobs[2]
    );
    assert_eq!(
        std::fs::read(target.join("data.txt")).unwrap(),
        b"scheduled data\n"
    );
    assert_eq!(
        rig.points("db"),
        [first.as_str(), "2026-11-22T110000Z-auto"]
    );
    // With the restore done, the next run lets it go.
    rig.clock.set(ns("2026-11-22T12:00:00Z"));
    rig.ok("policy", "run-now name=p");
    rig.service.wait_idle();
    assert_eq!(rig.points("db"), ["2026-11-22T120000Z-auto"]);
}

#[test]
fn a_job_on_the_manual_clock_is_created_started_and_finished_in_that_order() {
    // A clock years ahead of the system's: a time read from the system clock shows.
    let at = "2031-01-07T10:00:00Z";
    let rig = Rig::new(at);
    let reply = rig.ok("snapshot", "instance=db");
    rig.service.wait_idle();
    let id: u64 = reply.trim().strip_prefix("job=").unwrap().parse().unwrap();
    let status: cairn::service::JobStatus =
        serde_json::from_str(&rig.service.job_status(id).unwrap()).unwrap();
    assert_eq!(status.state, cairn::service::JobState::Succeeded);
    let created = ns(&status.created);
    let started = ns(status.started.as_deref().unwrap());
    let finished = ns(status.finished.as_deref().unwrap());
    assert!(created <= started && started <= finished, "{status:?}");
    assert_eq!((created, finished), (ns(at), ns(at)));
}

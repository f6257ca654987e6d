//! The daemon's brain: turns control requests into jobs, runs them (one at a time per
//! instance, others queue), keeps instances, policies, jobs and events, runs the
//! scheduler, and refreshes the catalog so points written by other machines appear. The
//! FUSE layer only calls this.
//!
//! - The grammar and its data: [`grammar`] (words both ways, [`ControlError`]),
//!   [`requests`] (typed requests), [`control`], [`policy_control`] and `check_control`
//!   (the parsers).
//! - Checks: `check_job` runs a `ctl/check` job and keeps its `differences`.
//! - The service: `daemon` (state, start, refresh), `dispatch` (requests), `queue`
//!   (the job queue and its views), `runner` (running jobs; `command_sources` runs the
//!   commands of a snapshot, `job_input` carries a stream written into the mount), `scheduler` and `tracks`, `policies`, `retention`,
//!   `definitions` (what is read from the repository), logs (`log_control`: the log keys
//!   and `ctl/log`; `log_archiver` and `log_slots`: the daemon's passes; `log_push`:
//!   pushes and pushers), and the hooks around jobs:
//!   `hooks` (one hook's process), `job_hooks` (their order); `process_group` (the
//!   group a hook or a command runs in, killed if the daemon dies).
//! - What the service owns: [`events::EventLog`] (its file's length and pages in
//!   `event_pages`), [`job_history::JobHistory`] (with `unsaved`), [`clock`], the
//!   figures of `.cairn/stats` (`stats`), `.cairn/damaged` (`damage_view`); the job types in [`jobs`] and
//!   [`job_progress`].

mod check_control;
mod check_job;
pub mod clock;
mod command_sources;
pub mod control;
mod copy_control;
mod copy_job;
mod daemon;
mod damage_view;
mod definitions;
mod dispatch;
mod error;
mod event_pages;
pub mod events;
pub mod grammar;
mod hooks;
pub mod job_history;
mod job_hooks;
pub mod job_input;
pub mod job_progress;
pub mod jobs;
mod log_archiver;
pub mod log_control;
mod log_push;
pub mod log_range;
mod log_slots;
pub mod policies;
pub mod policy_control;
mod process_group;
mod queue;
pub mod requests;
mod restore_at_job;
mod retention;
mod runner;
pub mod scheduler;
mod stats;
mod tracks;
mod unsaved;

pub use crate::model::now_ns;
pub use clock::{Clock, ManualClock, SystemClock};
pub use daemon::{Service, REFRESH_INTERVAL};
pub use dispatch::CONTROL_FILES;
pub use error::ServiceError;
pub use event_pages::EventsSnapshot;
pub use events::{Event, KINDS as EVENT_KINDS};
pub use grammar::ControlError;
pub use job_progress::{JobProgress, ProgressStatus};
pub use jobs::{JobKind, JobState, JobStatus, LiveJob};
pub use log_push::{LogStep, LogUpload};

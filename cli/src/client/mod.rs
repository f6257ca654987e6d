//! Talking to a running mount: which mount ([`target`]), the control protocol
//! ([`control`]) and the request lines it carries ([`request`]), streaming into a job's
//! input ([`input`]), following a job to its end ([`follow`]) and printing what it
//! produced ([`report`], a repair's in [`repair_report`]).

pub mod control;
pub mod follow;
pub mod input;
pub mod log_push;
pub mod repair_report;
pub mod report;
pub mod request;
pub mod target;

pub use control::Client;
pub use follow::{finish_job, run_job};
pub use report::{print_corrected, print_skipped};
pub use request::Request;
pub use target::{JobArgs, MountPointArg, Target, TargetArgs};

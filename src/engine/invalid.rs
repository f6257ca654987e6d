//! Why a request is refused before anything is done: each kind of bad request its own
//! variant, the text the user reads (after `invalid request: `) its message.

use std::path::PathBuf;

use crate::model::names::BadInstanceName;

/// No variant has a `source()`: the text is the whole error, as the user reads it.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRequest {
    /// A request the daemon refuses as a whole (an unreadable stored request, an unknown
    /// job kind, a removed instance).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    BadInstanceName(BadInstanceName),
    #[error(
        "point label `{0}` must be 1-64 of A-Z a-z 0-9 _ -, not `auto` or \
         `before-restore` (reserved, also with a `-N` suffix)"
    )]
    BadLabel(String),
    /// A stream name that is not one file name, is given twice, or is a source's name.
    #[error("{0}")]
    BadStreamName(String),
    /// An in-place restore of a point with streams, which have no original path.
    #[error(
        "point {point} holds streams ({streams}) that have no original path: restore it \
         with --target DIR (or one stream with --stdout NAME), not in place"
    )]
    StreamsNeedTarget { point: String, streams: String },
    /// An include or exclude glob that does not parse (the text says which).
    #[error("{0}")]
    BadPattern(String),
    /// A source path, target or destination parent that a backup or restore cannot use.
    #[error("{0}")]
    BadPath(String),
    /// A request that lacks a part it needs (a target, an instance, a point).
    #[error("{0}")]
    Incomplete(&'static str),
    /// A prune setting out of its range.
    #[error("{0}")]
    BadSetting(&'static str),
    #[error(
        "target {} is not empty: restore into a new or empty directory, or in place",
        .0.display()
    )]
    TargetNotEmpty(PathBuf),
    #[error("target {} exists and is not a directory", .0.display())]
    TargetNotADirectory(PathBuf),
    #[error(
        "point {0} holds several sources: it can only be restored in place \
         over them, or into a new location"
    )]
    SeveralSources(String),
    #[error(
        "point {instance}/{point} is a manual point: forgetting it needs \
         manual=true (--manual)"
    )]
    ManualPoint { instance: String, point: String },
    /// The request selects nothing (no point of an instance, nothing in a point).
    #[error("{0}")]
    NothingSelected(String),
    /// A point-in-time that does not parse (the text says what is accepted).
    #[error("{0}")]
    BadTime(String),
    /// A point-in-time before the instance's first point (or an instance with none).
    #[error("instance `{instance}` has no point before {at}{}", match .earliest {
        Some(e) => format!(": the earliest restorable second is {e}"),
        None => String::new(),
    })]
    PitrBeforeFirstPoint {
        instance: String,
        at: String,
        earliest: Option<String>,
    },
    /// A point-in-time after the last second the log archive holds whole.
    #[error(
        "{at} is after the latest restorable second of instance `{instance}`, {latest} \
         (the archive holds every write up to its end)"
    )]
    PitrAfterLatest {
        instance: String,
        at: String,
        latest: String,
    },
    /// A point-in-time of an instance that has archived no logs.
    #[error(
        "instance `{0}` has no archived logs (no log record, no pass): restore one of its \
         points instead"
    )]
    PitrNoLogs(String),
}

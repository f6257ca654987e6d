//! What verify reports of a broken log archive: one run of records missing, unreadable
//! or out of the chain, and the time range in which a point-in-time restore is
//! impossible because of it.

use crate::model::schedule::utc;

/// Damage to an instance's log archive: a run of records missing, unreadable or out of
/// the chain, between two intact records (or an end of the archive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogDamage {
    pub instance: String,
    /// The first and last seq of the run.
    pub first_seq: u64,
    pub last_seq: u64,
    /// The intact records on either side (ns since the epoch); `None`: the end of the
    /// archive. A point-in-time restore between them is impossible.
    pub after_ns: Option<i64>,
    pub before_ns: Option<i64>,
    /// What is wrong, one line per record or run, in seq order.
    pub causes: Vec<String>,
    /// The whole of it in one sentence.
    pub message: String,
}

impl LogDamage {
    pub(super) fn new(
        instance: &str,
        (first_seq, last_seq): (u64, u64),
        causes: Vec<String>,
        after_ns: Option<i64>,
        before_ns: Option<i64>,
    ) -> LogDamage {
        let range = match (after_ns, before_ns) {
            (Some(a), Some(b)) => format!("between {} and {}", utc(a), utc(b)),
            (Some(a), None) => format!("after {}", utc(a)),
            (None, Some(b)) => format!("before {}", utc(b)),
            (None, None) => "at any time".to_string(),
        };
        let message = format!(
            "logs of instance {instance}: {}: point-in-time restore {range} is impossible",
            causes.join(", ")
        );
        LogDamage {
            instance: instance.to_string(),
            first_seq,
            last_seq,
            after_ns,
            before_ns,
            causes,
            message,
        }
    }
}

//! What is stored: trees of nodes, point manifests, instances, policies, damage marks,
//! and the names they carry; and the pure rules of a policy (when its slots fall, what
//! its retention keeps).

pub mod damage_mark;
pub mod forgotten;
pub mod instance;
pub mod log_record;
pub mod manifest;
pub mod names;
pub mod policy;
pub mod policy_settings;
pub mod retention;
pub mod schedule;
pub mod tree;

pub use damage_mark::DamageMark;
pub use forgotten::{ForgetRecord, Forgotten};
pub use instance::InstanceConfig;
pub use log_record::{LogPiece, LogRecord, LogRecordId};
pub use manifest::{Layout, Manifest, ManifestId, PointKind, PointStats};
pub use policy::{Binding, Days, Keep, Policy, PolicySettings};
pub use tree::{Extent, Node, NodeKind, Tree, Xattr};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("malformed tree: {0}")]
    Tree(String),
    #[error("unsafe file name in repository: {:?}", String::from_utf8_lossy(.0))]
    UnsafeName(Vec<u8>),
    #[error("malformed manifest: {0}")]
    Manifest(String),
    #[error("malformed log record: {0}")]
    LogRecord(String),
}

/// Now, in nanoseconds since the Unix epoch (UTC).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// This machine's host name (recorded in what it writes), empty if unknown.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

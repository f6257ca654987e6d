//! What a prune is asked, what every step of one run shares, and what it did.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::repo::{Lease, Repository, TakenOver};

use crate::engine::{CancelToken, Progress};

const HOUR_NS: i64 = 3_600 * 1_000_000_000;

/// How to prune.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Report what would be condemned and deleted; change nothing.
    pub dry_run: bool,
    /// Time between condemning packs and deleting them; must exceed the longest backup
    /// that may run meanwhile on another machine. Default 24 h.
    pub grace_ns: i64,
    /// Packs with more than this fraction of dead bytes are repacked. Default 0.5.
    pub repack_dead_ratio: f64,
    /// How long the prune lease lasts if this prune dies. Default 6 h. A lease whose
    /// holder is a process of this host that is gone is free at once.
    pub lease_ttl_ns: i64,
    /// Take over a live lease of another host (its prune is known to be dead).
    pub break_lease: bool,
    /// The clock (ns since the epoch); `None` for now. Injected by tests.
    pub now_ns: Option<i64>,
}

impl Default for PruneRequest {
    fn default() -> PruneRequest {
        PruneRequest {
            dry_run: false,
            grace_ns: 24 * HOUR_NS,
            repack_dead_ratio: 0.5,
            lease_ttl_ns: 6 * HOUR_NS,
            break_lease: false,
            now_ns: None,
        }
    }
}

/// What a prune did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneOutcome {
    pub dry_run: bool,
    /// Blobs (trees and data) the points reference.
    pub blobs_referenced: u64,
    /// Packs condemned by the plan this run wrote.
    pub packs_condemned: u64,
    /// Of those, packs whose live blobs were copied into new packs.
    pub packs_repacked: u64,
    /// Plaintext bytes copied by repacking.
    pub bytes_repacked: u64,
    pub packs_deleted: u64,
    /// Condemned packs kept because a point references a blob only they hold.
    pub packs_kept: u64,
    pub segments_rewritten: u64,
    /// Bytes of the deleted packs.
    pub bytes_freed: u64,
    /// Log records deleted because no kept point needs them (FORMAT.md 12.4), and the
    /// log bytes they held (before compression).
    pub log_records_deleted: u64,
    pub log_bytes_deleted: u64,
    /// Plans still in their grace period, and when the first of them is due.
    pub plans_pending: u64,
    pub next_sweep_ns: Option<i64>,
    /// The lease this run took over from another holder, and why (`null`: it was free).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_taken_over: Option<TakenOver>,
}

/// What every step of one run shares.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repository,
    pub(super) catalog: &'a Arc<Catalog>,
    pub(super) now: i64,
    /// `None` for a dry run.
    pub(super) lease: Option<&'a Lease>,
    pub(super) progress: &'a dyn Progress,
    pub(super) cancel: &'a CancelToken,
}

//! Repair, its request and its outcome (what it did, or with `dry_run` would do).

/// What to repair.
#[derive(Debug, Clone, Default)]
pub struct RepairRequest {
    /// Only say what would be done; write and delete nothing in the repository.
    pub dry_run: bool,
}

/// A pack that cannot be read whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedPackReport {
    /// Its key, `packs/<hh>/<hex>`.
    pub pack: String,
    /// Why it cannot be read whole.
    pub why: String,
    /// Blobs known in it that decode and match their id (moved out), and those that do not.
    pub blobs_readable: u64,
    pub blobs_unreadable: u64,
}

/// A point that lacks data after the repair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedPoint {
    pub instance: String,
    pub point: String,
    /// The manifest id (the mark is `damaged/<instance>/<id>`).
    pub id: String,
    /// Damaged files and directories, relative to the point root, sorted.
    pub paths: Vec<String>,
    /// Whether this repair wrote (or would write) its mark; false when the same mark was
    /// there already.
    pub newly_marked: bool,
}

/// What a repair did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairOutcome {
    pub dry_run: bool,
    /// Packs downloaded and checked against their ids.
    pub packs_checked: u64,
    /// New index segments for intact packs no segment listed, and those packs.
    pub segments_rebuilt: u64,
    pub packs_reindexed: u64,
    /// Damaged packs whose readable blobs were moved into new packs.
    pub packs_salvaged: u64,
    pub blobs_moved: u64,
    pub bytes_moved: u64,
    /// Damaged packs deleted (after what replaces them was durable).
    pub packs_removed: u64,
    /// Packs index segments listed that the store does not hold.
    pub packs_missing: u64,
    /// Index segments replaced by ones without the removed and missing packs.
    pub segments_rewritten: u64,
    /// Blobs of damaged or missing packs with no readable copy anywhere.
    pub blobs_lost: u64,
    pub damaged_packs: Vec<DamagedPackReport>,
    /// Every point that still lacks data (marked damaged).
    pub damaged_points: Vec<DamagedPoint>,
    /// Marks written, and stale marks deleted (their points read whole again, or are
    /// gone).
    pub points_marked: u64,
    pub marks_cleared: u64,
}

impl RepairOutcome {
    /// Whether the repository is whole at the end: no point lacks data.
    pub fn is_whole(&self) -> bool {
        self.damaged_points.is_empty()
    }
}

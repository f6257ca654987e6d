//! What a check or a diff reports: the counts, each difference with the aspects that
//! differ, the errors, and the figures (live bytes read, elapsed time, trees read). Plain
//! data; the service writes the differences as JSON lines, the CLI prints them.

use serde::{Deserialize, Serialize};

/// How a path differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// Only on the live side (check), or only in the second point (diff).
    Added,
    /// Only in the point (check), or only in the first point (diff).
    Removed,
    /// On both sides, with at least one aspect different.
    Changed,
}

impl DiffKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DiffKind::Added => "added",
            DiffKind::Removed => "removed",
            DiffKind::Changed => "changed",
        }
    }
}

/// One aspect of an entry that can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aspect {
    /// File, directory, symlink, fifo, socket or device.
    Type,
    Size,
    Content,
    /// Permission and special bits.
    Mode,
    /// uid or gid.
    Owner,
    Mtime,
    Xattrs,
    LinkTarget,
}

impl Aspect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Aspect::Type => "type",
            Aspect::Size => "size",
            Aspect::Content => "content",
            Aspect::Mode => "mode",
            Aspect::Owner => "owner",
            Aspect::Mtime => "mtime",
            Aspect::Xattrs => "xattrs",
            Aspect::LinkTarget => "link-target",
        }
    }
}

/// One path that differs: relative to the point's root (`.` for the root itself), lossy
/// UTF-8. `aspects` is empty for an added or removed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    pub aspects: Vec<Aspect>,
}

/// The counts a check ends with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Entries on both sides with nothing different (in a diff, an unchanged directory
    /// counts as one, whatever is below it).
    pub same: u64,
    /// Entries on both sides that differ.
    pub differ: u64,
    /// Entries only in the point (a diff: only in the first point): `removed`.
    pub only_in_point: u64,
    /// Entries only on the live side (a diff: only in the second point): `added`.
    pub only_in_live: u64,
    /// Entries that could not be read or compared.
    pub errors: u64,
    /// Entries an ignore glob (or the point's excludes) left out, not descended into.
    pub ignored: u64,
}

/// The outcome of a check or a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The point compared (its name, `latest` resolved).
    pub point: String,
    /// A diff's second point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    /// The live paths compared (empty for a diff).
    #[serde(default)]
    pub against: Vec<String>,
    pub counts: Counts,
    /// Sorted by path.
    #[serde(default)]
    pub differences: Vec<Difference>,
    /// `PATH: cause` of each error, sorted.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Bytes of file content read from the live side.
    pub live_bytes_read: u64,
    /// Milliseconds the comparison took.
    pub elapsed_ms: u64,
    /// Trees read from the repository.
    pub trees_read: u64,
}

impl CheckReport {
    /// The exit status diff(1) would give: 0 same, 1 different, 2 an error (errors win
    /// over differences).
    pub fn exit_code(&self) -> u8 {
        if self.counts.errors > 0 {
            2
        } else if self.differences.is_empty() {
            0
        } else {
            1
        }
    }

    /// The differences as JSON lines (`jobs/<id>/differences`), one object a line.
    pub fn differences_jsonl(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            out.push_str(&serde_json::to_string(d).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}

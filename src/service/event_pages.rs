//! The audit log as the `.cairn/events` file, without building its text: its exact
//! length and its pages, read from the catalog's event rows by id range.
//!
//! The file is every event line followed by a newline, in the order recorded (what
//! [`EventLog::text`](super::events::EventLog::text) builds whole). Rows are only ever
//! appended with growing ids, so the text of the events up to an id is a prefix of every
//! later text. [`EventPages`] keeps the length through the last id it has seen, and a
//! mark every [`MARK_EVERY`] bytes (the id after which the text is at that offset) so
//! that a read seeks near its offset; it catches up with rows added since (by this
//! daemon or by another process on this catalog) with one query by id.

use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, CatalogError};
use crate::sync::LockExt;

/// How far apart the marks of the text are: a read skips at most this much.
const MARK_EVERY: u64 = 64 * 1024;

/// How many rows' lengths one query reads.
#[cfg(not(test))]
const BATCH: usize = 10_000;
#[cfg(test)]
const BATCH: usize = 100;

/// One version of the file: the events up to an id, and the length of their text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsSnapshot {
    last_id: i64,
    len: u64,
}

impl EventsSnapshot {
    /// The byte length of the text of this version.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What is known of the text: its length through `last_id`, and the marks.
#[derive(Debug, Default)]
struct Extent {
    last_id: i64,
    len: u64,
    /// `(id, offset)`: the text of the events after `id` starts at `offset`; sorted.
    marks: Vec<(i64, u64)>,
}

impl Extent {
    /// Counts the event `id` whose line is `line_len` bytes (and its newline).
    fn add(&mut self, id: i64, line_len: u64) {
        let marked = self.marks.last().map_or(0, |m| m.1);
        if self.len - marked >= MARK_EVERY {
            self.marks.push((self.last_id, self.len));
        }
        self.last_id = id;
        self.len += line_len + 1;
    }

    /// The last mark at or before `offset` (the start of the text if none).
    fn mark_before(&self, offset: u64) -> (i64, u64) {
        let i = self.marks.partition_point(|m| m.1 <= offset);
        i.checked_sub(1).map_or((0, 0), |i| self.marks[i])
    }
}

/// The length and pages of the audit log's text.
pub struct EventPages {
    catalog: Arc<Catalog>,
    extent: Mutex<Extent>,
}

impl EventPages {
    pub fn new(catalog: Arc<Catalog>) -> EventPages {
        EventPages {
            catalog,
            extent: Mutex::new(Extent::default()),
        }
    }

    /// The file as it is now. The first call reads the length of every row (once, in
    /// batches that leave the catalog to others between them); later ones only the rows
    /// added since.
    pub fn snapshot(&self) -> Result<EventsSnapshot, CatalogError> {
        let mut extent = self.extent.locked();
        loop {
            let rows = self.catalog.event_lengths_after(extent.last_id, BATCH)?;
            for &(id, len) in &rows {
                extent.add(id, len);
            }
            if rows.len() < BATCH {
                break;
            }
        }
        Ok(EventsSnapshot {
            last_id: extent.last_id,
            len: extent.len,
        })
    }

    /// Up to `size` bytes of the text of `snapshot` from `offset`: the rows from the
    /// last mark before `offset` to the end of the range, no more.
    pub fn read(
        &self,
        snapshot: &EventsSnapshot,
        offset: u64,
        size: usize,
    ) -> Result<Vec<u8>, CatalogError> {
        let end = snapshot.len.min(offset.saturating_add(size as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        let (after, mut pos) = self.extent.locked().mark_before(offset);
        let mut out = Vec::with_capacity((end - offset) as usize);
        self.catalog
            .event_lines_between(after, snapshot.last_id, |line| {
                for part in [line.as_bytes(), b"\n"] {
                    let next = pos + part.len() as u64;
                    let (from, to) = (offset.max(pos), end.min(next));
                    if from < to {
                        out.extend_from_slice(&part[(from - pos) as usize..(to - pos) as usize]);
                    }
                    pos = next;
                }
                pos < end
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(dir: &std::path::Path) -> (Arc<Catalog>, EventPages) {
        let catalog = Arc::new(Catalog::open(&dir.join("c.sqlite")).unwrap());
        (catalog.clone(), EventPages::new(catalog))
    }

    /// The text `EventLog::text` builds: every line and a newline.
    fn text(catalog: &Catalog) -> String {
        let lines = catalog.events().unwrap();
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Reads the whole snapshot in pages of `page` bytes.
    fn paged(pages: &EventPages, snapshot: &EventsSnapshot, page: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let chunk = pages.read(snapshot, out.len() as u64, page).unwrap();
            if chunk.is_empty() {
                return out;
            }
            out.extend_from_slice(&chunk);
        }
    }

    #[test]
    fn an_empty_log_is_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pages) = pages(dir.path());
        let snapshot = pages.snapshot().unwrap();
        assert!(snapshot.is_empty());
        assert_eq!(pages.read(&snapshot, 0, 4096).unwrap(), b"");
    }

    #[test]
    fn length_and_pages_are_the_text_exactly_with_many_non_ascii_events() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, pages) = pages(dir.path());
        let names = ["db", "données", "日本語のインスタンス", "🦀-crab", "ascii"];
        for i in 0..800usize {
            let name = names[i % names.len()];
            let line = serde_json::json!({
                "kind": "instance-added",
                "instance": name,
                "request": format!("add name={name} path=/srv/{i} ✓"),
                "outcome": {"ok": true, "reply": "é".repeat(i % 400)},
            });
            catalog
                .append_event(i as i64, "instance-added", &line.to_string())
                .unwrap();
        }
        let text = text(&catalog);
        assert!(text.len() as u64 > 4 * MARK_EVERY, "{}", text.len());
        let snapshot = pages.snapshot().unwrap();
        assert_eq!(snapshot.len(), text.len() as u64);
        for page in [4093, 128 * 1024, 1 << 22] {
            assert_eq!(
                paged(&pages, &snapshot, page),
                text.as_bytes(),
                "pages of {page}"
            );
        }
        // Reads at any offset, also in the middle of a character or of a mark's row.
        let bytes = text.as_bytes();
        let len = bytes.len() as u64;
        let offsets = [
            0,
            1,
            MARK_EVERY - 1,
            MARK_EVERY,
            3 * MARK_EVERY + 5,
            len - 3,
            len,
        ];
        for offset in offsets.into_iter().chain((0..50).map(|i| i * 7919 % len)) {
            for size in [1, 3, 1000, 70_000] {
                let from = offset as usize;
                let to = (from + size).min(bytes.len());
                assert_eq!(
                    pages.read(&snapshot, offset, size).unwrap(),
                    &bytes[from..to],
                    "offset {offset} size {size}"
                );
            }
        }
        assert_eq!(pages.read(&snapshot, len + 10, 100).unwrap(), b"");

        // What is recorded later (by this daemon, or by another process on this catalog
        // as `cairn prune --repo` does) lengthens the next snapshot; the older one reads
        // as it was.
        for line in [r#"{"point":"ünïcödé"}"#, r#"{"x":"ß"}"#] {
            catalog.append_event(7, "point-deleted", line).unwrap();
        }
        let later = pages.snapshot().unwrap();
        let text_later = super::tests::text(&catalog);
        assert_eq!(later.len(), text_later.len() as u64);
        assert_eq!(paged(&pages, &later, 50_000), text_later.as_bytes());
        assert_eq!(paged(&pages, &snapshot, 50_000), text.as_bytes());
        assert!(text_later.starts_with(&text));

        // Opened again, the same length comes from the rows.
        assert_eq!(EventPages::new(catalog).snapshot().unwrap(), later);
    }
}

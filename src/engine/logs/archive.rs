//! Archiving an instance's log files: a pass over its `log=GLOB` files stores what is new
//! since the last pass (a file that grew: its new bytes; a new file, or one rewritten in
//! place: all of it, as a new generation) as log records, and a push stores one named
//! file whole (PostgreSQL's `archive_command`).
//!
//! A file version whose records retention deleted (docs/FORMAT.md 9.3) is not appended
//! to: the file is archived again, whole, as a new generation.
//!
//! A pass that finds nothing new reads no file and writes no object: it only lists the
//! globs' directories and stats the files. What the last pass saw is kept in memory
//! ([`LogArchiver`]), loaded once from the catalog's log records.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::engine::{EngineError, InvalidRequest, Result};
use crate::model::log_record::{is_log_file_name, LOG_RECORD_DATA_MAX, LOG_RECORD_VERSION};
use crate::model::{LogPiece, LogRecord};
use crate::repo::Repository;

use super::listing::GlobListings;
use super::timeline::{record_id_hex, Timeline};

/// Bytes at the end of what was archived of a file that a pass compares, to tell a file
/// that grew from one rewritten in place.
const TAIL: u64 = 4096;

/// What the archiver knows of one log file (its current generation).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    generation: u32,
    /// Bytes archived of this generation.
    size: u64,
    mtime_ns: i64,
    /// (dev, inode) when this process saw the file; `None` when loaded from records.
    identity: Option<(u64, u64)>,
    /// BLAKE3 of the last [`TAIL`] archived bytes, when this process read them.
    tail: Option<[u8; 32]>,
    /// The seq of the record holding this generation's first piece: once retention
    /// deleted it (the oldest record has a higher seq), the version expired and what the
    /// file holds is archived again, whole, as a new generation.
    first_seq: u64,
}

/// What one pass or push stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Object keys of the records written (none when nothing was new).
    pub records: Vec<String>,
    /// Bytes of log data stored.
    pub bytes: u64,
    /// Files with new bytes.
    pub files: u64,
    /// The pass's time (ns): every byte archived by now existed by then.
    pub time_ns: i64,
    /// Conditions the pass survived (an unreadable file, two files of one name).
    pub warnings: Vec<String>,
}

/// The log archive of one instance, as this process keeps it between passes.
#[derive(Debug)]
pub struct LogArchiver {
    instance: String,
    files: HashMap<String, FileState>,
    /// Seq and hex id of the newest record.
    last: Option<(u64, String)>,
    last_pass_ns: Option<i64>,
    listings: GlobListings,
}

/// A record being filled: its pieces and their bytes.
#[derive(Default)]
struct Batch {
    pieces: Vec<LogPiece>,
    data: Vec<u8>,
}

impl LogArchiver {
    /// Loads what the catalog's records say of the instance's archive (refresh the
    /// catalog first to see other writers' records).
    pub fn load(catalog: &Catalog, instance: &str) -> Result<LogArchiver> {
        let timeline = Timeline::load(catalog, instance)?;
        let mut files: HashMap<String, FileState> = HashMap::new();
        for entry in timeline.records() {
            for p in &entry.record.pieces {
                let state = files.entry(p.file.clone()).or_insert(FileState {
                    generation: p.generation,
                    size: 0,
                    mtime_ns: p.mtime_ns,
                    identity: None,
                    tail: None,
                    first_seq: entry.record.seq,
                });
                if p.generation >= state.generation {
                    if p.offset == 0 {
                        state.first_seq = entry.record.seq;
                    }
                    state.generation = p.generation;
                    state.size = p.end();
                    state.mtime_ns = p.mtime_ns;
                }
            }
        }
        let last = timeline
            .records()
            .last()
            .map(|e| (e.record.seq, record_id_hex(&e.key).to_string()));
        Ok(LogArchiver {
            instance: instance.to_string(),
            files,
            last,
            last_pass_ns: timeline.records().last().map(|e| e.record.time_ns),
            listings: GlobListings::default(),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// When the last pass (or push) of this process, or the newest record, looked.
    pub fn last_pass_ns(&self) -> Option<i64> {
        self.last_pass_ns
    }

    /// One pass over the files `globs` match (absolute patterns).
    pub fn pass(
        &mut self,
        repo: &Repository,
        catalog: &Catalog,
        globs: &[String],
    ) -> Result<PassOutcome> {
        let mut out = PassOutcome::default();
        let paths = expand(&mut self.listings, globs, &mut out.warnings)?;
        // Every size is taken before the pass's time: what it reads existed by then.
        let mut found = Vec::new();
        for (name, path) in paths {
            match std::fs::metadata(&path) {
                Ok(md) if md.is_file() => found.push((name, path, md)),
                Ok(_) => {}
                Err(e) => out.warnings.push(format!("{}: {e}", path.display())),
            }
        }
        let time_ns = crate::model::now_ns();
        let mut batch = Batch::default();
        for (name, path, md) in found {
            let identity = (md.dev(), md.ino());
            let mtime_ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
            let size = md.len();
            let (generation, from) = match self.files.get(&name) {
                None => (1, 0),
                Some(s) if s.identity.is_some_and(|i| i != identity) || size < s.size => {
                    (s.generation + 1, 0)
                }
                Some(s) if size == s.size && mtime_ns == s.mtime_ns => continue,
                Some(s) => match tail_matches(&path, s) {
                    Ok(true) if self.expired(catalog, s)? => (s.generation + 1, 0),
                    Ok(true) => (s.generation, s.size),
                    Ok(false) => (s.generation + 1, 0),
                    Err(e) => {
                        out.warnings.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                },
            };
            if from == size {
                // Touched, not grown: remember the time so the next pass skips it.
                if let Some(s) = self.files.get_mut(&name) {
                    (s.mtime_ns, s.identity) = (mtime_ns, Some(identity));
                }
                continue;
            }
            let first_seq = match (from, self.files.get(&name)) {
                (0, _) | (_, None) => self.next_seq(),
                (_, Some(s)) => s.first_seq,
            };
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    out.warnings.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let read = self.read_into(
                repo, catalog, &mut batch, &mut out, &mut file, &name, generation, from, size,
                mtime_ns, time_ns,
            );
            match read {
                Ok(size) => {
                    let tail = tail_hash(&path, size).ok();
                    self.files.insert(
                        name,
                        FileState {
                            generation,
                            size,
                            mtime_ns,
                            identity: Some(identity),
                            tail,
                            first_seq,
                        },
                    );
                    out.files += 1;
                }
                Err(EngineError::Io {
                    path: p, source, ..
                }) => {
                    out.warnings.push(format!("{}: {source}", p.display()));
                }
                Err(e) => return Err(e),
            }
        }
        self.flush(repo, catalog, &mut batch, &mut out, time_ns)?;
        out.time_ns = time_ns;
        self.last_pass_ns = Some(time_ns);
        Ok(out)
    }

    /// Stores `data` as the whole of the log file `name` (a push): done at once when the
    /// file is already archived with these bytes; refused when it is archived with
    /// other bytes. The records are durable when this returns.
    pub fn push(
        &mut self,
        repo: &Repository,
        catalog: &Catalog,
        name: &str,
        mut data: impl Read,
    ) -> Result<PassOutcome> {
        if !is_log_file_name(name) {
            return Err(EngineError::Invalid(InvalidRequest::Refused(format!(
                "{name:?} is not a log file name (one path component, not starting with `@`)"
            ))));
        }
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes)
            .map_err(|e| EngineError::io("reading", Path::new(name), e))?;
        let generation = match self.files.get(name) {
            None => 1,
            Some(s) if self.expired(catalog, s)? => s.generation + 1,
            Some(_) => return self.pushed_again(repo, catalog, name, &bytes),
        };
        let time_ns = crate::model::now_ns();
        let mut out = PassOutcome::default();
        let mut batch = Batch::default();
        let size = bytes.len() as u64;
        let first_seq = self.next_seq();
        let mut cursor = std::io::Cursor::new(bytes);
        self.read_into(
            repo,
            catalog,
            &mut batch,
            &mut out,
            &mut cursor,
            name,
            generation,
            0,
            size,
            time_ns,
            time_ns,
        )?;
        self.flush(repo, catalog, &mut batch, &mut out, time_ns)?;
        for key in &out.records {
            repo.store()
                .sync(key)
                .map_err(crate::repo::RepoError::from)?;
        }
        self.files.insert(
            name.to_string(),
            FileState {
                generation,
                size,
                mtime_ns: time_ns,
                identity: None,
                tail: None,
                first_seq,
            },
        );
        out.files = 1;
        out.time_ns = time_ns;
        self.last_pass_ns = Some(time_ns);
        Ok(out)
    }

    /// A push of a file already archived: done when the bytes are the same, else refused.
    fn pushed_again(
        &self,
        repo: &Repository,
        catalog: &Catalog,
        name: &str,
        bytes: &[u8],
    ) -> Result<PassOutcome> {
        let timeline = Timeline::load(catalog, &self.instance)?;
        let archived = timeline.read_file(repo, name, None)?;
        if archived == bytes {
            return Ok(PassOutcome {
                time_ns: crate::model::now_ns(),
                ..PassOutcome::default()
            });
        }
        Err(EngineError::Invalid(InvalidRequest::Refused(format!(
            "log file {name} of instance `{}` is already archived with other content \
             ({} bytes archived, {} pushed): refusing to replace it",
            self.instance,
            archived.len(),
            bytes.len()
        ))))
    }

    /// Whether retention deleted the records of the file's current version.
    fn expired(&self, catalog: &Catalog, s: &FileState) -> Result<bool> {
        let oldest = catalog.oldest_log_seq(&self.instance)?;
        Ok(oldest.is_none_or(|seq| seq > s.first_seq))
    }

    /// Reads `[from, size)` of a file into the batch, writing full records on the way.
    #[allow(clippy::too_many_arguments)]
    fn read_into(
        &mut self,
        repo: &Repository,
        catalog: &Catalog,
        batch: &mut Batch,
        out: &mut PassOutcome,
        file: &mut (impl Read + Seek),
        name: &str,
        generation: u32,
        from: u64,
        size: u64,
        mtime_ns: i64,
        time_ns: i64,
    ) -> Result<u64> {
        let io = |e| EngineError::io("reading log file", Path::new(name), e);
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut offset = from;
        while offset < size {
            let room = LOG_RECORD_DATA_MAX - batch.data.len() as u64;
            let want = room.min(size - offset);
            let before = batch.data.len();
            file.by_ref()
                .take(want)
                .read_to_end(&mut batch.data)
                .map_err(io)?;
            let got = (batch.data.len() - before) as u64;
            if got == 0 {
                // Shrank while read: what was read is what there is.
                break;
            }
            batch.pieces.push(LogPiece {
                file: name.to_string(),
                generation,
                offset,
                len: got,
                size,
                mtime_ns,
            });
            offset += got;
            out.bytes += got;
            if batch.data.len() as u64 >= LOG_RECORD_DATA_MAX {
                self.flush(repo, catalog, batch, out, time_ns)?;
            }
        }
        if offset < size {
            // The pieces end where the file did.
            for p in batch
                .pieces
                .iter_mut()
                .filter(|p| p.file == name && p.generation == generation)
            {
                p.size = offset;
            }
        }
        Ok(offset)
    }

    /// The seq the next record gets (the one the batch being filled becomes).
    fn next_seq(&self) -> u64 {
        self.last.as_ref().map_or(1, |(s, _)| s + 1)
    }

    /// Writes the batch as the instance's next record (nothing when it is empty).
    fn flush(
        &mut self,
        repo: &Repository,
        catalog: &Catalog,
        batch: &mut Batch,
        out: &mut PassOutcome,
        time_ns: i64,
    ) -> Result<()> {
        if batch.pieces.is_empty() {
            return Ok(());
        }
        let seq = self.next_seq();
        let record = LogRecord {
            version: LOG_RECORD_VERSION,
            instance: self.instance.clone(),
            seq,
            time_ns,
            parent: self.last.as_ref().map(|(_, id)| id.clone()),
            pieces: std::mem::take(&mut batch.pieces),
        };
        let key = record.write(repo, &batch.data)?;
        batch.data.clear();
        catalog.insert_log_record(&key, &record)?;
        self.last = Some((seq, record_id_hex(&key).to_string()));
        out.records.push(key);
        Ok(())
    }
}

/// The files the globs match, by name; a second file of one name is skipped (warned).
fn expand(
    listings: &mut GlobListings,
    globs: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, PathBuf)>> {
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    for pattern in globs {
        let paths = listings.matches(pattern).map_err(|e| {
            EngineError::Invalid(InvalidRequest::BadPattern(format!(
                "log glob {pattern:?}: {e}"
            )))
        })?;
        for path in paths {
            let path = match path {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(e);
                    continue;
                }
            };
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !is_log_file_name(&name) {
                continue;
            }
            match by_name.get(&name) {
                Some(other) if *other != path => warnings.push(format!(
                    "{} has the name of {}: only the first is archived",
                    path.display(),
                    other.display()
                )),
                Some(_) => {}
                None => {
                    by_name.insert(name, path);
                }
            }
        }
    }
    let mut out: Vec<_> = by_name.into_iter().collect();
    out.sort();
    Ok(out)
}

/// BLAKE3 of the last [`TAIL`] bytes before `size`.
fn tail_hash(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    let mut f = File::open(path)?;
    let start = size.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((size - start) as usize);
    f.take(size - start).read_to_end(&mut buf)?;
    Ok(*blake3::hash(&buf).as_bytes())
}

/// Whether the archived end of the file is still what was archived (unknown: yes).
fn tail_matches(path: &Path, s: &FileState) -> std::io::Result<bool> {
    match s.tail {
        Some(tail) => Ok(tail_hash(path, s.size)? == tail),
        None => Ok(true),
    }
}

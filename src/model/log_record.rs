//! Log records: `logs/<instance>/<seq>-<id>`, what one archive pass (or one push) of an
//! instance's log files found new, with the bytes themselves. They chain like points
//! (each names its parent) and say, for every piece, the file's size at the pass's time,
//! so a point-in-time restore knows which bytes existed at which second
//! (docs/FORMAT.md, section 9.3).
//!
//! Stored as `seal(zstd(json || 0x00 || data))`: `data` is the pieces' bytes, one after
//! the other in the order of `pieces`.

use serde::{Deserialize, Serialize};

use crate::repo::{layout, MasterKey, RepoError, Repository};

use super::names::is_valid_instance_name;
use super::ModelError;

pub const LOG_RECORD_VERSION: u32 = 1;
/// A pass splits what it found new into records of at most this many data bytes.
pub const LOG_RECORD_DATA_MAX: u64 = 16 << 20;
/// A record's plaintext is at most this long: its data and its JSON.
pub const LOG_RECORD_PLAIN_MAX: usize = LOG_RECORD_DATA_MAX as usize + (16 << 20);

/// One log file's new bytes as one pass saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPiece {
    /// The file's name (its last path component), unique in the instance's logs.
    pub file: String,
    /// The file's version: 1 for the first, one more each time the file was found
    /// rewritten (shorter than archived, its archived bytes changed, or another inode).
    pub generation: u32,
    /// Where this piece's bytes start in that version of the file.
    pub offset: u64,
    /// Number of bytes of this piece (in the record's data).
    pub len: u64,
    /// The file's size when the pass read it: `offset + len`, unless the pass split the
    /// file over several records (then the size of the last piece's end).
    pub size: u64,
    /// The file's modification time when the pass read it.
    pub mtime_ns: i64,
}

impl LogPiece {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// What one pass wrote, without its bytes (what the catalog keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub version: u32,
    pub instance: String,
    /// 1 for an instance's first record, then one more each time.
    pub seq: u64,
    /// When the pass looked: every byte it holds existed by then.
    pub time_ns: i64,
    /// Hex id of the previous record of the instance (`null` for seq 1).
    pub parent: Option<String>,
    pub pieces: Vec<LogPiece>,
}

/// A log record's id: keyed BLAKE3 of its plaintext (JSON, NUL, data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogRecordId(pub [u8; 32]);

impl LogRecordId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<LogRecordId> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(LogRecordId(id))
    }
}

fn bad(message: impl Into<String>) -> ModelError {
    ModelError::LogRecord(message.into())
}

impl LogRecord {
    /// The plaintext of the record with `data` (the pieces' bytes in order) and its id.
    pub fn encode(&self, key: &MasterKey, data: &[u8]) -> (LogRecordId, Vec<u8>) {
        let mut plain = serde_json::to_vec(self).expect("a log record serializes");
        plain.push(0);
        plain.extend_from_slice(data);
        (LogRecordId(key.blob_hash(&plain)), plain)
    }

    /// `logs/<instance>/<seq, 12 digits>-<hex id>`: a listing sorts by seq.
    pub fn object_key(instance: &str, seq: u64, id: &LogRecordId) -> String {
        layout::instance_key(
            layout::LOGS,
            instance,
            &format!("{seq:012}-{}", id.to_hex()),
        )
    }

    /// Parses a key made by [`object_key`](Self::object_key), and only such a key.
    pub fn parse_key(key: &str) -> Option<(String, u64, LogRecordId)> {
        let (instance, name) = layout::split_instance_key(layout::LOGS, key)?;
        let (seq, id) = name.split_once('-')?;
        let seq: u64 = seq.parse().ok()?;
        let id = LogRecordId::from_hex(id)?;
        (is_valid_instance_name(instance) && Self::object_key(instance, seq, &id) == key)
            .then(|| (instance.to_string(), seq, id))
    }

    /// Decodes a record's plaintext and checks it against its key; returns the record
    /// and its data.
    pub fn decode(
        key: &MasterKey,
        object_key: &str,
        plain: &[u8],
    ) -> Result<(LogRecord, Vec<u8>), ModelError> {
        let (instance, seq, id) =
            Self::parse_key(object_key).ok_or_else(|| bad(format!("bad key {object_key:?}")))?;
        if key.blob_hash(plain) != id.0 {
            return Err(bad(format!(
                "log record {object_key} does not match its id"
            )));
        }
        let split = plain
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("no end to the record's JSON"))?;
        let record: LogRecord = serde_json::from_slice(&plain[..split])
            .map_err(|e| bad(format!("undecodable log record: {e}")))?;
        let data = plain[split + 1..].to_vec();
        record.check(&instance, seq, data.len() as u64)?;
        Ok((record, data))
    }

    /// Writes the record with its data; returns its object key.
    pub fn write(&self, repo: &Repository, data: &[u8]) -> Result<String, RepoError> {
        let (id, plain) = self.encode(repo.key(), data);
        let key = Self::object_key(&self.instance, self.seq, &id);
        repo.put_sealed_zstd(&key, &plain)?;
        Ok(key)
    }

    /// Reads and checks the record at `object_key`; returns it and its data.
    pub fn read(repo: &Repository, object_key: &str) -> Result<(LogRecord, Vec<u8>), ModelError> {
        let plain = repo
            .get_sealed_zstd(object_key, LOG_RECORD_PLAIN_MAX)
            .map_err(|e| bad(format!("{object_key}: {e}")))?;
        Self::decode(repo.key(), object_key, &plain)
    }

    /// The rules a reader checks (docs/FORMAT.md, 9.3).
    pub fn check(&self, instance: &str, seq: u64, data_len: u64) -> Result<(), ModelError> {
        if self.version != LOG_RECORD_VERSION {
            return Err(bad(format!("unknown log record version {}", self.version)));
        }
        if self.instance != instance || self.seq != seq {
            return Err(bad("log record stored under another instance or seq"));
        }
        if (self.seq == 1) != self.parent.is_none() {
            return Err(bad(
                "a log record has a parent exactly when it is not the first",
            ));
        }
        let mut total = 0u64;
        for p in &self.pieces {
            if !is_log_file_name(&p.file) || p.generation == 0 || p.end() > p.size {
                return Err(bad(format!("bad piece of {:?}", p.file)));
            }
            total = total
                .checked_add(p.len)
                .ok_or_else(|| bad("pieces overflow"))?;
        }
        if total != data_len {
            return Err(bad(format!(
                "the pieces hold {total} bytes, the record {data_len}"
            )));
        }
        Ok(())
    }

    /// The byte range of piece `i` in the record's data.
    pub fn piece_range(&self, i: usize) -> std::ops::Range<usize> {
        let start: u64 = self.pieces[..i].iter().map(|p| p.len).sum();
        start as usize..(start + self.pieces[i].len) as usize
    }
}

/// A log file name: one path component of 1..=255 bytes, not `.` or `..`, no `/` or NUL,
/// and not starting with `@` (the mount's time-travel names).
pub fn is_log_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with('@')
        && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, parent: Option<String>) -> LogRecord {
        LogRecord {
            version: LOG_RECORD_VERSION,
            instance: "pg".into(),
            seq,
            time_ns: 1_700_000_000_000_000_000,
            parent,
            pieces: vec![LogPiece {
                file: "000000010000000000000001".into(),
                generation: 1,
                offset: 0,
                len: 5,
                size: 5,
                mtime_ns: 1,
            }],
        }
    }

    #[test]
    fn a_record_round_trips_and_its_key_is_checked() {
        let key = MasterKey::generate(true);
        let r = record(1, None);
        let (id, plain) = r.encode(&key, b"hello");
        let object = LogRecord::object_key("pg", 1, &id);
        assert!(object.starts_with("logs/pg/000000000001-"));
        let (back, data) = LogRecord::decode(&key, &object, &plain).unwrap();
        assert_eq!((&back, data.as_slice()), (&r, &b"hello"[..]));
        // Another seq, another instance, altered bytes, a short data part: refused.
        assert!(LogRecord::decode(&key, &LogRecord::object_key("pg", 2, &id), &plain).is_err());
        assert!(LogRecord::decode(&key, &LogRecord::object_key("ph", 1, &id), &plain).is_err());
        let mut altered = plain.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(LogRecord::decode(&key, &object, &altered).is_err());
        let (id, short) = r.encode(&key, b"hell");
        let object = LogRecord::object_key("pg", 1, &id);
        assert!(LogRecord::decode(&key, &object, &short).is_err());
    }

    #[test]
    fn parents_and_names_are_checked() {
        let key = MasterKey::generate(true);
        let orphan = record(2, None);
        let (id, plain) = orphan.encode(&key, b"hello");
        assert!(LogRecord::decode(&key, &LogRecord::object_key("pg", 2, &id), &plain).is_err());
        for name in ["", ".", "..", "a/b", "@2026", "a\0b"] {
            assert!(!is_log_file_name(name), "{name:?}");
        }
        assert!(is_log_file_name("binlog.000001"));
        assert!(LogRecord::parse_key("logs/pg/1-00").is_none());
    }
}

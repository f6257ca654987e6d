//! Entries to tar through the `tar` crate: a GNU header per entry (type, mode, owner,
//! seconds, size, device numbers), preceded by a PAX extended header when the header
//! cannot say everything: `path` and `linkpath` over 99 bytes (with `hdrcharset=BINARY`
//! when not UTF-8), `mtime` with its nanoseconds, `uid`/`gid` too large for the header,
//! and each xattr as `SCHILY.xattr.NAME`. Sparse files as [`sparse`](super::sparse)
//! makes them. The same code sizes an archive without its data ([`Prepared::archived_len`]).

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use super::sparse::{make_sparse, sparse_map};
use super::walk::Entry;
use crate::model::NodeKind;

/// The longest name or link target kept in the header itself (the field holds 100).
const HEADER_NAME: usize = 99;
/// The largest owner id the header's octal field holds.
const HEADER_ID: u32 = 0o7777777;
/// A tar block.
pub(super) const BLOCK: u64 = 512;

/// An entry ready to write: its PAX records, its header, the blocks after the header
/// (sparse map extensions), and the length of its data.
pub(super) struct Prepared {
    pax: Vec<(String, Vec<u8>)>,
    header: Header,
    blocks: Vec<u8>,
    pub data_len: u64,
}

/// `len` rounded up to whole blocks.
pub(super) fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

impl Prepared {
    pub fn new(entry: &Entry) -> Prepared {
        let node = &entry.node;
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut header = Header::new_gnu();
        let kind = match (&entry.link_to, node.kind) {
            (Some(_), _) => EntryType::Link,
            (None, NodeKind::File) => EntryType::Regular,
            (None, NodeKind::Dir) => EntryType::Directory,
            (None, NodeKind::Symlink) => EntryType::Symlink,
            (None, NodeKind::Fifo) => EntryType::Fifo,
            (None, NodeKind::CharDevice) => EntryType::Char,
            (None, NodeKind::BlockDevice | NodeKind::Socket) => EntryType::Block,
        };
        header.set_entry_type(kind);
        set_name(&mut header.as_old_mut().name, &entry.path, "path", &mut pax);
        let target = match (&entry.link_to, node.kind) {
            (Some(first), _) => Some(first.as_slice()),
            (None, NodeKind::Symlink) => Some(node.target.as_slice()),
            _ => None,
        };
        if let Some(target) = target {
            set_name(
                &mut header.as_old_mut().linkname,
                target,
                "linkpath",
                &mut pax,
            );
        }
        header.set_mode(node.mode & 0o7777);
        header.set_uid(u64::from(node.uid));
        header.set_gid(u64::from(node.gid));
        for (key, id) in [("uid", node.uid), ("gid", node.gid)] {
            if id > HEADER_ID {
                pax.push((key.into(), id.to_string().into_bytes()));
            }
        }
        let (secs, nanos) = (
            node.mtime_ns.div_euclid(1_000_000_000),
            node.mtime_ns.rem_euclid(1_000_000_000),
        );
        header.set_mtime(secs.max(0) as u64);
        if nanos != 0 || secs < 0 {
            pax.push(("mtime".into(), pax_time(node.mtime_ns).into_bytes()));
        }
        if matches!(node.kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            let rdev = node.rdev as libc::dev_t;
            // Both fit the header's fields for any Linux device number.
            let _ = header.set_device_major(libc::major(rdev));
            let _ = header.set_device_minor(libc::minor(rdev));
        }
        for x in &node.xattrs {
            match std::str::from_utf8(&x.name) {
                Ok(name) => pax.push((format!("SCHILY.xattr.{name}"), x.value.clone())),
                Err(_) => tracing::warn!(
                    "{}: xattr {:?} has a name that is not UTF-8: not exported",
                    String::from_utf8_lossy(&entry.path),
                    String::from_utf8_lossy(&x.name)
                ),
            }
        }
        let mut blocks = Vec::new();
        let mut data_len = 0;
        if entry.has_content() {
            match sparse_map(&node.content) {
                Some(map) => (blocks, data_len) = make_sparse(&mut header, &map, node.size),
                None => data_len = node.size,
            }
        }
        header.set_size(data_len);
        if pax.iter().any(|(k, _)| k == "path" || k == "linkpath")
            && pax.iter().any(|(_, v)| std::str::from_utf8(v).is_err())
        {
            pax.insert(0, ("hdrcharset".into(), b"BINARY".to_vec()));
        }
        header.set_cksum();
        Prepared {
            pax,
            header,
            blocks,
            data_len,
        }
    }

    /// Writes the entry with its data (exactly `data_len` bytes from `data`).
    pub fn write<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        data: impl Read,
    ) -> io::Result<()> {
        builder.append_pax_extensions(self.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        builder.append(&self.header, self.blocks.as_slice().chain(data))
    }

    /// The bytes the entry takes in the archive, data and padding included.
    pub fn archived_len(&self) -> u64 {
        let mut pax_len = 0u64;
        for (k, v) in &self.pax {
            pax_len += pax_record_len(k.len() + v.len()) as u64;
        }
        let pax_blocks = if pax_len == 0 {
            0
        } else {
            BLOCK + padded(pax_len)
        };
        pax_blocks + BLOCK + self.blocks.len() as u64 + padded(self.data_len)
    }
}

/// The length of a PAX record `LEN KEY=VALUE\n` whose key and value are `kv` bytes
/// together (the same arithmetic as the `tar` crate's).
fn pax_record_len(kv: usize) -> usize {
    let rest = 3 + kv;
    let (mut len_len, mut max) = (1, 10);
    while rest + len_len >= max {
        len_len += 1;
        max *= 10;
    }
    rest + len_len
}

/// Puts `name` into a header field, or a prefix of it there and the whole in a PAX record.
fn set_name(field: &mut [u8; 100], name: &[u8], key: &str, pax: &mut Vec<(String, Vec<u8>)>) {
    let keep = name.len().min(HEADER_NAME);
    field[..keep].copy_from_slice(&name[..keep]);
    if name.len() > HEADER_NAME {
        pax.push((key.into(), name.to_vec()));
    }
}

/// A time in nanoseconds as PAX writes it: seconds, a point and the fraction (trailing
/// zeros dropped); `-1.5` is half a second before 1970-01-01T00:00:01Z less one.
fn pax_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    let (secs, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if frac == 0 {
        return format!("{sign}{secs}");
    }
    let frac = format!("{frac:09}");
    format!("{sign}{secs}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Node, Xattr};

    fn entry(path: &[u8], node: Node) -> Entry {
        Entry {
            path: path.to_vec(),
            node,
            link_to: None,
        }
    }

    #[test]
    fn times_carry_their_nanoseconds() {
        assert_eq!(pax_time(1_500_000_000), "1.5");
        assert_eq!(pax_time(2_000_000_000), "2");
        assert_eq!(pax_time(1_700_000_000_123_456_789), "1700000000.123456789");
        assert_eq!(pax_time(-1_500_000_000), "-1.5");
    }

    #[test]
    fn the_size_without_data_is_what_the_builder_writes() {
        let mut long = Node::new(b"f".to_vec(), NodeKind::File);
        long.size = 700;
        long.content = vec![crate::model::Extent::Hole { len: 700 }];
        long.mtime_ns = 1_234_567_891;
        long.uid = 4_000_000_000;
        long.xattrs = vec![Xattr {
            name: b"user.k".to_vec(),
            value: vec![7; 300],
        }];
        let mut dir = Node::new(b"d".to_vec(), NodeKind::Dir);
        dir.mode = 0o755;
        let entries = [
            entry(&[b'a'; 300], long),
            entry(b"d/", dir),
            entry(b"\xff\xfe/x", Node::new(b"x".to_vec(), NodeKind::Fifo)),
        ];
        for e in &entries {
            let p = Prepared::new(e);
            let mut b = tar::Builder::new(Vec::new());
            p.write(&mut b, io::repeat(0).take(p.data_len)).unwrap();
            assert_eq!(b.get_ref().len() as u64, p.archived_len());
        }
    }
}

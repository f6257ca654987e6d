//! Inputs for the decoders: random bytes, and real encodings bent the ways hostile or
//! damaged objects are (bit flips, truncations, edited length fields, spliced bytes).

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Values a length or count field is set to: the edges, and sizes no decoder may reserve.
const HUGE: [u64; 9] = [
    0,
    1,
    0x7f,
    0xffff,
    1 << 31,
    u32::MAX as u64,
    1 << 40,
    1 << 60,
    u64::MAX,
];

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub enum Edit {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Remove(usize, usize),
    Insert(usize, Vec<u8>),
    /// Overwrites 4 or 8 bytes at a position with a little-endian edge value.
    LengthLe(usize, u64, bool),
    /// Inserts a postcard varint of an edge value (a forged length prefix).
    Varint(usize, u64),
    /// Replaces the digits of the n-th number of a text with an edge value.
    Number(usize, u64),
    /// Copies a range elsewhere (repeated entries, duplicated names).
    Duplicate(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let pos = any::<usize>();
    let huge = prop::sample::select(HUGE.to_vec());
    prop_oneof![
        3 => (pos, 0u8..8).prop_map(|(p, b)| Edit::FlipBit(p, b)),
        2 => (pos, any::<u8>()).prop_map(|(p, b)| Edit::SetByte(p, b)),
        1 => pos.prop_map(Edit::Truncate),
        1 => (pos, 1usize..16).prop_map(|(p, n)| Edit::Remove(p, n)),
        1 => (pos, prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Edit::Insert(p, b)),
        2 => (pos, huge.clone(), any::<bool>()).prop_map(|(p, v, wide)| Edit::LengthLe(p, v, wide)),
        2 => (pos, huge.clone()).prop_map(|(p, v)| Edit::Varint(p, v)),
        2 => (pos, huge).prop_map(|(p, v)| Edit::Number(p, v)),
        1 => (pos, pos, 1usize..64).prop_map(|(a, b, n)| Edit::Duplicate(a, b, n)),
    ]
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Applies one edit (positions wrap, so every edit applies to every input).
pub fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
    let len = bytes.len();
    match edit {
        Edit::FlipBit(p, b) if len > 0 => bytes[at(*p, len)] ^= 1 << b,
        Edit::SetByte(p, v) if len > 0 => bytes[at(*p, len)] = *v,
        Edit::Truncate(p) => bytes.truncate(at(*p, len + 1)),
        Edit::Remove(p, n) if len > 0 => {
            let start = at(*p, len);
            bytes.drain(start..(start + n).min(len));
        }
        Edit::Insert(p, new) => {
            let start = at(*p, len + 1);
            bytes.splice(start..start, new.iter().copied());
        }
        Edit::LengthLe(p, v, wide) => {
            let field = if *wide {
                v.to_le_bytes().to_vec()
            } else {
                (*v as u32).to_le_bytes().to_vec()
            };
            if len >= field.len() {
                let start = at(*p, len - field.len() + 1);
                bytes[start..start + field.len()].copy_from_slice(&field);
            }
        }
        Edit::Varint(p, v) => {
            let start = at(*p, len + 1);
            bytes.splice(start..start, varint(*v));
        }
        Edit::Number(n, v) => replace_number(bytes, *n, *v),
        Edit::Duplicate(from, to, n) if len > 0 => {
            let start = at(*from, len);
            let piece = bytes[start..(start + n).min(len)].to_vec();
            let to = at(*to, len + 1);
            bytes.splice(to..to, piece);
        }
        _ => {}
    }
}

/// Replaces the `n`-th run of ASCII digits (modulo their count) with `v`.
fn replace_number(bytes: &mut Vec<u8>, n: usize, v: u64) {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    if !runs.is_empty() {
        let run = runs[n % runs.len()].clone();
        bytes.splice(run, v.to_string().into_bytes());
    }
}

/// Random bytes, or one of `seeds` with a few edits: most inputs get past the first check
/// of a decoder and reach the deep ones.
pub fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 1..6),
    )
        .prop_map(|(mut bytes, edits)| {
            for e in &edits {
                apply(&mut bytes, e);
            }
            bytes
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => mutated,
    ]
}

/// Cases per decoder: `CAIRN_FUZZ_CASES`, else 2000 (about a second for all of them).
pub fn config() -> Config {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    Config {
        cases,
        // Seeds of failing cases are kept next to the regression inputs, relative to the
        // package root (cargo runs tests there) and replayed before new cases.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fixtures/fuzz-regressions/proptest-seeds.txt",
        ))),
        ..Config::default()
    }
}

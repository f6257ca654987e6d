//! Golden vectors of repository format version 1 (docs/FORMAT.md).
//!
//! Encoders must produce exactly these bytes, and decoders must read the stored vectors
//! (and the archived repository in `tests/fixtures/repo-v1/`): if a test here fails, the
//! on-disk format changed. That needs a new format version and an entry in the "Changes"
//! log of docs/FORMAT.md, never an edit of a vector.
//!
//! Keys are fixed: `id_key` = [7; 32] and, for encrypted vectors, `enc_key` = [9; 32].
//! Sealing draws a random nonce, so encrypted vectors were generated once and are only
//! decoded here.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cairn::catalog::Catalog;
use cairn::engine::TreeReader;
use cairn::model::manifest::{is_valid_point_name, point_name, MANIFEST_VERSION};
use cairn::model::{
    Extent, Layout, Manifest, ManifestId, ModelError, Node, NodeKind, PointKind, PointStats, Tree,
    Xattr,
};
use cairn::repo::index::{self, IndexedPack};
use cairn::repo::pack::{self, PackBuilder};
use cairn::repo::{
    blob, BlobId, BlobKind, ChunkerParams, Config, KeyFile, MasterKey, PackEntry, PackId,
    RepoError, Repository,
};
use cairn::store::{Location, Store};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::support::fixture::noise;

fn plain_key() -> MasterKey {
    MasterKey {
        id_key: [7; 32],
        enc_key: None,
    }
}

fn enc_key() -> MasterKey {
    MasterKey {
        id_key: [7; 32],
        enc_key: Some([9; 32]),
    }
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("golden vectors are hex")
}

/// Too short for zstd to pay: stored raw.
const RAW_TEXT: &[u8] = b"cairn golden blob";
const RAW_ID: &str = "7651d033c372fe692f5736ff34de49b1b75fb0333ba93b6ea23b0241a4fb7062";
/// flag 0x00 | plaintext
const RAW_STORED: &str = "00636169726e20676f6c64656e20626c6f62";

/// "cairn " x 100: compresses.
fn zstd_text() -> Vec<u8> {
    b"cairn ".repeat(100)
}
const ZSTD_ID: &str = "e9505ac76fce003a0e7ce286d4e1648c4ae5dfa898c8fda09ff363ed1fad4134";
/// flag 0x01 | zstd frame (magic 28 b5 2f fd).
const ZSTD_STORED: &str = "0128b52ffd00586d000030636169726e2001004f529522";
const ZSTD_WRITTEN: &str = "0128b52ffd6058016d000030636169726e2001004f529522";

/// The unencrypted pack of the two blobs above, annotated.
const PACK_HEX: &str = concat!(
    "434149524e504b01",                               // "CAIRNPK\x01"
    "00636169726e20676f6c64656e20626c6f62",           // blob 0 at offset 8, 18 bytes
    "0128b52ffd00586d000030636169726e2001004f529522", // blob 1 at offset 26, 23 bytes
    // header (unencrypted: the entries as they are), 2 x 45 bytes
    "00", // kind Data
    "7651d033c372fe692f5736ff34de49b1b75fb0333ba93b6ea23b0241a4fb7062",
    "08000000", // offset 8
    "12000000", // length 18
    "11000000", // raw_len 17
    "00",
    "e9505ac76fce003a0e7ce286d4e1648c4ae5dfa898c8fda09ff363ed1fad4134",
    "1a000000", // offset 26
    "17000000", // length 23
    "58020000", // raw_len 600
    "5a000000", // header length 90, u32 LE
);
const PACK_ID: &str = "a3b511680115c200c7911dd8ee87106cf60c301233d4104b9171aed218bce88e";

/// "CAIRNIX\x01" | zstd(pack id | length u64 | count u32 | entries) for the pack above.
const SEGMENT_HEX: &str = concat!(
    "434149524e49580128b52ffd2086310400a3b511680115c200c7911dd8ee8710",
    "6cf60c301233d4104b9171aed218bce88e8f0000000000000002000000007651",
    "d033c372fe692f5736ff34de49b1b75fb0333ba93b6ea23b0241a4fb70620800",
    "0000120000001100000000e9505ac76fce003a0e7ce286d4e1648c4ae5dfa898",
    "c8fda09ff363ed1fad41341a0000001700000058020000",
);
const SEGMENT_NAME: &str = "index/7336ee54a4b995ca9941a4f36cc4cbe791ccc6e93152fbda9c94b3d0d7ccb4a2";

// Encrypted vectors (enc_key [9; 32]), generated once.
const SEALED_HELLO_HEX: &str = concat!(
    "47e40a0c9e51576ec5212963399cb7de3700b2dee884a5deb0b33b8b5bad93ee",
    "db9dbb3af3de81eb15d16ddae02c4611590630d2b9e2e2898e5d18",
);
const ENC_RAW_BLOB_HEX: &str = concat!(
    "1484ea91077aae8c3d0c18891ca0e7e41079eeb7e6e18ab67251927dff6a0399",
    "6e8aa8c001dcb5c99e8592a090f476f5265a13aa3ad0b8a6833a",
);
/// The two blobs packed in an encrypted repository.
const ENC_PACK_HEX: &str = concat!(
    "434149524e504b01a29cb931724ad67ceecbeb7f1a262b09f1d1d6c54acfebe1",
    "b80e35a2e8055cb874df4902123660b97ad62a1a457027c54f37796f0fe87f13",
    "66c9487d677ff85e54eedd791301114a2c1c221a2c2b20c0d7e0bc537458f30e",
    "e61cd3f36db4a5bd6388e7a8a0bfa1ed76906d4e23c910e6c1634b841389c0e9",
    "91e973705a143d5a6065fcb1acab62d99cfc90df805a55bac42060156caa848a",
    "f37bd1e8330a41843e49f3e5fa64658e0830bff4b741e2848f9dac1cb2f86eb3",
    "443f505b6d73335dd39c7d9693827724610013abdceb20cc1e112e4d2452626b",
    "dfdfd7c417258cad82fc2112ec390792b086b468e7d0d7a2afcd0750800b4b1e",
    "6ee5fc82000000",
);
const ENC_PACK_ID: &str = "0d9ef6527e1e839baefc30ccac6d45ec4c58d6f39b8f300ce84bdbbb64972068";
const ENC_SEGMENT_HEX: &str = concat!(
    "434149524e495801e689331e0b3c4762ab5b4826c2735a4b93d3164f1f916907",
    "8cbba9be171e33b7e3a75a35555d97797e9746d45664435a076baf090b2af10d",
    "7fcb6b1e61ed28e1d20a5008d18f64f96e6d95bb85dae4568ab30ce27592172d",
    "2e39110596c361341eab21dd253b2e27163de24780898ac7a0bac086f18e53cf",
    "7d18318fa9654c90dacf0cd6eef5d74efa44be4f49603af891b31ea03566c151",
    "9553c4f62dbfd77a964d76aea7d788ffb902e0cae80ca45ee36d99d2f22263",
);
const ENC_SEGMENT_NAME: &str =
    "index/fc39a4b2749ff3d43c63b8bef916855f20d832899c32e79d924964b48c46c970";

fn pack_entries() -> Vec<PackEntry> {
    let entry = |id: &str, offset, length, raw_len| PackEntry {
        kind: BlobKind::Data,
        id: BlobId::from_hex(id).unwrap(),
        offset,
        length,
        raw_len,
    };
    vec![entry(RAW_ID, 8, 18, 17), entry(ZSTD_ID, 26, 23, 600)]
}

#[test]
fn blob_ids_are_keyed_blake3_of_the_plaintext() {
    let key = plain_key();
    assert_eq!(hex::encode(key.blob_hash(RAW_TEXT)), RAW_ID);
    assert_eq!(hex::encode(key.blob_hash(&zstd_text())), ZSTD_ID);
    assert_eq!(
        key.blob_hash(RAW_TEXT),
        *blake3::keyed_hash(&[7; 32], RAW_TEXT).as_bytes()
    );
    // The encryption key plays no part: ids only depend on id_key.
    assert_eq!(enc_key().blob_hash(RAW_TEXT), key.blob_hash(RAW_TEXT));
}

#[test]
fn blob_encoding_raw_is_flag_zero_then_the_plaintext() {
    let key = plain_key();
    assert_eq!(hex::encode(blob::encode(&key, RAW_TEXT, 3)), RAW_STORED);
    let id = BlobId::from_hex(RAW_ID).unwrap();
    let back = blob::decode(&key, &id, &unhex(RAW_STORED), RAW_TEXT.len()).unwrap();
    assert_eq!(back, RAW_TEXT);
}

#[test]
fn blob_encoding_zstd_is_flag_one_then_a_zstd_frame() {
    let key = plain_key();
    let id = BlobId::from_hex(ZSTD_ID).unwrap();
    // Today's writer (a one-shot compressor: the frame records its content size). If only
    // this assertion fails after a zstd upgrade, the compressor's output changed, not the
    // format: both vectors must still decode.
    let written = blob::encode(&key, &zstd_text(), 3);
    assert_eq!(hex::encode(&written), ZSTD_WRITTEN);
    assert_eq!(blob::decode(&key, &id, &written, 600).unwrap(), zstd_text());
    // The version-1 vector (a streaming frame without content size) reads as ever.
    let stored = unhex(ZSTD_STORED);
    assert_eq!(blob::decode(&key, &id, &stored, 600).unwrap(), zstd_text());
    assert_eq!(zstd::stream::decode_all(&stored[1..]).unwrap(), zstd_text());
    // raw_len is checked, and unknown flags are refused.
    assert!(blob::decode(&key, &id, &stored, 599).is_err());
    let mut bad_flag = stored.clone();
    bad_flag[0] = 2;
    assert!(matches!(
        blob::decode(&key, &id, &bad_flag, 600),
        Err(RepoError::CorruptBlob { .. })
    ));
}

#[test]
fn sealing_is_xchacha20poly1305_nonce_then_ciphertext_and_tag() {
    let key = enc_key();
    let sealed = key.seal(b"hello, sealed world".to_vec());
    assert_eq!(sealed.len(), 19 + 24 + 16);
    assert_ne!(
        sealed,
        key.seal(b"hello, sealed world".to_vec()),
        "random nonce"
    );
    assert_eq!(key.open(&sealed).unwrap(), b"hello, sealed world");
    // The stored vector, opened by the code and by the AEAD directly (no associated data).
    let golden = unhex(SEALED_HELLO_HEX);
    assert_eq!(key.open(&golden).unwrap(), b"hello, sealed world");
    let cipher = XChaCha20Poly1305::new((&[9u8; 32]).into());
    let (nonce, ct) = golden.split_at(24);
    assert_eq!(
        cipher.decrypt(XNonce::from_slice(nonce), ct).unwrap(),
        b"hello, sealed world"
    );
    let mut tampered = golden.clone();
    tampered[30] ^= 1;
    assert!(matches!(
        key.open(&tampered),
        Err(RepoError::Authentication)
    ));
    // Without encryption, sealing is the identity.
    assert_eq!(plain_key().seal(b"x".to_vec()), b"x");
}

#[test]
fn encrypted_blob_golden_decodes() {
    let key = enc_key();
    let stored = unhex(ENC_RAW_BLOB_HEX);
    assert_eq!(key.open(&stored).unwrap(), unhex(RAW_STORED));
    let id = BlobId::from_hex(RAW_ID).unwrap();
    assert_eq!(blob::decode(&key, &id, &stored, 17).unwrap(), RAW_TEXT);
    assert!(blob::decode(&plain_key(), &id, &stored, 17).is_err());
}

#[test]
fn unencrypted_pack_golden_bytes_and_id() {
    let key = plain_key();
    let mut b = PackBuilder::new();
    b.add(
        BlobKind::Data,
        BlobId::from_hex(RAW_ID).unwrap(),
        &unhex(RAW_STORED),
        17,
    );
    let z = unhex(ZSTD_STORED);
    b.add(BlobKind::Data, BlobId::from_hex(ZSTD_ID).unwrap(), &z, 600);
    let (bytes, id, entries) = b.finish(&key);
    assert_eq!(hex::encode(&bytes), PACK_HEX);
    assert_eq!(id.to_hex(), PACK_ID);
    assert_eq!(
        id,
        PackId(*blake3::hash(&bytes).as_bytes()),
        "unkeyed BLAKE3"
    );
    assert_eq!(id.key(), format!("packs/a3/{PACK_ID}"));
    assert_eq!(entries, pack_entries());

    let golden = unhex(PACK_HEX);
    let pid = PackId::from_key(&format!("packs/a3/{PACK_ID}")).unwrap();
    assert_eq!(
        pack::parse_pack(&key, &pid, &golden).unwrap(),
        pack_entries()
    );
    let tail = &golden[golden.len() - 94..];
    let from_tail = pack::parse_tail(&key, tail, golden.len() as u64).unwrap();
    assert_eq!(from_tail.unwrap(), pack_entries());
    let mut flipped = golden.clone();
    flipped[10] ^= 1;
    assert!(
        pack::parse_pack(&key, &pid, &flipped).is_err(),
        "id mismatch"
    );
}

#[test]
fn encrypted_pack_golden_decodes() {
    let key = enc_key();
    let bytes = unhex(ENC_PACK_HEX);
    assert_eq!(bytes.len(), 263);
    let id = PackId::of(&bytes);
    assert_eq!(id.to_hex(), ENC_PACK_ID);
    let entries = pack::parse_pack(&key, &id, &bytes).unwrap();
    // Each blob grows by the 40 bytes of its seal; the header is 2 x 45 + 40 bytes.
    let expect = |id: &str, offset, length, raw_len| PackEntry {
        kind: BlobKind::Data,
        id: BlobId::from_hex(id).unwrap(),
        offset,
        length,
        raw_len,
    };
    assert_eq!(
        entries,
        vec![expect(RAW_ID, 8, 58, 17), expect(ZSTD_ID, 66, 63, 600)]
    );
    assert_eq!(&bytes[259..], &130u32.to_le_bytes());
    let texts = [RAW_TEXT.to_vec(), zstd_text()];
    for (e, text) in entries.iter().zip(texts) {
        let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
        assert_eq!(
            blob::decode(&key, &e.id, stored, e.raw_len as usize).unwrap(),
            text
        );
    }
    assert!(pack::parse_pack(&plain_key(), &id, &bytes).is_err());
}

#[test]
fn index_segment_golden_bytes_and_name() {
    let key = plain_key();
    let pack = IndexedPack {
        id: PackId::from_key(&format!("packs/a3/{PACK_ID}")).unwrap(),
        length: 143,
        entries: pack_entries(),
    };
    assert_eq!(unhex(PACK_HEX).len(), 143);
    let stored = index::encode_segment(&key, std::slice::from_ref(&pack));
    // Like the zstd blob: the stored vector decoding is what old data needs.
    assert_eq!(hex::encode(&stored), SEGMENT_HEX);
    assert_eq!(index::index_key(&stored), SEGMENT_NAME);
    let golden = unhex(SEGMENT_HEX);
    assert_eq!(
        index::decode_segment(&key, SEGMENT_NAME, &golden).unwrap(),
        vec![pack.clone()]
    );
    // The body, by hand: pack id | length u64 LE | count u32 LE | 45-byte entries.
    let body = zstd::stream::decode_all(&golden[8..]).unwrap();
    assert_eq!(&body[..32], &unhex(PACK_ID)[..]);
    assert_eq!(&body[32..44], &[143, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(&body[44..], &unhex(PACK_HEX)[49..139]);
    // A segment must match its name.
    assert!(index::decode_segment(&key, ENC_SEGMENT_NAME, &golden).is_err());

    let enc = unhex(ENC_SEGMENT_HEX);
    let packs = index::decode_segment(&enc_key(), ENC_SEGMENT_NAME, &enc).unwrap();
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0].id.to_hex(), ENC_PACK_ID);
    assert_eq!(packs[0].length, 263);
    assert_eq!(packs[0].entries[1].offset, 66);
}

/// A directory, a file (data + hole extents, an xattr) and a symlink.
fn golden_tree() -> Tree {
    let mut dir = Node::new(b"dir".to_vec(), NodeKind::Dir);
    dir.mode = 0o755;
    dir.uid = 1000;
    dir.gid = 1000;
    dir.mtime_ns = 1_700_000_000_123_456_789;
    dir.ctime_ns = 1_700_000_000_123_456_790;
    dir.inode = 2;
    dir.dev = 0x803;
    dir.nlink = 2;
    dir.subtree = Some(BlobId([0x11; 32]));
    let mut file = Node::new(b"file".to_vec(), NodeKind::File);
    file.mode = 0o644;
    file.uid = 1000;
    file.gid = 100;
    file.size = 17 + 4096;
    file.mtime_ns = 1_700_000_000_000_000_000;
    file.ctime_ns = 1_700_000_001_000_000_000;
    file.inode = 12;
    file.dev = 0x803;
    file.content = vec![
        Extent::Data {
            id: BlobId::from_hex(RAW_ID).unwrap(),
            len: 17,
        },
        Extent::Hole { len: 4096 },
    ];
    file.xattrs = vec![Xattr {
        name: b"user.k".to_vec(),
        value: b"v\0".to_vec(),
    }];
    let mut link = Node::new(b"link".to_vec(), NodeKind::Symlink);
    link.mode = 0o777;
    link.mtime_ns = -1_500_000_000;
    link.ctime_ns = 5;
    link.inode = 13;
    link.dev = 0x803;
    link.target = b"file".to_vec();
    Tree {
        nodes: vec![dir, file, link],
    }
}

/// Version byte, then postcard: struct fields in order, unsigned integers as LEB128
/// varints, i64 zigzag-then-varint, byte strings and sequences as varint length + items,
/// enum variants as a varint index, Option as 00 / 01 + value, [u8; 32] as 32 raw bytes.
const TREE_HEX: &str = concat!(
    "01", // tree version 1
    "03", // 3 nodes
    // "dir"
    "03646972",           // name: length 3, "dir"
    "01",                 // kind: Dir (variant 1)
    "ed03",               // mode 0o755 = 493
    "e807",               // uid 1000
    "e807",               // gid 1000
    "00",                 // size 0
    "aab4aed8c7bfce972f", // mtime_ns 1700000000123456789 (zigzag)
    "acb4aed8c7bfce972f", // ctime_ns 1700000000123456790
    "02",                 // inode 2
    "8310",               // dev 0x803
    "02",                 // nlink 2
    "00",                 // rdev 0
    "00",                 // target: empty
    "00",                 // content: no extents
    "01",                 // subtree: Some
    "1111111111111111111111111111111111111111111111111111111111111111",
    "00", // xattrs: none
    // "file"
    "0466696c65",         // name "file"
    "00",                 // kind: File
    "a403",               // mode 0o644
    "e807",               // uid 1000
    "64",                 // gid 100
    "9120",               // size 4113
    "8080d0e2c6bfce972f", // mtime_ns 1700000000000000000
    "80a8a69ccebfce972f", // ctime_ns 1700000001000000000
    "0c",                 // inode 12
    "8310",               // dev
    "01",                 // nlink 1
    "00",                 // rdev
    "00",                 // target: empty
    "02",                 // content: 2 extents
    "00",                 // Extent::Data
    "7651d033c372fe692f5736ff34de49b1b75fb0333ba93b6ea23b0241a4fb7062",
    "11",             // len 17
    "01",             // Extent::Hole
    "8020",           // len 4096
    "00",             // subtree: None
    "01",             // xattrs: 1
    "06757365722e6b", // name "user.k"
    "027600",         // value "v\0"
    // "link"
    "046c696e6b", // name "link"
    "02",         // kind: Symlink
    "ff03",       // mode 0o777
    "00",         // uid 0
    "00",         // gid 0
    "00",         // size 0
    "ffbbc1960b", // mtime_ns -1500000000 (zigzag 2999999999)
    "0a",         // ctime_ns 5 (zigzag 10)
    "0d",         // inode 13
    "8310",       // dev
    "01",         // nlink 1
    "00",         // rdev
    "0466696c65", // target "file"
    "00",         // content: none
    "00",         // subtree: None
    "00",         // xattrs: none
);

#[test]
fn tree_golden_bytes() {
    let tree = golden_tree();
    assert_eq!(hex::encode(tree.encode()), TREE_HEX);
    assert_eq!(Tree::decode(&unhex(TREE_HEX)).unwrap(), tree);
    // A tree is a blob like any other: its id is the keyed hash of these bytes.
    assert_eq!(
        plain_key().blob_hash(&unhex(TREE_HEX)),
        *blake3::keyed_hash(&[7; 32], &unhex(TREE_HEX)).as_bytes()
    );
}

#[test]
fn tree_decoder_enforces_the_validation_rules() {
    let good = golden_tree();
    let refused = |mutate: &dyn Fn(&mut Tree)| {
        let mut t = good.clone();
        mutate(&mut t);
        Tree::decode(&t.encode()).unwrap_err()
    };
    assert!(matches!(
        refused(&|t| t.nodes.swap(0, 1)),
        ModelError::Tree(_)
    ));
    assert!(matches!(
        refused(&|t| t.nodes[1].name = b"dir".to_vec()),
        ModelError::Tree(_)
    ));
    for name in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let err = refused(&|t| t.nodes[0].name = name.to_vec());
        assert!(matches!(err, ModelError::UnsafeName(_)), "{name:?}");
    }
    assert!(matches!(
        refused(&|t| t.nodes[0].subtree = None),
        ModelError::Tree(_)
    ));
    assert!(matches!(
        refused(&|t| t.nodes[1].size = 4112),
        ModelError::Tree(_)
    ));
    let mut v2 = unhex(TREE_HEX);
    v2[0] = 2;
    assert!(Tree::decode(&v2).is_err());
    assert!(Tree::decode(&[]).is_err());
    assert!(Tree::decode(&unhex(TREE_HEX)[..40]).is_err(), "truncated");
}

const MANIFEST_JSON: &str = concat!(
    r#"{"version":1,"instance":"redis-prod","name":"2026-11-22T031522Z-before-upgrade","#,
    r#""kind":"manual","time_ns":1795317322000000000,"#,
    r#""parent":"2222222222222222222222222222222222222222222222222222222222222222","#,
    r#""root":[51,51,51,51,51,51,51,51,51,51,51,51,51,51,51,51,"#,
    r#"51,51,51,51,51,51,51,51,51,51,51,51,51,51,51,51],"#,
    r#""layout":"single","paths":["/srv/redis"],"host":"db1","#,
    r#""stats":{"files":3,"dirs":1,"bytes":4113,"new_bytes":17,"stored_bytes":300,"#,
    r#""files_read":1,"warnings":0}}"#,
);
const MANIFEST_ID: &str = "7a422f53ecaa4b8cab26d7da7454e37d4f3676aeedcb026adda6693e42a30c84";
const SEALED_MANIFEST_HEX: &str = concat!(
    "0a9828af5ea9db38b59333ad9d11a3f0c4abae15cae2cf8533121bb7bbfd3e00",
    "0a692599acda2d15ccde386cd8ccf4297e006f958faeba954563a0aff884027b",
    "694f4f1e955b9d18529f60d45d76abc8d5337c330d6b966e233e00740fb875f7",
    "d6751ba155afc05d30632b232466a0b6de43412b2f8c14374bdfb83a9c3a1c76",
    "8d5eb811581b1a0ab904e208763c6f8cf4a35c58e675cdda89c5607f6042e3f4",
    "3ec0a68418c708deeb0a96d5d5118198bdbf784ea0b0d16df7507175be454a67",
    "78a3b2c6df55dddde498b641f45743112cb328a203bc45b7ecca99ccc06ef5cf",
    "a80114731ddabf0f082339e8d98a0328b0d58b2124db482fb26063384eda929d",
    "792c1ccbbb5e0f006d7f8fe0534f04c0ee52fd4fcc5ee94a8f6d4fe5e13d9484",
    "349b8759b289bfdcc1c344747bb71fed3db97fbd2fb56e8a7f471e83fa9927ca",
    "fb796f6b5639ca2d08f08647a3dfedc06b9e194c57bbf40e092c336ee649c29b",
    "36f4291ef5e580ff8740ddc4e666cd3a2d355e0e2e5404a02d4e68701aa8aba8",
    "56008375f299355d5e1105c9e3cb1f9d09e89a94c6df6bc4fc217367aee28c71",
    "d276e08dc2397660d5bfdd6e74ae60e776a899e5485b6c40a48d5a2846da7881",
    "04089b6846214852a1136286669eaffc2bca858e8a5a3c78d76df84c30d9dae0",
    "da49bafe707d096da73d063d8263763dd40ba4f75217eeb40f",
);

fn golden_manifest() -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        instance: "redis-prod".into(),
        name: point_name(
            1_795_317_322_000_000_000,
            PointKind::Manual,
            Some("before-upgrade"),
        ),
        kind: PointKind::Manual,
        time_ns: 1_795_317_322_000_000_000,
        parent: Some("22".repeat(32)),
        root: BlobId([0x33; 32]),
        layout: Layout::Single,
        paths: vec!["/srv/redis".into()],
        host: "db1".into(),
        stats: PointStats {
            files: 3,
            dirs: 1,
            bytes: 4113,
            new_bytes: 17,
            stored_bytes: 300,
            files_read: 1,
            warnings: 0,
        },
        excludes: Vec::new(),
        root_meta: None,
        streams: Vec::new(),
        warnings: Vec::new(),
        copied_from: None,
    }
}

#[test]
fn manifest_golden_json_and_id() {
    let key = plain_key();
    let m = golden_manifest();
    let (id, json) = m.encode(&key);
    assert_eq!(String::from_utf8(json).unwrap(), MANIFEST_JSON);
    assert_eq!(id.to_hex(), MANIFEST_ID);
    assert_eq!(
        id.0,
        *blake3::keyed_hash(&[7; 32], MANIFEST_JSON.as_bytes()).as_bytes()
    );
    assert_eq!(
        Manifest::object_key("redis-prod", &id),
        format!("points/redis-prod/{MANIFEST_ID}")
    );
    let id = ManifestId::from_hex(MANIFEST_ID).unwrap();
    let back = Manifest::decode(&key, &id, "redis-prod", MANIFEST_JSON.as_bytes()).unwrap();
    assert_eq!(back, m);
    assert!(Manifest::decode(&key, &id, "other", MANIFEST_JSON.as_bytes()).is_err());
    let edited = MANIFEST_JSON.replace("db1", "db2");
    assert!(Manifest::decode(&key, &id, "redis-prod", edited.as_bytes()).is_err());

    // Sealed as stored in an encrypted repository.
    let json = enc_key().open(&unhex(SEALED_MANIFEST_HEX)).unwrap();
    assert_eq!(json, MANIFEST_JSON.as_bytes());
    assert_eq!(
        Manifest::decode(&enc_key(), &id, "redis-prod", &json).unwrap(),
        m
    );
}

#[test]
fn point_name_grammar() {
    let t = 1_795_317_322_000_000_000;
    assert_eq!(point_name(t, PointKind::Manual, None), "2026-11-22T031522Z");
    assert_eq!(
        point_name(t, PointKind::Scheduled, None),
        "2026-11-22T031522Z-auto"
    );
    for ok in [
        "2026-11-22T031522Z",
        "2026-11-22T030000Z-auto",
        "2026-11-22T031522Z-before-upgrade_2",
    ] {
        assert!(is_valid_point_name(ok), "{ok}");
    }
    for bad in [
        "2026-11-22T03:15:22Z",
        "2026-11-22T031522Z-",
        "2026-11-22T031522Z-a b",
        "2026-13-22T031522Z",
        "2026-11-22T031522",
        "latest",
        // Non-canonical stamps would not sort by time.
        " 2026-1-22T031522Z",
        "+2026-1-22T031522Z",
    ] {
        assert!(!is_valid_point_name(bad), "{bad}");
    }
}

/// Regression: a name with a multi-byte character across byte 18 (from a control-file
/// request or a crafted manifest) panicked the check instead of being refused.
#[test]
fn point_name_check_refuses_multibyte_at_the_stamp_end() {
    assert!(!is_valid_point_name("2026-11-22T031522\u{e9}x"));
    assert!(!is_valid_point_name("2026-11-22T03152\u{e9}-x"));
}

const CONFIG_V1_PLAIN: &str = r#"{
  "format": "cairn",
  "version": 1,
  "id": "00112233445566778899aabbccddeeff",
  "encryption": "none",
  "chunker": {
    "min_size": 262144,
    "avg_size": 1048576,
    "max_size": 4194304
  },
  "pack_size": 16777216,
  "zstd_level": 3,
  "id_key": "0707070707070707070707070707070707070707070707070707070707070707"
}"#;

#[test]
fn config_v1_parses_and_other_versions_are_refused() {
    let c = Config::parse(CONFIG_V1_PLAIN.as_bytes()).unwrap();
    assert_eq!(c.version, 1);
    assert!(!c.encrypted());
    assert_eq!(c.chunker, ChunkerParams::default());
    assert_eq!((c.pack_size, c.zstd_level), (16 << 20, 3));
    assert_eq!(c.plain_master().unwrap(), plain_key());
    // What init writes today reads back the same.
    let written = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(written, CONFIG_V1_PLAIN);

    let v2 = CONFIG_V1_PLAIN.replace(r#""version": 1"#, r#""version": 2"#);
    assert!(matches!(
        Config::parse(v2.as_bytes()),
        Err(RepoError::UnsupportedVersion(2))
    ));
    let not_cairn = CONFIG_V1_PLAIN.replace(r#""cairn""#, r#""restic""#);
    assert!(Config::parse(not_cairn.as_bytes()).is_err());
    let aes = CONFIG_V1_PLAIN.replace(r#""none""#, r#""aes-gcm""#);
    assert!(Config::parse(aes.as_bytes()).is_err());
    let tiny = CONFIG_V1_PLAIN.replace("262144", "32");
    assert!(Config::parse(tiny.as_bytes()).is_err());
    // Regression: the id names the catalog's directory, so it must not be a path.
    for id in ["../../../../etc/cron.d", "/etc", "", "0011"] {
        let bad = CONFIG_V1_PLAIN.replace("00112233445566778899aabbccddeeff", id);
        assert!(Config::parse(bad.as_bytes()).is_err(), "{id}");
    }
}

const KEY_SEALED: &str = concat!(
    "2a461ea4b9b70ce43b202617b81b7e289e331d41f6c38c4e29200a1f08ed7835",
    "807fb400a7791d2846c253eae818081591aa99d17afa5a4815ef190e51333a59",
    "0b5018761166909befa909864c6d8a482382491961011b6c02687afce7e4812c",
    "bd0cd370ebe58730c756c235ed8b1f539a808f87d9138c2500fa026ef231a49b",
    "4f7b38858091872b40e09795fda74e85944e82bc7948f4ef52cf225e72e86231",
    "4c45ea095f5ca6159fee474db20c210692be076efa3a162a8c12dc01dc41aeb3",
);

/// An encrypted repository made of a literal config and key file opens with the password.
#[test]
fn encrypted_config_and_key_file_golden_open() {
    let key_file = format!(
        r#"{{"version":1,"repo_id":"00112233445566778899aabbccddeeff","kdf":"argon2id",
            "params":{{"m_cost_kib":64,"t_cost":1,"p_cost":1}},
            "salt":"eb47661dff41e0f863e93ff518e215a4","sealed":"{KEY_SEALED}"}}"#
    );
    let parsed: KeyFile = serde_json::from_str(&key_file).unwrap();
    let material = parsed.unlock(b"golden password").unwrap().unwrap();
    assert_eq!((material.master, material.config), (enc_key(), None));
    assert_eq!(parsed.unlock(b"wrong password").unwrap(), None);
    // The sealed key material is the master key as JSON.
    let kek = parsed
        .params
        .derive(b"golden password", &unhex(&parsed.salt))
        .unwrap();
    let material = XChaCha20Poly1305::new((&kek).into())
        .decrypt(
            XNonce::from_slice(&unhex(KEY_SEALED)[..24]),
            &unhex(KEY_SEALED)[24..],
        )
        .unwrap();
    let expected = format!(r#"{{"id_key":{:?},"enc_key":{:?}}}"#, [7u8; 32], [9u8; 32]);
    assert_eq!(
        String::from_utf8(material).unwrap(),
        expected.replace(' ', "")
    );

    let config = r#"{"format":"cairn","version":1,"id":"00112233445566778899aabbccddeeff",
        "encryption":"xchacha20poly1305",
        "chunker":{"min_size":262144,"avg_size":1048576,"max_size":4194304},
        "pack_size":16777216,"zstd_level":3}"#;
    let store = Store::open(&Location::Memory).unwrap();
    store.put_new("config", Bytes::from(config)).unwrap();
    // A key file is named by the first 16 hex digits of BLAKE3 of its bytes.
    let key_name = format!("keys/{}", &blake3::hash(key_file.as_bytes()).to_hex()[..16]);
    store.put_new(&key_name, Bytes::from(key_file)).unwrap();
    assert!(matches!(
        Repository::open(store.clone(), None),
        Err(RepoError::PasswordRequired)
    ));
    assert!(matches!(
        Repository::open(store.clone(), Some(b"nope")),
        Err(RepoError::WrongPassword)
    ));
    let repo = Repository::open(store, Some(b"golden password")).unwrap();
    assert_eq!(*repo.key(), enc_key());
    assert!(repo.config().encrypted());
}

// ---- The archived repository -------------------------------------------------------

/// Password of `tests/fixtures/repo-v1` (argon2id with `KdfParams::insecure_fast`).
const FIXTURE_PASSWORD: &[u8] = b"cairn fixture v1";
const FIXTURE_INSTANCE: &str = "fixture";
const FIXTURE_POINTS: [&str; 2] = ["2026-11-22T031522Z-first", "2026-11-23T030000Z-auto"];

/// Files of the fixture's points: (path, mode, content in point 1, content in point 2).
fn fixture_files() -> Vec<(&'static str, u32, Vec<u8>, Vec<u8>)> {
    let notes = b"the quick brown fox jumps over the lazy dog\n".repeat(200);
    let mut sparse = vec![0u8; 1 << 20];
    sparse[..4096].copy_from_slice(&noise(8, 4096));
    sparse[512 << 10..(512 << 10) + 4].copy_from_slice(b"tail");
    vec![
        (
            "hello.txt",
            0o640,
            b"hello from cairn v1\n".to_vec(),
            b"hello again, v1\n".to_vec(),
        ),
        ("docs/notes.md", 0o644, notes.clone(), notes),
        (
            "data/noise.bin",
            0o600,
            noise(7, 16 << 10),
            noise(7, 16 << 10),
        ),
        ("data/empty", 0o644, Vec::new(), Vec::new()),
        ("data/sparse.img", 0o644, sparse.clone(), sparse),
    ]
}
const FIXTURE_MTIME_NS: i64 = 1_700_000_000_000_000_007;
const FIXTURE_LINK: (&str, &str) = ("docs/link", "../hello.txt");

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Finds a node by a `/`-separated path below a root tree.
fn lookup(reader: &TreeReader, root: &BlobId, path: &str) -> Node {
    let mut tree = reader.tree(root).unwrap();
    let mut parts = path.split('/').peekable();
    loop {
        let part = parts.next().unwrap();
        let node = tree
            .find(part.as_bytes())
            .unwrap_or_else(|| panic!("{path}"))
            .clone();
        if parts.peek().is_none() {
            return node;
        }
        tree = reader.tree(&node.subtree.unwrap()).unwrap();
    }
}

/// A file's bytes, blob by blob (each checked against its id), holes as zeros.
fn read_content(reader: &TreeReader, node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &node.content {
        match e {
            Extent::Data { id, len } => {
                let data = reader.blobs().read_blob(id, BlobKind::Data).unwrap();
                assert_eq!(data.len(), *len as usize);
                out.extend_from_slice(&data);
            }
            Extent::Hole { len } => out.resize(out.len() + *len as usize, 0),
        }
    }
    out
}

fn check_fixture_points(repo: &Repository, catalog: Arc<Catalog>) {
    let points = catalog.points(Some(FIXTURE_INSTANCE)).unwrap();
    let names: Vec<&str> = points.iter().map(|p| p.manifest.name.as_str()).collect();
    assert_eq!(names, FIXTURE_POINTS);
    assert_eq!(points[0].manifest.parent, None);
    assert_eq!(points[1].manifest.parent, Some(points[0].id.to_hex()));
    assert_eq!(points[1].manifest.kind, PointKind::Scheduled);
    let reader = TreeReader::new(repo.clone(), catalog);
    for (i, point) in points.iter().enumerate() {
        let root = point.manifest.root;
        assert_eq!(point.manifest.layout, Layout::Single);
        let tree = reader.tree(&root).unwrap();
        let names: Vec<&[u8]> = tree.nodes.iter().map(|n| n.name.as_slice()).collect();
        assert_eq!(names, [&b"data"[..], b"docs", b"hello.txt"]);
        for (path, mode, first, second) in fixture_files() {
            let node = lookup(&reader, &root, path);
            assert_eq!(node.kind, NodeKind::File, "{path}");
            assert_eq!(node.mode, mode, "{path}");
            assert_eq!(node.mtime_ns, FIXTURE_MTIME_NS, "{path}");
            let want = if i == 0 { first } else { second };
            assert_eq!(node.size, want.len() as u64, "{path}");
            assert!(read_content(&reader, &node) == want, "{path} differs");
        }
        let sparse = lookup(&reader, &root, "data/sparse.img");
        assert!(sparse
            .content
            .iter()
            .any(|e| matches!(e, Extent::Hole { .. })));
        let link = lookup(&reader, &root, FIXTURE_LINK.0);
        assert_eq!(link.kind, NodeKind::Symlink);
        assert_eq!(link.target, FIXTURE_LINK.1.as_bytes());
    }
}

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1")
}

/// The archived v1 repository opens, its catalog rebuilds, and every file reads back.
#[test]
fn archived_v1_repository_reads_back() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("repo");
    copy_dir(&fixture_dir(), &copy);
    let store = Store::open(&Location::Local(copy.clone())).unwrap();
    assert!(matches!(
        Repository::open(store.clone(), Some(b"wrong")),
        Err(RepoError::WrongPassword)
    ));
    let repo = Repository::open(store.clone(), Some(FIXTURE_PASSWORD)).unwrap();
    assert_eq!(repo.config().version, 1);
    assert!(repo.config().encrypted());

    let catalog = Arc::new(Catalog::open(&work.path().join("catalog.sqlite")).unwrap());
    let stats = catalog.rebuild(&repo).unwrap();
    assert_eq!(stats.new_points, 2);
    assert_eq!(
        stats.recovered_packs, 0,
        "every pack is in an index segment"
    );
    assert_eq!((stats.bad_segments, stats.bad_points), (0, 0));
    let packs = catalog.packs().unwrap();
    assert!(packs.len() >= 2, "data and tree packs");
    for (id, length, present) in &packs {
        assert!(present);
        let (bytes, _) = repo.read_pack(id).unwrap();
        assert_eq!(bytes.len() as u64, *length);
    }
    check_fixture_points(&repo, catalog);

    // Without its index segments, the packs' own headers rebuild the same catalog.
    for seg in store.list("index/").unwrap() {
        store.delete(&seg.key).unwrap();
    }
    let catalog = Arc::new(Catalog::open(&work.path().join("recovered.sqlite")).unwrap());
    let stats = catalog.rebuild(&repo).unwrap();
    assert_eq!(stats.recovered_packs, packs.len() as u64);
    check_fixture_points(&repo, catalog);
}

/// Writes the fixture repository. It was run once, by hand, to make
/// `tests/fixtures/repo-v1`; that directory must never be regenerated (old data is what
/// it stands for). A future format version gets its own generator and directory:
/// `CAIRN_FIXTURE_OUT=/abs/new/dir cargo test --test integration generate_fixture -- --ignored`
#[test]
#[ignore = "generator of an archived fixture; run by hand only"]
fn generate_fixture_repo_v1() {
    use cairn::engine::{backup, BackupRequest, CancelToken, NoProgress};
    use cairn::repo::{InitOptions, KdfParams};
    use std::os::unix::fs::PermissionsExt;

    let out = std::env::var_os("CAIRN_FIXTURE_OUT").expect("set CAIRN_FIXTURE_OUT");
    let out = Path::new(&out);
    assert!(!out.exists(), "{} exists", out.display());
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let write_point = |n: usize| {
        for (path, mode, first, second) in fixture_files() {
            let p = src.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let data = if n == 0 { first } else { second };
            if path.ends_with("sparse.img") {
                use std::io::{Seek, SeekFrom, Write};
                let _ = fs::remove_file(&p);
                let mut f = fs::File::create(&p).unwrap();
                f.write_all(&data[..4096]).unwrap();
                f.seek(SeekFrom::Start(512 << 10)).unwrap();
                f.write_all(b"tail").unwrap();
                f.set_len(data.len() as u64).unwrap();
            } else {
                fs::write(&p, &data).unwrap();
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
            let t = libc::timespec {
                tv_sec: FIXTURE_MTIME_NS / 1_000_000_000,
                tv_nsec: FIXTURE_MTIME_NS % 1_000_000_000,
            };
            let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
            assert_eq!(rc, 0);
        }
        let link = src.join(FIXTURE_LINK.0);
        if !link.exists() {
            std::os::unix::fs::symlink(FIXTURE_LINK.1, link).unwrap();
        }
    };
    let mut opts = InitOptions::encrypted(FIXTURE_PASSWORD);
    opts.kdf = KdfParams::insecure_fast();
    let store = Store::open(&Location::Local(out.to_path_buf())).unwrap();
    let repo = Repository::init(store, &opts).unwrap();
    let catalog = Arc::new(Catalog::open(&work.path().join("catalog.sqlite")).unwrap());
    let times = [1_795_317_322_000_000_000, 1_795_402_800_000_000_000];
    for (n, time) in times.into_iter().enumerate() {
        write_point(n);
        let mut req = BackupRequest::new(FIXTURE_INSTANCE, vec![src.clone()]);
        req.time_ns = Some(time);
        if n == 0 {
            req.label = Some("first".into());
        } else {
            req.kind = PointKind::Scheduled;
        }
        let done = backup(&repo, &catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
        assert_eq!(done.manifest.name, FIXTURE_POINTS[n]);
    }
}

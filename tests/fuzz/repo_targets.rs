//! Decoders of `src/repo`: pack headers, parity objects, index segments, blobs, prune
//! plans, `config` and key files. Inputs are judged with the key of an unencrypted repository (whose
//! objects an attacker can forge) and, where sealing is involved, an encrypted one too.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use cairn::repo::index::{decode_segment, encode_segment, index_key};
use cairn::repo::pack::{decode_entries, encode_entries, parse_pack, parse_tail, PackBuilder};
use cairn::repo::parity::{self, Parity};
use cairn::repo::PackId;
use cairn::repo::{blob, BlobId, BlobKind, Config, EccConfig, IndexedPack, KeyFile, PackEntry};
use cairn::repo::{KdfParams, MasterKey, PrunePlan, RepoError, Repository};
use cairn::store::Store;
use object_store::memory::InMemory;

use super::bounded;
use super::model_targets::plain_key;

fn sealing_key() -> MasterKey {
    MasterKey {
        id_key: [8; 32],
        enc_key: Some([9; 32]),
    }
}

fn entry(i: u8, offset: u32, length: u32) -> PackEntry {
    PackEntry {
        kind: if i.is_multiple_of(2) {
            BlobKind::Data
        } else {
            BlobKind::Tree
        },
        id: BlobId([i; 32]),
        offset,
        length,
        raw_len: length * 2,
    }
}

pub fn pack_seeds() -> Vec<Vec<u8>> {
    let mut b = PackBuilder::new();
    b.add(BlobKind::Data, BlobId([1; 32]), b"first blob", 20);
    b.add(BlobKind::Tree, BlobId([2; 32]), b"second", 6);
    b.add(BlobKind::Data, BlobId([3; 32]), &[0xaa; 100], 300);
    let (whole, _, _) = b.finish(&plain_key());
    let (empty, _, _) = PackBuilder::new().finish(&plain_key());
    vec![whole, empty]
}

/// A pack as the store holds it (header at the tail), and its header entries alone.
pub fn check_pack(bytes: &[u8]) -> bool {
    let mut accepted = false;
    for key in [plain_key(), sealing_key()] {
        let len = bytes.len() as u64;
        if let Ok(Ok(entries)) = bounded(bytes, || parse_tail(&key, bytes, len)) {
            let header = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
            let data_end = len - 4 - header as u64;
            for e in &entries {
                assert!(
                    e.offset >= 8 && e.offset as u64 + e.length as u64 <= data_end,
                    "{e:?}"
                );
            }
        }
        accepted |= bounded(bytes, || parse_pack(&key, &PackId::of(bytes), bytes)).is_ok();
    }
    if let Ok(entries) = bounded(bytes, || decode_entries(bytes)) {
        let mut again = Vec::new();
        encode_entries(&entries, &mut again);
        assert_eq!(again, bytes, "pack entries re-encode byte for byte");
    }
    accepted
}

/// The pack the parity seeds protect.
fn parity_pack() -> (Vec<u8>, PackId) {
    let bytes: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
        .collect();
    let id = PackId::of(&bytes);
    (bytes, id)
}

pub fn parity_seeds() -> Vec<Vec<u8>> {
    let (pack, id) = parity_pack();
    vec![
        parity::encode(&pack, &id, 5),
        parity::encode(&pack, &id, 50),
    ]
}

/// A parity object, parsed against the pack id it names and used to rebuild that pack
/// with a flipped byte: what it rebuilds always matches the id.
pub fn check_parity(bytes: &[u8]) -> bool {
    let Some(named) = bytes.get(8..40) else {
        return false;
    };
    let id = PackId(named.try_into().unwrap());
    let Ok(parity) = bounded(bytes, || Parity::parse(bytes, &id)) else {
        return false;
    };
    let (mut pack, _) = parity_pack();
    pack[1000] ^= 1;
    if let Ok(rebuilt) = bounded(bytes, || parity.rebuild(&pack)) {
        assert_eq!(PackId::of(&rebuilt.bytes), id);
    }
    true
}

pub fn index_seeds() -> Vec<Vec<u8>> {
    let packs = vec![
        IndexedPack {
            id: PackId([5; 32]),
            length: 1 << 20,
            entries: vec![entry(1, 8, 100), entry(2, 108, 4000)],
        },
        IndexedPack {
            id: PackId([6; 32]),
            length: 77,
            entries: Vec::new(),
        },
    ];
    vec![
        encode_segment(&plain_key(), &packs),
        encode_segment(&plain_key(), &[]),
    ]
}

/// Records as they are once unsealed and decompressed (so edits reach the record parser).
pub fn index_body_seeds() -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    body.extend_from_slice(&[5; 32]);
    body.extend_from_slice(&(1u64 << 20).to_le_bytes());
    body.extend_from_slice(&2u32.to_le_bytes());
    encode_entries(&[entry(1, 8, 100), entry(2, 108, 4000)], &mut body);
    vec![body]
}

pub fn check_index(bytes: &[u8]) -> bool {
    let key = plain_key();
    let name = index_key(bytes);
    let Ok(packs) = bounded(bytes, || decode_segment(&key, &name, bytes)) else {
        return false;
    };
    let again = encode_segment(&key, &packs);
    let back = decode_segment(&key, &index_key(&again), &again).unwrap();
    assert_eq!(back, packs);
    true
}

/// The same decoder, given a body that is compressed and wrapped here.
pub fn check_index_body(body: &[u8]) -> bool {
    let mut stored = b"CAIRNIX\x01".to_vec();
    stored.extend_from_slice(&zstd::bulk::compress(body, 1).unwrap());
    check_index(&stored)
}

const BLOB_LEN: usize = 4096;

pub fn blob_seeds() -> Vec<Vec<u8>> {
    let text: Vec<u8> = b"cairn blob "
        .iter()
        .copied()
        .cycle()
        .take(BLOB_LEN)
        .collect();
    let noise: Vec<u8> = (0..BLOB_LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        blob::encode(&plain_key(), &text, 3),
        blob::encode(&plain_key(), &noise, 3),
    ]
}

/// A stored blob whose index entry says 4096 bytes.
pub fn check_blob(bytes: &[u8]) -> bool {
    let key = plain_key();
    let Some(body) = bytes.get(1..) else {
        return false;
    };
    // The id of what the blob holds as the harness reads it (raw, or zstd if that
    // decompresses), so that edited blobs can still decode and reach the checks after.
    let content = match zstd::bulk::decompress(body, BLOB_LEN) {
        Ok(plain) if bytes[0] == 1 => plain,
        _ => body.to_vec(),
    };
    let id = BlobId(key.blob_hash(&content));
    let Ok(plain) = bounded(bytes, || blob::decode(&key, &id, bytes, BLOB_LEN)) else {
        return false;
    };
    assert_eq!(plain.len(), BLOB_LEN);
    assert_eq!(BlobId(key.blob_hash(&plain)), id);
    true
}

pub fn prune_plan_seeds() -> Vec<Vec<u8>> {
    let plan = PrunePlan {
        version: 1,
        created_ns: 1_795_000_000_000_000_000,
        not_before_ns: 1_795_086_400_000_000_000,
        host: "host-1".into(),
        packs: vec![PackId([3; 32]).to_hex(), PackId([4; 32]).to_hex()],
    };
    vec![plan.encode(&plain_key()).1]
}

pub fn check_prune_plan(bytes: &[u8]) -> bool {
    let key = plain_key();
    let name = format!("prune/{}", hex::encode(key.blob_hash(bytes)));
    let Ok(plan) = bounded(bytes, || PrunePlan::decode(&key, &name, bytes)) else {
        return false;
    };
    let _ = plan.pack_ids();
    let (name2, json) = plan.encode(&key);
    assert_eq!(PrunePlan::decode(&key, &name2, &json).unwrap(), plan);
    true
}

pub fn config_seeds() -> Vec<Vec<u8>> {
    vec![
        serde_json::to_vec_pretty(&Config::new(false, &plain_key())).unwrap(),
        serde_json::to_vec(&Config::new(true, &sealing_key())).unwrap(),
        serde_json::to_vec(&Config {
            ecc: Some(EccConfig { percent: 10 }),
            ..Config::new(false, &plain_key())
        })
        .unwrap(),
    ]
}

pub fn check_config(bytes: &[u8]) -> bool {
    let Ok(config) = bounded(bytes, || Config::parse(bytes)) else {
        return false;
    };
    let _ = config.plain_master();
    let json = serde_json::to_vec(&config).unwrap();
    assert_eq!(Config::parse(&json).unwrap(), config);
    true
}

const PASSWORD: &[u8] = b"fuzz password";

/// An encrypted repository's `config`, and a key file of it with cheap parameters.
fn key_repo() -> &'static (Store, Vec<u8>) {
    static REPO: OnceLock<(Store, Vec<u8>)> = OnceLock::new();
    REPO.get_or_init(|| {
        let store = Store::from_object_store(Arc::new(InMemory::new()), "fuzz".into()).unwrap();
        let mut config = Config::new(true, &sealing_key());
        // Fixed, so that kept key files belong to this repository.
        config.id = "00112233445566778899aabbccddeeff".into();
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let file = KeyFile::create(
            &config_bytes,
            &config.id,
            &sealing_key(),
            PASSWORD,
            KdfParams::insecure_fast(),
        )
        .unwrap();
        store.put("config", config_bytes.into()).unwrap();
        (store, serde_json::to_vec_pretty(&file).unwrap())
    })
}

pub fn key_file_seeds() -> Vec<Vec<u8>> {
    vec![key_repo().1.clone()]
}

/// Costly but valid parameters are a real key's choice, not a decoder fault: such an
/// input is not derived here (it would only measure Argon2).
fn costly(file: &KeyFile) -> bool {
    let p = file.params;
    p.m_cost_kib > 8 * 1024 && p.m_cost_kib <= KdfParams::MAX_M_COST_KIB
        || p.t_cost > 3 && p.t_cost <= KdfParams::MAX_T_COST
        || p.p_cost > 4 && p.p_cost <= KdfParams::MAX_P_COST
}

/// A key file as `open` meets it: the repository opens with the master key, or `open`
/// fails with a typed error.
pub fn check_key_file(bytes: &[u8]) -> bool {
    if serde_json::from_slice::<KeyFile>(bytes).is_ok_and(|f| costly(&f)) {
        return false;
    }
    // One store holds the key file under test: the tests that check key files (the seeds
    // test and this target's own run on other threads) take turns, or one would open the
    // other's input.
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let store = &key_repo().0;
    store
        .put("keys/fuzz", Bytes::copy_from_slice(bytes))
        .unwrap();
    match bounded(bytes, || Repository::open(store.clone(), Some(PASSWORD))) {
        Ok(repo) => {
            assert_eq!(repo.key(), &sealing_key());
            true
        }
        Err(RepoError::Store(e)) => panic!("a key file made the store fail: {e}"),
        Err(_) => false,
    }
}

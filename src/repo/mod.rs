//! The chunk store: config and keys, blob encoding, packs, index segments, leases, and
//! the packer that turns a stream of blobs into uploaded packs (with their parity when
//! the repository has `ecc`: [`parity`] is the codec, `ecc` rebuilds a damaged pack when
//! [`Repository::decode_blob`] finds a blob of it damaged); [`layout`] owns every
//! object key. Knows nothing of files or catalogs: the blob index it needs is the
//! [`BlobIndex`] trait, which the catalog implements.

pub mod blob;
mod blob_id;
pub mod config;
pub mod crypto;
mod ecc;
mod error;
pub mod index;
mod keys;
pub mod layout;
pub mod lease;
pub mod pack;
mod packer;
pub mod parity;
pub mod process;
pub mod prune_plan;

pub use blob_id::{BlobId, BlobKind};
pub use config::{ChunkerParams, Config, EccConfig, KeyFile, KeyMaterial};
pub use crypto::{KdfParams, MasterKey};
pub use ecc::CorrectedPack;
pub use error::{RepoError, Result};
pub use index::IndexedPack;
pub use layout::FORMAT_VERSION;
pub use lease::{Lease, LeaseHolder, TakenOver, Takeover};
pub use pack::{PackEntry, PackId};
pub use packer::{Packer, PackerStats, TreeSink};
pub use prune_plan::PrunePlan;

use std::sync::Arc;

use bytes::Bytes;

use crate::store::{Store, StoreError};

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub kind: BlobKind,
    pub pack: PackId,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
}

/// The blob index a packer and readers consult (implemented by the catalog).
pub trait BlobIndex: Send + Sync {
    fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>>;
    /// Records an uploaded pack's blobs (and that the pack exists).
    fn record_pack(&self, pack: &IndexedPack) -> Result<()>;
    /// Records an index segment this writer wrote, listing `packs`.
    fn record_segment(&self, name: &str, packs: &[IndexedPack]) -> Result<()>;
}

/// How `init` sets up a repository.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// `None` creates an unencrypted repository.
    pub password: Option<Vec<u8>>,
    pub kdf: KdfParams,
    pub chunker: ChunkerParams,
    pub pack_size: u32,
    /// Parity per pack in percent (docs/FORMAT.md, 6.1); `None` stores none.
    pub ecc_percent: Option<u8>,
}

impl InitOptions {
    pub fn encrypted(password: &[u8]) -> InitOptions {
        InitOptions {
            password: Some(password.to_vec()),
            kdf: KdfParams::default(),
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            ecc_percent: None,
        }
    }

    pub fn unencrypted() -> InitOptions {
        InitOptions {
            password: None,
            ..InitOptions::encrypted(b"")
        }
    }
}

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
    config: Config,
    key: MasterKey,
    /// What this handle's reads corrected from parity (see [`with_own_corrections`]).
    ///
    /// [`with_own_corrections`]: Repository::with_own_corrections
    corrections: Arc<ecc::Corrections>,
}

impl Repository {
    /// Creates a repository; fails if `config` already exists (conditional create).
    pub fn init(store: Store, opts: &InitOptions) -> Result<Repository> {
        let key = MasterKey::generate(opts.password.is_some());
        Repository::init_with(store, opts, key, None)
    }

    /// Creates a repository with `like`'s master key (so blob ids and sealed blobs are
    /// the same in both), chunker parameters, pack size and zstd level, under a new
    /// repository id and its own key file sealed with `password` (`None` only when
    /// `like` is unencrypted: the new one then is too). A copy between the two moves
    /// stored blobs as they are. Its parity setting is `like`'s unless `ecc_percent`
    /// says otherwise.
    pub fn init_like(
        store: Store,
        like: &Repository,
        password: Option<&[u8]>,
        kdf: KdfParams,
        ecc_percent: Option<u8>,
    ) -> Result<Repository> {
        let like_config = like.config();
        if like_config.encrypted() != password.is_some() {
            return Err(RepoError::Format(format!(
                "a repository like {} is {}: {}",
                like.store().description(),
                if like_config.encrypted() {
                    "encrypted"
                } else {
                    "unencrypted"
                },
                if like_config.encrypted() {
                    "it needs a password"
                } else {
                    "it takes no password"
                }
            )));
        }
        let opts = InitOptions {
            password: password.map(<[u8]>::to_vec),
            kdf,
            chunker: like_config.chunker,
            pack_size: like_config.pack_size,
            ecc_percent: ecc_percent.or(like_config.ecc.map(|e| e.percent)),
        };
        Repository::init_with(
            store,
            &opts,
            like.key().clone(),
            Some(like_config.zstd_level),
        )
    }

    fn init_with(
        store: Store,
        opts: &InitOptions,
        key: MasterKey,
        zstd_level: Option<i32>,
    ) -> Result<Repository> {
        if store.head(layout::CONFIG).is_ok() {
            return Err(RepoError::AlreadyExists(store.description().to_string()));
        }
        let mut config = Config::new(opts.password.is_some(), &key);
        config.chunker = opts.chunker;
        config.pack_size = opts.pack_size;
        if let Some(level) = zstd_level {
            config.zstd_level = level;
        }
        if let Some(percent) = opts.ecc_percent {
            if !parity::PERCENT_RANGE.contains(&percent) {
                return Err(RepoError::Format(format!(
                    "ecc percent {percent} is not within 1..=50"
                )));
            }
            config.ecc = Some(EccConfig { percent });
        }
        let bytes = serde_json::to_vec_pretty(&config).expect("config serializes");
        if let Some(password) = &opts.password {
            let file = KeyFile::create(&bytes, &config.id, &key, password, opts.kdf)?;
            let file = serde_json::to_vec_pretty(&file).expect("key file serializes");
            store.put_new(&keys::key_name(&file), file.into())?;
        }
        match store.put_new(layout::CONFIG, bytes.into()) {
            Err(StoreError::AlreadyExists(_)) => {
                Err(RepoError::AlreadyExists(store.description().to_string()))
            }
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Repository {
                store,
                config,
                key,
                corrections: Arc::default(),
            }),
        }
    }

    /// Opens a repository with a password (ignored when it is not encrypted).
    pub fn open(store: Store, password: Option<&[u8]>) -> Result<Repository> {
        let bytes = match store.get(layout::CONFIG) {
            Err(StoreError::NotFound(_)) => {
                return Err(RepoError::NotARepository(store.description().to_string()))
            }
            other => other?,
        };
        let config = Config::parse(&bytes)?;
        let key = if config.encrypted() {
            keys::unlock(&store, &config, &bytes, password)?
        } else {
            keys::refuse_key_files(&store)?;
            config.plain_master()?
        };
        Ok(Repository {
            store,
            config,
            key,
            corrections: Arc::default(),
        })
    }

    /// This repository with a correction log of its own: a job counts what its reads
    /// corrected, and only those.
    pub fn with_own_corrections(&self) -> Repository {
        Repository {
            corrections: Arc::default(),
            ..self.clone()
        }
    }

    /// The packs this handle's reads corrected from parity so far.
    pub fn corrections(&self) -> Vec<CorrectedPack> {
        self.corrections.list()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runtime the store's requests run on (readers and uploads may spawn onto it).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.store.runtime()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(self.key.blob_hash(plaintext))
    }

    /// Reads one blob and checks it against its id.
    pub fn read_blob(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let start = loc.offset as u64;
        let stored = self
            .store
            .get_range(&loc.pack.key(), start..start + loc.length as u64)?;
        self.decode_blob(id, loc, &stored)
    }

    /// Async form of [`read_blob`](Self::read_blob) for callers on a runtime.
    pub async fn read_blob_async(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let start = loc.offset as u64;
        let stored = self
            .store
            .get_range_async(&loc.pack.key(), start..start + loc.length as u64)
            .await?;
        self.decode_blob(id, loc, &stored)
    }

    /// Deletes a pack, its parity object first in a repository with `ecc`: a crash in
    /// between leaves a pack without parity (deleted by the rerun), never parity without
    /// its pack. Only prune and repair delete packs.
    pub fn delete_pack(&self, id: &PackId) -> Result<()> {
        if self.config().ecc.is_some() {
            self.store().delete(&layout::parity_key(&id.to_hex()))?;
        }
        self.store().delete(&id.key())?;
        Ok(())
    }

    /// Decodes a blob's stored bytes and checks it against its id. When the check fails
    /// and the repository has parity, the blob is read again out of its pack rebuilt from
    /// parity (and counted); it is returned only if it then passes the check.
    pub fn decode_blob(&self, id: &BlobId, loc: &BlobLocation, stored: &[u8]) -> Result<Vec<u8>> {
        match self.decode_checked(id, loc, stored) {
            Err(RepoError::CorruptBlob { id, detail }) if self.config.ecc.is_some() => {
                let fail = |why: String| RepoError::CorruptBlob {
                    id,
                    detail: format!("{detail}; parity could not correct it: {why}"),
                };
                let pack = self
                    .corrections
                    .rebuild(&self.store, &loc.pack, None)
                    .map_err(fail)?;
                let from = loc.offset as usize;
                let to = from + loc.length as usize;
                let plain = self
                    .decode_checked(&id, loc, pack.get(from..to).unwrap_or_default())
                    .map_err(|e| fail(e.to_string()))?;
                self.corrections.note_blob(&loc.pack, &id);
                Ok(plain)
            }
            other => other,
        }
    }

    /// Rebuilds a pack from its parity, from `read` (the pack as downloaded); the rebuilt
    /// pack matches its id. `Err` says why it cannot be (no parity, too much damage).
    pub fn rebuild_pack(&self, pack: &PackId, read: &[u8]) -> std::result::Result<Bytes, String> {
        if self.config.ecc.is_none() {
            return Err("the repository has no parity".into());
        }
        self.corrections.rebuild(&self.store, pack, Some(read))
    }

    /// Records that `blob` was read corrected out of `pack` (rebuilt by
    /// [`rebuild_pack`](Self::rebuild_pack)).
    pub fn note_corrected(&self, pack: &PackId, blob: &BlobId) {
        self.corrections.note_blob(pack, blob);
    }

    /// Decodes a blob's stored bytes and checks it against its id; no correction.
    pub fn decode_checked(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
        stored: &[u8],
    ) -> Result<Vec<u8>> {
        if stored.len() != loc.length as usize {
            return Err(RepoError::CorruptBlob {
                id: *id,
                detail: format!("pack {} is truncated", loc.pack.to_hex()),
            });
        }
        blob::decode(&self.key, id, stored, loc.raw_len as usize)
    }

    /// Reads the header of a pack from its tail (index recovery).
    pub fn read_pack_header(&self, pack: &PackId, pack_len: u64) -> Result<Vec<PackEntry>> {
        let key = pack.key();
        let mut want = 64 * 1024u64;
        loop {
            let start = pack_len.saturating_sub(want);
            let tail = self.store.get_range(&key, start..pack_len)?;
            match pack::parse_tail(&self.key, &tail, pack_len)? {
                Ok(entries) => return Ok(entries),
                Err(need) if (need as u64) > want && (need as u64) <= pack_len => {
                    want = need as u64
                }
                Err(_) => {
                    return Err(RepoError::Format(format!(
                        "pack {} header unreadable",
                        pack.to_hex()
                    )))
                }
            }
        }
    }

    /// Downloads a whole pack and checks it against its id.
    pub fn read_pack(&self, pack: &PackId) -> Result<(Bytes, Vec<PackEntry>)> {
        let bytes = self.store.get(&pack.key())?;
        let entries = pack::parse_pack(&self.key, pack, &bytes)?;
        Ok((bytes, entries))
    }

    /// Writes an index segment and returns its name.
    pub fn write_index(&self, packs: &[IndexedPack]) -> Result<String> {
        let stored = index::encode_segment(&self.key, packs);
        let name = index::index_key(&stored);
        match self.store.put_new(&name, stored.into()) {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(name),
            Err(e) => Err(e.into()),
        }
    }

    pub fn read_index(&self, name: &str) -> Result<Vec<IndexedPack>> {
        let stored = self.store.get(name)?;
        index::decode_segment(&self.key, name, &stored)
    }

    /// Seals and writes a small object under a fresh key (manifests); fails if it exists.
    pub fn put_sealed(&self, key: &str, plain: Vec<u8>) -> Result<()> {
        self.store.put_new(key, self.key.seal(plain).into())?;
        Ok(())
    }

    /// Seals and writes or replaces a small settings object.
    pub fn replace_sealed(&self, key: &str, plain: Vec<u8>) -> Result<()> {
        self.store.put(key, self.key.seal(plain).into())?;
        Ok(())
    }

    /// Compresses, seals and writes an object under a fresh key (log records); fails if
    /// it exists. The store says the object is durable when this returns.
    pub fn put_sealed_zstd(&self, key: &str, plain: &[u8]) -> Result<()> {
        let compressed = zstd::bulk::compress(plain, self.config.zstd_level)
            .map_err(|e| RepoError::Format(format!("compressing {key}: {e}")))?;
        self.put_sealed(key, compressed)
    }

    /// Reads an object written by [`put_sealed_zstd`](Self::put_sealed_zstd), at most
    /// `max` bytes once decompressed.
    pub fn get_sealed_zstd(&self, key: &str, max: usize) -> Result<Vec<u8>> {
        let sealed = self.get_sealed(key)?;
        zstd::bulk::decompress(&sealed, max)
            .map_err(|e| RepoError::Format(format!("{key}: bad zstd frame: {e}")))
    }

    pub fn get_sealed(&self, key: &str) -> Result<Vec<u8>> {
        let stored = self.store.get(key)?;
        self.key
            .open(&stored)
            .map_err(|_| RepoError::Format(format!("{key} fails authentication")))
    }
}

//! The chunk store: config and keys, blob encoding, packs, index segments, leases, and
//! the packer that turns a stream of blobs into uploaded packs; [`layout`] owns every
//! object key. Knows nothing of files or catalogs: the blob index it needs is the
//! [`BlobIndex`] trait, which the catalog implements.

pub mod blob;
mod blob_id;
pub mod config;
pub mod crypto;
mod error;
pub mod index;
mod keys;
pub mod layout;
pub mod lease;
pub mod pack;
mod packer;
pub mod process;
pub mod prune_plan;

pub use blob_id::{BlobId, BlobKind};
pub use config::{ChunkerParams, Config, KeyFile, KeyMaterial};
pub use crypto::{KdfParams, MasterKey};
pub use error::{RepoError, Result};
pub use index::IndexedPack;
pub use layout::FORMAT_VERSION;
pub use lease::{Lease, LeaseHolder, TakenOver, Takeover};
pub use pack::{PackEntry, PackId};
pub use packer::{Packer, PackerStats, TreeSink};
pub use prune_plan::PrunePlan;

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
}

impl InitOptions {
    pub fn encrypted(password: &[u8]) -> InitOptions {
        InitOptions {
            password: Some(password.to_vec()),
            kdf: KdfParams::default(),
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
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
    /// stored blobs as they are.
    pub fn init_like(
        store: Store,
        like: &Repository,
        password: Option<&[u8]>,
        kdf: KdfParams,
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
            Ok(()) => Ok(Repository { store, config, key }),
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
        Ok(Repository { store, config, key })
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

    pub fn decode_blob(&self, id: &BlobId, loc: &BlobLocation, stored: &[u8]) -> Result<Vec<u8>> {
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

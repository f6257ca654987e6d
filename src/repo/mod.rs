//! The chunk store: config and keys, blob encoding, packs, index segments, and the packer
//! that turns a stream of blobs into uploaded packs. Knows nothing of files or catalogs:
//! the blob index it needs is the [`BlobIndex`] trait, which the catalog implements.

pub mod blob;
pub mod config;
pub mod crypto;
pub mod index;
mod keys;
pub mod lease;
pub mod pack;
mod packer;
pub mod process;
pub mod prune_plan;

pub use blob::{BlobId, BlobKind};
pub use config::{ChunkerParams, Config, KeyFile, KeyMaterial, FORMAT_VERSION};
pub use crypto::{KdfParams, MasterKey};
pub use index::IndexedPack;
pub use lease::{Lease, LeaseHolder, TakenOver, Takeover};
pub use pack::{PackEntry, PackId};
pub use packer::{Packer, PackerStats};
pub use prune_plan::PrunePlan;

use bytes::Bytes;

use crate::store::{Store, StoreError};

/// Errors of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no cairn repository at {0} (run `cairn init` first)")]
    NotARepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("repository format version {0} is not supported by this cairn (it reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("wrong password: no key of this repository opens with it")]
    WrongPassword,
    #[error(
        "the repository is encrypted: a password is needed (CAIRN_PASSWORD or --password-file)"
    )]
    PasswordRequired,
    #[error("the repository's config was altered: {0}; `init` writes config once and nothing changes it: restore the original config")]
    ConfigAltered(String),
    #[error("the repository's key is missing: {0}")]
    KeyMissing(String),
    #[error("the repository's key file is damaged: {0}")]
    KeyDamaged(String),
    #[error("data failed authentication")]
    Authentication,
    #[error("blob {id} is corrupt: {detail}")]
    CorruptBlob { id: BlobId, detail: String },
    #[error("blob {0} is not in the index")]
    MissingBlob(BlobId),
    #[error("malformed repository data: {0}")]
    Format(String),
    #[error("blob index: {0}")]
    Index(String),
    #[error("repository busy: {0}")]
    Busy(String),
}

impl RepoError {
    pub fn is_transient(&self) -> bool {
        matches!(self, RepoError::Store(e) if e.is_transient())
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;

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
        if store.head("config").is_ok() {
            return Err(RepoError::AlreadyExists(store.description().to_string()));
        }
        let key = MasterKey::generate(opts.password.is_some());
        let mut config = Config::new(opts.password.is_some(), &key);
        config.chunker = opts.chunker;
        config.pack_size = opts.pack_size;
        let bytes = serde_json::to_vec_pretty(&config).expect("config serializes");
        if let Some(password) = &opts.password {
            let file = KeyFile::create(&bytes, &config.id, &key, password, opts.kdf)?;
            let file = serde_json::to_vec_pretty(&file).expect("key file serializes");
            store.put_new(&keys::key_name(&file), file.into())?;
        }
        match store.put_new("config", bytes.into()) {
            Err(StoreError::AlreadyExists(_)) => {
                Err(RepoError::AlreadyExists(store.description().to_string()))
            }
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Repository { store, config, key }),
        }
    }

    /// Opens a repository with a password (ignored when it is not encrypted).
    pub fn open(store: Store, password: Option<&[u8]>) -> Result<Repository> {
        let bytes = match store.get("config") {
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

    pub fn get_sealed(&self, key: &str) -> Result<Vec<u8>> {
        let stored = self.store.get(key)?;
        self.key
            .open(&stored)
            .map_err(|_| RepoError::Format(format!("{key} fails authentication")))
    }
}

//! Object storage: the one place that talks to `object_store`.
//!
//! Contract every backend must meet (checked by the conformance suite in
//! `tests/integration/store_conformance.rs`):
//! - `put_new` is a conditional create: it fails with [`StoreError::AlreadyExists`] when the
//!   key exists with other bytes, and of several racing creators exactly one wins; finding
//!   exactly its own bytes there is success (a create whose reply was lost, then retried);
//! - `get`/`get_range` return exactly the bytes written, or [`StoreError::NotFound`];
//! - `list` returns every key under a prefix with its size, in no particular order, and
//!   `top_level` the top-level directories that hold any key;
//! - data objects are never modified in place (`put` replaces only small settings);
//!   `delete` is idempotent.
//!
//! Stores on the network retry every idempotent request whole, body included
//! ([`RetryPolicy`]); a conditional create is retried too, since it names its bytes. A
//! range read piece by piece (`pieces.rs`) goes on from where a broken body stopped.
//!
//! The facade is synchronous (it drives its own small tokio runtime) so that the engine can
//! call it from worker threads; `*_async` variants serve callers already on a runtime.

mod fault;
mod location;
mod pieces;
mod retry;

pub use fault::FaultStore;
pub use location::{Location, S3Options};
pub use retry::RetryPolicy;

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{TryFutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object `{0}` not found")]
    NotFound(String),
    #[error("object `{0}` already exists")]
    AlreadyExists(String),
    #[error("invalid repository location `{location}`: {reason}")]
    Location { location: String, reason: String },
    #[error("storage request on `{key}` failed: {source}")]
    Backend {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("injected fault on `{0}`")]
    Injected(String),
    #[error("cannot start the storage runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot make `{key}` durable: {source}")]
    Sync {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                source: object_store::Error::Generic { .. },
                ..
            }
        )
    }

    fn from_backend(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound(key.to_string()),
            object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists(key.to_string()),
            source => StoreError::Backend {
                key: key.to_string(),
                source,
            },
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A repository's object store, addressed by `/`-separated keys.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    description: String,
    local: bool,
    /// The directory of a local store: range reads go straight to the file there.
    local_root: Option<std::path::PathBuf>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.description)
    }
}

impl Store {
    /// Opens the store a location names (see [`Location`]).
    pub fn open(location: &Location) -> Result<Store> {
        let (inner, description) = location.build()?;
        let mut store = Store::from_object_store(inner, description)?;
        store.local = matches!(location, Location::Local(_) | Location::Memory);
        if let Location::Local(root) = location {
            store.local_root = Some(root.clone());
        }
        if !store.local {
            store.retry = RetryPolicy::NETWORK;
        }
        Ok(store)
    }

    /// Makes a written object durable: a local store flushes the file and its directory
    /// to the disk (an object store's PUT is durable when it answers).
    pub fn sync(&self, key: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let err = |source| StoreError::Sync {
            key: key.to_string(),
            source,
        };
        let path = root.join(key);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(err)?;
        }
        Ok(())
    }

    /// Wraps any `object_store` implementation (tests use `InMemory` and [`FaultStore`]),
    /// without retries (see [`with_retry`](Self::with_retry)).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, description: String) -> Result<Store> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("cairn-io")
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        Ok(Store {
            inner,
            runtime: Arc::new(runtime),
            description,
            local: false,
            local_root: None,
            retry: RetryPolicy::NONE,
        })
    }

    /// The same store with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Store {
        self.retry = retry;
        self
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether objects live on this machine (a local directory or memory): caching them
    /// on local disk would only cost.
    pub fn is_local(&self) -> bool {
        self.local
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// The runtime the store's requests run on; callers may spawn uploads onto it.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            // Called from a runtime thread: run the request on our runtime and wait for it
            // without blocking the caller's runtime driver.
            Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(f)),
            Err(_) => self.runtime.block_on(f),
        }
    }

    pub fn put_new(&self, key: &str, data: Bytes) -> Result<()> {
        self.block_on(self.put_new_async(key, data))
    }

    pub async fn put_new_async(&self, key: &str, data: Bytes) -> Result<()> {
        let created = self
            .retry
            .run(key, || async {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                let payload = PutPayload::from_bytes(data.clone());
                match self.inner.put_opts(&Path::from(key), payload, opts).await {
                    Ok(_) => Ok(true),
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ) => Ok(false),
                    Err(e) => Err(StoreError::from_backend(key, e)),
                }
            })
            .await?;
        if created {
            return Ok(());
        }
        // The key exists. If it holds exactly these bytes, this create made it: its reply
        // was lost and the request retried (here or inside object_store). Other bytes, or
        // an object gone meanwhile, are someone else's.
        match self.get_async(key).await {
            Ok(existing) if existing == data => {
                tracing::info!(key, "a conditional create found its own object: done");
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound(_)) => Err(StoreError::AlreadyExists(key.into())),
            Err(e) => Err(e),
        }
    }

    /// Writes or replaces an object. Only small mutable settings (instance definitions)
    /// use this; data objects are always written with [`put_new`](Self::put_new).
    pub fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.block_on(self.retry.run(key, || async {
            self.inner
                .put(&Path::from(key), PutPayload::from_bytes(data.clone()))
                .await
                .map(|_| ())
                .map_err(|e| StoreError::from_backend(key, e))
        }))
    }

    pub fn get(&self, key: &str) -> Result<Bytes> {
        self.block_on(self.get_async(key))
    }

    pub async fn get_async(&self, key: &str) -> Result<Bytes> {
        // The body is read inside the retried operation: it may break off after the headers.
        self.retry
            .run(key, || async {
                let result = self
                    .inner
                    .get(&Path::from(key))
                    .await
                    .map_err(|e| StoreError::from_backend(key, e))?;
                result
                    .bytes()
                    .await
                    .map_err(|e| StoreError::from_backend(key, e))
            })
            .await
    }

    pub fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        match self.local_path(key) {
            Some(path) => read_local_range(key, &path, range),
            None => self.block_on(self.get_range_async(key, range)),
        }
    }

    /// Where a local store keeps `key`, for keys that map to a path unchanged (what the
    /// repository writes: hex names under plain directories).
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let root = self.local_root.as_ref()?;
        let plain = key.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        plain.then(|| root.join(key))
    }

    pub async fn get_range_async(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.retry
            .run(key, || async {
                self.inner
                    .get_range(&Path::from(key), range.clone())
                    .await
                    .map_err(|e| StoreError::from_backend(key, e))
            })
            .await
    }

    /// Size of an object.
    pub fn head(&self, key: &str) -> Result<u64> {
        self.block_on(self.retry.run(key, || async {
            self.inner
                .head(&Path::from(key))
                .await
                .map(|m| m.size)
                .map_err(|e| StoreError::from_backend(key, e))
        }))
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.block_on(self.list_async(prefix))
    }

    /// The whole listing is one retried operation: a page whose body breaks off restarts it.
    pub async fn list_async(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = Path::from(prefix);
        self.retry
            .run(prefix, || {
                self.inner
                    .list(Some(&path))
                    .map_ok(|m| ObjectInfo {
                        key: m.location.to_string(),
                        size: m.size,
                    })
                    .try_collect()
                    .map_err(|e| StoreError::from_backend(prefix, e))
            })
            .await
    }

    /// The top-level directories (`packs/`, `points/`, ...) that hold at least one object,
    /// by one delimited listing: a caller can skip listing the empty ones.
    pub fn top_level(&self) -> Result<HashSet<String>> {
        self.block_on(self.retry.run("/", || async {
            let listed = self
                .inner
                .list_with_delimiter(None)
                .await
                .map_err(|e| StoreError::from_backend("/", e))?;
            Ok(listed
                .common_prefixes
                .iter()
                .map(|p| format!("{p}/"))
                .collect())
        }))
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.block_on(self.retry.run(key, || async {
            match self.inner.delete(&Path::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StoreError::from_backend(key, e)),
            }
        }))
    }
}

/// A range of a local object, read in place: no hop through the runtime's blocking pool
/// (a mount reads tens of thousands of small ranges). Errors are the ones
/// `LocalFileSystem` gives.
fn read_local_range(key: &str, path: &std::path::Path, range: Range<u64>) -> Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let backend = |e: std::io::Error| StoreError::Backend {
        key: key.to_string(),
        source: object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        },
    };
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
        _ => backend(e),
    })?;
    let len = range
        .end
        .checked_sub(range.start)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid range {}..{}", range.start, range.end),
            ))
        })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, range.start).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            backend(std::io::Error::new(
                e.kind(),
                format!(
                    "range {}..{} is past the end of the object",
                    range.start, range.end
                ),
            ))
        } else {
            backend(e)
        }
    })?;
    Ok(Bytes::from(buf))
}

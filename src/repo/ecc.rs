//! Error correction on read: a pack whose blob fails its check is fetched whole with its
//! parity object (`ecc/<hh>/<pack hex>`, see [`parity`](super::parity)), its damaged
//! shards are rebuilt, and the rebuilt pack is used only when it matches its id. What was
//! corrected is counted in a [`Corrections`] log, which each job takes fresh.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::blob::BlobId;
use super::layout;
use super::pack::PackId;
use super::parity::{Parity, ParityError};
use crate::store::{Store, StoreError};
use crate::sync::LockExt;

/// One pack corrected from its parity, and the blobs in use read out of it corrected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectedPack {
    /// The pack's id (hex).
    pub pack: String,
    /// Damaged shards of the pack rebuilt from parity.
    pub shards: u64,
    /// Blobs read corrected out of it (hex ids).
    pub blobs: Vec<String>,
}

impl CorrectedPack {
    /// One line for a report: `pack <hex>: N damaged shard(s) rebuilt from parity, ...`.
    pub fn describe(&self) -> String {
        format!(
            "pack {}: {} damaged shard(s) rebuilt from parity, {} blob(s) in use read corrected",
            self.pack,
            self.shards,
            self.blobs.len()
        )
    }
}

/// What readers of one repository handle corrected, and the last pack rebuilt or found
/// beyond its parity (a damaged pack read blob by blob is then downloaded once).
#[derive(Debug, Default)]
pub struct Corrections {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    packs: BTreeMap<PackId, (u64, std::collections::BTreeSet<BlobId>)>,
    last: Option<(PackId, Result<Bytes, String>)>,
}

impl Corrections {
    /// Records that `blob` was read corrected out of `pack`.
    pub fn note_blob(&self, pack: &PackId, blob: &BlobId) {
        self.state
            .locked()
            .packs
            .entry(*pack)
            .or_default()
            .1
            .insert(*blob);
    }

    fn note_pack(&self, pack: &PackId, shards: usize) {
        self.state.locked().packs.entry(*pack).or_default().0 = shards as u64;
    }

    /// Every pack corrected so far, in id order.
    pub fn list(&self) -> Vec<CorrectedPack> {
        self.state
            .locked()
            .packs
            .iter()
            .map(|(id, (shards, blobs))| CorrectedPack {
                pack: id.to_hex(),
                shards: *shards,
                blobs: blobs.iter().map(|b| b.to_string()).collect(),
            })
            .collect()
    }

    /// The pack `pack` rebuilt from its parity: from `read` when given (the pack as the
    /// caller downloaded it), else downloaded now. Holds the log's lock meanwhile, so a
    /// pack many readers find damaged at once is rebuilt once.
    pub fn rebuild(
        &self,
        store: &Store,
        pack: &PackId,
        read: Option<&[u8]>,
    ) -> Result<Bytes, String> {
        let mut state = self.state.locked();
        if let Some((id, last)) = &state.last {
            if id == pack {
                return last.clone();
            }
        }
        let fetched;
        let read = match read {
            Some(read) => read,
            None => {
                fetched = fetch(store, &pack.key())?;
                &fetched
            }
        };
        let object = fetch(store, &layout::parity_key(&pack.to_hex()))?;
        let rebuilt = match Parity::parse(&object, pack).and_then(|p| p.rebuild(read)) {
            Ok(rebuilt) => rebuilt,
            Err(ParityError::NothingDamaged) => {
                return Err("the pack is intact: the damage is elsewhere".into())
            }
            // Damage beyond the parity stays so (storage errors above may pass).
            Err(e) => {
                state.last = Some((*pack, Err(e.to_string())));
                return Err(e.to_string());
            }
        };
        tracing::warn!(
            "pack {}: {} damaged shard(s) rebuilt from parity",
            pack.to_hex(),
            rebuilt.shards.len()
        );
        let bytes = Bytes::from(rebuilt.bytes);
        state.last = Some((*pack, Ok(bytes.clone())));
        drop(state);
        self.note_pack(pack, rebuilt.shards.len());
        Ok(bytes)
    }
}

/// An object's bytes, or why it cannot be had (a missing pack has nothing to rebuild).
fn fetch(store: &Store, key: &str) -> Result<Bytes, String> {
    store.get(key).map_err(|e| match e {
        StoreError::NotFound(_) => format!("{key} is missing"),
        e => e.to_string(),
    })
}

/// Writes the parity object of an uploaded pack (one already there is the same).
pub async fn put_parity(store: &Store, pack: &PackId, object: Vec<u8>) -> Result<(), StoreError> {
    match store
        .put_new_async(&layout::parity_key(&pack.to_hex()), object.into())
        .await
    {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

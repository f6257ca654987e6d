//! Prune plans: `prune/<id>`, sealed JSON, written once by the first phase of a prune.
//! A plan condemns packs: from the moment it is visible, writers no longer deduplicate
//! against blobs that only condemned packs hold, and a later prune deletes the packs
//! (those still unneeded) once `not_before_ns` has passed. See docs/FORMAT.md, 12.4.

use serde::{Deserialize, Serialize};

use super::crypto::MasterKey;
use super::layout;
use super::{PackId, RepoError};

pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunePlan {
    pub version: u32,
    pub created_ns: i64,
    /// Packs are deleted no earlier than this (created + grace period).
    pub not_before_ns: i64,
    pub host: String,
    /// Hex ids of the condemned packs.
    pub packs: Vec<String>,
}

impl PrunePlan {
    /// The plan's JSON and its object key: `prune/` + hex of the keyed hash of the JSON.
    pub fn encode(&self, key: &MasterKey) -> (String, Vec<u8>) {
        let json = serde_json::to_vec(self).expect("prune plan serializes");
        let hex = hex::encode(key.blob_hash(&json));
        (layout::object_key(layout::PRUNE_PLANS, &hex), json)
    }

    pub fn decode(key: &MasterKey, name: &str, json: &[u8]) -> Result<PrunePlan, RepoError> {
        let bad = |d: &str| RepoError::Format(format!("prune plan {name}: {d}"));
        if layout::object_key(layout::PRUNE_PLANS, &hex::encode(key.blob_hash(json))) != name {
            return Err(bad("content does not match its name"));
        }
        let plan: PrunePlan = serde_json::from_slice(json).map_err(|_| bad("undecodable"))?;
        if plan.version != PLAN_VERSION {
            return Err(bad("unknown version"));
        }
        Ok(plan)
    }

    /// The condemned pack ids (malformed entries are refused with the plan).
    pub fn pack_ids(&self) -> Result<Vec<PackId>, RepoError> {
        self.packs
            .iter()
            .map(|h| {
                let mut id = [0u8; 32];
                hex::decode_to_slice(h, &mut id)
                    .map(|_| PackId(id))
                    .map_err(|_| RepoError::Format(format!("prune plan names a bad pack {h}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_roundtrip_and_name_check() {
        let key = MasterKey::generate(true);
        let plan = PrunePlan {
            version: PLAN_VERSION,
            created_ns: 1,
            not_before_ns: 2,
            host: "h".into(),
            packs: vec![PackId([3; 32]).to_hex()],
        };
        let (name, json) = plan.encode(&key);
        assert!(name.starts_with("prune/"));
        let back = PrunePlan::decode(&key, &name, &json).unwrap();
        assert_eq!(back, plan);
        assert_eq!(back.pack_ids().unwrap(), vec![PackId([3; 32])]);
        assert!(PrunePlan::decode(&key, "prune/00", &json).is_err());
    }
}

//! Damage marks: `damaged/<instance>/<manifest id>`, sealed JSON, written by `repair` for
//! a point that still lacks data once everything readable was saved: which of its paths
//! are damaged and which blobs they miss. A mark lives in the repository, so it survives
//! a catalog rebuild and is seen from every machine; it is replaced when a later repair
//! finds other damage, and deleted by a repair once every blob it names is available
//! again (a later backup stored the data anew: the point is healed).

use serde::{Deserialize, Serialize};

use crate::repo::{layout, BlobId};

use super::names::is_valid_instance_name;
use super::{ManifestId, ModelError};

pub const DAMAGE_MARK_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageMark {
    pub version: u32,
    pub instance: String,
    /// The point's name (its manifest id is in the key).
    pub point: String,
    /// Damaged files and directories, relative to the point root, sorted.
    pub paths: Vec<String>,
    /// The blobs those paths lack (hex), sorted.
    pub blobs: Vec<String>,
    /// When the damage was marked, ns since the Unix epoch.
    pub marked_ns: i64,
    /// Host name of the machine that marked it.
    pub host: String,
}

impl DamageMark {
    pub fn object_key(instance: &str, id: &ManifestId) -> String {
        layout::instance_key(layout::DAMAGED, instance, &id.to_hex())
    }

    /// Parses an object key into (instance, manifest id); only the canonical key.
    pub fn parse_key(key: &str) -> Option<(String, ManifestId)> {
        let (instance, id) = layout::split_instance_key(layout::DAMAGED, key)?;
        is_valid_instance_name(instance)
            .then(|| ManifestId::from_hex(id).map(|id| (instance.to_string(), id)))?
            .filter(|(instance, id)| DamageMark::object_key(instance, id) == key)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("damage mark serializes")
    }

    /// Decodes a mark stored under `instance`'s key.
    pub fn decode(instance: &str, json: &[u8]) -> Result<DamageMark, ModelError> {
        let bad = |d: String| ModelError::Manifest(format!("damage mark: {d}"));
        let m: DamageMark =
            serde_json::from_slice(json).map_err(|e| bad(format!("undecodable: {e}")))?;
        if m.version != DAMAGE_MARK_VERSION {
            return Err(bad(format!("unknown version {}", m.version)));
        }
        if m.instance != instance {
            return Err(bad("stored under another instance".into()));
        }
        Ok(m)
    }

    /// The blobs it names (those that parse).
    pub fn blob_ids(&self) -> Vec<BlobId> {
        self.blobs
            .iter()
            .filter_map(|h| BlobId::from_hex(h))
            .collect()
    }

    /// Whether it says the same as `other` (the time and host aside).
    pub fn same_damage(&self, other: &DamageMark) -> bool {
        (&self.instance, &self.point, &self.paths, &self.blobs)
            == (&other.instance, &other.point, &other.paths, &other.blobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_json_roundtrip() {
        let id = ManifestId([7; 32]);
        let key = DamageMark::object_key("www", &id);
        assert_eq!(key, format!("damaged/www/{}", id.to_hex()));
        assert_eq!(DamageMark::parse_key(&key), Some(("www".into(), id)));
        assert_eq!(DamageMark::parse_key(&key.to_uppercase()), None);
        assert_eq!(DamageMark::parse_key("damaged/a b/00"), None);
        let m = DamageMark {
            version: DAMAGE_MARK_VERSION,
            instance: "www".into(),
            point: "p".into(),
            paths: vec!["a".into()],
            blobs: vec![BlobId([1; 32]).to_hex()],
            marked_ns: 5,
            host: "h".into(),
        };
        let back = DamageMark::decode("www", &m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.blob_ids(), vec![BlobId([1; 32])]);
        assert!(DamageMark::decode("other", &m.encode()).is_err());
        let later = DamageMark {
            marked_ns: 9,
            ..m.clone()
        };
        assert!(later.same_damage(&m));
    }
}

//! Forget records: `forgotten/<instance>/<manifest id>`, sealed JSON, written once by
//! `forget` before it deletes a point's manifest. A record carries the forgotten
//! manifest's exact JSON, so a reader can check that the record is genuine (the keyed
//! hash of that JSON is the id in the key) and learn the manifest's `parent`: `verify`
//! uses it to bridge the gap a forgotten point leaves in its instance's history chain,
//! while a manifest deleted without a record still breaks the chain.

use serde::{Deserialize, Serialize};

use crate::repo::{layout, MasterKey};

use super::names::is_valid_instance_name;
use super::{Manifest, ManifestId, ModelError};

pub const FORGOTTEN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRecord {
    pub version: u32,
    pub instance: String,
    /// The forgotten manifest's JSON, byte for byte as it was stored.
    pub manifest: String,
    /// When it was forgotten, ns since the Unix epoch.
    pub forgotten_ns: i64,
    /// Host name of the machine that forgot it.
    pub host: String,
}

/// A checked forget record: the forgotten point's id and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    pub id: ManifestId,
    pub manifest: Manifest,
    pub forgotten_ns: i64,
}

impl ForgetRecord {
    pub fn object_key(instance: &str, id: &ManifestId) -> String {
        layout::instance_key(layout::FORGOTTEN, instance, &id.to_hex())
    }

    /// Parses an object key into (instance, id); only the canonical key, as for manifests.
    pub fn parse_key(key: &str) -> Option<(String, ManifestId)> {
        let (instance, id) = layout::split_instance_key(layout::FORGOTTEN, key)?;
        is_valid_instance_name(instance)
            .then(|| ManifestId::from_hex(id).map(|id| (instance.to_string(), id)))?
            .filter(|(instance, id)| ForgetRecord::object_key(instance, id) == key)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("forget record serializes")
    }

    /// Decodes a record and checks it against the instance and id its key names: the
    /// embedded manifest must hash to that id and belong to that instance.
    pub fn decode(
        key: &MasterKey,
        expected: &ManifestId,
        instance: &str,
        json: &[u8],
    ) -> Result<Forgotten, ModelError> {
        let bad = |d: String| ModelError::Manifest(format!("forget record: {d}"));
        let r: ForgetRecord =
            serde_json::from_slice(json).map_err(|e| bad(format!("undecodable: {e}")))?;
        if r.version != FORGOTTEN_VERSION {
            return Err(bad(format!("unknown version {}", r.version)));
        }
        if r.instance != instance {
            return Err(bad("stored under another instance".into()));
        }
        let manifest = Manifest::decode(key, expected, instance, r.manifest.as_bytes())?;
        Ok(Forgotten {
            id: *expected,
            manifest,
            forgotten_ns: r.forgotten_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_forgery_is_refused() {
        let key = MasterKey::generate(false);
        let m = crate::model::manifest::example(Some("ab".repeat(32)));
        let (id, json) = m.encode(&key);
        let record = ForgetRecord {
            version: FORGOTTEN_VERSION,
            instance: "db".into(),
            manifest: String::from_utf8(json).unwrap(),
            forgotten_ns: 5,
            host: "h".into(),
        };
        let bytes = record.encode();
        let f = ForgetRecord::decode(&key, &id, "db", &bytes).unwrap();
        assert_eq!(f.manifest, m);
        assert!(ForgetRecord::decode(&key, &id, "other", &bytes).is_err());
        // A record naming another parent does not match the id.
        let forged = ForgetRecord {
            manifest: record.manifest.replace(&"ab".repeat(32), &"cd".repeat(32)),
            ..record.clone()
        };
        assert!(ForgetRecord::decode(&key, &id, "db", &forged.encode()).is_err());
        let k = ForgetRecord::object_key("db", &id);
        assert_eq!(ForgetRecord::parse_key(&k), Some(("db".to_string(), id)));
        assert_eq!(ForgetRecord::parse_key("points/db/00"), None);
    }
}

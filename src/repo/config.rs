//! The `config` object (plain JSON, written once by `init`) and `keys/<id>` objects.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::crypto::{open_with, seal_with, KdfParams, MasterKey};
use super::layout::FORMAT_VERSION;
use super::parity::PERCENT_RANGE;
use super::RepoError;

/// Content-defined chunking parameters (FastCDC 2020).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// `config`: what any reader needs before it can open anything else.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// Always "cairn".
    pub format: String,
    pub version: u32,
    /// Random repository id (hex), names the local catalog cache.
    pub id: String,
    /// "xchacha20poly1305" or "none".
    pub encryption: String,
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    pub zstd_level: i32,
    /// Hex id key, only in unencrypted repositories (otherwise it is sealed in `keys/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_key: Option<String>,
    /// Reed-Solomon parity for every pack (docs/FORMAT.md, 6.1); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc: Option<EccConfig>,
}

/// The `ecc` field of `config`: parity shards per pack, as a percentage of its data shards.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EccConfig {
    pub percent: u8,
}

impl Config {
    pub fn new(encrypted: bool, master: &MasterKey) -> Config {
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        Config {
            format: "cairn".into(),
            version: FORMAT_VERSION,
            id: hex::encode(id),
            encryption: if encrypted {
                "xchacha20poly1305"
            } else {
                "none"
            }
            .into(),
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            zstd_level: 3,
            id_key: (!encrypted).then(|| hex::encode(master.id_key)),
            ecc: None,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.encryption != "none"
    }

    /// Parses `config`, refusing formats and versions this build does not know.
    pub fn parse(bytes: &[u8]) -> Result<Config, RepoError> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| RepoError::Format(format!("config is not valid JSON: {e}")))?;
        if probe.format.as_deref() != Some("cairn") {
            return Err(RepoError::Format(
                "config does not describe a cairn repository".into(),
            ));
        }
        match probe.version {
            Some(FORMAT_VERSION) => {}
            Some(v) => return Err(RepoError::UnsupportedVersion(v)),
            None => return Err(RepoError::Format("config has no version".into())),
        }
        let config: Config =
            serde_json::from_slice(bytes).map_err(|e| RepoError::Format(format!("config: {e}")))?;
        // The id names the local catalog's directory: it must not be a path.
        if config.id.len() != 32 || !config.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RepoError::Format("config id is not 32 hex digits".into()));
        }
        match config.encryption.as_str() {
            "none" | "xchacha20poly1305" => {}
            other => return Err(RepoError::Format(format!("unknown encryption `{other}`"))),
        }
        if config.encrypted() && config.id_key.is_some() {
            return Err(RepoError::ConfigAltered(
                "an encrypted repository's config carries an `id_key`, which only \
                 unencrypted ones have"
                    .into(),
            ));
        }
        let c = &config.chunker;
        if !(64..=c.avg_size).contains(&c.min_size)
            || c.avg_size > c.max_size
            || c.max_size > 16 << 20
        {
            return Err(RepoError::Format(
                "config has invalid chunker parameters".into(),
            ));
        }
        if let Some(ecc) = config.ecc {
            if !PERCENT_RANGE.contains(&ecc.percent) {
                return Err(RepoError::Format(format!(
                    "config has ecc percent {}, not within 1..=50",
                    ecc.percent
                )));
            }
        }
        Ok(config)
    }

    /// The master key of an unencrypted repository.
    pub fn plain_master(&self) -> Result<MasterKey, RepoError> {
        let hex_key = self
            .id_key
            .as_deref()
            .ok_or_else(|| RepoError::Format("unencrypted config lacks id_key".into()))?;
        let mut id_key = [0u8; 32];
        hex::decode_to_slice(hex_key, &mut id_key)
            .map_err(|_| RepoError::Format("config id_key is not 32 hex bytes".into()))?;
        Ok(MasterKey {
            id_key,
            enc_key: None,
        })
    }
}

/// What a key file seals: the master key and the BLAKE3 (hex) of the exact `config`
/// bytes it was made with, which binds the unauthenticated `config` to the key (key
/// files written before that binding carry no `config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyMaterial {
    #[serde(flatten)]
    pub master: MasterKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// What a key file binds: hex of the (unkeyed) BLAKE3 of the `config` object's bytes.
pub fn config_hash(config: &[u8]) -> String {
    blake3::hash(config).to_hex().to_string()
}

/// `keys/<random id>`: the master key sealed with a key derived from a password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    /// The `config` id this key belongs to: a key left over from a lost `init` race
    /// never opens another repository.
    pub repo_id: String,
    pub kdf: String,
    pub params: KdfParams,
    pub salt: String,
    pub sealed: String,
}

impl KeyFile {
    /// A key for the repository whose `config` object is exactly `config`.
    pub fn create(
        config: &[u8],
        repo_id: &str,
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
    ) -> Result<KeyFile, RepoError> {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let kek = params.derive(password, &salt)?;
        let material = KeyMaterial {
            master: master.clone(),
            config: Some(config_hash(config)),
        };
        let plain = serde_json::to_vec(&material).expect("key material serializes");
        Ok(KeyFile {
            version: 1,
            repo_id: repo_id.to_string(),
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            sealed: hex::encode(seal_with(&kek, &plain)),
        })
    }

    /// The sealed material, or `None` when the password is not this key's (or the
    /// sealed bytes were damaged: the two look the same).
    pub fn unlock(&self, password: &[u8]) -> Result<Option<KeyMaterial>, RepoError> {
        if self.version != 1 || self.kdf != "argon2id" {
            return Err(RepoError::Format(format!(
                "key file version {} / kdf {} unknown",
                self.version, self.kdf
            )));
        }
        let salt = hex::decode(&self.salt).map_err(|_| RepoError::Format("key salt".into()))?;
        let sealed = hex::decode(&self.sealed).map_err(|_| RepoError::Format("key data".into()))?;
        let kek = self.params.derive(password, &salt)?;
        match open_with(&kek, &sealed) {
            None => Ok(None),
            Some(plain) => serde_json::from_slice(&plain)
                .map(Some)
                .map_err(|e| RepoError::Format(format!("key material: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_versions() {
        let m = MasterKey::generate(false);
        let mut c = Config::new(false, &m);
        c.version = 99;
        let bytes = serde_json::to_vec(&c).unwrap();
        assert!(matches!(
            Config::parse(&bytes),
            Err(RepoError::UnsupportedVersion(99))
        ));
        assert!(Config::parse(b"{}").is_err());
        assert!(Config::parse(b"garbage").is_err());
    }

    #[test]
    fn key_file_unlocks_only_with_its_password() {
        let m = MasterKey::generate(true);
        let k = KeyFile::create(b"{}", "r", &m, b"right", KdfParams::insecure_fast()).unwrap();
        let material = k.unlock(b"right").unwrap().unwrap();
        assert_eq!(material.master, m);
        assert_eq!(
            material.config.as_deref(),
            Some(config_hash(b"{}").as_str())
        );
        assert_eq!(k.unlock(b"wrong").unwrap(), None);
    }

    #[test]
    fn key_material_without_binding_is_the_bare_master_key() {
        // What key files from before the config binding seal; an older reader parses
        // the new material as a bare master key, ignoring `config`.
        let m = MasterKey::generate(true);
        let bare = serde_json::to_vec(&m).unwrap();
        let old: KeyMaterial = serde_json::from_slice(&bare).unwrap();
        assert_eq!((old.master, old.config), (m.clone(), None));
        let bound = KeyMaterial {
            master: m.clone(),
            config: Some(config_hash(b"x")),
        };
        let read_by_old: MasterKey =
            serde_json::from_slice(&serde_json::to_vec(&bound).unwrap()).unwrap();
        assert_eq!(read_by_old, m);
    }

    #[test]
    fn encrypted_config_with_id_key_is_refused() {
        let m = MasterKey::generate(true);
        let mut c = Config::new(true, &m);
        c.id_key = Some(hex::encode([1u8; 32]));
        let bytes = serde_json::to_vec(&c).unwrap();
        assert!(matches!(
            Config::parse(&bytes),
            Err(RepoError::ConfigAltered(_))
        ));
    }
}

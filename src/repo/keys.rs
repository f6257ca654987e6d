//! Opening a repository's keys: which key files `keys/` holds, which are damaged, and
//! the binding that makes any change to `config` (which is not sealed) detectable.
//!
//! - An encrypted `config` opens only through a key file of its id; a key file sealed
//!   with the hash of a `config` refuses any other one.
//! - A `config` that says `encryption: none` is refused while `keys/` holds any file:
//!   an encrypted repository is never opened, or written, as unencrypted.
//! - A key file's name is the start of the BLAKE3 of its bytes, so one that does not
//!   open is told apart: damaged (name and bytes disagree) or a wrong password.

use super::config::{config_hash, Config, KeyFile};
use super::crypto::MasterKey;
use super::layout;
use super::{RepoError, Result};
use crate::store::Store;

/// Hex digits of BLAKE3 of a key file's bytes that name it.
const NAME_DIGITS: usize = 16;

/// The name `init` gives a key file of these bytes: `keys/<16 hex>`.
pub(super) fn key_name(bytes: &[u8]) -> String {
    layout::object_key(layout::KEYS, &blake3::hash(bytes).to_hex()[..NAME_DIGITS])
}

/// Refuses to open an unencrypted `config` next to key files.
pub(super) fn refuse_key_files(store: &Store) -> Result<()> {
    match store.list(layout::KEYS)?.first() {
        None => Ok(()),
        Some(obj) => Err(RepoError::ConfigAltered(format!(
            "it says `\"encryption\": \"none\"` but the repository holds key file {}: an \
             encrypted repository is never opened as unencrypted",
            obj.key
        ))),
    }
}

/// Why a key file of this repository did not open.
enum NotOpened {
    Damaged(String),
    WrongPassword,
}

/// The master key of an encrypted repository whose `config` object is `config_bytes`.
pub(super) fn unlock(
    store: &Store,
    config: &Config,
    config_bytes: &[u8],
    password: Option<&[u8]>,
) -> Result<MasterKey> {
    let listed = store.list(layout::KEYS)?;
    if listed.is_empty() {
        return Err(RepoError::KeyMissing(
            "the repository is encrypted but keys/ holds no key file, so no password can \
             open it: restore keys/ from a copy of the repository"
                .into(),
        ));
    }
    let password = password.ok_or(RepoError::PasswordRequired)?;
    let mut foreign = Vec::new();
    let mut failed = Vec::new();
    for obj in &listed {
        let bytes = store.get(&obj.key)?;
        let file: KeyFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                failed.push((
                    obj.key.clone(),
                    NotOpened::Damaged(format!("not a key file ({e})")),
                ));
                continue;
            }
        };
        if file.repo_id != config.id {
            foreign.push(format!("{} is for repository {}", obj.key, file.repo_id));
            continue;
        }
        match file.unlock(password)? {
            Some(material) => {
                if material.master.enc_key.is_none() {
                    return Err(RepoError::Format(format!(
                        "{} holds no encryption key",
                        obj.key
                    )));
                }
                if let Some(sealed) = &material.config {
                    let actual = config_hash(config_bytes);
                    if *sealed != actual {
                        return Err(RepoError::ConfigAltered(format!(
                            "it is not the config {} was made with (BLAKE3 {actual}, the key \
                             was sealed with {sealed})",
                            obj.key
                        )));
                    }
                }
                return Ok(material.master);
            }
            None if key_name(&bytes) != obj.key => failed.push((
                obj.key.clone(),
                NotOpened::Damaged("its bytes no longer match its name".into()),
            )),
            None => failed.push((obj.key.clone(), NotOpened::WrongPassword)),
        }
    }
    let damaged: Vec<String> = failed
        .iter()
        .filter_map(|(key, why)| match why {
            NotOpened::Damaged(detail) => Some(format!("{key} is damaged: {detail}")),
            NotOpened::WrongPassword => None,
        })
        .collect();
    if !damaged.is_empty() {
        let intact = failed.len() - damaged.len();
        let rest = if intact > 0 {
            format!("; the password opens none of the {intact} intact key file(s)")
        } else {
            String::new()
        };
        return Err(RepoError::KeyDamaged(format!(
            "{}{rest}",
            damaged.join("; ")
        )));
    }
    if failed.is_empty() {
        return Err(RepoError::KeyMissing(format!(
            "no key file belongs to this repository (config id {}): {}; the config or \
             keys/ was replaced",
            config.id,
            foreign.join(", ")
        )));
    }
    Err(RepoError::WrongPassword)
}

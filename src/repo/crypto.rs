//! Keys and sealing: keyed BLAKE3 for ids, XChaCha20-Poly1305 for confidentiality,
//! Argon2id to turn a password into a key-encryption key.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::RepoError;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object carries beyond its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The repository's secrets. Without encryption only `id_key` exists (and is stored in
/// plain in `config`); with encryption both live sealed in `keys/` objects.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MasterKey {
    pub id_key: [u8; 32],
    pub enc_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn generate(encrypted: bool) -> MasterKey {
        let mut rng = rand::thread_rng();
        let mut id_key = [0u8; 32];
        rng.fill_bytes(&mut id_key);
        let enc_key = encrypted.then(|| {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            k
        });
        MasterKey { id_key, enc_key }
    }

    /// The keyed hash that names a blob: BLAKE3 keyed with `id_key` over the plaintext.
    pub fn blob_hash(&self, plaintext: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.id_key, plaintext).as_bytes()
    }

    pub fn is_encrypted(&self) -> bool {
        self.enc_key.is_some()
    }

    /// Seals `plain` (nonce || ciphertext || tag) or returns it as is without encryption.
    pub fn seal(&self, plain: Vec<u8>) -> Vec<u8> {
        match &self.enc_key {
            None => plain,
            Some(key) => seal_with(key, &plain),
        }
    }

    /// Bytes [`seal_prefixed`](Self::seal_prefixed) wants reserved before the plaintext.
    pub fn seal_prefix_len(&self) -> usize {
        if self.enc_key.is_some() {
            NONCE_LEN
        } else {
            0
        }
    }

    /// Like [`seal`](Self::seal), in place: `buf` holds [`seal_prefix_len`](Self::seal_prefix_len)
    /// reserved bytes, then the plaintext.
    pub fn seal_prefixed(&self, mut buf: Vec<u8>) -> Vec<u8> {
        let Some(key) = &self.enc_key else {
            return buf;
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        buf[..NONCE_LEN].copy_from_slice(&nonce);
        let tag = XChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"", &mut buf[NONCE_LEN..])
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        buf.extend_from_slice(&tag);
        buf
    }

    /// Opens what [`seal`](Self::seal) produced; fails on any tampering.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, RepoError> {
        match &self.enc_key {
            None => Ok(sealed.to_vec()),
            Some(key) => open_with(key, sealed).ok_or(RepoError::Authentication),
        }
    }
}

pub fn seal_with(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), plain)
        .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open_with(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher.decrypt(XNonce::from_slice(nonce), ct).ok()
}

/// Argon2id cost parameters, stored with each key so they can be raised later.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Limits on what a key file may ask for: a hostile file must not make `open` reserve
    /// terabytes or spin for days (Argon2 itself accepts up to 4 TiB and 2^32 passes).
    pub const MAX_M_COST_KIB: u32 = 4 << 20;
    pub const MAX_T_COST: u32 = 64;
    pub const MAX_P_COST: u32 = 64;

    /// Cheap parameters for tests; never the default.
    pub fn insecure_fast() -> KdfParams {
        KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<[u8; 32], RepoError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(RepoError::Format(format!(
                "key derivation parameters out of range: {} KiB, {} passes, {} lanes \
                 (at most {} KiB, {} passes, {} lanes)",
                self.m_cost_kib,
                self.t_cost,
                self.p_cost,
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            )));
        }
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| RepoError::Format(format!("bad key derivation parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| RepoError::Format(format!("key derivation failed: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_tamper_detection() {
        let k = MasterKey::generate(true);
        let sealed = k.seal(b"hello".to_vec());
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(&sealed).unwrap(), b"hello");
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(matches!(k.open(&bad), Err(RepoError::Authentication)));
        assert!(k.open(&sealed[..10]).is_err());
        let other = MasterKey::generate(true);
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn blob_hash_is_keyed() {
        let a = MasterKey::generate(false);
        let b = MasterKey::generate(false);
        assert_ne!(a.blob_hash(b"x"), b.blob_hash(b"x"));
        assert_eq!(a.blob_hash(b"x"), a.blob_hash(b"x"));
    }
}

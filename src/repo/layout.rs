//! The repository's layout: its format version and the key of every object kind
//! (docs/FORMAT.md, section 2). Every file that names, lists or parses an object key
//! takes the prefix or the key from here; nothing else writes one out.

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The repository's config (plain JSON, written once by `init`).
pub const CONFIG: &str = "config";
/// Key files: `keys/<16 hex>`.
pub const KEYS: &str = "keys/";
/// Packs: `packs/<hh>/<64 hex>`.
pub const PACKS: &str = "packs/";
/// Parity objects of packs (repositories with error correction): `ecc/<hh>/<64 hex>`.
pub const ECC: &str = "ecc/";
/// Index segments: `index/<64 hex>`.
pub const INDEX: &str = "index/";
/// Point manifests: `points/<instance>/<64 hex>`.
pub const POINTS: &str = "points/";
/// Log records: `logs/<instance>/<12 digits>-<64 hex>`.
pub const LOGS: &str = "logs/";
/// Forget records: `forgotten/<instance>/<64 hex>`.
pub const FORGOTTEN: &str = "forgotten/";
/// Name claims: `names/<instance>/<64 hex>`.
pub const NAMES: &str = "names/";
/// Instance definitions: `instances/<instance>`.
pub const INSTANCES: &str = "instances/";
/// Policies: `policies/<policy>`.
pub const POLICIES: &str = "policies/";
/// The policy quotas and the write-once switch.
pub const POLICY_SETTINGS: &str = "settings/policies";
/// Prune plans: `prune/<64 hex>`.
pub const PRUNE_PLANS: &str = "prune/";
/// Damage marks: `damaged/<instance>/<64 hex>` (the manifest id of a damaged point).
pub const DAMAGED: &str = "damaged/";
/// Leases: `locks/...`.
pub const LOCKS: &str = "locks/";
/// The prune lease: `locks/prune-<20 digits>`.
pub const PRUNE_LEASE: &str = "locks/prune-";

/// A pack's key: `packs/<first two hex digits>/<hex>`.
pub fn pack_key(hex: &str) -> String {
    format!("{PACKS}{}/{hex}", &hex[..2])
}

/// The key of a pack's parity object: `ecc/<first two hex digits>/<hex>`.
pub fn parity_key(hex: &str) -> String {
    format!("{ECC}{}/{hex}", &hex[..2])
}

/// The hex a pack key ends in (not checked: the caller rebuilds the key to compare).
pub fn pack_hex(key: &str) -> Option<&str> {
    key.strip_prefix(PACKS)?.split('/').nth(1)
}

/// The key of the object `name` under `prefix` (key files, index segments, prune plans,
/// instance definitions, policies).
pub fn object_key(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

/// The key of an instance's object under `prefix` (`points/`, `forgotten/`, `names/`,
/// `damaged/`).
pub fn instance_key(prefix: &str, instance: &str, hex: &str) -> String {
    format!("{prefix}{instance}/{hex}")
}

/// Splits a key made by [`instance_key`] into (instance, hex); not checked.
pub fn split_instance_key<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    key.strip_prefix(prefix)?.split_once('/')
}

/// The prune lease of `generation`.
pub fn prune_lease_key(generation: u64) -> String {
    format!("{PRUNE_LEASE}{generation:020}")
}

/// The generation a prune lease's key names.
pub fn prune_lease_generation(key: &str) -> Option<u64> {
    key.strip_prefix(PRUNE_LEASE)?.parse().ok()
}

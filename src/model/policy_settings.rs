//! `settings/policies`: sealed JSON, replaced when changed; absent means the defaults.
//! The repository's policy quotas and its write-once switch.

use serde::{Deserialize, Serialize};

use super::policy::PolicyError;
use crate::repo::layout;

pub const SETTINGS_VERSION: u32 = 1;
pub const SETTINGS_KEY: &str = layout::POLICY_SETTINGS;
pub const DEFAULT_MAX_POLICIES: u32 = 32;
pub const DEFAULT_MAX_INSTANCES: u32 = 64;

/// `settings/policies`: quotas and the write-once switch of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    pub version: u32,
    pub max_policies: u32,
    pub max_instances_per_policy: u32,
    /// When set, scheduled points cannot be deleted before their policy's retention
    /// ends, and the policy cannot be loosened, unbound or deleted while it covers them.
    pub write_once: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            version: SETTINGS_VERSION,
            max_policies: DEFAULT_MAX_POLICIES,
            max_instances_per_policy: DEFAULT_MAX_INSTANCES,
            write_once: false,
        }
    }
}

impl PolicySettings {
    pub fn decode(json: &[u8]) -> Result<PolicySettings, PolicyError> {
        let s: PolicySettings = serde_json::from_slice(json)
            .map_err(|e| PolicyError(format!("undecodable policy settings: {e}")))?;
        if s.version != SETTINGS_VERSION {
            return Err(PolicyError(format!(
                "unknown policy settings version {}",
                s.version
            )));
        }
        if s.max_policies == 0 || s.max_instances_per_policy == 0 {
            return Err(PolicyError("quotas must be at least 1".into()));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_roundtrip_and_refuse_what_they_do_not_know() {
        let s = PolicySettings::default();
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(PolicySettings::decode(&json).unwrap(), s);
        assert_eq!((s.max_policies, s.max_instances_per_policy), (32, 64));
        let v2 =
            br#"{"version":2,"max_policies":1,"max_instances_per_policy":1,"write_once":false}"#;
        assert!(PolicySettings::decode(v2)
            .unwrap_err()
            .0
            .contains("version 2"));
        let zero =
            br#"{"version":1,"max_policies":0,"max_instances_per_policy":1,"write_once":true}"#;
        assert!(PolicySettings::decode(zero).is_err());
        assert!(PolicySettings::decode(b"[]").is_err());
    }
}

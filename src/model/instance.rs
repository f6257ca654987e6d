//! Instance definitions: `instances/<name>`, sealed JSON, replaced when an instance is
//! added again and deleted when it is removed (its points stay).

use serde::{Deserialize, Serialize};

use super::names::is_valid_instance_name;
use super::ModelError;

pub const INSTANCE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub version: u32,
    pub name: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
}

impl InstanceConfig {
    pub fn object_key(name: &str) -> String {
        format!("instances/{name}")
    }

    pub fn decode(key_name: &str, json: &[u8]) -> Result<InstanceConfig, ModelError> {
        let c: InstanceConfig = serde_json::from_slice(json)
            .map_err(|e| ModelError::Manifest(format!("instance definition: {e}")))?;
        if c.version != INSTANCE_VERSION {
            return Err(ModelError::Manifest(format!(
                "unknown instance version {}",
                c.version
            )));
        }
        if c.name != key_name || !is_valid_instance_name(&c.name) {
            return Err(ModelError::Manifest(
                "instance definition under the wrong name".into(),
            ));
        }
        Ok(c)
    }
}

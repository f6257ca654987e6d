//! Instance definitions: `instances/<name>`, sealed JSON, replaced when an instance is
//! added again and deleted when it is removed (its points stay).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::is_valid_instance_name;
use super::ModelError;
use crate::repo::layout;

pub const INSTANCE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub version: u32,
    pub name: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
}

/// A path's components without `.` (and so without trailing slashes).
fn normal(p: &Path) -> Vec<Component<'_>> {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

/// Checks the source paths of one instance (or one `--repo` snapshot): each absolute,
/// none given twice, none inside another (the outer one would back the inner one up
/// twice, and an in-place restore could not swap both), and no two ending in the same
/// name (a point of several sources names each by its last component). Paths compare as
/// written, after dropping `.` components and trailing slashes; symlinks are not followed.
/// Returns the message to refuse them with.
pub fn check_source_paths(paths: &[PathBuf]) -> Result<(), String> {
    if paths.is_empty() {
        return Err("no source path".into());
    }
    for (i, a) in paths.iter().enumerate() {
        if !a.is_absolute() {
            return Err(format!("source path {} is not absolute", a.display()));
        }
        if a.components().any(|c| c == Component::ParentDir) {
            return Err(format!("source path {} must not contain `..`", a.display()));
        }
        for b in &paths[..i] {
            let (na, nb) = (normal(a), normal(b));
            if na == nb {
                return Err(format!("source path {} is given twice", a.display()));
            }
            let (outer, inner) = if na.len() < nb.len() { (a, b) } else { (b, a) };
            if normal(inner).starts_with(&normal(outer)) {
                return Err(format!(
                    "source paths overlap: {} is inside {} (give only the outer one, and \
                     exclude what it should not hold)",
                    inner.display(),
                    outer.display()
                ));
            }
            if a.file_name().is_some() && a.file_name() == b.file_name() {
                return Err(format!(
                    "source paths {} and {} end in the same name: a point names each \
                     source by its last component",
                    b.display(),
                    a.display()
                ));
            }
        }
    }
    Ok(())
}

impl InstanceConfig {
    pub fn object_key(name: &str) -> String {
        layout::object_key(layout::INSTANCES, name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(paths: &[&str]) -> Result<(), String> {
        check_source_paths(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn source_paths() {
        assert!(check(&["/srv/www", "/etc/nginx"]).is_ok());
        assert!(check(&["/srv/www"]).is_ok());
        assert!(check(&["/src", "/srcx"]).is_ok());
        for bad in [
            &["/x", "/x"][..],
            &["/x", "/x/"],
            &["/x/./y", "/x/y"],
            &["/src", "/src/sub"],
            &["/src/sub", "/src"],
            &["/", "/etc"],
            &["/a/x", "/b/x"],
            &["rel"],
            &["/a/../b"],
            &[],
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}

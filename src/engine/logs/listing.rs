//! The files a log glob matches, listed again only when their directory changed: an
//! idle pass then costs one `stat` of the directory instead of opening and reading it
//! (a pass a second, for every instance, for as long as the daemon runs).
//!
//! Only a pattern whose wildcards are all in its last component is cached (one
//! directory to watch). A listing is trusted only when it was taken more than a second
//! after the directory's last change: a file made in the same tick of the file system's
//! clock as the listing leaves the directory's mtime unchanged.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const NS: i64 = 1_000_000_000;

#[derive(Debug)]
struct Listing {
    dir_mtime_ns: i64,
    taken_ns: i64,
    paths: Vec<Result<PathBuf, String>>,
}

/// Listings by pattern.
#[derive(Debug, Default)]
pub(super) struct GlobListings {
    by_pattern: HashMap<String, Listing>,
}

impl GlobListings {
    /// The paths `pattern` matches (or why one could not be read), as `glob` gives them.
    pub(super) fn matches(
        &mut self,
        pattern: &str,
    ) -> Result<Vec<Result<PathBuf, String>>, glob::PatternError> {
        let dir = watched_dir(pattern);
        let dir_mtime_ns = dir
            .and_then(|d| std::fs::metadata(d).ok())
            .map(|m| m.mtime() * NS + m.mtime_nsec());
        if let (Some(mtime), Some(cached)) = (dir_mtime_ns, self.by_pattern.get(pattern)) {
            if cached.dir_mtime_ns == mtime && cached.taken_ns - mtime > NS {
                return Ok(cached.paths.clone());
            }
        }
        let taken_ns = crate::model::now_ns();
        let paths: Vec<Result<PathBuf, String>> = glob::glob(pattern)?
            .map(|p| p.map_err(|e| e.to_string()))
            .collect();
        match dir_mtime_ns {
            Some(dir_mtime_ns) => {
                self.by_pattern.insert(
                    pattern.to_string(),
                    Listing {
                        dir_mtime_ns,
                        taken_ns,
                        paths: paths.clone(),
                    },
                );
            }
            None => {
                self.by_pattern.remove(pattern);
            }
        }
        Ok(paths)
    }
}

/// The directory of a pattern whose wildcards are all in its last component.
fn watched_dir(pattern: &str) -> Option<&Path> {
    let dir = Path::new(pattern).parent()?;
    let wild = |s: &str| s.contains(['*', '?', '[', ']']);
    (!wild(dir.to_str()?)).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_last_component_patterns_are_watched() {
        assert_eq!(
            watched_dir("/var/lib/x/*.log"),
            Some(Path::new("/var/lib/x"))
        );
        assert_eq!(watched_dir("/var/*/x/*.log"), None);
        assert_eq!(
            watched_dir("/var/lib/x/binlog.[0-9]*"),
            Some(Path::new("/var/lib/x"))
        );
    }

    #[test]
    fn a_new_file_shows_up_and_a_fresh_listing_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = format!("{}/*.log", dir.path().display());
        let mut l = GlobListings::default();
        std::fs::write(dir.path().join("a.log"), b"a").unwrap();
        assert_eq!(l.matches(&pattern).unwrap().len(), 1);
        // Made right after a listing, within the clock's tick: still seen.
        std::fs::write(dir.path().join("b.log"), b"b").unwrap();
        assert_eq!(l.matches(&pattern).unwrap().len(), 2);
        std::fs::remove_file(dir.path().join("a.log")).unwrap();
        assert_eq!(l.matches(&pattern).unwrap().len(), 1);
    }
}

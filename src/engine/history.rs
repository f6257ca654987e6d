//! The history chain of an instance: each manifest names its parent; a forgotten point's
//! forget record stands in for its manifest, so forgetting leaves no gap, while a
//! manifest deleted without a record still does.

use std::collections::{HashMap, HashSet};

/// The points of one instance as the chain sees them.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// Ids (hex) of the existing manifests.
    pub existing: HashSet<String>,
    /// Forgotten ids (hex) with the parent their record carries.
    pub forgotten: HashMap<String, Option<String>>,
}

impl Chain {
    /// Follows `parent` through forgotten points; `Err(id)` names the first link that
    /// is neither an existing manifest nor a recorded forgotten point.
    pub fn check(&self, parent: Option<&str>) -> Result<(), String> {
        let mut next = parent.map(str::to_string);
        // Hashes cannot form a cycle; the bound only guards against a broken record set.
        for _ in 0..=self.forgotten.len() {
            let Some(id) = next else { return Ok(()) };
            if self.existing.contains(&id) {
                return Ok(());
            }
            match self.forgotten.get(&id) {
                Some(parent) => next = parent.clone(),
                None => return Err(id),
            }
        }
        Err(next.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_points_bridge_and_unrecorded_gaps_break() {
        let mut c = Chain::default();
        c.existing.insert("a".into());
        c.forgotten.insert("b".into(), Some("a".into()));
        c.forgotten.insert("c".into(), Some("b".into()));
        c.forgotten.insert("x".into(), Some("gone".into()));
        c.forgotten.insert("first".into(), None);
        assert_eq!(c.check(None), Ok(()));
        assert_eq!(c.check(Some("a")), Ok(()));
        assert_eq!(c.check(Some("c")), Ok(()));
        assert_eq!(c.check(Some("first")), Ok(()));
        assert_eq!(c.check(Some("x")), Err("gone".into()));
        assert_eq!(c.check(Some("nope")), Err("nope".into()));
    }
}

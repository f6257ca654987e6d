//! The repository figures `.cairn/stats` shows, counted by the catalog at most once per
//! change the service sees (a point or instance changed, a job ended, a refresh found
//! something new), not on every `stat`.

use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, CatalogCounts};
use crate::sync::LockExt;

/// What the catalog says, as of one change.
#[derive(Debug, Default)]
pub(super) struct RepoFigures {
    pub counts: CatalogCounts,
    /// The instances that have points.
    pub with_points: Vec<String>,
}

/// What tells one change from the next: the service's generation, and its count of
/// refreshes that found something.
type ChangeKey = (u64, u64);

/// The figures of the last change asked for, by its key.
#[derive(Debug, Default)]
pub(super) struct StatsCache(Mutex<Option<(ChangeKey, Arc<RepoFigures>)>>);

impl StatsCache {
    /// The figures as of `key`: counted again only when the key moved. A catalog that cannot
    /// count gives zeros, and is asked again next time.
    pub fn figures(&self, catalog: &Catalog, key: ChangeKey) -> Arc<RepoFigures> {
        let mut cached = self.0.locked();
        if let Some((k, figures)) = &*cached {
            if *k == key {
                return figures.clone();
            }
        }
        let counted = catalog.counts().and_then(|counts| {
            Ok(RepoFigures {
                counts,
                with_points: catalog.instances()?,
            })
        });
        match counted {
            Ok(figures) => {
                let figures = Arc::new(figures);
                *cached = Some((key, figures.clone()));
                figures
            }
            Err(e) => {
                tracing::warn!("cannot count the catalog: {e}");
                Arc::default()
            }
        }
    }
}

//! The exclusive prune lease: `locks/prune-<generation>`, sealed JSON, created with a
//! conditional create. The newest generation is the lease; it is free once expired, and
//! taking it over means creating the next generation, which exactly one of several racing
//! prunes manages. A holder checks that no newer generation exists before each deletion.

use serde::{Deserialize, Serialize};

use super::{RepoError, Repository, Result};
use crate::store::StoreError;

const PREFIX: &str = "locks/prune-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub version: u32,
    /// Random hex: tells this holder from another on the same host.
    pub holder: String,
    pub host: String,
    pub acquired_ns: i64,
    pub expires_ns: i64,
}

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    generation: u64,
    pub record: LeaseRecord,
}

fn key(generation: u64) -> String {
    format!("{PREFIX}{generation:020}")
}

/// Lease generations present in the store, sorted.
fn generations(repo: &Repository) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = repo
        .store()
        .list("locks/")?
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(PREFIX)?.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

impl Lease {
    /// Takes the lease at `now_ns` for `ttl_ns`, or says who holds it.
    pub fn acquire(repo: &Repository, now_ns: i64, ttl_ns: i64) -> Result<Lease> {
        let present = generations(repo)?;
        let next = match present.last() {
            None => 0,
            Some(&g) => {
                match repo
                    .get_sealed(&key(g))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LeaseRecord>(&b).ok())
                {
                    Some(r) if r.expires_ns > now_ns => return Err(busy(&r)),
                    // Expired, or unreadable (a torn or foreign object): take it over.
                    _ => g + 1,
                }
            }
        };
        let mut holder = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut holder);
        let record = LeaseRecord {
            version: 1,
            holder: hex::encode(holder),
            host: crate::model::hostname(),
            acquired_ns: now_ns,
            expires_ns: now_ns.saturating_add(ttl_ns),
        };
        let json = serde_json::to_vec(&record).expect("lease serializes");
        match repo.put_sealed(&key(next), json) {
            Ok(()) => {}
            Err(RepoError::Store(StoreError::AlreadyExists(_))) => {
                return Err(RepoError::Busy(
                    "another prune took the lease at the same moment".into(),
                ))
            }
            Err(e) => return Err(e),
        }
        // Older generations are inert (only the newest counts): failing to tidy them is
        // no reason to give the lease up.
        for g in present {
            if let Err(e) = repo.store().delete(&key(g)) {
                tracing::warn!(generation = g, "cannot delete an old prune lease: {e}");
            }
        }
        Ok(Lease {
            generation: next,
            record,
        })
    }

    /// Fails if another prune has taken the lease over since.
    pub fn check(&self, repo: &Repository) -> Result<()> {
        match generations(repo)?.last() {
            Some(&g) if g == self.generation => Ok(()),
            _ => Err(RepoError::Busy(
                "the prune lease was taken over by another prune".into(),
            )),
        }
    }

    pub fn release(self, repo: &Repository) -> Result<()> {
        repo.store().delete(&key(self.generation))?;
        Ok(())
    }
}

fn busy(r: &LeaseRecord) -> RepoError {
    let until = chrono::DateTime::from_timestamp(r.expires_ns.div_euclid(1_000_000_000), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    RepoError::Busy(format!(
        "another prune (host `{}`) holds the lease until {until}",
        r.host
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::InitOptions;
    use crate::store::Store;

    #[test]
    fn one_holder_until_expiry_then_a_takeover_the_old_holder_notices() {
        let store = Store::from_object_store(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "memory".into(),
        )
        .unwrap();
        let repo = Repository::init(store, &InitOptions::unencrypted()).unwrap();
        let a = Lease::acquire(&repo, 100, 50).unwrap();
        assert!(matches!(
            Lease::acquire(&repo, 149, 50),
            Err(RepoError::Busy(_))
        ));
        a.check(&repo).unwrap();
        let b = Lease::acquire(&repo, 150, 50).unwrap();
        assert!(a.check(&repo).is_err());
        b.check(&repo).unwrap();
        assert_eq!(generations(&repo).unwrap(), vec![1]);
        b.release(&repo).unwrap();
        assert!(generations(&repo).unwrap().is_empty());
        Lease::acquire(&repo, 151, 50).unwrap();
    }
}

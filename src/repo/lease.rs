//! The exclusive prune lease: `locks/prune-<generation>`, sealed JSON, created with a
//! conditional create. The newest generation is the lease; taking it over means creating
//! the next generation, which exactly one of several racing prunes manages. A holder
//! checks that no newer generation exists before each deletion.
//!
//! A lease is free once expired, at once when its holder is a process of this host that
//! is gone (pid, start time and boot id tell, see [`ProcessId`]), and when the caller
//! breaks it explicitly: a lease of another host, whose process cannot be seen from here.
//! The safety argument is in docs/FORMAT.md, section 12.4.

use serde::{Deserialize, Serialize};

use super::layout;
use super::process::ProcessId;
use super::{RepoError, Repository, Result};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub version: u32,
    /// Random hex: tells this holder from another on the same host.
    pub holder: String,
    pub host: String,
    pub acquired_ns: i64,
    pub expires_ns: i64,
    /// The holding process (absent in leases of older writers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl LeaseRecord {
    fn process(&self) -> Option<ProcessId> {
        Some(ProcessId {
            pid: self.pid?,
            start_ticks: self.pid_start?,
            boot_id: self.boot_id.clone()?,
        })
    }
}

/// Who takes the lease: a host (named by the caller) and, where it can be known, the
/// process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub host: String,
    pub process: Option<ProcessId>,
}

impl LeaseHolder {
    /// This process on `host`.
    pub fn this_process(host: String) -> LeaseHolder {
        LeaseHolder {
            host,
            process: ProcessId::current(),
        }
    }
}

/// Why the previous lease was taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Takeover {
    /// It had expired.
    Expired,
    /// Unreadable (torn, or not ours).
    Unreadable,
    /// Its holder was a process of this host that is gone.
    HolderGone,
    /// Broken on request while it was live (`--break-lease`).
    Broken,
}

/// A lease this prune took over from another holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakenOver {
    pub reason: Takeover,
    /// The previous holder (`None` when it was unreadable).
    pub previous: Option<LeaseRecord>,
}

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    generation: u64,
    pub record: LeaseRecord,
    /// The lease it replaced, if it replaced one.
    pub taken_over: Option<TakenOver>,
}

/// Lease generations present in the store, sorted.
fn generations(repo: &Repository) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = repo
        .store()
        .list(layout::LOCKS)?
        .into_iter()
        .filter_map(|o| layout::prune_lease_generation(&o.key))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Whether `holder` may take over the lease `r` at `now_ns`, and why; else the refusal.
fn may_take_over(
    r: &LeaseRecord,
    holder: &LeaseHolder,
    now_ns: i64,
    break_lease: bool,
) -> Result<Takeover> {
    if r.expires_ns <= now_ns {
        return Ok(Takeover::Expired);
    }
    let here = r.host == holder.host;
    match r.process() {
        Some(p) if here && p.is_gone() => Ok(Takeover::HolderGone),
        Some(p) if here => Err(RepoError::Busy(format!(
            "another prune on this host ({p}) holds the lease until {}: it is still running; \
             stop it, or wait for it",
            until(r)
        ))),
        _ if break_lease => Ok(Takeover::Broken),
        _ => Err(RepoError::Busy(format!(
            "another prune (host `{}`) holds the lease until {}; if that prune is dead, \
             `cairn prune --break-lease` (ctl/prune: `break-lease=true`) takes it over",
            r.host,
            until(r)
        ))),
    }
}

impl Lease {
    /// Takes the lease at `now_ns` for `ttl_ns`, or says who holds it. With `break_lease`
    /// a live lease of another host (or of an older writer that did not record its
    /// process) is taken over too; a live process of this host is never displaced.
    pub fn acquire(
        repo: &Repository,
        holder: &LeaseHolder,
        now_ns: i64,
        ttl_ns: i64,
        break_lease: bool,
    ) -> Result<Lease> {
        let present = generations(repo)?;
        let (next, taken_over) = match present.last() {
            None => (0, None),
            Some(&g) => {
                let previous = repo
                    .get_sealed(&layout::prune_lease_key(g))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LeaseRecord>(&b).ok());
                let reason = match &previous {
                    Some(r) => may_take_over(r, holder, now_ns, break_lease)?,
                    None => Takeover::Unreadable,
                };
                (g + 1, Some(TakenOver { reason, previous }))
            }
        };
        let mut nonce = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let record = LeaseRecord {
            version: 1,
            holder: hex::encode(nonce),
            host: holder.host.clone(),
            acquired_ns: now_ns,
            expires_ns: now_ns.saturating_add(ttl_ns),
            pid: holder.process.as_ref().map(|p| p.pid),
            pid_start: holder.process.as_ref().map(|p| p.start_ticks),
            boot_id: holder.process.as_ref().map(|p| p.boot_id.clone()),
        };
        let json = serde_json::to_vec(&record).expect("lease serializes");
        match repo.put_sealed(&layout::prune_lease_key(next), json) {
            Ok(()) => {}
            Err(RepoError::Store(StoreError::AlreadyExists(_))) => {
                return Err(RepoError::Busy(
                    "another prune took the lease at the same moment".into(),
                ))
            }
            Err(e) => return Err(e),
        }
        if let Some(t) = &taken_over {
            if t.reason != Takeover::Expired {
                tracing::warn!(generation = next, reason = ?t.reason, "took the prune lease over");
            }
        }
        // Older generations are inert (only the newest counts): failing to tidy them is
        // no reason to give the lease up.
        for g in present {
            if let Err(e) = repo.store().delete(&layout::prune_lease_key(g)) {
                tracing::warn!(generation = g, "cannot delete an old prune lease: {e}");
            }
        }
        Ok(Lease {
            generation: next,
            record,
            taken_over,
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
        repo.store()
            .delete(&layout::prune_lease_key(self.generation))?;
        Ok(())
    }
}

fn until(r: &LeaseRecord) -> String {
    chrono::DateTime::from_timestamp(r.expires_ns.div_euclid(1_000_000_000), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::InitOptions;
    use crate::store::Store;

    fn repo() -> Repository {
        let store = Store::from_object_store(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "memory".into(),
        )
        .unwrap();
        Repository::init(store, &InitOptions::unencrypted()).unwrap()
    }

    fn me() -> LeaseHolder {
        LeaseHolder::this_process("here".into())
    }

    #[test]
    fn one_holder_until_expiry_then_a_takeover_the_old_holder_notices() {
        let repo = repo();
        let a = Lease::acquire(&repo, &me(), 100, 50, false).unwrap();
        assert!(matches!(
            Lease::acquire(&repo, &me(), 149, 50, false),
            Err(RepoError::Busy(_))
        ));
        a.check(&repo).unwrap();
        let b = Lease::acquire(&repo, &me(), 150, 50, false).unwrap();
        assert_eq!(b.taken_over.as_ref().unwrap().reason, Takeover::Expired);
        assert!(a.check(&repo).is_err());
        b.check(&repo).unwrap();
        assert_eq!(generations(&repo).unwrap(), vec![1]);
        b.release(&repo).unwrap();
        assert!(generations(&repo).unwrap().is_empty());
        Lease::acquire(&repo, &me(), 151, 50, false).unwrap();
    }

    /// A process of this host that has exited.
    fn dead_process() -> ProcessId {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        ProcessId {
            pid: child.id(),
            ..ProcessId::current().unwrap()
        }
    }

    #[test]
    fn a_lease_whose_holder_is_gone_from_this_host_is_taken_over_at_once() {
        let repo = repo();
        let crashed = LeaseHolder {
            host: "here".into(),
            process: Some(dead_process()),
        };
        let old = Lease::acquire(&repo, &crashed, 100, 1_000, false).unwrap();
        let new = Lease::acquire(&repo, &me(), 101, 1_000, false).unwrap();
        assert_eq!(
            new.taken_over.as_ref().unwrap().reason,
            Takeover::HolderGone
        );
        assert!(old.check(&repo).is_err());
    }

    #[test]
    fn a_live_lease_of_this_host_is_never_broken() {
        let repo = repo();
        let _held = Lease::acquire(&repo, &me(), 100, 1_000, false).unwrap();
        for break_lease in [false, true] {
            match Lease::acquire(&repo, &me(), 101, 1_000, break_lease) {
                Err(RepoError::Busy(m)) => assert!(m.contains("still running"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_lease_of_another_host_waits_unless_broken() {
        let repo = repo();
        let there = LeaseHolder {
            host: "there".into(),
            process: Some(dead_process()), // dead, but not a process this host can judge
        };
        let old = Lease::acquire(&repo, &there, 100, 1_000, false).unwrap();
        match Lease::acquire(&repo, &me(), 101, 1_000, false) {
            Err(RepoError::Busy(m)) => {
                assert!(
                    m.contains("host `there`") && m.contains("--break-lease"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let new = Lease::acquire(&repo, &me(), 102, 1_000, true).unwrap();
        let taken = new.taken_over.as_ref().unwrap();
        assert_eq!(taken.reason, Takeover::Broken);
        assert_eq!(taken.previous.as_ref().unwrap().host, "there");
        assert!(
            old.check(&repo).is_err(),
            "the old holder stops at its next check"
        );
    }

    #[test]
    fn a_lease_of_an_older_writer_reads_and_waits() {
        let repo = repo();
        let json =
            br#"{"version":1,"holder":"ab","host":"here","acquired_ns":1,"expires_ns":1000}"#;
        repo.put_sealed(&layout::prune_lease_key(3), json.to_vec())
            .unwrap();
        assert!(Lease::acquire(&repo, &me(), 10, 100, false).is_err());
        let l = Lease::acquire(&repo, &me(), 10, 100, true).unwrap();
        assert_eq!(l.taken_over.unwrap().reason, Takeover::Broken);
    }
}

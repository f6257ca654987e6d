//! The clock the scheduler reads. The daemon uses the system clock; tests inject a
//! [`ManualClock`] and move it forward, so weeks of schedule run in milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Now, in ns since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ns(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        crate::model::now_ns()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(now_ns: i64) -> ManualClock {
        ManualClock {
            now: AtomicI64::new(now_ns),
        }
    }

    pub fn set(&self, now_ns: i64) {
        self.now.store(now_ns, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_nanos() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

//! The bandwidth cap on bytes read from the live side: a token bucket shared by the
//! reading threads. Each read asks for its bytes before it is made and waits until the
//! reads before it are paid for, so that by any time `t` after the first read at most
//! `rate × t` bytes plus one read ([`READ_PIECE`]) were read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::LockExt;

/// The most one read asks for: a capped check reads files in pieces of this size.
pub const READ_PIECE: usize = 1 << 20;

/// A token bucket of `rate` bytes a second.
pub struct Throttle {
    rate: f64,
    /// When the bytes granted so far are paid for: a read waits until then.
    paid_until: Mutex<Instant>,
}

impl Throttle {
    /// A cap of `mb_per_sec` MB (10^6 bytes) a second; `None` for 0.
    pub fn new(mb_per_sec: u64) -> Option<Throttle> {
        (mb_per_sec > 0).then(|| Throttle {
            rate: mb_per_sec as f64 * 1e6,
            paid_until: Mutex::new(Instant::now()),
        })
    }

    /// Waits until `bytes` may be read: a read starts once the reads before it are paid
    /// for, so that idle time saves nothing up for a later burst.
    pub fn take(&self, bytes: usize) {
        let wait = {
            let mut paid = self.paid_until.locked();
            let now = Instant::now();
            let start = (*paid).max(now);
            *paid = start + Duration::from_secs_f64(bytes as f64 / self.rate);
            start - now
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_paced_to_the_rate() {
        let t = Throttle::new(10).unwrap(); // 10 MB/s: 1 MiB takes about 105 ms
        let start = Instant::now();
        for _ in 0..4 {
            t.take(READ_PIECE);
        }
        let elapsed = start.elapsed().as_secs_f64();
        // The first piece starts at once; each other one waits for those before it.
        assert!(elapsed >= 3.0 * READ_PIECE as f64 / 1e7 * 0.95, "{elapsed}");
        assert!(Throttle::new(0).is_none());
    }
}

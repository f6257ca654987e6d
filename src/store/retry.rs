//! Retries of whole requests, body included.
//!
//! object_store's own `RetryConfig` retries a request whose response never came (or came
//! as a 5xx), but not one whose body broke off after the headers (a LIST page, a GET),
//! nor a non-idempotent request (a conditional create) whose reply was lost. The store
//! wraps every idempotent operation — GET, ranged GET, HEAD, LIST, DELETE, the overwrite
//! of a setting and the conditional create of an object whose bytes the caller names —
//! in [`RetryPolicy::run`], which repeats the whole operation with exponential backoff
//! while the error is transient.

use std::future::Future;
use std::time::Duration;

use super::StoreError;

/// How often and how patiently a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one (with jitter).
    pub first_backoff: Duration,
    /// Longest wait between two tries.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// No retries: stores on this machine (a local directory, memory) fail for reasons a
    /// retry does not cure.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        first_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// Network stores: 6 tries over about 6 s on top of object_store's own retries.
    pub const NETWORK: RetryPolicy = RetryPolicy {
        attempts: 6,
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(3),
    };

    /// The wait before retry number `retry` (0-based): `first * 2^retry`, capped, with
    /// up to 50% random jitter so that clients that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_backoff);
        let jitter = rand::random::<f64>() * 0.5;
        base.mul_f64(1.0 + jitter).min(self.max_backoff)
    }

    /// Runs `op` until it succeeds, fails with an error that is not transient, or the
    /// tries are spent. `key` names the object in the log line of each retry.
    pub async fn run<T, F, Fut>(&self, key: &str, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut retry = 0;
        loop {
            match op().await {
                Err(e) if e.is_transient() && retry + 1 < self.attempts => {
                    let wait = self.backoff(retry);
                    tracing::info!(
                        key,
                        retry = retry + 1,
                        ?wait,
                        "retrying a storage request: {e}"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn flaky_error() -> StoreError {
        StoreError::Backend {
            key: "k".into(),
            source: object_store::Error::Generic {
                store: "test",
                source: "connection dropped".into(),
            },
        }
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn transient_errors_are_retried_until_success_or_the_tries_are_spent() {
        let calls = AtomicU32::new(0);
        let got = block_on(quick(4).run("k", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(flaky_error()),
                _ => Ok(7),
            }
        }));
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let got: Result<(), _> = block_on(quick(3).run("k", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(flaky_error())
        }));
        assert!(got.unwrap_err().is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_final_answer_is_not_retried() {
        let calls = AtomicU32::new(0);
        let got: Result<(), _> = block_on(quick(5).run("k", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::NotFound("k".into()))
        }));
        assert!(matches!(got, Err(StoreError::NotFound(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::NETWORK;
        assert!(p.backoff(0) >= Duration::from_millis(100));
        assert!(p.backoff(0) <= Duration::from_millis(150));
        assert!(p.backoff(3) >= Duration::from_millis(800));
        assert_eq!(p.backoff(20), p.max_backoff.min(p.backoff(20)));
        assert!(p.backoff(20) <= p.max_backoff);
    }
}

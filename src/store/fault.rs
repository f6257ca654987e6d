//! A fault-injecting `ObjectStore` decorator for tests of failure paths: after a set
//! number of successful reads, writes, or changes (writes and deletes together, to stop
//! a multi-step operation at each of its steps), every further one fails like a broken
//! backend. Passing faults too: the next few requests of any kind fail (a flaky
//! network), or the next few writes are made but their replies are lost.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Wraps a store; `fail_reads_after(n)` / `fail_writes_after(n)` arm the faults.
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    reads_left: AtomicI64,
    writes_left: AtomicI64,
    changes_left: AtomicI64,
    /// Requests of any kind still to fail before the store answers again.
    flaky: AtomicI64,
    /// Writes still to be made whose reply is then lost.
    lost_replies: AtomicI64,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "fault",
        source: format!("injected {what} failure").into(),
    }
}

/// Decrements a count of passing faults; `true` when one was taken.
fn take_one(count: &AtomicI64) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            (left > 0).then_some(left - 1)
        })
        .is_ok()
}

/// Decrements a budget; `true` when the operation must fail. A negative budget never fails.
fn spend(budget: &AtomicI64) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            (left > 0).then_some(left - 1)
        })
        .is_err()
        && budget.load(Ordering::SeqCst) == 0
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultStore {
        FaultStore {
            inner,
            reads_left: AtomicI64::new(-1),
            writes_left: AtomicI64::new(-1),
            changes_left: AtomicI64::new(-1),
            flaky: AtomicI64::new(0),
            lost_replies: AtomicI64::new(0),
        }
    }

    /// Fails the next `n` requests of any kind (reads, heads, lists, writes, deletes);
    /// then answers again.
    pub fn fail_next(&self, n: i64) {
        self.flaky.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` writes, then fails them as if their replies were lost.
    pub fn lose_next_write_replies(&self, n: i64) {
        self.lost_replies.store(n, Ordering::SeqCst);
    }

    /// Takes one passing fault, if any is left.
    fn flake(&self) -> bool {
        take_one(&self.flaky)
    }

    /// Lets `n` more reads succeed, then fails every read.
    pub fn fail_reads_after(&self, n: i64) {
        self.reads_left.store(n, Ordering::SeqCst);
    }

    /// Lets `n` more writes succeed, then fails every write.
    pub fn fail_writes_after(&self, n: i64) {
        self.writes_left.store(n, Ordering::SeqCst);
    }

    /// Lets `n` more writes or deletes succeed, then fails every one.
    pub fn fail_changes_after(&self, n: i64) {
        self.changes_left.store(n, Ordering::SeqCst);
    }

    /// Disarms every fault.
    pub fn heal(&self) {
        self.reads_left.store(-1, Ordering::SeqCst);
        self.writes_left.store(-1, Ordering::SeqCst);
        self.changes_left.store(-1, Ordering::SeqCst);
        self.flaky.store(0, Ordering::SeqCst);
        self.lost_replies.store(0, Ordering::SeqCst);
    }

    fn write_fails(&self) -> bool {
        // Both budgets are spent (no short-circuit): each counts what it is armed for.
        spend(&self.writes_left) | spend(&self.changes_left)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if self.flake() || self.write_fails() {
            return Err(injected("write"));
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        if result.is_ok() && take_one(&self.lost_replies) {
            return Err(injected("write reply"));
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        if self.write_fails() {
            return Err(injected("write"));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.flake() || (!options.head && spend(&self.reads_left)) {
            return Err(injected("read"));
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.flake() || spend(&self.reads_left) {
            return Err(injected("read"));
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.flake() || spend(&self.changes_left) {
            return locations.map(|_| Err(injected("delete"))).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.flake() {
            // Like a page whose body broke off: the first items came, then an error.
            return self
                .inner
                .list(prefix)
                .take(1)
                .chain(futures::stream::once(async { Err(injected("list")) }))
                .boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_down_then_fails_forever() {
        let b = AtomicI64::new(2);
        assert!(!spend(&b));
        assert!(!spend(&b));
        assert!(spend(&b));
        assert!(spend(&b));
        let never = AtomicI64::new(-1);
        assert!((0..10).all(|_| !spend(&never)));
    }
}

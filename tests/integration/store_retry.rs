//! Retries of the store (issue 10, items 10 and 11): a request that fails in passing is
//! tried again whole (the body too), and a conditional create whose reply was lost
//! finds its own object and has succeeded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;

use cairn::store::{FaultStore, RetryPolicy, Store, StoreError};

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

fn flaky_store() -> (Arc<FaultStore>, Store) {
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store = Store::from_object_store(fault.clone(), "fault(memory)".into())
        .unwrap()
        .with_retry(quick());
    (fault, store)
}

#[test]
fn every_idempotent_request_survives_passing_faults() {
    let (fault, store) = flaky_store();
    fault.fail_next(3);
    store.put_new("a/one", Bytes::from_static(b"one")).unwrap();
    fault.fail_next(3);
    store.put("a/setting", Bytes::from_static(b"s")).unwrap();
    fault.fail_next(3);
    assert_eq!(store.get("a/one").unwrap(), &b"one"[..]);
    fault.fail_next(3);
    assert_eq!(store.get_range("a/one", 1..3).unwrap(), &b"ne"[..]);
    fault.fail_next(3);
    assert_eq!(store.head("a/one").unwrap(), 3);
    // A listing whose body breaks off after the first item is listed again, whole.
    fault.fail_next(3);
    let mut keys: Vec<String> = store
        .list("a/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["a/one", "a/setting"]);
    fault.fail_next(3);
    store.delete("a/setting").unwrap();
    assert!(matches!(
        store.get("a/setting"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn faults_that_outlast_the_retries_still_fail_clearly() {
    let (fault, store) = flaky_store();
    store.put_new("k", Bytes::from_static(b"v")).unwrap();
    fault.fail_next(4);
    let err = store.get("k").unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(
        store.get("k").unwrap(),
        &b"v"[..],
        "healed after the faults"
    );
}

#[test]
fn a_create_whose_reply_was_lost_has_succeeded() {
    let (fault, store) = flaky_store();
    fault.lose_next_write_replies(1);
    store
        .put_new("points/www/p1", Bytes::from_static(b"manifest"))
        .expect("the retry finds its own object");
    assert_eq!(store.get("points/www/p1").unwrap(), &b"manifest"[..]);
}

#[test]
fn a_create_that_finds_other_bytes_still_fails() {
    let (fault, store) = flaky_store();
    store.put_new("k", Bytes::from_static(b"theirs")).unwrap();
    // First try: already there (no fault at all).
    assert!(matches!(
        store.put_new("k", Bytes::from_static(b"mine")),
        Err(StoreError::AlreadyExists(_))
    ));
    // After a lost reply of another create: still someone else's object.
    fault.fail_next(1);
    assert!(matches!(
        store.put_new("k", Bytes::from_static(b"mine")),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get("k").unwrap(), &b"theirs"[..]);
}

#[test]
fn stores_without_retries_fail_at_the_first_fault() {
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store = Store::from_object_store(fault.clone(), "fault(memory)".into()).unwrap();
    store.put_new("k", Bytes::from_static(b"v")).unwrap();
    fault.fail_next(1);
    assert!(store.get("k").is_err());
    assert_eq!(store.get("k").unwrap(), &b"v"[..]);
}

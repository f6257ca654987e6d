//! Log records read ahead on every core and handed over in order: reading one is a GET,
//! an authenticated decryption, a decompression and a hash of up to 16 MiB, so a restore
//! that wrote each record before reading the next one ran at a third of a plain restore.
//!
//! Memory: at most `workers + 1` records decoded and not yet consumed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::model::{LogRecord, ModelError};
use crate::repo::Repository;
use crate::sync::LockExt;

type Decoded = Result<Vec<u8>, ModelError>;

struct Shared {
    /// Decoded records by index, and the index the consumer waits for.
    ready: Mutex<(BTreeMap<usize, Decoded>, usize)>,
    changed: Condvar,
    next: AtomicUsize,
    stop: AtomicBool,
}

/// Calls `each(i, data)` for the records `keys[i]` in order, reading ahead in threads;
/// stops at the first record that cannot be read (its error) or when `each` says so.
pub(super) fn for_each_record<E>(
    repo: &Repository,
    keys: &[String],
    mut each: impl FnMut(usize, Vec<u8>) -> Result<bool, E>,
    unreadable: impl Fn(ModelError) -> E,
) -> Result<(), E> {
    if keys.len() <= 1 {
        for (i, key) in keys.iter().enumerate() {
            let (_, data) = LogRecord::read(repo, key).map_err(&unreadable)?;
            if !each(i, data)? {
                break;
            }
        }
        return Ok(());
    }
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(keys.len());
    let ahead = workers + 1;
    let shared = Shared {
        ready: Mutex::new((BTreeMap::new(), 0)),
        changed: Condvar::new(),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| read_records(repo, keys, ahead, &shared));
        }
        let outcome = consume(keys.len(), &shared, &mut each, &unreadable);
        shared.stop.store(true, Ordering::Relaxed);
        shared.changed.notify_all();
        outcome
    })
}

/// A reader: takes the next index, waits while it is too far ahead, reads and decodes.
fn read_records(repo: &Repository, keys: &[String], ahead: usize, shared: &Shared) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= keys.len() {
            return;
        }
        {
            let mut ready = shared.ready.locked();
            while i >= ready.1 + ahead && !shared.stop.load(Ordering::Relaxed) {
                ready = shared
                    .changed
                    .wait(ready)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let decoded = LogRecord::read(repo, &keys[i]).map(|(_, data)| data);
        shared.ready.locked().0.insert(i, decoded);
        shared.changed.notify_all();
    }
}

/// The consumer: each record in order, as soon as it is decoded.
fn consume<E>(
    len: usize,
    shared: &Shared,
    each: &mut impl FnMut(usize, Vec<u8>) -> Result<bool, E>,
    unreadable: &impl Fn(ModelError) -> E,
) -> Result<(), E> {
    for i in 0..len {
        let decoded = {
            let mut ready = shared.ready.locked();
            loop {
                if let Some(d) = ready.0.remove(&i) {
                    ready.1 = i + 1;
                    break d;
                }
                ready = shared
                    .changed
                    .wait(ready)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        shared.changed.notify_all();
        if !each(i, decoded.map_err(unreadable)?)? {
            break;
        }
    }
    Ok(())
}

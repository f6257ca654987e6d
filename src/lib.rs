//! cairn: a backup repository you can mount.
//!
//! Layers, each using only the ones before it in this list:
//!
//! 1. [`store`]: object storage (local directory, S3, GCS, Azure);
//! 2. [`repo`]: the chunk store: config and keys, blobs, packs, index segments, leases,
//!    and the object-key layout ([`repo::layout`]);
//! 3. [`model`]: what is stored: trees, point manifests, instances, policies;
//! 4. [`catalog`]: the local SQLite database: a cache rebuilt from the repository, and
//!    the history (jobs, events, damage found) that is kept;
//! 5. [`engine`]: backup, restore, verify, forget, prune;
//! 6. [`service`]: the daemon: jobs, schedules, the control protocol, the event log;
//! 7. [`fs`]: the FUSE mount over the service.
//!
//! [`sync`] is a leaf utility every layer may use (locks that outlive a panic).
//! `scripts/check-layers.py` fails on an import that runs up this list or in a circle.

pub mod catalog;
pub mod engine;
pub mod fs;
pub mod model;
pub mod repo;
pub mod service;
pub mod store;
pub mod sync;

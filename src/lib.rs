//! cairn: a backup repository you can mount.
//!
//! Layers, each depending only on those above it in this list: [`store`] (object
//! storage) -> [`repo`] (chunk store) -> [`catalog`] (SQLite cache) and [`model`] (what is
//! stored) -> [`engine`] (backup, restore, verify).

pub mod catalog;
pub mod engine;
pub mod fs;
pub mod model;
pub mod repo;
pub mod service;
pub mod store;
pub mod sync;

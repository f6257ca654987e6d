//! The FUSE view: a plain namespace model and the thin adapter that serves it.

mod adapter;
pub mod namespace;

pub use adapter::{mount, unmount, Mount, MountOptions};
pub use namespace::Namespace;

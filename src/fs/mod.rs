//! The FUSE view: a plain namespace model and the thin adapter that serves it.

mod adapter;
pub mod namespace;

pub use adapter::{mount, unmount, MountOptions};
pub use namespace::Namespace;

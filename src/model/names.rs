//! Names that come from users or from a repository, and the checks they must pass.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Instance and policy names: 1..=255 of `[A-Za-z0-9_-]`.
pub fn is_valid_instance_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Point labels (the part after the timestamp): 1..=64 of `[A-Za-z0-9_-]`, not `auto`.
pub fn is_valid_label(label: &str) -> bool {
    (1..=64).contains(&label.len())
        && label != "auto"
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A file name read from a repository is one path component that cannot escape its
/// directory: not empty, not `.`/`..`, no `/`, no NUL.
pub fn is_safe_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

pub fn as_os_str(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert!(is_valid_instance_name("redis-prod_1"));
        for bad in ["", "a b", "a/b", "a:b", "é", &"x".repeat(256)] {
            assert!(!is_valid_instance_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn components() {
        assert!(is_safe_component(b"normal"));
        assert!(is_safe_component(b"\xff\xfe odd"));
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
    }
}

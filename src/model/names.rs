//! Names that come from users or from a repository, and the checks they must pass.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Instance and policy names a reader accepts: 1..=255 of `[A-Za-z0-9_-]`.
pub fn is_valid_instance_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The rule of [`is_valid_instance_name`] as users are told it.
pub const INSTANCE_NAME_RULE: &str = "1-255 of A-Z a-z 0-9 _ -";

/// What a control request or a policy check says of a name that breaks
/// [`INSTANCE_NAME_RULE`]: `invalid WHAT name `NAME`: use 1-255 of ...`.
pub fn invalid_name(what: &str, name: &str) -> String {
    format!("invalid {what} name `{name}`: use {INSTANCE_NAME_RULE}")
}

/// A requested instance name that breaks [`INSTANCE_NAME_RULE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance name `{0}` must be {rule}", rule = INSTANCE_NAME_RULE)]
pub struct BadInstanceName(pub String);

/// Checks a requested instance name; the error names the rule.
pub fn check_instance_name(name: &str) -> Result<(), BadInstanceName> {
    if is_valid_instance_name(name) {
        Ok(())
    } else {
        Err(BadInstanceName(name.to_string()))
    }
}

/// The longest name a new instance or policy may get. Its definition is stored under
/// `instances/<name>` (`policies/<name>`), and a local store writes an object through a
/// sibling file named `<name>#<n>`: within a file system's 255-byte names, 15 bytes stay
/// free for that suffix. Longer names, which older writers made on object stores, are
/// still read.
pub const MAX_NEW_NAME_LEN: usize = 240;

/// Names a new instance or policy may get: 1..=[`MAX_NEW_NAME_LEN`] of `[A-Za-z0-9_-]`.
pub fn is_valid_new_name(name: &str) -> bool {
    name.len() <= MAX_NEW_NAME_LEN && is_valid_instance_name(name)
}

/// The label of safety points, which an in-place restore takes of what it replaces.
pub const SAFETY_LABEL: &str = "before-restore";

/// Labels only cairn gives: `auto` (scheduled points), `before-restore` (safety points),
/// and either followed by `-` and digits (the suffix that keeps a point's name unique).
pub fn is_reserved_label(label: &str) -> bool {
    ["auto", SAFETY_LABEL].iter().any(|r| {
        label
            .strip_prefix(r)
            .is_some_and(|rest| rest.is_empty() || is_unique_suffix(rest))
    })
}

/// `-` and decimal digits: what a writer appends to a point name that another point of
/// the instance already has.
pub fn is_unique_suffix(text: &str) -> bool {
    text.strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Point labels a user may give (the part after the timestamp): 1..=64 of
/// `[A-Za-z0-9_-]`, not reserved ([`is_reserved_label`]).
pub fn is_valid_label(label: &str) -> bool {
    (1..=64).contains(&label.len())
        && !is_reserved_label(label)
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
    fn a_bad_instance_name_is_told_the_rule() {
        assert!(check_instance_name("redis-prod_1").is_ok());
        assert_eq!(
            check_instance_name("a b").unwrap_err().to_string(),
            "instance name `a b` must be 1-255 of A-Z a-z 0-9 _ -"
        );
    }

    #[test]
    fn new_names_leave_room_for_the_local_store() {
        assert!(is_valid_new_name(&"x".repeat(MAX_NEW_NAME_LEN)));
        assert!(!is_valid_new_name(&"x".repeat(MAX_NEW_NAME_LEN + 1)));
        assert!(is_valid_instance_name(&"x".repeat(255)));
        assert!(!is_valid_new_name("a b"));
    }

    #[test]
    fn reserved_labels() {
        for bad in ["auto", "before-restore", "auto-2", "before-restore-17", ""] {
            assert!(!is_valid_label(bad), "{bad:?}");
        }
        for good in [
            "before-upgrade",
            "auto-x",
            "autox",
            "before-restore-x",
            "x-2",
        ] {
            assert!(is_valid_label(good), "{good:?}");
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

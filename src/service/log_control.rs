//! The log keys of the control grammar: `log=GLOB`, `log-every=SECONDS` and
//! `log-pushers=USER[,USER...]` of `add` in `ctl/instance`, and the requests of `ctl/log`
//! (`archive instance=NAME`, `push instance=NAME name=FILE bytes=N`), each value checked
//! before anything starts. Pushers are resolved to uids here too ([`resolve_user`]).

use std::ffi::CString;

use crate::model::instance::LogSources;
use crate::model::log_record::is_log_file_name;

use super::grammar::{instance_name, parse_words, ControlError, Fields, Result};

/// The longest `log-every=`: a day.
pub const MAX_LOG_EVERY_SECS: u64 = 86_400;
/// The largest file one push may carry (PostgreSQL's largest WAL segment is 1 GiB).
pub const MAX_PUSH_BYTES: u64 = 1 << 30;

/// The log keys of `add`: globs (absolute, valid patterns), the seconds between passes
/// and the users allowed to push.
pub fn log_sources(f: &mut Fields) -> Result<LogSources> {
    let globs = f.all("log");
    for g in &globs {
        if !g.starts_with('/') || g.split('/').any(|c| c == "..") || g.contains('\0') {
            return Err(ControlError::invalid(format!(
                "`log={g}` must be an absolute pattern without `..` (e.g. \
                 log=/var/lib/redis/appendonlydir/*)"
            )));
        }
        glob::Pattern::new(g).map_err(|e| ControlError::invalid(format!("`log={g}`: {e}")))?;
    }
    let every_secs = f
        .optional("log-every")?
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|s| (1..=MAX_LOG_EVERY_SECS).contains(s))
                .ok_or_else(|| {
                    ControlError::invalid(format!(
                        "log-every must be whole seconds from 1 to {MAX_LOG_EVERY_SECS}, got `{v}`"
                    ))
                })
        })
        .transpose()?;
    if every_secs.is_some() && globs.is_empty() {
        return Err(ControlError::invalid(
            "log-every= applies to log files: give log=GLOB too",
        ));
    }
    let mut pushers = Vec::new();
    for list in f.all("log-pushers") {
        for user in list.split(',').map(str::trim) {
            resolve_user(user).map_err(ControlError::invalid)?;
            if !pushers.iter().any(|p| p == user) {
                pushers.push(user.to_string());
            }
        }
    }
    Ok(LogSources {
        globs,
        every_secs,
        pushers,
    })
}

/// The uid of a user name or a numeric uid (`getpwnam`); the message to refuse it with.
pub fn resolve_user(user: &str) -> std::result::Result<u32, String> {
    if user.is_empty() {
        return Err("log-pushers= needs user names or uids, separated by commas".into());
    }
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    let unknown = || format!("log-pushers: no user `{user}` on this machine");
    let name = CString::new(user).map_err(|_| unknown())?;
    // getpwnam_r, not getpwnam: the mount's threads may look users up at once.
    // SAFETY: passwd is plain data (integers and pointers); all zeroes is a valid value.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `name` NUL-terminated, `entry` and
    // `found` writable, `buf` of the length given; nothing is kept after it.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(unknown());
    }
    Ok(entry.pw_uid)
}

/// A request into `ctl/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRequest {
    /// `archive instance=NAME`: a pass now; the reply says what it stored.
    Archive { instance: String },
    /// `range instance=NAME`: the restorable range, as one JSON object (a query: no event).
    Range { instance: String },
    /// `push instance=NAME name=FILE bytes=N`: the next N bytes written through the same
    /// handle are the file FILE, stored whole when the last of them arrives.
    Push {
        instance: String,
        name: String,
        bytes: u64,
    },
}

impl LogRequest {
    pub fn verb(&self) -> &'static str {
        match self {
            LogRequest::Archive { .. } => "archive",
            LogRequest::Range { .. } => "range",
            LogRequest::Push { .. } => "push",
        }
    }

    pub fn instance(&self) -> &str {
        match self {
            LogRequest::Archive { instance }
            | LogRequest::Range { instance }
            | LogRequest::Push { instance, .. } => instance,
        }
    }
}

pub fn parse_log(text: &str) -> Result<LogRequest> {
    let words = parse_words(text)?;
    let verb = words.verb.clone();
    let mut f = Fields::new(words);
    match verb.as_deref() {
        Some(verb @ ("archive" | "range")) => {
            let instance = instance_name(f.required("instance")?)?;
            f.finish("instance")?;
            Ok(match verb {
                "archive" => LogRequest::Archive { instance },
                _ => LogRequest::Range { instance },
            })
        }
        Some("push") => {
            let instance = instance_name(f.required("instance")?)?;
            let name = f.required("name")?;
            if !is_log_file_name(&name) {
                return Err(ControlError::invalid(format!(
                    "name=`{name}` must be one file name (1-255 bytes, no `/`, not `.`, `..` or \
                     starting with `@`)"
                )));
            }
            let bytes = f.required("bytes")?;
            let bytes = bytes
                .parse::<u64>()
                .ok()
                .filter(|b| *b <= MAX_PUSH_BYTES)
                .ok_or_else(|| {
                    ControlError::invalid(format!(
                        "bytes= must be a size from 0 to {MAX_PUSH_BYTES}, got `{bytes}`"
                    ))
                })?;
            f.finish("instance, name, bytes")?;
            Ok(LogRequest::Push {
                instance,
                name,
                bytes,
            })
        }
        Some(other) => Err(ControlError::invalid(format!(
            "unknown verb `{other}` in ctl/log (archive, range, push)"
        ))),
        None => Err(ControlError::invalid(
            "start with a verb: `archive instance=..` or `push instance=.. name=.. bytes=N`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::grammar::parse_words;

    fn sources(line: &str) -> Result<LogSources> {
        let mut f = Fields::new(parse_words(line)?);
        let s = log_sources(&mut f)?;
        f.finish("log keys")?;
        Ok(s)
    }

    #[test]
    fn log_keys_are_checked() {
        let s = sources(
            "log=/var/lib/redis/appendonlydir/* log=/x/b.[0-9]* log-every=1 log-pushers=root,0",
        )
        .unwrap();
        assert_eq!(s.globs.len(), 2);
        assert_eq!(s.every_secs, Some(1));
        assert_eq!(s.pushers, vec!["root".to_string(), "0".to_string()]);
        for bad in [
            "log=relative/*",
            "log=/a/../b",
            "log=/a/[",
            "log=/a log-every=0",
            "log=/a log-every=86401",
            "log=/a log-every=x",
            "log-every=5",
            "log-pushers=no-such-user-cairn",
            "log-pushers=",
        ] {
            assert!(sources(bad).is_err(), "{bad}");
        }
        assert_eq!(resolve_user("root"), Ok(0));
    }

    #[test]
    fn log_requests() {
        assert_eq!(
            parse_log("archive instance=r").unwrap(),
            LogRequest::Archive {
                instance: "r".into()
            }
        );
        assert_eq!(
            parse_log("push instance=pg name=000000010000000000000001 bytes=16").unwrap(),
            LogRequest::Push {
                instance: "pg".into(),
                name: "000000010000000000000001".into(),
                bytes: 16
            }
        );
        for bad in [
            "archive",
            "archive instance=r extra=1",
            "push instance=pg name=a/b bytes=1",
            "push instance=pg name=@x bytes=1",
            "push instance=pg name=x",
            "push instance=pg name=x bytes=-1",
            "instance=r",
            "prune",
        ] {
            assert!(parse_log(bad).is_err(), "{bad}");
        }
    }
}

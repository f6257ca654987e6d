//! Instance definitions: `instances/<name>`, sealed JSON, replaced when an instance is
//! added again and deleted when it is removed (its points stay).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::is_valid_instance_name;
use super::ModelError;
use crate::repo::layout;

/// The version of a definition with paths and excludes only.
pub const INSTANCE_VERSION: u32 = 1;
/// The version of a definition with hooks or command sources: a reader of version 1
/// alone refuses it (and skips the instance) rather than back it up without its hooks.
pub const INSTANCE_VERSION_HOOKS: u32 = 2;

/// How long a hook may run when the instance does not say (`hook-timeout=`).
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub version: u32,
    pub name: String,
    /// Source paths; may be empty (with no `commands` either, the instance is fed by
    /// stdin only: [`InstanceConfig::is_stdin_only`]).
    pub paths: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Command sources: each command's stdout is stored as the file `as` in the point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandSource>,
    /// Log files archived between points (`log=GLOB`, `log-every=`, `log-pushers=`).
    #[serde(default, skip_serializing_if = "LogSources::is_empty")]
    pub logs: LogSources,
}

/// Seconds between two archive passes of an instance's log globs, by default.
pub const DEFAULT_LOG_EVERY_SECS: u64 = 60;

/// An instance's log files (docs/FORMAT.md 9.3): globs archived every `every_secs`, and
/// the users allowed to push its logs through a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSources {
    /// Absolute glob patterns (`*`, `?`, `[...]` within one path component).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub globs: Vec<String>,
    /// Seconds between passes (1..=86400; default [`DEFAULT_LOG_EVERY_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u64>,
    /// User names (or numeric uids) that may push this instance's logs (and only that).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushers: Vec<String>,
}

impl LogSources {
    pub fn is_empty(&self) -> bool {
        *self == LogSources::default()
    }

    pub fn every_secs(&self) -> u64 {
        self.every_secs.unwrap_or(DEFAULT_LOG_EVERY_SECS)
    }
}

/// Commands the daemon runs with `/bin/sh -c` around the jobs of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Before a snapshot: a failure fails the job, and no point is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// After a snapshot whose `before` ran, whatever happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Before a restore: a failure leaves the target untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_before: Option<String>,
    /// After a restore whose `restore_before` ran (or that had none), told the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_after: Option<String>,
    /// Seconds a hook may run before it is killed (default [`DEFAULT_HOOK_TIMEOUT_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        *self == Hooks::default()
    }

    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS)
    }
}

/// A logical source: `command=CMD as=NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSource {
    pub command: String,
    /// The file name the output gets at the top of the point.
    #[serde(rename = "as")]
    pub name: String,
}

/// Checks the name a command source or a stream gets in a point: one path component,
/// not `.` or `..`, no `/` or NUL, at most 255 bytes. Returns the message to refuse it with.
pub fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.len() > 255 {
        return Err(format!(
            "stream name `{name}` must be one file name of 1-255 bytes, not `.` or `..`"
        ));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(format!("stream name `{name}` must not contain `/` or NUL"));
    }
    Ok(())
}

/// Checks the stream names of one point (command sources, `--stdin`) beside its source
/// paths: each one file name ([`check_stream_name`]), none given twice, none the last
/// component of a source path (both are entries at the top of the point). Returns the
/// message to refuse them with.
pub fn check_stream_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
    paths: &[PathBuf],
) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        check_stream_name(name)?;
        if seen.contains(&name) {
            return Err(format!("stream name `{name}` is given twice"));
        }
        if paths
            .iter()
            .any(|p| p.file_name().map_or(name == "root", |n| n == name))
        {
            return Err(format!(
                "stream name `{name}` is also the last component of a source path: a point \
                 holds both at its top"
            ));
        }
        seen.push(name);
    }
    Ok(())
}

/// A path's components without `.` (and so without trailing slashes).
fn normal(p: &Path) -> Vec<Component<'_>> {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

/// Checks the source paths of one instance (or one `--repo` snapshot): each absolute,
/// none given twice, none inside another (the outer one would back the inner one up
/// twice, and an in-place restore could not swap both), and no two ending in the same
/// name (a point of several sources names each by its last component). Paths compare as
/// written, after dropping `.` components and trailing slashes; symlinks are not followed.
/// Returns the message to refuse them with.
pub fn check_source_paths(paths: &[PathBuf]) -> Result<(), String> {
    if paths.is_empty() {
        return Err("no source path".into());
    }
    for (i, a) in paths.iter().enumerate() {
        if !a.is_absolute() {
            return Err(format!("source path {} is not absolute", a.display()));
        }
        if a.components().any(|c| c == Component::ParentDir) {
            return Err(format!("source path {} must not contain `..`", a.display()));
        }
        for b in &paths[..i] {
            let (na, nb) = (normal(a), normal(b));
            if na == nb {
                return Err(format!("source path {} is given twice", a.display()));
            }
            let (outer, inner) = if na.len() < nb.len() { (a, b) } else { (b, a) };
            if normal(inner).starts_with(&normal(outer)) {
                return Err(format!(
                    "source paths overlap: {} is inside {} (give only the outer one, and \
                     exclude what it should not hold)",
                    inner.display(),
                    outer.display()
                ));
            }
            if a.file_name().is_some() && a.file_name() == b.file_name() {
                return Err(format!(
                    "source paths {} and {} end in the same name: a point names each \
                     source by its last component",
                    b.display(),
                    a.display()
                ));
            }
        }
    }
    Ok(())
}

impl InstanceConfig {
    /// The version this definition is written with: 2 when it has hooks, command
    /// sources or log sources, or no paths (stdin only), else 1 (so a definition without them stays
    /// readable by older readers, and one they would back up wrongly is skipped).
    pub fn version_needed(&self) -> u32 {
        if self.hooks.is_empty()
            && self.commands.is_empty()
            && self.logs.is_empty()
            && !self.paths.is_empty()
        {
            INSTANCE_VERSION
        } else {
            INSTANCE_VERSION_HOOKS
        }
    }

    /// No paths and no commands: each snapshot stores only what it is given on stdin
    /// (`stdin=NAME`), so a snapshot without it, or a schedule, has nothing to read.
    pub fn is_stdin_only(&self) -> bool {
        self.paths.is_empty() && self.commands.is_empty()
    }

    /// Why a snapshot of this instance without a stream is refused, when it is
    /// [stdin only](InstanceConfig::is_stdin_only).
    pub fn needs_stdin(&self) -> Option<String> {
        let name = &self.name;
        self.is_stdin_only().then(|| {
            format!(
                "instance `{name}` has no paths and no commands: it is fed by stdin only, so a \
                 snapshot needs --stdin NAME (`pg_dump app | cairn snapshot {name} --stdin \
                 app.sql`; `stdin=NAME` in ctl/snapshot)"
            )
        })
    }

    pub fn object_key(name: &str) -> String {
        layout::object_key(layout::INSTANCES, name)
    }

    pub fn decode(key_name: &str, json: &[u8]) -> Result<InstanceConfig, ModelError> {
        let c: InstanceConfig = serde_json::from_slice(json)
            .map_err(|e| ModelError::Manifest(format!("instance definition: {e}")))?;
        if c.version != INSTANCE_VERSION && c.version != INSTANCE_VERSION_HOOKS {
            return Err(ModelError::Manifest(format!(
                "unknown instance version {}",
                c.version
            )));
        }
        if c.name != key_name || !is_valid_instance_name(&c.name) {
            return Err(ModelError::Manifest(
                "instance definition under the wrong name".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(paths: &[&str]) -> Result<(), String> {
        check_source_paths(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn source_paths() {
        assert!(check(&["/srv/www", "/etc/nginx"]).is_ok());
        assert!(check(&["/srv/www"]).is_ok());
        assert!(check(&["/src", "/srcx"]).is_ok());
        for bad in [
            &["/x", "/x"][..],
            &["/x", "/x/"],
            &["/x/./y", "/x/y"],
            &["/src", "/src/sub"],
            &["/src/sub", "/src"],
            &["/", "/etc"],
            &["/a/x", "/b/x"],
            &["rel"],
            &["/a/../b"],
            &[],
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    fn config(hooks: Hooks, commands: Vec<CommandSource>) -> InstanceConfig {
        let mut c = InstanceConfig {
            version: 0,
            name: "db".into(),
            paths: vec!["/srv/db".into()],
            excludes: Vec::new(),
            hooks,
            commands,
            logs: LogSources::default(),
        };
        c.version = c.version_needed();
        c
    }

    #[test]
    fn a_definition_without_hooks_keeps_version_1_and_its_bytes() {
        let c = config(Hooks::default(), Vec::new());
        assert_eq!(c.version, 1);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"version":1,"name":"db","paths":["/srv/db"],"excludes":[]}"#
        );
    }

    #[test]
    fn a_stdin_only_definition_needs_version_2_and_stdin() {
        let mut c = config(Hooks::default(), Vec::new());
        assert_eq!(c.needs_stdin(), None);
        c.paths.clear();
        assert_eq!(c.version_needed(), 2);
        assert!(c.is_stdin_only());
        assert!(c.needs_stdin().unwrap().contains("needs --stdin NAME"));
    }

    #[test]
    fn hooks_or_commands_need_version_2_and_read_back() {
        let hooks = Hooks {
            before: Some("redis-cli bgsave".into()),
            timeout_secs: Some(30),
            ..Hooks::default()
        };
        let with_hooks = config(hooks, Vec::new());
        assert_eq!(with_hooks.version, 2);
        assert_eq!(with_hooks.hooks.timeout_secs(), 30);
        let dump = CommandSource {
            command: "pg_dumpall".into(),
            name: "all.sql".into(),
        };
        let with_command = config(Hooks::default(), vec![dump]);
        assert_eq!(with_command.version, 2);
        assert_eq!(with_command.hooks.timeout_secs(), DEFAULT_HOOK_TIMEOUT_SECS);
        for c in [with_hooks, with_command] {
            let json = serde_json::to_vec(&c).unwrap();
            assert_eq!(InstanceConfig::decode("db", &json).unwrap(), c);
        }
        let json = serde_json::to_string(&config(
            Hooks::default(),
            vec![CommandSource {
                command: "x".into(),
                name: "y".into(),
            }],
        ))
        .unwrap();
        assert!(
            json.contains(r#""commands":[{"command":"x","as":"y"}]"#),
            "{json}"
        );
        assert!(InstanceConfig::decode("db", br#"{"version":3,"name":"db","paths":[]}"#).is_err());
    }

    #[test]
    fn stream_names_are_unique_and_apart_from_the_paths() {
        let paths = [PathBuf::from("/srv/data"), PathBuf::from("/")];
        assert!(check_stream_names(["a.sql", "b.sql"], &paths).is_ok());
        for bad in [&["a", "a"][..], &["data"], &["root"], &["x/y"]] {
            assert!(
                check_stream_names(bad.iter().copied(), &paths).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stream_names_are_one_component() {
        for good in ["all.sql", "dump.rdb", "a b", ".hidden"] {
            assert!(check_stream_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(256);
        for bad in ["", ".", "..", "a/b", "/x", "a\0b", long.as_str()] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
    }
}

//! The control grammar: one request is one line written into a control file, either
//! `key=value` words (values may be quoted) or one JSON object. A leading bare word is the
//! verb (`add`, `remove`, ...); in JSON it is the `op` key. Parsing is strict: unknown
//! keys, repeated single keys, missing required keys and invalid values are refused with a
//! message a person can act on, before anything starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::RestoreMode;
use crate::model::instance::check_source_paths;
use crate::model::manifest::is_valid_point_name;
use crate::model::names::{
    is_valid_instance_name, is_valid_label, is_valid_new_name, MAX_NEW_NAME_LEN,
};

/// Why a request was refused, with the errno the write() fails with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub errno: i32,
    pub message: String,
}

impl ControlError {
    pub fn invalid(message: impl Into<String>) -> ControlError {
        ControlError {
            errno: libc::EINVAL,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ControlError {
        ControlError {
            errno: libc::ENOENT,
            message: message.into(),
        }
    }

    pub fn exists(message: impl Into<String>) -> ControlError {
        ControlError {
            errno: libc::EEXIST,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ControlError>;

/// A parsed line: an optional verb and `key=value` pairs in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Words {
    pub verb: Option<String>,
    pub pairs: Vec<(String, String)>,
}

/// Splits one request into words. Accepts `key=value`, `key="quoted value"`,
/// `key='single quoted'`, and one JSON object.
pub fn parse_words(text: &str) -> Result<Words> {
    let line = text.trim_end_matches(['\n', '\r']);
    if line.contains('\n') {
        return Err(ControlError::invalid(
            "one request per write: the text has several lines",
        ));
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(ControlError::invalid("empty request"));
    }
    if line.starts_with('{') {
        return parse_json(line);
    }
    let mut words = Words::default();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            if words.verb.is_none() && words.pairs.is_empty() && is_word(&key) {
                words.verb = Some(key);
                continue;
            }
            return Err(ControlError::invalid(format!(
                "`{key}` is not a key=value word (quote values that contain spaces)"
            )));
        }
        chars.next(); // '='
        if !is_word(&key) {
            return Err(ControlError::invalid(format!("invalid key `{key}`")));
        }
        let mut value = String::new();
        match chars.peek() {
            Some(&q @ ('"' | '\'')) => {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == q {
                        closed = true;
                        break;
                    }
                    if c == '\\' && q == '"' {
                        match chars.next() {
                            Some(e @ ('"' | '\\')) => value.push(e),
                            Some(e) => {
                                value.push('\\');
                                value.push(e);
                            }
                            None => break,
                        }
                    } else {
                        value.push(c);
                    }
                }
                if !closed {
                    return Err(ControlError::invalid(format!(
                        "unclosed quote in the value of `{key}`"
                    )));
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(ControlError::invalid(format!(
                        "text after the closing quote of `{key}`"
                    )));
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '"' || c == '\'' {
                        return Err(ControlError::invalid(format!(
                            "a quote inside the value of `{key}`: quote the whole value"
                        )));
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        words.pairs.push((key, value));
    }
    Ok(words)
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_json(line: &str) -> Result<Words> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| ControlError::invalid(format!("invalid JSON request: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ControlError::invalid("a JSON request must be one object"))?;
    let mut words = Words::default();
    for (key, v) in obj {
        if !is_word(key) {
            return Err(ControlError::invalid(format!("invalid key `{key}`")));
        }
        let scalar = |v: &serde_json::Value| -> Result<String> {
            match v {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Bool(b) => Ok(b.to_string()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                _ => Err(ControlError::invalid(format!(
                    "`{key}` must be a string, number, boolean or a list of them"
                ))),
            }
        };
        if key == "op" {
            words.verb = Some(scalar(v)?);
            continue;
        }
        match v {
            serde_json::Value::Array(items) => {
                for item in items {
                    words.pairs.push((key.clone(), scalar(item)?));
                }
            }
            other => words.pairs.push((key.clone(), scalar(other)?)),
        }
    }
    Ok(words)
}

/// Pulls typed values out of [`Words`], refusing what is left over.
pub(super) struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    pub(super) fn new(words: Words) -> Fields {
        Fields { pairs: words.pairs }
    }

    fn all(&mut self, key: &str) -> Vec<String> {
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| k == key);
        self.pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    pub(super) fn optional(&mut self, key: &str) -> Result<Option<String>> {
        let mut values = self.all(key);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ControlError::invalid(format!(
                "`{key}` given more than once"
            ))),
        }
    }

    pub(super) fn required(&mut self, key: &str) -> Result<String> {
        self.optional(key)?
            .ok_or_else(|| ControlError::invalid(format!("missing `{key}=`")))
    }

    pub(super) fn finish(self, allowed: &str) -> Result<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(ControlError::invalid(format!(
                "unknown key `{k}` (allowed: {allowed})"
            ))),
        }
    }
}

pub(super) fn instance_name(value: String) -> Result<String> {
    if is_valid_instance_name(&value) {
        Ok(value)
    } else {
        Err(ControlError::invalid(format!(
            "invalid instance name `{value}`: use 1-255 of A-Z a-z 0-9 _ -"
        )))
    }
}

fn absolute(key: &str, value: String) -> Result<PathBuf> {
    let p = PathBuf::from(&value);
    if !p.is_absolute() {
        return Err(ControlError::invalid(format!(
            "`{key}` must be an absolute path, got `{value}`"
        )));
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        || value.contains('\0')
    {
        return Err(ControlError::invalid(format!(
            "`{key}` must not contain `..`"
        )));
    }
    Ok(p)
}

fn point_ref(value: String) -> Result<String> {
    if value == "latest" || is_valid_point_name(&value) {
        Ok(value)
    } else {
        Err(ControlError::invalid(format!(
            "invalid point `{value}`: a point name or `latest`"
        )))
    }
}

pub(super) fn boolean(key: &str, value: Option<String>) -> Result<bool> {
    match value.as_deref() {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(v) => Err(ControlError::invalid(format!(
            "`{key}` must be true or false, got `{v}`"
        ))),
    }
}

fn globs(key: &str, values: Vec<String>) -> Result<Vec<String>> {
    for g in &values {
        globset::Glob::new(g).map_err(|e| ControlError::invalid(format!("`{key}={g}`: {e}")))?;
    }
    Ok(values)
}

fn no_verb(words: &Words, file: &str) -> Result<()> {
    match &words.verb {
        None => Ok(()),
        Some(v) => Err(ControlError::invalid(format!(
            "ctl/{file} takes no verb, got `{v}`"
        ))),
    }
}

/// `ctl/instance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum InstanceRequest {
    Add {
        name: String,
        paths: Vec<PathBuf>,
        excludes: Vec<String>,
    },
    Remove {
        name: String,
    },
}

pub fn parse_instance(text: &str) -> Result<InstanceRequest> {
    let words = parse_words(text)?;
    let verb = words.verb.clone();
    let mut f = Fields::new(words);
    let req = match verb.as_deref() {
        Some("add") => {
            let name = instance_name(f.required("name")?)?;
            if !is_valid_new_name(&name) {
                return Err(ControlError::invalid(format!(
                    "instance name `{name}` is {} bytes long: a new instance's name has at \
                     most {MAX_NEW_NAME_LEN}",
                    name.len()
                )));
            }
            let paths = f
                .all("path")
                .into_iter()
                .map(|p| absolute("path", p))
                .collect::<Result<Vec<_>>>()?;
            if paths.is_empty() {
                return Err(ControlError::invalid(
                    "missing `path=` (an absolute path; repeat for several)",
                ));
            }
            check_source_paths(&paths).map_err(ControlError::invalid)?;
            let excludes = globs("exclude", f.all("exclude"))?;
            f.finish("name, path, exclude")?;
            InstanceRequest::Add {
                name,
                paths,
                excludes,
            }
        }
        Some("remove") => {
            let name = instance_name(f.required("name")?)?;
            f.finish("name")?;
            InstanceRequest::Remove { name }
        }
        Some(other) => {
            return Err(ControlError::invalid(format!(
                "unknown verb `{other}` (add, remove)"
            )))
        }
        None => {
            return Err(ControlError::invalid(
                "start with a verb: `add name=.. path=..` or `remove name=..`",
            ))
        }
    };
    Ok(req)
}

/// `ctl/snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub instance: String,
    pub label: Option<String>,
    /// Set when a policy takes the point (never by a request written into ctl/snapshot):
    /// the job takes a scheduled (`-auto`) point, and a failure is kept as a failed
    /// scheduled job. Stored as the `"schedule"` object of the job's request JSON, absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::scheduler::ScheduledRun>,
}

impl SnapshotRequest {
    /// Whether a policy's scheduler asked for this snapshot.
    pub fn is_scheduled(&self) -> bool {
        self.schedule.is_some()
    }
}

pub fn parse_snapshot(text: &str) -> Result<SnapshotRequest> {
    let words = parse_words(text)?;
    no_verb(&words, "snapshot")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let label = f.optional("name")?;
    if let Some(l) = &label {
        if !is_valid_label(l) {
            return Err(ControlError::invalid(format!(
                "invalid point label `{l}`: 1-64 of A-Z a-z 0-9 _ -, not `auto` or \
                 `before-restore` (reserved, also with a `-N` suffix)"
            )));
        }
    }
    f.finish("instance, name")?;
    Ok(SnapshotRequest {
        instance,
        label,
        schedule: None,
    })
}

/// `ctl/restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreControl {
    pub instance: String,
    pub point: String,
    pub target: Option<PathBuf>,
    pub includes: Vec<String>,
    pub in_place: bool,
    /// `delete-excluded=true`: an in-place restore also deletes what the backup excluded.
    #[serde(default)]
    pub delete_excluded: bool,
    /// `skip-damaged=true`: restore every intact file, skip (and name) damaged ones.
    #[serde(default)]
    pub skip_damaged: bool,
}

impl RestoreControl {
    pub fn mode(&self) -> RestoreMode {
        if self.in_place {
            RestoreMode::InPlace
        } else {
            RestoreMode::New
        }
    }
}

pub fn parse_restore(text: &str) -> Result<RestoreControl> {
    let words = parse_words(text)?;
    no_verb(&words, "restore")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let point = point_ref(f.required("point")?)?;
    let target = f
        .optional("target")?
        .map(|t| absolute("target", t))
        .transpose()?;
    let includes = globs("include", f.all("include"))?;
    let in_place = match f.optional("mode")?.as_deref() {
        None | Some("new") => false,
        Some("in-place") => true,
        Some(m) => {
            return Err(ControlError::invalid(format!(
                "mode must be `new` or `in-place`, got `{m}`"
            )))
        }
    };
    if !in_place && target.is_none() {
        return Err(ControlError::invalid(
            "mode=new needs `target=/absolute/path`",
        ));
    }
    let delete_excluded = boolean("delete-excluded", f.optional("delete-excluded")?)?;
    if delete_excluded && !in_place {
        return Err(ControlError::invalid(
            "delete-excluded=true applies to mode=in-place only",
        ));
    }
    let skip_damaged = boolean("skip-damaged", f.optional("skip-damaged")?)?;
    f.finish("instance, point, target, include, mode, delete-excluded, skip-damaged")?;
    Ok(RestoreControl {
        instance,
        point,
        target,
        includes,
        in_place,
        delete_excluded,
        skip_damaged,
    })
}

/// `ctl/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyControl {
    pub instance: Option<String>,
    pub point: Option<String>,
    pub read_data: bool,
}

pub fn parse_verify(text: &str) -> Result<VerifyControl> {
    // Every key is optional: an empty line verifies everything.
    let words = if text.trim().is_empty() {
        Words::default()
    } else {
        parse_words(text)?
    };
    no_verb(&words, "verify")?;
    let mut f = Fields::new(words);
    let instance = f.optional("instance")?.map(instance_name).transpose()?;
    let point = f.optional("point")?.map(point_ref).transpose()?;
    if point.is_some() && instance.is_none() {
        return Err(ControlError::invalid("`point=` needs `instance=`"));
    }
    let read_data = boolean("read-data", f.optional("read-data")?)?;
    f.finish("instance, point, read-data")?;
    Ok(VerifyControl {
        instance,
        point,
        read_data,
    })
}

/// `ctl/forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetControl {
    pub instance: String,
    pub points: Vec<String>,
    /// Manual points are forgotten only with `manual=true`.
    pub manual: bool,
}

pub fn parse_forget(text: &str) -> Result<ForgetControl> {
    let words = parse_words(text)?;
    no_verb(&words, "forget")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let points = f
        .all("point")
        .into_iter()
        .map(point_ref)
        .collect::<Result<Vec<_>>>()?;
    if points.is_empty() {
        return Err(ControlError::invalid(
            "missing `point=` (a point name or `latest`; repeat for several)",
        ));
    }
    let manual = boolean("manual", f.optional("manual")?)?;
    f.finish("instance, point, manual")?;
    Ok(ForgetControl {
        instance,
        points,
        manual,
    })
}

/// `ctl/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneControl {
    pub dry_run: bool,
    /// Hours between condemning data and deleting it (default 24).
    pub grace_hours: Option<u32>,
    /// Take over a live prune lease of another host (docs/FORMAT.md 12.4).
    #[serde(default)]
    pub break_lease: bool,
}

/// The longest grace period `ctl/prune` accepts: a year.
const MAX_GRACE_HOURS: u32 = 24 * 366;

pub fn parse_prune(text: &str) -> Result<PruneControl> {
    let words = if text.trim().is_empty() {
        Words::default()
    } else {
        parse_words(text)?
    };
    no_verb(&words, "prune")?;
    let mut f = Fields::new(words);
    let dry_run = boolean("dry-run", f.optional("dry-run")?)?;
    let grace_hours = f
        .optional("grace-hours")?
        .map(|v| match v.parse::<u32>() {
            Ok(h) if h <= MAX_GRACE_HOURS => Ok(h),
            _ => Err(ControlError::invalid(format!(
                "grace-hours must be 0..={MAX_GRACE_HOURS}, got `{v}`"
            ))),
        })
        .transpose()?;
    let break_lease = boolean("break-lease", f.optional("break-lease")?)?;
    f.finish("dry-run, grace-hours, break-lease")?;
    Ok(PruneControl {
        dry_run,
        grace_hours,
        break_lease,
    })
}

/// `ctl/cancel`.
pub fn parse_cancel(text: &str) -> Result<u64> {
    let words = parse_words(text)?;
    no_verb(&words, "cancel")?;
    let mut f = Fields::new(words);
    let job = f.required("job")?;
    f.finish("job")?;
    job.parse()
        .map_err(|_| ControlError::invalid(format!("job must be a job number, got `{job}`")))
}

#[cfg(test)]
mod tests;

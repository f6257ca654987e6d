//! The control grammar, both ways: one request is one line written into a control file,
//! either `key=value` words (values may be quoted) or one JSON object. A leading bare
//! word is the verb (`add`, `remove`, ...); in JSON it is the `op` key. [`parse_words`]
//! reads a line into [`Words`], [`Words::line`] writes one (the CLI builds its requests
//! with it); [`Fields`] and the value checks here pull typed values out, strictly:
//! unknown keys, repeated single keys, missing required keys and invalid values are
//! refused with a message a person can act on, before anything starts.

use std::path::PathBuf;

use crate::model::manifest::is_valid_point_name;
use crate::model::names::{invalid_name, is_valid_instance_name};

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

pub type Result<T> = std::result::Result<T, ControlError>;

/// A request's words: an optional verb and `key=value` pairs in order. [`parse_words`]
/// reads them from a line, [`Words::line`] writes them as one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Words {
    pub verb: Option<String>,
    pub pairs: Vec<(String, String)>,
}

impl Words {
    /// Words that start with `verb`.
    pub fn with_verb(verb: impl Into<String>) -> Words {
        Words {
            verb: Some(verb.into()),
            pairs: Vec::new(),
        }
    }

    /// Adds `key=value` (a key may repeat).
    pub fn kv(mut self, key: impl Into<String>, value: impl Into<String>) -> Words {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// The request as one line (with its newline): `key="value"` words, or one JSON
    /// object when a value holds a control character a line cannot carry.
    pub fn line(&self) -> String {
        if self
            .pairs
            .iter()
            .any(|(_, v)| v.chars().any(|c| c.is_control()))
        {
            let mut obj = serde_json::Map::new();
            if let Some(v) = &self.verb {
                obj.insert("op".into(), serde_json::json!(v));
            }
            for (k, v) in &self.pairs {
                match obj.get_mut(k) {
                    Some(serde_json::Value::Array(a)) => a.push(serde_json::json!(v)),
                    Some(one) => *one = serde_json::json!([one.clone(), v]),
                    None => {
                        obj.insert(k.clone(), serde_json::json!(v));
                    }
                }
            }
            return format!("{}\n", serde_json::Value::Object(obj));
        }
        let mut words: Vec<String> = self.verb.iter().cloned().collect();
        words.extend(self.pairs.iter().map(|(k, v)| format!("{k}={}", quote(v))));
        format!("{}\n", words.join(" "))
    }
}

/// `"value"` with `"` and `\` escaped, as [`parse_words`] reads it back.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
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
pub struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    pub fn new(words: Words) -> Fields {
        Fields { pairs: words.pairs }
    }

    pub fn all(&mut self, key: &str) -> Vec<String> {
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| k == key);
        self.pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    pub fn optional(&mut self, key: &str) -> Result<Option<String>> {
        let mut values = self.all(key);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ControlError::invalid(format!(
                "`{key}` given more than once"
            ))),
        }
    }

    pub fn required(&mut self, key: &str) -> Result<String> {
        self.optional(key)?
            .ok_or_else(|| ControlError::invalid(format!("missing `{key}=`")))
    }

    pub fn finish(self, allowed: &str) -> Result<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(ControlError::invalid(format!(
                "unknown key `{k}` (allowed: {allowed})"
            ))),
        }
    }
}

pub fn instance_name(value: String) -> Result<String> {
    if is_valid_instance_name(&value) {
        Ok(value)
    } else {
        Err(ControlError::invalid(invalid_name("instance", &value)))
    }
}

pub fn absolute(key: &str, value: String) -> Result<PathBuf> {
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

pub fn point_ref(value: String) -> Result<String> {
    if value == "latest" || is_valid_point_name(&value) {
        Ok(value)
    } else {
        Err(ControlError::invalid(format!(
            "invalid point `{value}`: a point name or `latest`"
        )))
    }
}

pub fn boolean(key: &str, value: Option<String>) -> Result<bool> {
    match value.as_deref() {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(v) => Err(ControlError::invalid(format!(
            "`{key}` must be true or false, got `{v}`"
        ))),
    }
}

pub fn globs(key: &str, values: Vec<String>) -> Result<Vec<String>> {
    for g in &values {
        globset::Glob::new(g).map_err(|e| ControlError::invalid(format!("`{key}={g}`: {e}")))?;
    }
    Ok(values)
}

pub fn no_verb(words: &Words, file: &str) -> Result<()> {
    match &words.verb {
        None => Ok(()),
        Some(v) => Err(ControlError::invalid(format!(
            "ctl/{file} takes no verb, got `{v}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_built_from_words_parses_back_to_them() {
        let words = Words::with_verb("add")
            .kv("name", "db")
            .kv("path", "/srv/a \"b\" \\c and 'single'")
            .kv("path", "/x");
        let line = words.line();
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(parse_words(&line).unwrap(), words);
        // A control character: the line is one JSON object, which parses back too.
        let words = Words::default()
            .kv("instance", "db")
            .kv("target", "/a\tb\nc");
        let line = words.line();
        assert!(line.starts_with('{'), "{line}");
        assert_eq!(parse_words(&line).unwrap(), words);
    }
}

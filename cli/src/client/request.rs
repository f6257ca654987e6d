//! One control request, built on the command line: the library's grammar
//! ([`cairn::service::grammar::Words`]) writes it as the line the daemon parses.

use std::path::Path;

use anyhow::Result;
use cairn::service::grammar::Words;

use crate::failure::usage;

/// One request line: an optional verb and `key=value` words.
#[derive(Debug, Default, Clone)]
pub struct Request {
    words: Words,
}

impl Request {
    pub fn new() -> Request {
        Request::default()
    }

    pub fn verb(verb: &'static str) -> Request {
        Request {
            words: Words::with_verb(verb),
        }
    }

    pub fn kv(self, key: &'static str, value: impl Into<String>) -> Request {
        Request {
            words: self.words.kv(key, value),
        }
    }

    pub fn path(self, key: &'static str, path: &Path) -> Result<Request> {
        let text = path.to_str().ok_or_else(|| {
            usage(format!(
                "{} is not valid UTF-8, which control requests cannot carry",
                path.display()
            ))
        })?;
        Ok(self.kv(key, text))
    }

    /// The request as one line (with its newline); see [`Words::line`].
    pub fn line(&self) -> String {
        self.words.line()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn requests_quote_values_and_fall_back_to_json_for_control_characters() {
        let r = Request::verb("add")
            .kv("name", "db")
            .kv("path", "/srv/a \"b\" \\c")
            .kv("path", "/x");
        assert_eq!(
            r.line(),
            "add name=\"db\" path=\"/srv/a \\\"b\\\" \\\\c\" path=\"/x\"\n"
        );
        let r = Request::verb("add")
            .kv("name", "db")
            .kv("path", "/a\nb")
            .kv("path", "/c");
        let line = r.line();
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            v,
            json!({"op": "add", "name": "db", "path": ["/a\nb", "/c"]})
        );
    }

    #[test]
    fn requests_round_trip_through_the_daemon_grammar() {
        let r = Request::new()
            .kv("instance", "db")
            .kv("point", "latest")
            .kv("target", "/t/with \"quotes\" and \\ and 'single'");
        let parsed = cairn::service::control::parse_restore(&r.line()).unwrap();
        assert_eq!(
            parsed.target.unwrap(),
            PathBuf::from("/t/with \"quotes\" and \\ and 'single'")
        );
        let r = Request::new()
            .kv("instance", "db")
            .kv("target", "/a\tb\nc")
            .kv("point", "latest");
        let parsed = cairn::service::control::parse_restore(&r.line()).unwrap();
        assert_eq!(parsed.target.unwrap(), PathBuf::from("/a\tb\nc"));
    }
}

//! Redis 7 AOF files cut at a second, the rule of `redis-check-aof
//! --truncate-to-timestamp` done without the Redis tools: with `aof-timestamp-enabled
//! yes`, Redis writes `#TS:<unix seconds>\r\n` before the first command of each second,
//! so the file is cut where the first annotation later than the second starts. The file
//! is parsed as RESP (annotations are only seen between commands, never inside one's
//! arguments), and a command left incomplete at the end is cut off too.

use std::io::Write;

/// Bytes of a line (an annotation, an array or bulk header) a valid AOF never exceeds.
const LINE_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between commands.
    Boundary,
    /// In an annotation (`#...`) or a command's header (`*N`), or an argument's (`$N`).
    Line(LineKind),
    /// In an argument's bytes and its CRLF: how many are left, then arguments left.
    Bulk { left: u64, args: u64 },
    /// Not RESP: nothing after `boundary` counts.
    Invalid,
    /// An annotation later than the second was found at `cut`.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Annotation,
    Array,
    BulkHeader { args: u64 },
}

/// Where an AOF is cut for the second `at_secs`; fed the file's bytes as a writer.
#[derive(Debug)]
pub(super) struct AofCut {
    at_secs: i64,
    state: State,
    pos: u64,
    /// Where the current line started, and its bytes.
    line_start: u64,
    line: Vec<u8>,
    /// The end of the last complete command or annotation.
    boundary: u64,
    cut: Option<u64>,
    /// Whether any `#TS:` annotation was seen.
    pub timestamps: bool,
}

impl AofCut {
    pub fn new(at_secs: i64) -> AofCut {
        AofCut {
            at_secs,
            state: State::Boundary,
            pos: 0,
            line_start: 0,
            line: Vec::new(),
            boundary: 0,
            cut: None,
            timestamps: false,
        }
    }

    /// The bytes of the file the second keeps.
    pub fn cut(&self) -> u64 {
        self.cut.unwrap_or(self.boundary)
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Boundary => {
                self.line_start = self.pos;
                self.line.clear();
                self.state = match b {
                    b'#' => State::Line(LineKind::Annotation),
                    b'*' => State::Line(LineKind::Array),
                    _ => State::Invalid,
                };
            }
            State::Line(kind) => {
                if b == b'\n' && self.line.last() == Some(&b'\r') {
                    self.line.pop();
                    self.state = self.end_line(kind);
                } else if self.line.len() >= LINE_MAX {
                    self.state = State::Invalid;
                } else {
                    self.line.push(b);
                }
            }
            State::Bulk { left, args } => {
                self.state = if left > 1 {
                    State::Bulk {
                        left: left - 1,
                        args,
                    }
                } else if args > 1 {
                    self.line_start = self.pos + 1;
                    self.line.clear();
                    State::Line(LineKind::BulkHeader { args: args - 1 })
                } else {
                    self.boundary = self.pos + 1;
                    State::Boundary
                };
            }
            State::Invalid | State::Done => {}
        }
        self.pos += 1;
    }

    /// The state after a complete line (without its CRLF) of `kind`.
    fn end_line(&mut self, kind: LineKind) -> State {
        let number = |text: &[u8]| -> Option<u64> { std::str::from_utf8(text).ok()?.parse().ok() };
        match kind {
            LineKind::Annotation => {
                if let Some(ts) = self.line.strip_prefix(b"TS:") {
                    let Some(ts) = number(ts) else {
                        return State::Invalid;
                    };
                    self.timestamps = true;
                    if ts as i64 > self.at_secs {
                        self.cut = Some(self.line_start);
                        return State::Done;
                    }
                }
                self.boundary = self.pos + 1;
                State::Boundary
            }
            LineKind::Array => match number(&self.line) {
                Some(0) => {
                    self.boundary = self.pos + 1;
                    State::Boundary
                }
                Some(args) => {
                    self.line_start = self.pos + 1;
                    self.line.clear();
                    State::Line(LineKind::BulkHeader { args })
                }
                None => State::Invalid,
            },
            LineKind::BulkHeader { args } => match self.line.strip_prefix(b"$").and_then(number) {
                Some(len) => State::Bulk {
                    left: len + 2,
                    args,
                },
                None => State::Invalid,
            },
        }
    }
}

impl Write for AofCut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if matches!(self.state, State::Invalid | State::Done) {
                break;
            }
            self.byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(aof: &[u8], at: i64) -> (u64, bool) {
        let mut c = AofCut::new(at);
        // Fed byte by byte and whole: the same cut.
        for b in aof {
            c.write_all(&[*b]).unwrap();
        }
        let mut whole = AofCut::new(at);
        whole.write_all(aof).unwrap();
        assert_eq!(whole.cut(), c.cut());
        (c.cut(), c.timestamps)
    }

    #[test]
    fn the_cut_is_at_the_first_later_annotation() {
        let one = b"#TS:100\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
        let two = b"#TS:101\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$9\r\n#TS:999\r\n\r\n";
        let aof = [&one[..], &two[..]].concat();
        assert_eq!(cut(&aof, 99), (0, true));
        assert_eq!(cut(&aof, 100), (one.len() as u64, true));
        // An argument that looks like an annotation is an argument.
        assert_eq!(cut(&aof, 101), (aof.len() as u64, true));
        // An incomplete last command is cut off; no annotation: no timestamps.
        assert_eq!(
            cut(&aof[..aof.len() - 3], 101),
            (one.len() as u64 + 9, true)
        );
        assert_eq!(cut(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", 5), (14, false));
        // Not RESP: nothing past the last boundary.
        assert_eq!(cut(b"*1\r\n$4\r\nPING\r\nREDIS0011", 5), (14, false));
    }
}

//! A fault-injecting HTTP/1.1 proxy in front of the test S3 server.
//!
//! Point an S3 client at [`FaultProxy::endpoint`]; every request goes through to the
//! server unchanged unless a [`Rule`] picks it (by method, by a substring of the request
//! target, and by count), and then the proxy answers 503 itself, sends the request on
//! but drops the connection before the reply, sends the reply's headers and drops the
//! connection before (or in the middle of) the body, or waits before passing it on.
//! Connections are kept alive as the client asks; bodies are framed by Content-Length or
//! chunked encoding, enough for object_store and SeaweedFS. [`FaultProxy::injected`]
//! counts the faults it injected; [`FaultProxy::take_seen`] tells the requests it saw, by
//! kind (GET, LIST, PUT, HEAD, ...), for tests that count requests.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to a request a rule picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 Slow Down` without passing the request on.
    Unavailable,
    /// Pass the request on (the server acts on it), then close the connection without
    /// a reply: a reply lost on the way back.
    DropReply,
    /// Pass the reply's status and headers, then close before the first body byte.
    DropBody,
    /// Pass the headers and about half of the body, then close.
    TruncateBody,
    /// Wait this many milliseconds, then pass the request on.
    Delay(u64),
}

/// Which requests get a fault: those matching `method` and `target` (a substring of the
/// request target: path and query), after the first `skip` matches, every `every`-th
/// match (1: each one), at most `times` times in all.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<&'static str>,
    pub target: Option<String>,
    pub fault: Fault,
    pub skip: u64,
    pub every: u64,
    pub times: u64,
}

impl Rule {
    /// A rule for every request, once.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            method: None,
            target: None,
            fault,
            skip: 0,
            every: 1,
            times: 1,
        }
    }

    pub fn method(mut self, m: &'static str) -> Rule {
        self.method = Some(m);
        self
    }

    pub fn target(mut self, t: &str) -> Rule {
        self.target = Some(t.to_string());
        self
    }

    pub fn skip(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    pub fn every(mut self, n: u64) -> Rule {
        self.every = n.max(1);
        self
    }

    pub fn times(mut self, n: u64) -> Rule {
        self.times = n;
        self
    }

    /// Forever (until the rules are cleared).
    pub fn always(self) -> Rule {
        self.times(u64::MAX)
    }
}

struct ArmedRule {
    rule: Rule,
    matched: u64,
    fired: u64,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<ArmedRule>>,
    stop: AtomicBool,
    requests: AtomicU64,
    injected: AtomicU64,
    seen: Mutex<Vec<Seen>>,
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// GET, LIST (a GET of the bucket), PUT, HEAD, DELETE, POST or the method.
    pub kind: String,
    /// The request target (path and query) and its Range header, if any.
    pub target: String,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.target)
    }
}

/// A request's kind as S3 bills it: a GET of the bucket itself is a listing.
fn kind_of(method: &str, target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let listing = query.split('&').any(|p| p.starts_with("list-type="))
        || path.trim_matches('/').split('/').count() <= 1;
    match method {
        "GET" if listing => "LIST".into(),
        other => other.into(),
    }
}

impl Shared {
    /// The fault for a request, if a rule picks it (the first rule that does).
    fn pick(&self, method: &str, target: &str, range: Option<&str>) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Seen {
                kind: kind_of(method, target),
                target: match range {
                    Some(r) => format!("{target} [{r}]"),
                    None => target.to_string(),
                },
            });
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for r in rules.iter_mut() {
            let hit = r.rule.method.is_none_or(|m| m == method)
                && r.rule.target.as_deref().is_none_or(|t| target.contains(t));
            if !hit {
                continue;
            }
            r.matched += 1;
            let n = r.matched;
            if n > r.rule.skip
                && (n - r.rule.skip - 1) % r.rule.every == 0
                && r.fired < r.rule.times
            {
                r.fired += 1;
                self.injected.fetch_add(1, Ordering::SeqCst);
                return Some(r.rule.fault);
            }
        }
        None
    }
}

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("s3-fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = conn else { continue };
                    let (s, upstream) = (s.clone(), upstream.clone());
                    std::thread::spawn(move || {
                        let _ = serve(&s, client, &upstream);
                    });
                }
            })
            .unwrap();
        FaultProxy { addr, shared }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn add(&self, rule: Rule) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ArmedRule {
                rule,
                matched: 0,
                fired: 0,
            });
    }

    /// Removes every rule: from now on everything passes.
    pub fn clear(&self) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The requests seen since the last call, in order.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// One HTTP message: the head (start line and headers, raw) and the body as framed on
/// the wire (raw chunks for chunked encoding).
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
    /// The peer said `Connection: close` (or the body ran to the end of the stream).
    close: bool,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a message head; `None` at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let end = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if end {
            return Ok(Some(head));
        }
    }
}

/// Reads a body framed as `head` says; `to_close` when the body runs to end of stream.
fn read_body(r: &mut impl BufRead, head: &str, has_body: bool) -> io::Result<(Vec<u8>, bool)> {
    if !has_body {
        return Ok((Vec::new(), false));
    }
    if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line)?;
            let size_text = String::from_utf8_lossy(&line);
            let size = usize::from_str_radix(size_text.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            body.extend_from_slice(&line);
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let mut t = Vec::new();
                    r.read_until(b'\n', &mut t)?;
                    body.extend_from_slice(&t);
                    if t == b"\r\n" || t == b"\n" || t.is_empty() {
                        return Ok((body, false));
                    }
                }
            }
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
        }
    }
    match header(head, "content-length") {
        Some(n) => {
            let n: usize = n.parse().map_err(|_| io::Error::other("bad length"))?;
            let mut body = vec![0u8; n];
            r.read_exact(&mut body)?;
            Ok((body, false))
        }
        None if head.starts_with("HTTP/") => {
            let mut body = Vec::new();
            r.read_to_end(&mut body)?;
            Ok((body, true))
        }
        None => Ok((Vec::new(), false)),
    }
}

fn wants_close(head: &str) -> bool {
    header(head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

fn read_request(r: &mut impl BufRead) -> io::Result<Option<Message>> {
    let Some(head) = read_head(r)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let (body, _) = read_body(r, &text, true)?;
    Ok(Some(Message {
        close: wants_close(&text),
        head,
        body,
    }))
}

fn read_response(r: &mut impl BufRead, method: &str) -> io::Result<Message> {
    let head = read_head(r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let has_body = method != "HEAD" && status != 204 && status != 304 && status >= 200;
    let (body, to_end) = read_body(r, &text, has_body)?;
    Ok(Message {
        close: to_end || wants_close(&text),
        head,
        body,
    })
}

struct Upstream {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn connect(upstream: &str) -> io::Result<Upstream> {
    let s = TcpStream::connect(upstream)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(Upstream {
        reader: BufReader::new(s.try_clone()?),
        writer: s,
    })
}

/// Serves one client connection until it closes or a fault closes it.
fn serve(shared: &Shared, client: TcpStream, upstream: &str) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut up: Option<Upstream> = None;
    while let Some(req) = read_request(&mut from_client)? {
        let line = String::from_utf8_lossy(&req.head).into_owned();
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("").to_string();
        let fault = shared.pick(&method, &target, header(&line, "range"));
        if fault == Some(Fault::Unavailable) {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                        <Message>injected 503</Message></Error>";
            write!(
                to_client,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            continue;
        }
        if let Some(Fault::Delay(ms)) = fault {
            std::thread::sleep(Duration::from_millis(ms));
        }
        // One attempt on a kept-alive upstream connection, one more on a fresh one (the
        // server may have closed an idle connection).
        let mut reply = None;
        for _ in 0..2 {
            if up.is_none() {
                up = Some(connect(upstream)?);
            }
            let u = up.as_mut().expect("connected");
            let sent = u
                .writer
                .write_all(&req.head)
                .and_then(|_| u.writer.write_all(&req.body));
            match sent.and_then(|_| read_response(&mut u.reader, &method)) {
                Ok(r) => {
                    reply = Some(r);
                    break;
                }
                Err(_) => up = None,
            }
        }
        let reply = reply.ok_or_else(|| io::Error::other("upstream failed twice"))?;
        if reply.close {
            up = None;
        }
        match fault {
            Some(Fault::DropReply) => break,
            Some(Fault::DropBody) => {
                to_client.write_all(&reply.head)?;
                break;
            }
            Some(Fault::TruncateBody) => {
                to_client.write_all(&reply.head)?;
                to_client.write_all(&reply.body[..reply.body.len() / 2])?;
                break;
            }
            _ => {
                to_client.write_all(&reply.head)?;
                to_client.write_all(&reply.body)?;
            }
        }
        if req.close || reply.close {
            break;
        }
    }
    let _ = to_client.shutdown(Shutdown::Both);
    Ok(())
}

//! Named byte streams (a command's stdout, `--stdin`) stored as regular files at the top
//! of a point: chunked as they arrive with the files' content-defined chunker (memory
//! bounded, no temporary file), then told by their producer whether they are complete.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::engine::{EngineError, Result};
use crate::model::{Node, NodeKind};
use crate::sync::LockExt;

use super::pipeline::chunk_parallel;
use super::run::Ctx;

/// Says, once the stream has been read to its end (or abandoned), whether its producer
/// succeeded; the message is the error the backup fails with.
pub type StreamFinish = Box<dyn FnOnce() -> std::result::Result<(), String> + Send>;

type Body = (Box<dyn Read + Send>, StreamFinish);

/// One named byte stream of a backup. Read once: a second backup of the same request
/// fails.
pub struct StreamSource {
    /// The file name in the point ([`crate::model::instance::check_stream_name`]).
    pub name: String,
    body: Mutex<Option<Body>>,
}

impl StreamSource {
    pub fn new(name: &str, reader: Box<dyn Read + Send>, finish: StreamFinish) -> StreamSource {
        StreamSource {
            name: name.to_string(),
            body: Mutex::new(Some((reader, finish))),
        }
    }
}

impl fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A stream's content, read to its end and confirmed by its producer.
pub(super) struct StreamContent {
    node: Node,
}

/// Reads and chunks one stream. The reader is dropped before `finish` runs, so a producer
/// still writing sees a closed pipe. Any failure (of the reader, the producer or the
/// backup) fails the backup: a stream is never stored truncated.
pub(super) fn read_stream(ctx: &Ctx<'_>, s: &StreamSource) -> Result<StreamContent> {
    let failed = |message: String| EngineError::StreamFailed {
        name: s.name.clone(),
        message,
    };
    let (reader, finish) = s
        .body
        .locked()
        .take()
        .ok_or_else(|| failed("already read by an earlier backup".into()))?;
    let mut node = Node::new(s.name.as_bytes().to_vec(), NodeKind::File);
    let read = chunk_parallel(
        ctx,
        reader,
        &mut node.content,
        |e| failed(format!("reading it: {e}")),
        |n| ctx.progress.bytes_read(n),
    );
    let finished = finish();
    if read.is_err() || finished.is_err() {
        // What was uploaded gets its index segment, so that every prune (from any
        // machine) sees these packs unreferenced and removes them.
        if let Err(f) = ctx.packer.flush() {
            tracing::warn!("after the failed stream {}: {f}", s.name);
        }
    }
    // A cancel may have ended the producer: that is the cancel, not its failure.
    ctx.cancel.check()?;
    node.size = read?;
    finished.map_err(failed)?;
    ctx.files.fetch_add(1, Ordering::Relaxed);
    ctx.files_read.fetch_add(1, Ordering::Relaxed);
    ctx.bytes.fetch_add(node.size, Ordering::Relaxed);
    // Its bytes were counted as they were read.
    ctx.progress.file_done(Path::new(&s.name), 0);
    Ok(StreamContent { node })
}

impl StreamContent {
    /// The stream's file: owned by this process, mode 0600, modified at the point's time.
    pub(super) fn into_node(self, time_ns: i64) -> Node {
        let mut node = self.node;
        // SAFETY: geteuid and getegid cannot fail.
        (node.uid, node.gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        node.mode = 0o600;
        node.mtime_ns = time_ns;
        node.ctime_ns = time_ns;
        node
    }
}

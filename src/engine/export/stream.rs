//! An archive read at offsets, as a file is (the mount's `<point>.tar`): a thread
//! generates the tar stream into a bounded channel, and reads take from it in order.
//! The last [`WINDOW`] bytes stay at hand, so reads a little out of order (the kernel's
//! parallel read-ahead) cost nothing; a read further back starts the stream again and
//! skips to it, so correctness never depends on the reader going forward.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::{write_archive, ExportError};
use crate::engine::{CancelToken, TreeReader};
use crate::model::Manifest;
use crate::sync::LockExt;

/// Bytes kept before the latest read's offset.
const WINDOW: u64 = 8 << 20;
/// Bytes per message from the generating thread.
const PIECE: usize = 1 << 20;
/// Messages in flight.
const PIECES: usize = 4;

/// One open archive: where to generate it from, and the stream being read.
pub struct ArchiveReader {
    trees: TreeReader,
    manifest: Manifest,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stream: Option<Receiver<io::Result<Vec<u8>>>>,
    /// Stream bytes at hand, the first at offset `start`.
    window: Vec<u8>,
    start: u64,
    /// The stream has ended (everything it has is in the window).
    ended: bool,
}

impl ArchiveReader {
    pub fn new(trees: TreeReader, manifest: Manifest) -> ArchiveReader {
        ArchiveReader {
            trees,
            manifest,
            state: Mutex::new(State::default()),
        }
    }

    /// Up to `size` bytes of the archive at `offset` (fewer only at its end).
    pub fn read_at(&self, offset: u64, size: usize) -> io::Result<Vec<u8>> {
        let mut s = self.state.locked();
        if s.stream.is_none() || offset < s.start {
            *s = State {
                stream: Some(self.generate()?),
                ..State::default()
            };
        }
        let want_end = offset.saturating_add(size as u64);
        while s.start + (s.window.len() as u64) < want_end && !s.ended {
            let next = s.stream.as_ref().map(|rx| rx.recv());
            match next {
                Some(Ok(Ok(piece))) => s.window.extend_from_slice(&piece),
                Some(Ok(Err(e))) => {
                    // The next read starts again (and meets the error again).
                    s.stream = None;
                    return Err(e);
                }
                _ => s.ended = true,
            }
            // Drop what lies well before the offset (in large steps: few moves), all of
            // it when skipping forward.
            let end = s.start + s.window.len() as u64;
            let keep_from = offset.saturating_sub(WINDOW).clamp(s.start, end);
            if keep_from - s.start > WINDOW {
                let drop = (keep_from - s.start) as usize;
                s.window.drain(..drop);
                s.start = keep_from;
            }
        }
        let end = s.start + s.window.len() as u64;
        let from = offset.min(end) - s.start;
        let to = want_end.min(end) - s.start;
        Ok(s.window[from as usize..to as usize].to_vec())
    }

    /// Starts a thread writing the archive into a channel.
    fn generate(&self) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
        let (tx, rx) = sync_channel(PIECES);
        let (trees, manifest) = (self.trees.clone(), self.manifest.clone());
        std::thread::Builder::new()
            .name("cairn-export-stream".into())
            .spawn(move || {
                let mut out = Pieces {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(PIECE),
                };
                match write_archive(&trees, &manifest, None, &mut out, &CancelToken::new()) {
                    // The reader closed the file, or went back to an earlier offset.
                    Err(ExportError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => {
                        tracing::error!("export of point {}: {e}", manifest.name);
                        let _ = tx.send(Err(io::Error::other(e.to_string())));
                    }
                    Ok(_) => {}
                }
            })?;
        Ok(rx)
    }
}

/// A writer sending its bytes in pieces; fails once the reader is gone.
struct Pieces {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for Pieces {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx
            .send(Ok(piece))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

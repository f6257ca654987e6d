//! One long byte stream chunked on every core: the calling thread reads and cuts chunks
//! (FastCDC, the same cut points as the sequential chunker); workers hash, compress, seal
//! and pack them; the extents come back in stream order.
//!
//! Memory is fixed whatever the stream's length: a read window of two maximum chunks, and
//! `workers + 1` chunk buffers that go round between the reader and the workers (the
//! reader waits for a free one), plus what the packer holds.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use crate::engine::{EngineError, Result};
use crate::model::Extent;
use crate::repo::{BlobId, BlobKind};
use crate::sync::LockExt;

use super::run::Ctx;

/// A chunk on its way to a worker: its place in the stream and its bytes.
type Work = (usize, Vec<u8>);
/// A worker's answer: the chunk's place, its id (or why not) and its length.
type Done = (usize, Result<BlobId>, u32);

/// Reads `source` to its end and stores it as chunks, in `workers` threads (at least 1);
/// `read` hears the length of every chunk cut. Returns the stream's length.
pub(super) fn chunk_parallel(
    ctx: &Ctx<'_>,
    mut source: impl Read,
    extents: &mut Vec<Extent>,
    io: impl Fn(std::io::Error) -> EngineError,
    read: impl Fn(u64),
) -> Result<u64> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let c = ctx.repo.config().chunker;
    let max = c.max_size as usize;
    let buffers = workers + 1;
    let (work_tx, work_rx) = sync_channel::<Work>(buffers);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(buffers);
    // Answers are small and never wait: a worker blocked on them would hold up the end.
    let (done_tx, done_rx) = channel::<Done>();
    for _ in 0..buffers {
        // Capacity is not memory until written: a buffer costs what its chunks use.
        let _ = free_tx.send(Vec::with_capacity(max));
    }
    let work_rx = Mutex::new(work_rx);
    let failed = AtomicBool::new(false);
    let mut done = Vec::new();
    let outcome = std::thread::scope(|s| {
        for i in 0..workers {
            let (work_rx, free_tx, done_tx, failed) =
                (&work_rx, free_tx.clone(), done_tx.clone(), &failed);
            std::thread::Builder::new()
                .name(format!("cairn-stream-{i}"))
                .spawn_scoped(s, move || {
                    pack_chunks(ctx, work_rx, free_tx, done_tx, failed)
                })
                .map_err(|e| io(std::io::Error::other(format!("cannot start a thread: {e}"))))?;
        }
        drop((free_tx, done_tx));
        let outcome = cut_chunks(
            ctx,
            &mut source,
            &io,
            &read,
            &work_tx,
            &free_rx,
            &done_rx,
            &failed,
            &mut done,
        );
        // Closing the queue ends the workers once they have drained it.
        drop(work_tx);
        outcome
    });
    done.extend(done_rx.try_iter());
    let total = outcome?;
    done.sort_unstable_by_key(|(seq, _, _)| *seq);
    extents.reserve(done.len());
    for (_, id, len) in done {
        extents.push(Extent::Data { id: id?, len });
    }
    Ok(total)
}

/// The reader's side: fills the window, cuts the next chunk, hands it over in a free
/// buffer, and collects answers as they come (so the workers never wait on a full queue).
#[allow(clippy::too_many_arguments)]
fn cut_chunks(
    ctx: &Ctx<'_>,
    source: &mut impl Read,
    io: &impl Fn(std::io::Error) -> EngineError,
    read: &impl Fn(u64),
    work_tx: &SyncSender<Work>,
    free_rx: &Receiver<Vec<u8>>,
    done_rx: &Receiver<Done>,
    failed: &AtomicBool,
    done: &mut Vec<Done>,
) -> Result<u64> {
    let c = ctx.repo.config().chunker;
    let max = c.max_size as usize;
    let mut window = vec![0u8; 2 * max];
    let (mut start, mut end, mut eof) = (0usize, 0usize, false);
    let mut total = 0u64;
    for seq in 0.. {
        ctx.cancel.check()?;
        if failed.load(Ordering::Relaxed) {
            break;
        }
        // At least a maximum chunk in the window, or the stream's end.
        while !eof && end - start < max {
            if end == window.len() {
                window.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            match source.read(&mut window[end..]) {
                Ok(0) => eof = true,
                Ok(n) => end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        if start == end {
            break;
        }
        let cdc = fastcdc::v2020::FastCDC::new(&window[..end], c.min_size, c.avg_size, c.max_size);
        let (_, cut) = cdc.cut(start, end - start);
        let mut buf = free_rx
            .recv()
            .map_err(|_| io(std::io::Error::other("the chunk workers stopped")))?;
        buf.clear();
        buf.extend_from_slice(&window[start..cut]);
        let len = (cut - start) as u64;
        start = cut;
        total += len;
        read(len);
        if work_tx.send((seq, buf)).is_err() {
            break;
        }
        done.extend(done_rx.try_iter());
    }
    Ok(total)
}

/// A worker: packs chunks until the queue closes; after a failure it only drains it.
fn pack_chunks(
    ctx: &Ctx<'_>,
    work_rx: &Mutex<Receiver<Work>>,
    free_tx: SyncSender<Vec<u8>>,
    done_tx: Sender<Done>,
    failed: &AtomicBool,
) {
    loop {
        let next = work_rx.locked().recv();
        let Ok((seq, buf)) = next else {
            return;
        };
        let id = ctx.packer.add(BlobKind::Data, &buf).map(|(id, _)| id);
        if id.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let len = buf.len() as u32;
        let _ = free_tx.send(buf);
        if done_tx
            .send((seq, id.map_err(EngineError::from), len))
            .is_err()
        {
            return;
        }
    }
}

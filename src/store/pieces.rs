//! Range reads handed over piece by piece as the body arrives, so that a long range (a
//! whole pack) never sits whole in memory; a body that breaks off is asked for again from
//! where it stopped, and the reader sees every byte once.

use std::cell::{Cell, RefCell};
use std::ops::Range;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};

use super::{read_local_range, Result, Store, StoreError};

/// Pieces a range of a local object is read in.
const LOCAL_PIECE: u64 = 1 << 20;

impl Store {
    /// Reads `range` of `key` and hands it to `sink` in order, piece by piece as it
    /// arrives. A body that breaks off is asked for again from its first byte not handed
    /// over (with the store's retry policy). `sink` returns `false` to stop early; the
    /// read then ends with `Ok`.
    pub fn get_range_pieces(
        &self,
        key: &str,
        range: Range<u64>,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        if let Some(path) = self.local_path(key) {
            let mut pos = range.start;
            while pos < range.end {
                let end = (pos + LOCAL_PIECE).min(range.end);
                if !sink(&read_local_range(key, &path, pos..end)?) {
                    break;
                }
                pos = end;
            }
            return Ok(());
        }
        let pos = Cell::new(range.start);
        let sink = RefCell::new(sink);
        self.block_on(self.retry.run(key, || {
            let (pos, sink, range) = (&pos, &sink, &range);
            async move {
                if pos.get() >= range.end {
                    return Ok(());
                }
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(pos.get()..range.end)),
                    ..Default::default()
                };
                let err = |e| StoreError::from_backend(key, e);
                let mut body = self
                    .inner
                    .get_opts(&Path::from(key), opts)
                    .await
                    .map_err(err)?
                    .into_stream();
                while let Some(piece) = body.next().await {
                    let piece = piece.map_err(err)?;
                    let left = (range.end - pos.get()) as usize;
                    let piece = &piece[..piece.len().min(left)];
                    pos.set(pos.get() + piece.len() as u64);
                    if !(sink.borrow_mut())(piece) {
                        return Ok(());
                    }
                }
                if pos.get() < range.end {
                    return Err(err(object_store::Error::Generic {
                        store: "cairn",
                        source: format!("the body ended at byte {} of {range:?}", pos.get()).into(),
                    }));
                }
                Ok(())
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Location;
    use bytes::Bytes;

    fn pieces_of(store: &Store, range: Range<u64>, stop_after: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut calls = 0;
        store
            .get_range_pieces("k/obj", range, &mut |p| {
                got.extend_from_slice(p);
                calls += 1;
                calls < stop_after
            })
            .unwrap();
        got
    }

    #[test]
    fn a_range_comes_whole_and_in_order_from_local_and_object_stores() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let local = Store::open(&Location::Local(dir.path().to_path_buf())).unwrap();
        let memory = Store::open(&Location::Memory).unwrap();
        for store in [&local, &memory] {
            store.put("k/obj", Bytes::from(data.clone())).unwrap();
            assert!(pieces_of(store, 5..2_900_000, usize::MAX) == data[5..2_900_000]);
            assert!(pieces_of(store, 0..0, usize::MAX).is_empty());
        }
        // Local pieces are 1 MiB: stopping after the first hands over no more.
        assert_eq!(pieces_of(&local, 0..3_000_000, 1).len(), 1 << 20);
        let missing = local.get_range_pieces("k/none", 0..10, &mut |_| true);
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
    }
}

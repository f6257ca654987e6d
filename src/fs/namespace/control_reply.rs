//! Where a control file's reply can be read. Control files are direct I/O, so the kernel
//! passes each read the handle's own file position. After `exec 3<>ctl/x; echo … >&3`
//! that position is just past the request, so `cat <&3` reads from there; `pread` at 0
//! reads from the start. Both must see the whole reply: it is served from offset 0 and
//! again from the end of the request that produced it (a refused write does not move
//! the position, so its reply starts where the request was written).

use crate::service::ControlError;

/// The reply to the last request written through one handle.
#[derive(Debug, Default)]
pub(super) struct Reply {
    text: Vec<u8>,
    /// The handle's position after the request: the reply's second start.
    after_request: u64,
    /// Where the last read from offset 0 ended: a reader going through the reply from
    /// the start in pieces continues from the start, even past `after_request`.
    from_start_next: Option<u64>,
}

impl Reply {
    /// Records the reply to a request written at `offset` (`len` bytes accepted, 0 when
    /// the write failed).
    pub(super) fn set(&mut self, text: Vec<u8>, offset: u64, len: usize) {
        *self = Reply {
            text,
            after_request: offset.saturating_add(len as u64),
            from_start_next: None,
        };
    }

    /// Keeps the outcome of a request of `len` bytes written at `offset` as the reply
    /// (`error: <message>` for a refusal, which accepts no byte) and returns it as the
    /// write's result.
    pub(super) fn answer(
        &mut self,
        result: Result<String, ControlError>,
        offset: u64,
        len: usize,
    ) -> Result<usize, ControlError> {
        match result {
            Ok(text) => {
                self.set(text.into_bytes(), offset, len);
                Ok(len)
            }
            Err(e) => {
                self.set(format!("error: {}\n", e.message).into_bytes(), offset, 0);
                Err(e)
            }
        }
    }

    /// Up to `size` bytes of the reply for a read at `offset`.
    pub(super) fn read(&mut self, offset: u64, size: usize) -> Vec<u8> {
        let from_start = self.from_start_next == Some(offset) || offset < self.after_request;
        let start = if from_start {
            offset
        } else {
            offset - self.after_request
        };
        let start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let end = start.saturating_add(size).min(self.text.len());
        if from_start {
            self.from_start_next = Some(offset + (end - start) as u64);
        }
        self.text[start..end].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str, offset: u64, len: usize) -> Reply {
        let mut r = Reply::default();
        r.set(text.as_bytes().to_vec(), offset, len);
        r
    }

    #[test]
    fn the_reply_reads_at_the_handle_position_after_the_request() {
        // `echo 'instance=db' >&3; cat <&3`: the write left the position at 12.
        let mut r = reply("job=7\n", 0, 12);
        assert_eq!(r.read(12, 4096), b"job=7\n");
        assert_eq!(r.read(18, 4096), b"");
    }

    #[test]
    fn the_reply_reads_from_zero_too_also_in_pieces() {
        let mut r = reply("job=7\n", 0, 3);
        assert_eq!(r.read(0, 4096), b"job=7\n");
        assert_eq!(r.read(6, 4096), b"");
        let mut r = reply("job=7\n", 0, 3);
        assert_eq!(r.read(0, 2), b"jo");
        assert_eq!(r.read(2, 2), b"b=");
        assert_eq!(r.read(4, 2), b"7\n");
        assert_eq!(r.read(6, 2), b"");
    }

    #[test]
    fn a_refused_request_replies_where_it_was_written() {
        // The failed write did not move the position.
        let mut r = reply("error: bad\n", 0, 0);
        assert_eq!(r.read(0, 4096), b"error: bad\n");
        // A second request on the same handle, after the first reply was read.
        let mut r = reply("error: bad\n", 18, 0);
        assert_eq!(r.read(18, 4096), b"error: bad\n");
        let mut r = reply("job=8\n", 18, 12);
        assert_eq!(r.read(30, 4096), b"job=8\n");
        assert_eq!(r.read(0, 4096), b"job=8\n");
    }
}

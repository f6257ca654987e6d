//! An allocator that measures what a decoder allocates, so that "a length field of 2^60
//! reserves no memory" is a checked property and not a hope.
//!
//! Inside [`measure`], every allocation of the calling thread is counted: the peak of live
//! bytes is returned. A single request above [`HARD_LIMIT`] would exhaust the machine (or
//! abort in the allocator), so it is refused on the spot: the process prints the input
//! being decoded (in hex, to keep as a regression file) and aborts, which fails the run
//! loudly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// One request larger than this, inside [`measure`], aborts the run.
pub const HARD_LIMIT: usize = 1 << 30;

pub struct Counting;

thread_local! {
    /// The input being decoded, printed if the decoder has to be stopped.
    static INPUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) of a valid buffer; allocates nothing.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

fn refuse_huge(size: usize) {
    if size > HARD_LIMIT && ACTIVE.try_with(Cell::get).unwrap_or(false) {
        write_stderr(
            b"fuzz: a decoder asked for one allocation of more than 1 GiB; its input (hex):\n",
        );
        let _ = INPUT.try_with(|input| {
            if let Ok(input) = input.try_borrow() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for chunk in input.chunks(256) {
                    let mut line = [0u8; 512];
                    for (i, b) in chunk.iter().enumerate() {
                        line[2 * i] = HEX[(b >> 4) as usize];
                        line[2 * i + 1] = HEX[(b & 15) as usize];
                    }
                    write_stderr(&line[..2 * chunk.len()]);
                }
            }
        });
        write_stderr(b"\nfuzz: aborting\n");
        // SAFETY: abort(3) allocates nothing.
        unsafe { libc::abort() };
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping
// touches only thread-locals of plain integers.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        refuse_huge(layout.size());
        count(layout.size() as isize);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        refuse_huge(layout.size());
        count(layout.size() as isize);
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        refuse_huge(new_size);
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs `f` (a decoder of `input`) and returns its result with the peak of bytes it held
/// at once.
pub fn measure<T>(input: &[u8], f: impl FnOnce() -> T) -> (T, usize) {
    INPUT.with(|i| {
        let mut i = i.borrow_mut();
        i.clear();
        i.extend_from_slice(input);
    });
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

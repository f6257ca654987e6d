//! An allocator that measures what a decoder allocates, so that "a length field of 2^60
//! reserves no memory" is a checked property and not a hope.
//!
//! Inside [`measure`], every allocation of the calling thread is counted: the peak of live
//! bytes is returned. A single request above [`HARD_LIMIT`] would exhaust the machine (or
//! abort in the allocator), so it is refused on the spot: the process prints what happened
//! and aborts, which fails the run loudly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// One request larger than this, inside [`measure`], aborts the run.
pub const HARD_LIMIT: usize = 1 << 30;

pub struct Counting;

thread_local! {
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

fn refuse_huge(size: usize) {
    if size > HARD_LIMIT && ACTIVE.try_with(Cell::get).unwrap_or(false) {
        let msg = b"fuzz: a decoder asked for one allocation of more than 1 GiB: aborting\n";
        // SAFETY: write(2) of a static buffer to stderr, then abort: nothing is allocated.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
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

/// Runs `f` and returns its result with the peak of bytes it held at once.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

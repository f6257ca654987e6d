//! Ctrl-C and SIGTERM: while an operation runs, the first one cancels it through its
//! [`CancelToken`] (so a restore leaves its target as it was and a snapshot writes no
//! point); a second one, or one arriving when nothing is running, ends the process the
//! default way.
//!
//! The signals are blocked in every thread and taken by one thread with `sigwait`, so no
//! code runs in a signal handler.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cairn::engine::CancelToken;
use cairn::sync::LockExt;

use crate::stderr_note::note;

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// True while a password prompt has turned the terminal's echo off.
static PROMPTING: AtomicBool = AtomicBool::new(false);

/// Runs a password prompt; an interrupt during it turns the echo back on before exiting.
pub fn while_prompting<T>(prompt: impl FnOnce() -> T) -> T {
    PROMPTING.store(true, Ordering::SeqCst);
    let out = prompt();
    PROMPTING.store(false, Ordering::SeqCst);
    out
}

fn restore_echo() {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: tcgetattr fills a termios we own; tcsetattr reads it.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(tty.as_raw_fd(), &mut t) == 0 {
            t.c_lflag |= libc::ECHO;
            libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
    note!();
}

/// What is printed when an interrupt cancels the operation.
const CANCELLING: &str = "cancelling (interrupt again to stop at once)";

pub struct Interrupts {
    token: CancelToken,
    armed: Arc<AtomicBool>,
    /// Printed after `cairn: interrupted: ` when an interrupt cancels.
    message: Arc<Mutex<&'static str>>,
    /// Told when an interrupt cancels, so that a waiter need not poll the token.
    fired: Arc<Condvar>,
}

/// While alive, an interrupt cancels the operation instead of ending the process.
pub struct Armed<'a>(&'a Interrupts);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.0.armed.store(false, Ordering::SeqCst);
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Ends the process as the signal's default action would.
fn die_by(signal: libc::c_int) -> ! {
    if PROMPTING.load(Ordering::SeqCst) {
        restore_echo();
    }
    // SAFETY: plain libc calls on a valid signal number and set.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let set = signal_set();
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}

impl Interrupts {
    /// Blocks the signals in the calling thread (call it before any thread starts) and
    /// starts the thread that waits for them.
    pub fn install() -> Interrupts {
        let token = CancelToken::new();
        let armed = Arc::new(AtomicBool::new(false));
        let message = Arc::new(Mutex::new(CANCELLING));
        let set = signal_set();
        // SAFETY: `set` is a valid, initialised signal set.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            tracing::warn!("cannot block signals ({rc}): Ctrl-C will not cancel cleanly");
            return Interrupts {
                token,
                armed,
                message,
                fired: Arc::default(),
            };
        }
        let fired: Arc<Condvar> = Arc::default();
        let (t, a, m, f) = (token.clone(), armed.clone(), message.clone(), fired.clone());
        let count = AtomicU32::new(0);
        let spawned = std::thread::Builder::new()
            .name("cairn-signals".into())
            .spawn(move || loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: `set` is valid; `signal` is written by sigwait.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    continue;
                }
                if a.load(Ordering::SeqCst) && count.fetch_add(1, Ordering::SeqCst) == 0 {
                    let text = *m.locked();
                    note!("\ncairn: interrupted: {text}");
                    t.cancel();
                    // Under the message's lock: a waiter checks the token under it too.
                    let _held = m.locked();
                    f.notify_all();
                } else {
                    die_by(signal);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the signal thread: {e}");
            // SAFETY: as above; undo the block so that Ctrl-C still ends the process.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
        }
        Interrupts {
            token,
            armed,
            message,
            fired,
        }
    }

    /// Waits until an interrupt cancels (true) or `limit` passes (false).
    pub fn wait_timeout(&self, limit: Duration) -> bool {
        let held = self.message.locked();
        if self.token.is_cancelled() {
            return true;
        }
        let _ = self.fired.wait_timeout(held, limit);
        self.token.is_cancelled()
    }

    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// From now until the guard drops, an interrupt cancels the operation.
    pub fn arm(&self) -> Armed<'_> {
        self.arm_saying(CANCELLING)
    }

    /// Like [`arm`](Interrupts::arm), printing `message` (after `cairn: interrupted: `)
    /// when an interrupt comes.
    pub fn arm_saying(&self, message: &'static str) -> Armed<'_> {
        *self.message.locked() = message;
        self.armed.store(true, Ordering::SeqCst);
        Armed(self)
    }
}

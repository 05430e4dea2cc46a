//! Mapped logs that shrink while they are read. Touching a page of a mapped file beyond its
//! new end raises SIGBUS, which would kill the process. A SIGBUS handler looks the fault
//! address up among the registered maps of logs: inside one, it maps anonymous zero pages over
//! the rest of that map (`mmap` with `MAP_FIXED`, async-signal-safe) and marks the map as
//! shrunk, then returns, so the read goes on over zeros; the replay looks at the mark after
//! every chunk, before using it, and fails with a fatal error naming the file. A fault outside
//! every registered map restores the default action: the process dies of it, as before.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many maps can be watched at once (a run maps two logs).
const SLOTS: usize = 64;

/// Per slot: whether it is taken, the map's first and end address (0: none), and whether the
/// map's file shrank under it.
static TAKEN: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static SHRANK: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();

/// A map watched for its file shrinking; unwatched when dropped (before the map is unmapped).
#[derive(Debug)]
pub struct Watch {
    slot: usize,
}

impl Watch {
    /// Watches the map at `start` of `len` bytes; `None` when every slot is taken (the map
    /// is then read unwatched) or the handler cannot be installed.
    pub fn map(start: *const u8, len: usize) -> Option<Watch> {
        INSTALL.call_once(install);
        let slot = (0..SLOTS).find(|&slot| {
            TAKEN[slot]
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        SHRANK[slot].store(false, Ordering::SeqCst);
        ENDS[slot].store(start as usize + len, Ordering::SeqCst);
        STARTS[slot].store(start as usize, Ordering::SeqCst);
        Some(Watch { slot })
    }

    /// Whether the file shrank under the map (its missing part then reads as zeros).
    pub fn shrank(&self) -> bool {
        SHRANK[self.slot].load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        STARTS[self.slot].store(0, Ordering::SeqCst);
        ENDS[self.slot].store(0, Ordering::SeqCst);
        TAKEN[self.slot].store(false, Ordering::SeqCst);
    }
}

fn install() {
    // SAFETY: plain libc calls; the handler only does async-signal-safe work (atomics, mmap,
    // signal).
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE.store(page as usize, Ordering::SeqCst);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::SeqCst);
    for slot in 0..SLOTS {
        let start = STARTS[slot].load(Ordering::SeqCst);
        let end = ENDS[slot].load(Ordering::SeqCst);
        if start == 0 || address < start || address >= end {
            continue;
        }
        let from = address & !(page - 1);
        let len = (end - from).div_ceil(page) * page;
        // SAFETY: `from..from + len` lies in (the pages of) a live read-only map that this
        // process made and that is unmapped only after its watch is dropped; replacing its
        // pages by zero pages changes only what the reader sees of a file that is gone.
        let zeros = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            SHRANK[slot].store(true, Ordering::SeqCst);
            return;
        }
    }
    // Not a log's map: the default action (the process dies of SIGBUS when the access runs
    // again).
    // SAFETY: `signal` is async-signal-safe.
    unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
}

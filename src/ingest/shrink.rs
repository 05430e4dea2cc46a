//! Mapped logs that shrink, or fail to be read, while they are read. Touching a page of a mapped
//! file beyond its new end, or a page the kernel cannot read (an I/O error), raises SIGBUS,
//! which would kill the process. A SIGBUS handler looks the fault address up among the
//! registered maps of logs: inside one, it marks the map as damaged (shrunk when the address
//! now lies beyond the file's end, unreadable otherwise), then maps anonymous zero pages over
//! the rest of that map (`mmap` with `MAP_FIXED`, async-signal-safe), and returns, so the read
//! goes on over zeros; the replay looks at the mark and the file's size before using each chunk
//! and after the last one, and fails with a fatal error naming the file.
//!
//! Only a fault is taken (`si_code` `BUS_ADRERR`, `BUS_OBJERR`, `BUS_MCEERR_AR`) at an address
//! inside a watched map. Any other SIGBUS gets the action that was in place when the handler
//! was installed: a fault elsewhere is handed to the saved handler (Rust's own, which reports a
//! stack overflow), or, when there was none, kills the process as before; a SIGBUS sent by a
//! process (`kill -BUS`, `si_code` <= 0) has its default action, ending the process, unless it
//! was ignored. `errno` is saved and restored around the handler.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};

/// How many maps can be watched at once (a run maps two logs).
const SLOTS: usize = 64;

/// Per slot: whether it is taken, the map's first and end address (0: none), the descriptor
/// of its file, and what happened to the map ([`Damage`] as a number, 0: nothing).
static TAKEN: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static DAMAGE: [AtomicU8; SLOTS] = [const { AtomicU8::new(0) }; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// Whether the handler is in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The SIGBUS action in place before the handler's, written once before the handler is
/// installed and only read after.
struct Saved(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written once, inside `INSTALL`, before the handler that reads it can run.
unsafe impl Sync for Saved {}

static SAVED: Saved = Saved(UnsafeCell::new(MaybeUninit::zeroed()));

/// What happened to a watched map: its pages past the fault read as zeros from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file is shorter than the page touched: truncated by another program.
    Shrank = 1,
    /// The page lies inside the file but could not be read (an I/O error, a memory error).
    Unreadable = 2,
}

/// A map watched for its file shrinking or failing; unwatched when dropped (before the map is
/// unmapped).
#[derive(Debug)]
pub struct Watch {
    slot: usize,
}

impl Watch {
    /// Watches the map at `start` of `len` bytes of the file open as `fd` (from its offset 0;
    /// the descriptor must stay open while the watch lives). `None` when the handler cannot be
    /// installed or every slot is taken: the file must then be read some other way, never
    /// through an unwatched map.
    pub fn map(start: *const u8, len: usize, fd: i32) -> Option<Watch> {
        INSTALL.call_once(|| INSTALLED.store(install().is_ok(), Ordering::SeqCst));
        if !INSTALLED.load(Ordering::SeqCst) {
            return None;
        }
        let slot = (0..SLOTS).find(|&slot| {
            TAKEN[slot]
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        DAMAGE[slot].store(0, Ordering::SeqCst);
        FDS[slot].store(fd, Ordering::SeqCst);
        ENDS[slot].store(start as usize + len, Ordering::SeqCst);
        STARTS[slot].store(start as usize, Ordering::SeqCst);
        Some(Watch { slot })
    }

    /// What happened to the map, if anything (its pages from the fault on then read as zeros).
    pub fn damage(&self) -> Option<Damage> {
        match DAMAGE[self.slot].load(Ordering::SeqCst) {
            0 => None,
            1 => Some(Damage::Shrank),
            _ => Some(Damage::Unreadable),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        STARTS[self.slot].store(0, Ordering::SeqCst);
        ENDS[self.slot].store(0, Ordering::SeqCst);
        FDS[self.slot].store(-1, Ordering::SeqCst);
        TAKEN[self.slot].store(false, Ordering::SeqCst);
    }
}

/// Saves the SIGBUS action in place, then installs the handler (on the thread's alternate
/// stack, where Rust runs its own).
fn install() -> std::io::Result<()> {
    // SAFETY: plain libc calls; `SAVED` is written before the handler that reads it exists.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE.store(page as usize, Ordering::SeqCst);
        }
        let saved = (*SAVED.0.get()).as_mut_ptr();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), saved) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: `errno` is this thread's; it is put back before returning.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    let fault = matches!(
        code,
        libc::BUS_ADRERR | libc::BUS_OBJERR | libc::BUS_MCEERR_AR
    );
    // SAFETY: as above; `si_addr` is meaningful for a fault.
    let taken = fault && take_fault(unsafe { (*info).si_addr() } as usize);
    if !taken {
        // SAFETY: the arguments are the kernel's, passed on unchanged.
        unsafe { pass_on(signal, info, context, code) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Takes a fault at `address` when it lies in a watched map: marks the map and puts zero pages
/// over its rest. `false` when the address is in no watched map (or the zeros cannot be
/// mapped, and nothing can let the read go on).
fn take_fault(address: usize) -> bool {
    let page = PAGE.load(Ordering::SeqCst);
    for slot in 0..SLOTS {
        let start = STARTS[slot].load(Ordering::SeqCst);
        let end = ENDS[slot].load(Ordering::SeqCst);
        if start == 0 || address < start || address >= end {
            continue;
        }
        let offset = (address - start) as u64;
        // SAFETY: fstat is async-signal-safe; the descriptor stays open while the watch lives.
        let size = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            (libc::fstat(FDS[slot].load(Ordering::SeqCst), &mut stat) == 0)
                .then_some(stat.st_size as u64)
        };
        let damage = match size {
            Some(size) if offset < size => Damage::Unreadable,
            _ => Damage::Shrank,
        };
        // Marked before the zeros are in place: whoever reads them finds the mark set.
        let _ = DAMAGE[slot].compare_exchange(0, damage as u8, Ordering::SeqCst, Ordering::SeqCst);
        let from = address & !(page - 1);
        let len = (end - from).div_ceil(page) * page;
        // SAFETY: `from..from + len` lies in (the pages of) a live read-only map that this
        // process made and that is unmapped only after its watch is dropped; replacing its
        // pages by zero pages changes only what the reader sees of a file that is damaged.
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
        return zeros != libc::MAP_FAILED;
    }
    false
}

/// Gives a SIGBUS that is not a fault in a watched map the action saved at install.
///
/// # Safety
/// Called from the handler only, with the kernel's arguments.
unsafe fn pass_on(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    code: libc::c_int,
) {
    // SAFETY: written before the handler was installed.
    let saved = unsafe { (*SAVED.0.get()).assume_init_ref() };
    let handler = saved.sa_sigaction;
    let default = || {
        // SAFETY: sigaction is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    };
    if code <= 0 {
        // Sent by a process: its default action (the process ends), unless it was ignored.
        if handler != libc::SIG_IGN {
            default();
            // SAFETY: raise is async-signal-safe; the signal is blocked in this handler and
            // arrives as it returns.
            unsafe { libc::raise(libc::SIGBUS) };
        }
        return;
    }
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // A fault cannot be ignored: the access runs again and the process dies of it.
        default();
        return;
    }
    // SAFETY: `handler` is the function of the saved action, called as its flags say.
    unsafe {
        if saved.sa_flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            handler(signal, info, context);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            handler(signal);
        }
    }
}

//! Ctrl-C (SIGINT) and SIGTERM ask the run to stop: the normal end of a live run, a failure that
//! saves nothing in file mode (exit 130 or 143, as shells expect). Either way the run stops
//! within a chunk of input and cleans up its temporary files; nothing exits from inside a
//! signal handler: signal-hook's handler only wakes a thread, which sets the flag, tells the
//! live replay, and makes a write blocked on a reader that stopped reading give up
//! ([`STOP_WRITES`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::output::file::STOP_WRITES;

/// How a run learns that it was asked to stop: a flag to poll and a channel to wait on.
pub struct Interrupt {
    pub flag: Arc<AtomicBool>,
    pub stopped: Receiver<()>,
    /// The first stopping signal received (0: none yet).
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    pub fn install() -> std::io::Result<Interrupt> {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicI32::new(0));
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let (seen, first) = (flag.clone(), signal.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for received in signals.forever() {
                    let _ = first.compare_exchange(0, received, Ordering::SeqCst, Ordering::SeqCst);
                    seen.store(true, Ordering::SeqCst);
                    STOP_WRITES.store(true, Ordering::SeqCst);
                    let _ = stop.try_send(());
                }
            })?;
        Ok(Interrupt {
            flag,
            stopped,
            signal,
        })
    }

    /// The exit status of a run that this interrupt stopped: 128 + the signal's number (130
    /// for Ctrl-C, 143 for SIGTERM), as a shell reports a process killed by it.
    pub fn exit_status(&self) -> u8 {
        match self.signal.load(Ordering::SeqCst) {
            0 => 130,
            signal => u8::try_from(128 + signal).unwrap_or(130),
        }
    }
}

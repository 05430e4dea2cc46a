//! Ctrl-C and SIGTERM ask the run to stop: the normal end of a live run, a failure that saves
//! nothing in file mode. Either way the run stops within a chunk of input and cleans up its
//! temporary files; it never exits from inside the handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Receiver;

/// How a run learns that it was asked to stop: a flag to poll and a channel to wait on.
pub struct Interrupt {
    pub flag: Arc<AtomicBool>,
    pub stopped: Receiver<()>,
}

impl Interrupt {
    pub fn install() -> Result<Interrupt, ctrlc::Error> {
        let flag = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let seen = flag.clone();
        ctrlc::set_handler(move || {
            seen.store(true, Ordering::Relaxed);
            let _ = stop.try_send(());
        })?;
        Ok(Interrupt { flag, stopped })
    }
}

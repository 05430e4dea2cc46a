//! Ctrl-C and SIGTERM: the first one asks the run to stop (the normal end of a live run; a
//! failure that saves nothing in file mode), a second one exits at once.

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
            if seen.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
            let _ = stop.try_send(());
        })?;
        Ok(Interrupt { flag, stopped })
    }
}

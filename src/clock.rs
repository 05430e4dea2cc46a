//! How long a phase of the replay took, on the wall clock and in CPU time (all threads of the
//! process, user and system): the two together tell how busy the cores were, which `--stats`
//! reports and `tools/bench.sh` prints next to the bare parse's.

use std::time::{Duration, Instant};

/// The CPU time used so far by all threads of the process; `None` where the system does not
/// tell.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    return clock_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(unix))]
    None
}

/// The time of one of the system's clocks; `None` if it cannot be read.
#[cfg(unix)]
fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` only writes the `timespec` it is given.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

/// Started when a phase starts.
#[derive(Debug, Clone, Copy)]
pub struct PhaseClock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl PhaseClock {
    pub fn start() -> Self {
        PhaseClock {
            wall: Instant::now(),
            cpu: process_cpu_time(),
        }
    }

    /// The wall time since the start.
    pub fn wall(&self) -> Duration {
        self.wall.elapsed()
    }

    /// The CPU time of all threads since the start; `None` when unknown.
    pub fn cpu(&self) -> Option<Duration> {
        Some(process_cpu_time()?.saturating_sub(self.cpu?))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// The CPU time of the calling thread alone.
    fn thread_cpu_time() -> Duration {
        clock_time(libc::CLOCK_THREAD_CPUTIME_ID).expect("a thread clock on unix")
    }

    #[test]
    fn cpu_time_counts_every_thread() {
        // Each of two threads works until it has had 40 ms of a core, however busy the cores
        // are; the process's CPU time counts both, though the calling thread only waited.
        let clock = PhaseClock::start();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let started = thread_cpu_time();
                    let mut x = 1u64;
                    while thread_cpu_time() - started < Duration::from_millis(40) {
                        for _ in 0..1000 {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                        }
                    }
                });
            }
        });
        let cpu = clock.cpu().expect("CPU time on unix");
        assert!(
            cpu >= Duration::from_millis(80),
            "two threads worked 40 ms each: {cpu:?}"
        );
    }
}

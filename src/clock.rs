//! How long a phase of the replay took, on the wall clock and in CPU time (all threads of the
//! process, user and system): the two together tell how busy the cores were, which `--stats`
//! reports and `tools/bench.sh` prints next to the bare parse's. The system part alone is
//! mostly the kernel handing the process fresh memory: on a virtual machine that gives its free
//! memory back to the host, that can take seconds (docs/performance.md, "How to reproduce",
//! `--memory`).

use std::time::{Duration, Instant};

/// The CPU time used so far by all threads of the process; `None` where the system does not
/// tell.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    return clock_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(unix))]
    None
}

/// The CPU time that all threads of the process spent in the kernel so far (system calls, page
/// faults); `None` where the system does not tell.
pub fn process_system_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        // SAFETY: `rusage` is plain integers, for which all zeroes is a value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `getrusage` only writes the `rusage` it is given.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let time = usage.ru_stime;
        duration(time.tv_sec, time.tv_usec * 1000)
    }
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
    duration(now.tv_sec, now.tv_nsec)
}

/// A system time value of `seconds` and `nanos` as a [`Duration`]; `None` if negative.
#[cfg(unix)]
fn duration(seconds: impl TryInto<u64>, nanos: impl TryInto<u32>) -> Option<Duration> {
    Some(Duration::new(
        seconds.try_into().ok()?,
        nanos.try_into().ok()?,
    ))
}

/// Started when a phase starts.
#[derive(Debug, Clone, Copy)]
pub struct PhaseClock {
    wall: Instant,
    cpu: Option<Duration>,
    system: Option<Duration>,
}

impl PhaseClock {
    pub fn start() -> Self {
        PhaseClock {
            wall: Instant::now(),
            cpu: process_cpu_time(),
            system: process_system_time(),
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

    /// The part of [`Self::cpu`] spent in the kernel; `None` when unknown.
    pub fn system(&self) -> Option<Duration> {
        Some(process_system_time()?.saturating_sub(self.system?))
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

    #[test]
    fn system_time_counts_the_kernel_giving_fresh_pages() {
        // The calling thread maps fresh memory, writes one byte per page (each write makes the
        // kernel find and zero a page) and unmaps it, until it has had 200 ms of a core: most
        // of that is the kernel's. (`tests/cpu_time.rs` checks that computing is not counted.)
        const LEN: usize = 4 << 20;
        let clock = PhaseClock::start();
        let started = thread_cpu_time();
        while thread_cpu_time() - started < Duration::from_millis(200) {
            // SAFETY: a private anonymous mapping, written only within its length, then unmapped.
            unsafe {
                let map = libc::mmap(
                    std::ptr::null_mut(),
                    LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(map, libc::MAP_FAILED, "mmap of 4 MiB");
                for at in (0..LEN).step_by(4096) {
                    map.cast::<u8>().add(at).write_volatile(1);
                }
                libc::munmap(map, LEN);
            }
        }
        let system = clock.system().expect("system time on unix");
        assert!(
            system >= Duration::from_millis(100),
            "200 ms of page faults: {system:?} of system time"
        );
    }
}

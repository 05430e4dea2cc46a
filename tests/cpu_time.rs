//! CPU time is not wall time, and system time is not all CPU time: alone in its process (other
//! tests' work would count), a test sleeps and finds almost no CPU time spent, then computes and
//! finds almost none of it spent in the kernel. One test, so that the two never overlap.

#[cfg(unix)]
#[test]
fn sleeping_costs_no_cpu_time_and_computing_no_system_time() {
    use std::time::Duration;

    let clock = anomaly_detect::clock::PhaseClock::start();
    std::thread::sleep(Duration::from_millis(100));
    assert!(clock.wall() >= Duration::from_millis(100));
    let cpu = clock.cpu().expect("CPU time on unix");
    assert!(
        cpu < Duration::from_millis(50),
        "slept 100 ms, counted {cpu:?}"
    );

    let clock = anomaly_detect::clock::PhaseClock::start();
    let mut x = 1u64;
    while clock.cpu().expect("CPU time on unix") < Duration::from_millis(200) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
        }
    }
    let (cpu, system) = (clock.cpu().unwrap(), clock.system().expect("system time"));
    assert!(
        system < cpu / 2,
        "computed for {cpu:?}, counted {system:?} of system time"
    );
}

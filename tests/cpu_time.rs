//! CPU time is not wall time: alone in its process (other tests' work would count), a test
//! sleeps and finds almost no CPU time spent.

#[cfg(unix)]
#[test]
fn sleeping_costs_no_cpu_time() {
    use std::time::Duration;

    let clock = anomaly_detect::clock::PhaseClock::start();
    std::thread::sleep(Duration::from_millis(100));
    assert!(clock.wall() >= Duration::from_millis(100));
    let cpu = clock.cpu().expect("CPU time on unix");
    assert!(
        cpu < Duration::from_millis(50),
        "slept 100 ms, counted {cpu:?}"
    );
}

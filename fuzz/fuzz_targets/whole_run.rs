#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    anomaly_detect_fuzz::invariants::whole_run(data);
});

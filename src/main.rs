//! The `anomaly-detect` binary: the allocator, then the command (`anomaly_detect::command`).

use std::process::ExitCode;

/// mimalloc, on 2 MiB pages where the system allows: per-user state is many thousands of small
/// buffers read in random order, and with 4 KiB pages most reads also miss the TLB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the pages mimalloc keeps freed back to the system (the library calls it after a line
/// over 1 MiB, whose buffers it dropped: a run of huge lines would stack them up).
fn release_memory() {
    // SAFETY: `mi_collect` has no preconditions; it only frees unused memory.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Notes whether standard input and output are closed before the Rust runtime opens
/// `/dev/null` in their place: glibc runs `.init_array` before `main`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static PROBE_STANDARD_STREAMS: extern "C" fn() = anomaly_detect::command::probe_standard_streams;

fn main() -> ExitCode {
    // SAFETY: sets a process-wide allocator option; takes effect for memory reserved later.
    unsafe {
        libmimalloc_sys::mi_option_set_enabled(libmimalloc_sys::mi_option_large_os_pages, true)
    };
    anomaly_detect::command::main(release_memory)
}

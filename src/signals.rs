//! The one place that turns terminating signals into an action: `serve` shuts down cleanly,
//! `fetch` removes its partial file. A signal is handled on a thread of its own, so the
//! action may take locks and do I/O.

use signal_hook::consts::signal::*;

use crate::net::IoContext;

/// Runs `then` on a thread of its own when the first terminating signal arrives, with the
/// signal's number. Both `serve` (shut down cleanly) and `fetch` (remove the temporary file)
/// need exactly this, for every signal whose default action would end the process without
/// either: SIGINT and SIGTERM, SIGHUP when the terminal closes, SIGQUIT, the user and timer
/// signals, the resource limits, and on Linux the real-time signals too.
///
/// Left out: SIGPIPE (Rust's runtime ignores it, so a write fails instead), SIGKILL and
/// SIGSTOP (no process can catch them), and the faults a process raises on itself (SIGSEGV,
/// SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT), which a handler that returns would only
/// see again. A signal the process was started with ignored (`nohup` ignores SIGHUP, a shell
/// ignores SIGINT and SIGQUIT in background jobs) stays ignored.
pub fn on_interrupt(then: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<()> {
    let mut terminating = vec![
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
        SIGXFSZ,
    ];
    #[cfg(target_os = "linux")]
    terminating.extend([libc::SIGIO, libc::SIGPWR, libc::SIGSTKFLT]);
    #[cfg(target_os = "linux")]
    terminating.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    let ignored = ignored_at_start();
    terminating.retain(|&signal| {
        let bit = u32::try_from(signal - 1)
            .ok()
            .and_then(|n| 1u64.checked_shl(n));
        bit.is_none_or(|bit| ignored & bit == 0)
    });
    let mut signals = signal_hook::iterator::Signals::new(terminating)
        .io_context(|| "cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                then(signal);
            }
        })
        .io_context(|| "cannot start the signal thread")?;
    Ok(())
}

/// The signals the process was started with ignored, from `SigIgn` in `/proc/self/status`
/// (bit N-1 for signal N); none where that cannot be read.
fn ignored_at_start() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status.lines().find_map(|line| line.strip_prefix("SigIgn:"));
    mask.and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// The signal's name, for log lines (`SIGHUP`), or its number where it has none.
pub fn name(signal: i32) -> String {
    signal_hook::low_level::signal_name(signal)
        .map(str::to_string)
        .unwrap_or_else(|| format!("signal {signal}"))
}

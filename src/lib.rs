//! sockdemo: socket programming the way the classic Python tutorial teaches it, done with
//! care. A Hello server and its client, an HTTP/1.1 GET over a raw TCP socket, a load
//! generator, and a demo that runs the tutorial end to end on loopback.
//!
//! Everything is blocking `std::net` with one OS thread per connection: the point is to show
//! what the tutorial shows, and to make that simple design hold up in real use.

#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod demo;
pub mod fetch;
pub mod hello;
pub mod http;
pub mod net;
pub mod output;
pub mod server;
pub mod target;
#[doc(hidden)]
pub mod testing;

use cli::Command;

/// Runs one subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => server::run(&args),
        Command::Client(args) => client::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Fetch(args) => fetch::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

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
pub(crate) fn on_interrupt(then: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<()> {
    use anyhow::Context;
    use signal_hook::consts::signal::*;

    /// The signals the process was started with ignored, from `SigIgn` in
    /// `/proc/self/status` (bit N-1 for signal N); none where that cannot be read.
    fn ignored_at_start() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mask = status.lines().find_map(|line| line.strip_prefix("SigIgn:"));
        mask.and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0)
    }

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
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                then(signal);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// True when the error comes from writing to a reader that has gone away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            e.kind()
        } else if let Some(e) = cause.downcast_ref::<net::PlainIoError>() {
            e.0.kind()
        } else {
            return false;
        };
        kind == std::io::ErrorKind::BrokenPipe
    })
}

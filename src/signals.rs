//! The one place that turns SIGINT and SIGTERM into an action: `serve` shuts down cleanly,
//! `fetch` removes its partial file. A signal is handled on a thread of its own, so the
//! action may take locks and do I/O.

use crate::net::IoContext;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Runs `then` on a thread of its own when the first SIGINT or SIGTERM arrives, with the
/// signal's number.
pub fn on_interrupt(then: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
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

/// The signal's name, for log lines.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

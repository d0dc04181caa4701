//! sockdemo: socket programming the way the classic Python tutorial teaches it, done with
//! care. A Hello server and its client, an HTTP/1.1 GET over a raw TCP socket, a load
//! generator, and a demo that runs the tutorial end to end on loopback.
//!
//! Everything is blocking `std::net` with one OS thread per connection: the point is to show
//! what the tutorial shows, and to make that simple design hold up in real use.

#![forbid(unsafe_code)]

pub mod bench;
pub mod capped;
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
pub mod tls;

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

/// Runs `then` on a thread of its own when the first SIGINT or SIGTERM arrives, with the
/// signal's number. Both `serve` (shut down cleanly) and `fetch` (remove the partial file)
/// need exactly this.
pub(crate) fn on_interrupt(then: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<()> {
    use anyhow::Context;
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
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

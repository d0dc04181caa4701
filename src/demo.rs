//! `sockdemo demo`: the tutorial in one command. A server on a free loopback port, the
//! client with the tutorial's three names against it, both sides visible: the client's
//! lines on stdout, the server's log on stderr.

use std::io;
use std::thread;
use std::time::Duration;

use crate::net::IoContext;
use log::info;

use crate::hello::client::{self, Connection, Mode};
use crate::hello::server::{self, Server};

/// The names the tutorial's client sends.
pub const NAMES: [&str; 3] = ["Michael", "Tracy", "Sarah"];

/// What `sockdemo demo` is to do.
#[derive(Debug, Clone, Default)]
pub struct Config {}

/// `sockdemo demo`.
pub fn run(_config: Config) -> anyhow::Result<()> {
    let server = Server::bind(server::Config {
        port: 0,
        ..server::Config::default()
    })?;
    let addr = server.local_addr();
    let handle = server.handle();
    let server_thread = thread::Builder::new()
        .name("server".to_string())
        .spawn(move || server.run())
        .io_context(|| "cannot start the server thread")?;

    info!(
        "Running the client: sockdemo client --port {} {}",
        addr.port(),
        NAMES.join(" ")
    );
    let talked = Connection::open(&addr.ip().to_string(), addr.port(), Duration::from_secs(10))
        .and_then(|mut conn| {
            let names = NAMES.iter().map(|n| Ok(n.as_bytes().to_vec()));
            client::talk(&mut conn, Mode::Raw, names, &mut io::stdout().lock())
        });

    // Shutdown waits for the server's side of the connection to finish, so its
    // "closed" line is logged before the demo ends.
    handle.shutdown();
    let _ = server_thread.join();
    talked
}

//! The hello lesson, the tutorial's second half as it stands: its server on a free loopback
//! port, its client with Michael, Tracy and Sarah against it. The client's four lines are on
//! stdout exactly as the tutorial prints them; the server's log is on stderr.

use std::io;

use super::{say, Config, Running, NAMES, TIMEOUT};
use crate::hello::client::{self, Connection, Mode};
use crate::hello::server;

/// Runs the lesson.
pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    let server = Running::start(server::Config {
        trace: config.trace.clone(),
        ..server::Config::default()
    })?;
    let port = server.addr.port();
    say(&format!(
        "The tutorial's server listens on {}. Its client connects, prints the greeting,",
        server.addr
    ))?;
    say("sends each name as one message and prints the reply, then sends exit and closes:")?;
    say("")?;
    say(&format!(
        "$ sockdemo client --port {port} {}",
        NAMES.join(" ")
    ))?;
    let talked = talk(server.addr, config);
    server.stop();
    talked?;
    say("")?;
    say("The server's log on stderr shows each connection by the client's address and port,")?;
    say("the thread that served it, and how many connections were open.")
}

/// The tutorial's client: greeting, three names, `exit`.
fn talk(addr: std::net::SocketAddr, config: &Config) -> anyhow::Result<()> {
    let conn = Connection::connect(&[addr], TIMEOUT)?;
    let names = NAMES.iter().map(|n| Ok(n.as_bytes().to_vec()));
    let mut out = io::stdout().lock();
    match &config.trace {
        None => client::talk(&mut { conn }, Mode::Raw, names, &mut out),
        Some(tracer) => {
            let mut conn = conn.traced(tracer.clone())?;
            client::talk(&mut conn, Mode::Raw, names, &mut out)
        }
    }
}

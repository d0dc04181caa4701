//! The threads lesson: why the tutorial gives every connection a thread. Three clients
//! connect at once to a server that waits a second before each reply (the tutorial's
//! `time.sleep(1)`): first with a thread per connection, where the three waits overlap, then
//! with `--serial`, where the server serves one connection at a time and the others wait in
//! the listen backlog, so that the waits add up. Each run is shown as a timeline of when each
//! client was connected, greeted and answered, and the two totals side by side.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use super::{say, Config, Running, NAMES, TIMEOUT};
use crate::hello::client::Connection;
use crate::hello::protocol::{exit_message, Exchange, Mode, GREETING};
use crate::hello::server;
use crate::net::trace::Tracer;
use crate::net::IoContext;

/// The server's wait before each reply.
const DELAY: Duration = Duration::from_secs(1);

/// Runs the lesson.
pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    say("Three clients connect at once to a server that waits 1 s before each reply, as the")?;
    say("tutorial's time.sleep(1) does. Times are from the first connect.")?;
    say("")?;
    say("A thread for every connection (sockdemo serve --delay 1s):")?;
    let threaded = session(config, false)?;
    say("")?;
    say("One connection at a time on the accepting thread (sockdemo serve --delay 1s --serial);")?;
    say("the kernel completes every connect, and the clients wait in the listen backlog:")?;
    let serial = session(config, true)?;
    say("")?;
    say(&format!("{:<22}{:<24}{}", "", "a thread each", "--serial"))?;
    say(&format!(
        "{:<22}{:<24}{}",
        "last reply after",
        seconds(threaded),
        seconds(serial)
    ))?;
    say("")?;
    say("With a thread each, the three waits overlap; one at a time, they add up. As the")?;
    say("tutorial says: 否则，服务器一次就只能服务一个客户端了 (otherwise the server can")?;
    say("serve only one client at a time).")
}

/// What happened to one client, and when.
struct Mark {
    at: Duration,
    name: &'static str,
    what: What,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Connected,
    Greeted,
    Answered,
}

impl What {
    fn words(self) -> &'static str {
        match self {
            What::Connected => "connected",
            What::Greeted => "greeted (Welcome!)",
            What::Answered => "answered (Hello, <name>!)",
        }
    }
}

/// One server, three clients; prints the timeline and returns when the last reply came.
fn session(config: &Config, serial: bool) -> anyhow::Result<Duration> {
    let server = Running::start(server::Config {
        delay: DELAY,
        serial,
        trace: config.trace.clone(),
        ..server::Config::default()
    })?;
    let marks = clients(server.addr, config.trace.as_ref());
    server.stop();
    let marks = marks?;
    for line in timeline(&marks) {
        say(&line)?;
    }
    let last = marks.iter().map(|m| m.at).max().unwrap_or_default();
    Ok(last)
}

/// Connects the three clients one after the other, then lets each talk on a thread of its
/// own; every mark they made, in the order of time.
fn clients(addr: SocketAddr, trace: Option<&Tracer>) -> anyhow::Result<Vec<Mark>> {
    let start = Instant::now();
    let mut marks = Vec::new();
    let mut conns = Vec::new();
    for name in NAMES {
        let conn = Connection::connect(&[addr], TIMEOUT)?;
        marks.push(Mark {
            at: start.elapsed(),
            name,
            what: What::Connected,
        });
        conns.push((name, conn));
    }
    let talked: anyhow::Result<Vec<Vec<Mark>>> = thread::scope(|scope| {
        let mut threads = Vec::new();
        for (name, conn) in conns {
            let spawned = thread::Builder::new()
                .name(format!("client-{name}"))
                .spawn_scoped(scope, move || match trace {
                    None => talk(conn, name, start),
                    Some(tracer) => talk(conn.traced(tracer.for_connection(name))?, name, start),
                })
                .io_context(|| format!("cannot start the thread of client {name}"))?;
            threads.push(spawned);
        }
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    marks.extend(talked?.into_iter().flatten());
    marks.sort_by_key(|m| m.at);
    Ok(marks)
}

/// One client: the greeting, its name and the reply, `exit`.
fn talk<S: Read + Write>(
    mut conn: Connection<S>,
    name: &'static str,
    start: Instant,
) -> anyhow::Result<Vec<Mark>> {
    let mark = |what| Mark {
        at: start.elapsed(),
        name,
        what,
    };
    conn.expect(GREETING, "greeting")?;
    let greeted = mark(What::Greeted);
    conn.round_trip(&Exchange::new(name.as_bytes(), Mode::Raw))?;
    let answered = mark(What::Answered);
    conn.send(exit_message(Mode::Raw))?;
    Ok(vec![greeted, answered])
}

/// `   1.00 s  Michael, Tracy answered`: marks of the same kind at the same printed time share
/// a line.
fn timeline(marks: &[Mark]) -> Vec<String> {
    let mut lines: Vec<(String, What, Vec<&str>)> = Vec::new();
    for mark in marks {
        let at = seconds(mark.at);
        match lines.last_mut() {
            Some((t, what, names)) if *t == at && *what == mark.what => names.push(mark.name),
            _ => lines.push((at, mark.what, vec![mark.name])),
        }
    }
    lines
        .into_iter()
        .map(|(at, what, names)| format!("  {at:>7}  {} {}", names.join(", "), what.words()))
        .collect()
}

/// `1.00 s`.
fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_of_one_kind_at_one_time_share_a_line() {
        let ms = Duration::from_millis;
        let marks = [
            (ms(0), "Michael", What::Connected),
            (ms(1), "Tracy", What::Connected),
            (ms(2), "Michael", What::Greeted),
            (ms(1001), "Michael", What::Answered),
            (ms(1002), "Tracy", What::Greeted),
        ]
        .map(|(at, name, what)| Mark { at, name, what });
        assert_eq!(
            timeline(&marks),
            [
                "   0.00 s  Michael, Tracy connected",
                "   0.00 s  Michael greeted (Welcome!)",
                "   1.00 s  Michael answered (Hello, <name>!)",
                "   1.00 s  Tracy greeted (Welcome!)",
            ]
        );
    }
}

//! What happens on one connection, once the server has accepted and admitted it: the PROXY
//! header (with `--proxy-protocol`), the greeting and the replies, the linger after the
//! server ends a conversation, and the log and trace lines that say how it ended. It is a
//! child of [`server`](super) because it works on the server's own connection and shared
//! state; kept apart, the server module is the accept loop, admission and the thread pool,
//! and this one is the conversation a thread runs for each client.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, log, warn, Level};

use super::{Config, Conn, Shared, Slot};
use crate::hello::protocol::{End, Framer, GREETING};
use crate::hello::proxy::{self, Header, Status};
use crate::net::trace::{Role, TracedSocket};
use crate::net::{self, describe, IoContext, Peer, RECV_SIZE};

/// After the server ends a conversation (`exit`, a refused line), how long and how much it
/// still reads from the client before closing (see [`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// A reply buffer that a long line grew past this is given back once the replies are sent.
const KEEP_BUFFER: usize = 4 * RECV_SIZE;
/// With `--proxy-protocol`, how long a connection has to send its whole PROXY header. A
/// balancer sends it at once; this only bounds clients that are not a balancer.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The body of a connection thread: `serve` the connection, then whatever is handed over
/// next.
pub(super) fn connection_thread(first: Conn, shared: &Shared, serve: impl Fn(&Conn)) {
    let mut next = Some(first);
    while let Some(conn) = next {
        let slot = Slot {
            shared,
            id: conn.id,
        };
        serve(&conn);
        // The socket closes as the slot is given back, not when the next connection comes.
        drop(conn);
        next = shared.next_connection(slot);
    }
}

/// One client, from its PROXY header (with `--proxy-protocol`) and greeting to close, on
/// its socket, or with `--trace` on the socket wrapped in a tracer whose lines carry the
/// peer (the client the header names, once it is read): the type decides, so the untraced
/// path is the plain socket's.
pub(super) fn serve(conn: &Conn, shared: &Shared, config: &Config) {
    let socket = &*conn.stream;
    let Some(tracer) = &config.trace else {
        serve_stream(&mut &*socket, conn, shared, config);
        return;
    };
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let ends = Peer {
        local,
        peer: conn.peer,
    };
    let tracer = tracer.for_connection(conn.peer.to_string());
    let mut traced = TracedSocket::new(socket, ends, Role::Server, tracer);
    match serve_stream(&mut traced, conn, shared, config) {
        None => traced.closing_because("no valid proxy protocol header"),
        // A conversation that ended by its own rules was not cut short by a shutdown that
        // may have begun since; one that met an end of file or an error while stopping was.
        Some(ended) if !ended.by_protocol() && shared.stopping() => {
            traced.shutdown("the server is stopping");
            traced.closing_because("the server is stopping");
        }
        Some(ended) => traced.closing_because(ended.words()),
    }
}

/// The PROXY header if one is expected, then the conversation. It counts among the
/// connections served unless it is a balancer's health check. `None`: no valid header.
fn serve_stream(
    stream: &mut impl Served,
    conn: &Conn,
    shared: &Shared,
    config: &Config,
) -> Option<Ended> {
    let opened = open(stream, &conn.stream, conn.peer, config)?;
    if !opened.check {
        shared.served.fetch_add(1, Ordering::Relaxed);
    }
    if config.proxy_protocol {
        stream.proxied(&opened, conn.peer);
    }
    Some(serve_connection(
        stream,
        &conn.stream,
        &opened,
        shared,
        config,
    ))
}

/// The stream a conversation runs over: the socket, or the socket traced.
trait Served: Read + Write {
    /// Tells the trace, if there is one, that our side was shut down, and why.
    fn shut_down(&self, _why: &str) {}

    /// Tells the trace, if there is one, what the PROXY header said: its lines carry the
    /// client it names from now on.
    fn proxied(&self, _opened: &Opened, _relay: SocketAddr) {}
}

impl Served for &TcpStream {}

impl Served for TracedSocket<&TcpStream> {
    fn shut_down(&self, why: &str) {
        self.shutdown(why);
    }

    fn proxied(&self, opened: &Opened, relay: SocketAddr) {
        let client = opened.client;
        self.tracer().set_label(client.to_string());
        let what = if opened.check {
            "a health check"
        } else {
            "client"
        };
        self.tracer().event(&format!(
            "proxy protocol header from {relay}: {what} {client}"
        ));
    }
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The client sent `exit`.
    Exit,
    /// A line grew too long.
    LineTooLong,
    /// End of file: the client closed.
    Closed,
    /// Nothing arrived for the idle timeout.
    TimedOut,
    /// A receive or send failed.
    Failed,
}

impl Ended {
    /// Ended by the protocol's own rules, whatever else happened meanwhile.
    fn by_protocol(self) -> bool {
        matches!(self, Ended::Exit | Ended::LineTooLong)
    }

    fn words(self) -> &'static str {
        match self {
            Ended::Exit => "peer sent exit",
            Ended::LineTooLong => "line too long",
            Ended::Closed => "peer closed",
            Ended::TimedOut => "timed out",
            Ended::Failed => "receive or send failed",
        }
    }
}

/// One client, from greeting to close, over `stream` (`socket` is the socket under it).
/// Every way it can end is logged, never propagated: a client's trouble is not the
/// server's. The log names the thread serving it; a balancer's health check is logged at
/// debug only.
fn serve_connection(
    stream: &mut impl Served,
    socket: &TcpStream,
    opened: &Opened,
    shared: &Shared,
    config: &Config,
) -> Ended {
    let peer = opened.client;
    let level = if opened.check {
        Level::Debug
    } else {
        Level::Info
    };
    let thread = thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let open = shared.open_count();
    log!(
        level,
        "Accept new connection from {peer}... (thread {name}, {open} open)"
    );
    let ended = match converse(stream, &opened.early, config) {
        Ok(Some(End::LineTooLong)) => {
            warn!("Connection from {peer}: line too long, closing");
            Ended::LineTooLong
        }
        Ok(Some(End::Exit)) => Ended::Exit,
        Ok(None) => Ended::Closed,
        Err(err) if net::is_timeout(&err) => {
            log!(level, "Connection from {peer} timed out");
            Ended::TimedOut
        }
        Err(err) => {
            debug!("Connection from {peer}: {}", describe(&err));
            Ended::Failed
        }
    };
    if ended.by_protocol() {
        linger(stream, socket);
    }
    // This one is still counted until its slot is given back.
    let open = shared.open_count().saturating_sub(1);
    log!(
        level,
        "Connection from {peer} closed. (thread {name}, {open} open)"
    );
    ended
}

/// A connection about to be served: who it is for, and what it sent ahead.
struct Opened {
    /// The client to log: the PROXY header's source, or the real peer.
    client: SocketAddr,
    /// Bytes that came after the PROXY header: the start of the conversation.
    early: Vec<u8>,
    /// A balancer's health check (a v2 `LOCAL` header): logged at debug, not counted.
    check: bool,
}

/// Reads the PROXY header from `stream` (over `socket`) when `--proxy-protocol` asks for
/// one. `None`: the connection has no valid header and has been logged (one line); the
/// caller closes it.
fn open(
    stream: &mut impl Read,
    socket: &TcpStream,
    peer: SocketAddr,
    config: &Config,
) -> Option<Opened> {
    let mut opened = Opened {
        client: peer,
        early: Vec::new(),
        check: false,
    };
    if !config.proxy_protocol {
        return Some(opened);
    }
    let limit = PROXY_HEADER_TIMEOUT;
    let header = match read_proxy_header(stream, socket, limit, config.idle_timeout) {
        Ok((header, early)) => {
            opened.early = early;
            header
        }
        Err(err) => {
            warn!("Rejected connection from {peer}: {err:#}");
            return None;
        }
    };
    opened.client = header.client(peer);
    opened.check = header == Header::Local;
    match header {
        Header::Proxied { .. } => debug!("Connection from {} relayed by {peer}", opened.client),
        Header::Local => debug!("Health check from {peer} (proxy protocol LOCAL)"),
        Header::Unknown => debug!("Connection relayed by {peer} for a client it does not name"),
    }
    Some(opened)
}

/// Reads a PROXY protocol header from `stream` within `limit`, in whatever pieces it comes;
/// returns it and the bytes received after it. The deadline is set on `socket`, the socket
/// under `stream`, which gets `idle` back as its read timeout afterwards.
fn read_proxy_header(
    stream: &mut impl Read,
    socket: &TcpStream,
    limit: Duration,
    idle: Option<Duration>,
) -> anyhow::Result<(Header, Vec<u8>)> {
    let deadline = Instant::now() + limit;
    let mut parser = proxy::Parser::new();
    let mut buf = [0u8; RECV_SIZE];
    let (header, early) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!("no proxy protocol header within {limit:?}");
        }
        let context = || "cannot read a proxy protocol header".to_string();
        socket.set_read_timeout(Some(left)).io_context(context)?;
        let n = match net::recv(stream, &mut buf) {
            Err(err) if net::is_timeout(&err) => continue,
            other => other.io_context(context)?,
        };
        // The peer's close ends the header too: `finish` says how it was cut short.
        let status = match n {
            0 => parser.finish().map(|header| Status::Complete {
                header,
                consumed: 0,
            }),
            _ => parser.feed(&buf[..n]),
        };
        if let Status::Complete { header, consumed } = status? {
            break (header, buf[consumed..n].to_vec());
        }
    };
    socket
        .set_read_timeout(idle)
        .io_context(|| "cannot restore the idle timeout".to_string())?;
    Ok((header, early))
}

/// The protocol loop: greeting, then a reply for every message (the `early` bytes, received
/// with a PROXY header, first), until `exit`, EOF, a line that is too long, or an error.
/// Returns why it ended (`None` for EOF).
fn converse(
    stream: &mut (impl Read + Write),
    early: &[u8],
    config: &Config,
) -> io::Result<Option<End>> {
    net::send(stream, GREETING)?;
    let mut framer = Framer::new();
    let mut buf = [0u8; RECV_SIZE];
    // Grown on the first reply: a connection that never speaks costs no heap.
    let mut out = Vec::new();
    if !early.is_empty() {
        if let Some(end) = answer(stream, &mut framer, early, &mut out, config)? {
            return Ok(Some(end));
        }
    }
    loop {
        let n = net::recv(stream, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(end) = answer(stream, &mut framer, &buf[..n], &mut out, config)? {
            return Ok(Some(end));
        }
    }
}

/// Answers one received chunk; `Some` when the conversation ends after it.
fn answer(
    stream: &mut impl Write,
    framer: &mut Framer,
    chunk: &[u8],
    out: &mut Vec<u8>,
    config: &Config,
) -> io::Result<Option<End>> {
    let outcome = framer.push(chunk, out);
    if !config.delay.is_zero() && outcome.replies > 0 {
        thread::sleep(reply_delay(config.delay, outcome.replies));
    }
    // One write per chunk: replies to several lines in one segment leave together.
    net::send(stream, out)?;
    recycle(out);
    Ok(outcome.end)
}

/// `--delay` for each of `replies`, saturating: a delay too long to add up is forever.
fn reply_delay(delay: Duration, replies: usize) -> Duration {
    delay.saturating_mul(u32::try_from(replies).unwrap_or(u32::MAX))
}

/// Empties the reply buffer for the next chunk, and gives its memory back if a long line
/// grew it: an idle connection holds no more than a short one.
fn recycle(out: &mut Vec<u8>) {
    out.clear();
    if out.capacity() > KEEP_BUFFER {
        *out = Vec::new();
    }
}

/// Ends a conversation that the server ended (`exit`, a line too long) while the client may
/// still be sending. Closing a socket with unread bytes sends a reset, which can destroy
/// replies the client has not read yet; so our side is shut first (the client reads every
/// reply, then EOF), and what the client still sends is read and dropped until it closes,
/// for [`LINGER_TIME`] and [`LINGER_BYTES`] at most. `socket` is the socket under `stream`.
fn linger(stream: &mut impl Served, socket: &TcpStream) {
    if socket.shutdown(Shutdown::Write).is_err() {
        return;
    }
    stream.shut_down("our sending side, after the last reply");
    let deadline = Instant::now() + LINGER_TIME;
    let mut buf = [0u8; RECV_SIZE];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match net::recv(stream, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{pair, shared};
    use super::*;

    #[test]
    fn a_panicking_connection_thread_gives_back_its_slot() {
        let shared = shared(1);
        let (server, _client) = pair();
        let peer = server.peer_addr().unwrap();
        let stream = Arc::new(server);
        let id = shared.admit(&stream).expect("a free slot");
        let conn = Conn { id, stream, peer };
        let outcome = thread::scope(|s| {
            s.spawn(|| connection_thread(conn, &shared, |_| panic!("a bug in a conversation")))
                .join()
        });
        assert!(outcome.is_err(), "the thread did not panic");
        assert!(shared.lock().streams.is_empty(), "the slot was kept");
    }

    #[test]
    fn a_delay_too_long_to_add_up_is_forever_not_a_panic() {
        let second = Duration::from_secs(1);
        assert_eq!(reply_delay(second, 3), Duration::from_secs(3));
        let huge = Duration::from_secs(10_000_000_000_000_000_000);
        assert_eq!(reply_delay(huge, 2), Duration::MAX);
        assert_eq!(reply_delay(second, usize::MAX), second * u32::MAX);
    }

    #[test]
    fn a_reply_buffer_grown_by_a_long_line_is_given_back() {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"Hello, a!");
        recycle(&mut out);
        assert!(
            out.is_empty() && out.capacity() >= 64,
            "a small buffer is kept"
        );
        out.extend(std::iter::repeat_n(b'x', 70 * 1024));
        recycle(&mut out);
        assert_eq!(out.capacity(), 0);
    }
}

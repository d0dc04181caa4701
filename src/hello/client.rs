//! The Hello client: the tutorial's client (greeting, one raw message per name, `exit`),
//! plus names from stdin. Replies are checked by [`Replies`], not taken one per receive:
//! the reply to `M` is `Hello, M!`, so a reply split across segments, or longer than one
//! receive, is still printed whole and next to the right name.
//!
//! `--timeout` is a deadline for each whole reply, not a limit on each receive: before every
//! receive the socket's read timeout is set to the time left, so a server that drips a reply
//! a byte at a time cannot hold the client longer than the timeout.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use super::protocol::Mode;
use super::protocol::{exit_message, Exchange, Mismatch, Replies, GREETING, MAX_LINE};
use crate::net::trace::{Role, TracedSocket, Tracer};
use crate::net::{self, IoContext, Peer, RECV_SIZE};

/// What `sockdemo client` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The names to send; none: read them from stdin.
    pub names: Vec<Vec<u8>>,
    /// The server's name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Bounds the connect and each whole reply (zero: none).
    pub timeout: Duration,
    /// Raw messages (the tutorial's) or lines.
    pub mode: Mode,
    /// `--trace`: the connection's socket events.
    pub trace: Option<Tracer>,
}

/// `sockdemo client`.
pub fn run(config: Config) -> anyhow::Result<()> {
    for name in &config.names {
        check_name(name).map_err(|why| {
            anyhow::anyhow!("invalid name {:?}: {why}", String::from_utf8_lossy(name))
        })?;
    }
    if let Some((host, port)) = host_and_port(&config.names) {
        log::warn!(
            "the names {host} {port} are sent as messages; to connect to {host} port {port}, \
             use --host {host} --port {port}"
        );
    }
    let conn = Connection::open(&config.host, config.port, config.timeout)?;
    match config.trace.clone() {
        None => converse(conn, config),
        Some(tracer) => converse(conn.traced(tracer)?, config),
    }
}

/// The whole conversation, stdin or the names given, over any stream.
fn converse<S: Read + Write>(mut conn: Connection<S>, config: Config) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if config.names.is_empty() {
        let stdin = io::stdin();
        let interactive = stdin.is_terminal();
        let names = names_from(stdin.lock(), interactive);
        talk(&mut conn, config.mode, names, &mut out)
    } else {
        let names = config.names.into_iter().map(Ok);
        talk(&mut conn, config.mode, names, &mut out)
    }
}

/// The conversation: greeting, a reply per name, then `exit`. Each reply goes to `out` on
/// a line of its own as soon as it is complete.
pub fn talk<S: Read + Write>(
    conn: &mut Connection<S>,
    mode: Mode,
    names: impl IntoIterator<Item = io::Result<Vec<u8>>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    conn.expect(GREETING, "greeting")?;
    print_line(out, GREETING)?;
    if mode == Mode::Lines {
        conn.enter_line_mode()?;
    }
    let mut exchange = Exchange::default();
    for name in names {
        let name = name.io_context(|| "cannot read a name from stdin")?;
        if name == super::protocol::EXIT {
            break;
        }
        exchange.set(&name, mode);
        conn.round_trip(&exchange)?;
        print_line(out, exchange.reply_text())?;
    }
    conn.send(exit_message(mode))
}

/// Whether `name` can be sent as one message: not empty (an empty raw message cannot be
/// sent, and the server would wait for it forever) and without `\r` or `\n` (which the
/// server takes for the end of a line).
pub fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name cannot be empty".to_string());
    }
    if name.contains(&b'\n') || name.contains(&b'\r') {
        return Err("a name cannot contain a line ending (\\r or \\n)".to_string());
    }
    Ok(())
}

fn print_line(out: &mut impl Write, bytes: &[u8]) -> anyhow::Result<()> {
    let written = out
        .write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    crate::exit::output_write(written, "stdout")
}

/// Names from `input`, one per line; blank lines are skipped. On a terminal, a prompt on
/// stderr asks for each. A line longer than the server's line limit is an error: no server
/// could take it as one message, and reading it whole would hold it all in memory.
fn names_from(
    mut input: impl BufRead,
    interactive: bool,
) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    std::iter::from_fn(move || loop {
        if interactive {
            // Through the one stderr writer: a closed stderr must not panic, and the prompt
            // must not land inside a log line. It is on the screen before the wait for the
            // name (the writer is a thread of its own), so it is never shown after the reply.
            crate::console::print("name> ");
            crate::console::global().flush(crate::console::STALL);
        }
        let mut line = Vec::new();
        match read_line(&mut input, &mut line) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(err) => return Some(Err(err)),
        }
        let name = line.strip_suffix(b"\r").unwrap_or(&line);
        if name.len() > MAX_LINE {
            return Some(Err(line_too_long()));
        }
        if !name.is_empty() {
            return Some(Ok(name.to_vec()));
        }
    })
}

/// Reads one line into `line`, without its `\n`; false at the end of input. A line longer
/// than [`MAX_LINE`] (and a `\r`) is an error as soon as that many bytes have come, so that
/// memory stays bounded whatever the input.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let (text, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], true),
            None => (buf, false),
        };
        if line.len() + text.len() > MAX_LINE + 1 {
            return Err(line_too_long());
        }
        line.extend_from_slice(text);
        let used = text.len() + usize::from(found);
        input.consume(used);
        if found {
            return Ok(true);
        }
    }
}

fn line_too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a line is longer than {MAX_LINE} bytes, the server's limit"),
    )
}

/// A connection to a Hello server, over any stream (a socket, or a wrapper around one).
pub struct Connection<S = TcpStream> {
    stream: S,
    peer: SocketAddr,
    replies: Replies,
    deadline: Option<ReplyDeadline<S>>,
}

/// What keeps a whole reply within its timeout: the stream's read timeout, set to the time
/// left before each receive.
struct ReplyDeadline<S> {
    limit: Duration,
    set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
    /// The read timeout the stream has now.
    current: Option<Duration>,
}

impl Connection {
    /// Connects to `host:port` (every address of a name, in turn), with `timeout` on the
    /// connect and on every reply.
    pub fn open(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Self> {
        let addrs =
            net::resolve(host, port, net::Family::Any).map_err(|err| port_hint(host, err))?;
        Self::connect(&addrs, timeout).map_err(refused_hint)
    }

    /// Connects to the first of `addrs` that answers, with `timeout` on the connect and on
    /// every reply. Unlike [`open`](Self::open) it adds no hint to the error, so a caller
    /// that retries can still find the `io::ErrorKind` in the chain.
    pub fn connect(addrs: &[SocketAddr], timeout: Duration) -> anyhow::Result<Self> {
        let stream = net::connect_any(addrs, timeout, net::optional(timeout))?;
        let peer = stream
            .peer_addr()
            .io_context(|| "cannot read the server's address")?;
        let conn = Connection::new(stream, peer);
        Ok(match net::optional(timeout) {
            Some(limit) => conn.with_reply_timeout(limit, TcpStream::set_read_timeout),
            None => conn,
        })
    }

    /// The same connection with its socket traced from now on: `== connect local -> peer`
    /// at once, every send and receive, `== close` when it is dropped. The reply timeout
    /// still reaches the socket.
    pub fn traced(self, tracer: Tracer) -> anyhow::Result<Connection<TracedSocket<TcpStream>>> {
        let ends = Peer::of(&self.stream).io_context(|| "cannot read the socket's addresses")?;
        let limit = self.deadline.as_ref().map(|d| d.limit);
        let conn = Connection {
            stream: TracedSocket::new(self.stream, ends, Role::Client, tracer),
            peer: self.peer,
            replies: self.replies,
            deadline: None,
        };
        Ok(match limit {
            Some(limit) => conn.with_reply_timeout(limit, |socket, timeout| {
                socket.get_ref().set_read_timeout(timeout)
            }),
            None => conn,
        })
    }
}

impl<S: Read + Write> Connection<S> {
    /// A conversation over `stream`, already connected to `peer`.
    pub fn new(stream: S, peer: SocketAddr) -> Self {
        Connection {
            stream,
            peer,
            replies: Replies::new(),
            deadline: None,
        }
    }

    /// Bounds each whole reply by `limit`, with `set_read_timeout` reaching the socket under
    /// the stream (for a `TcpStream`, `TcpStream::set_read_timeout`). Without it, only the
    /// stream's own read timeout applies, to each receive.
    pub fn with_reply_timeout(
        mut self,
        limit: Duration,
        set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
    ) -> Self {
        self.deadline = Some(ReplyDeadline {
            limit,
            set_read_timeout,
            current: None,
        });
        self
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Puts the server in line mode with an empty line. A lone `\n` is one byte, which no
    /// network can split; the first name's pieces could otherwise arrive before its `\n` and
    /// be taken for raw messages.
    pub fn enter_line_mode(&mut self) -> anyhow::Result<()> {
        self.send(b"\n")?;
        self.expect(b"Hello, !\n", "reply to an empty line")
    }

    /// One message, one checked reply.
    pub fn round_trip(&mut self, exchange: &Exchange) -> anyhow::Result<()> {
        self.send(exchange.message())?;
        self.expect(exchange.reply(), "reply")
    }

    /// Sends one message as one write.
    pub fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        let peer = self.peer;
        net::send(&mut self.stream, message).io_context(|| format!("cannot send to {peer}"))
    }

    /// Reads until exactly `expected` has arrived, within the reply timeout if there is one.
    pub fn expect(&mut self, expected: &[u8], what: &str) -> anyhow::Result<()> {
        let peer = self.peer;
        let deadline = self
            .deadline
            .as_ref()
            .and_then(|d| Instant::now().checked_add(d.limit));
        let mut buf = [0u8; RECV_SIZE];
        loop {
            match self.replies.take(expected) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(Mismatch(got)) => anyhow::bail!(
                    "unexpected {what} from {peer}: {:?}",
                    String::from_utf8_lossy(&got)
                ),
            }
            let n = self
                .time_left(deadline)
                .and_then(|()| net::recv(&mut self.stream, &mut buf))
                .io_context(|| format!("cannot read the {what} from {peer}"))?;
            if n == 0 {
                anyhow::bail!("{peer} closed the connection before the {what} was complete");
            }
            self.replies.push(&buf[..n]);
        }
    }
}

impl<S> Connection<S> {
    /// Gives the stream a read timeout of the time left before `deadline`; `TimedOut` once
    /// it has passed.
    fn time_left(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let (Some(timer), Some(deadline)) = (self.deadline.as_mut(), deadline) else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // Within 1% of what is set already: a receive may end that much off the deadline, and
        // a reply that comes in one receive costs no system call for it.
        if timer
            .current
            .is_some_and(|current| current.abs_diff(left) <= timer.limit / 100)
        {
            return Ok(());
        }
        (timer.set_read_timeout)(&self.stream, Some(left))?;
        timer.current = Some(left);
        Ok(())
    }
}

/// "connection refused" usually means nobody is listening: say which command would.
pub fn refused_hint(err: anyhow::Error) -> anyhow::Error {
    if net::io_kind(&err) == Some(io::ErrorKind::ConnectionRefused) {
        anyhow::anyhow!("{err:#} (is `sockdemo serve` running?)")
    } else {
        err
    }
}

/// `--host localhost:9999` cannot resolve: the port belongs in `--port`. Say so.
fn port_hint(host: &str, err: anyhow::Error) -> anyhow::Error {
    match split_port(host) {
        Some((name, port)) => {
            anyhow::anyhow!("{err:#} (the port goes in --port: --host {name} --port {port})")
        }
        None => err,
    }
}

/// `name:port` or `[v6]:port` as its two parts; `None` for anything else, an IPv6 literal
/// included.
fn split_port(host: &str) -> Option<(&str, u16)> {
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let (name, port) = host.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let name = match name.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None => name,
    };
    let fits = !name.is_empty() && (!name.contains(':') || name.parse::<IpAddr>().is_ok());
    fits.then_some((name, port))
}

/// The first two names, when they read as an address and a port (`client localhost 9999`,
/// as netcat takes them): the user most likely meant `--host` and `--port`.
fn host_and_port(names: &[Vec<u8>]) -> Option<(&str, u16)> {
    let [host, port, ..] = names else {
        return None;
    };
    let host = std::str::from_utf8(host).ok()?;
    let port = std::str::from_utf8(port).ok()?;
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    looks_like_host(host).then_some((host, port))
}

/// An IP address, `localhost`, or a dotted name such as `example.org`.
fn looks_like_host(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() || text.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = text.trim_end_matches('.').split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
    };
    labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn a_port_in_the_host_is_found() {
        let cases = [
            ("localhost:9999", Some(("localhost", 9999))),
            ("127.0.0.1:80", Some(("127.0.0.1", 80))),
            ("[::1]:9999", Some(("::1", 9999))),
            ("example.org:8080", Some(("example.org", 8080))),
            ("::1", None),
            ("localhost", None),
            ("localhost:http", None),
            ("localhost:99999", None),
            (":9999", None),
            ("a:b:9999", None),
        ];
        for (host, want) in cases {
            assert_eq!(split_port(host), want, "{host}");
        }
    }

    #[test]
    fn names_that_read_as_host_and_port_are_noticed() {
        let names = |list: &[&str]| -> Vec<Vec<u8>> {
            list.iter().map(|n| n.as_bytes().to_vec()).collect()
        };
        type Case<'a> = (&'a [&'a str], Option<(&'a str, u16)>);
        let cases: &[Case] = &[
            (&["localhost", "9999"], Some(("localhost", 9999))),
            (&["127.0.0.1", "9999", "Michael"], Some(("127.0.0.1", 9999))),
            (&["::1", "80"], Some(("::1", 80))),
            (&["example.org", "80"], Some(("example.org", 80))),
            (&["Michael", "42"], None),
            (&["Michael", "Tracy"], None),
            (&["localhost"], None),
            (&["localhost", "0"], None),
            (&["localhost", "+80"], None),
            (&["localhost", "70000"], None),
            (&["1.5", "2"], None),
            (&["Dr.", "1"], None),
        ];
        for (given, want) in cases {
            assert_eq!(host_and_port(&names(given)), *want, "{given:?}");
        }
    }

    #[test]
    fn names_come_one_per_line_without_endings_or_blanks() {
        let input: &[u8] = b"Michael\r\n\nTracy\nSarah";
        let names: Vec<Vec<u8>> = names_from(input, false).map(Result::unwrap).collect();
        assert_eq!(
            names,
            [b"Michael".to_vec(), b"Tracy".to_vec(), b"Sarah".to_vec()]
        );
    }

    /// A wrapper over the transport seam: counts every byte that crosses it.
    struct Counting<S> {
        inner: S,
        sent: Vec<u8>,
        received: Vec<u8>,
    }

    impl<S: Read> Read for Counting<S> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.received.extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }

    impl<S: Write> Write for Counting<S> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.sent.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_wrapper_over_the_seam_sees_every_byte_of_the_conversation() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            sock.write_all(b"Welcome!").expect("greet");
            let mut buf = [0u8; 64];
            for reply in [b"Hello, Michael!".as_slice(), b"Hello, Tracy!"] {
                let _ = net::recv(&mut sock, &mut buf).expect("message");
                sock.write_all(reply).expect("reply");
            }
            let n = net::recv(&mut sock, &mut buf).expect("exit");
            buf[..n].to_vec()
        });
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let counting = Counting {
            inner: sock,
            sent: Vec::new(),
            received: Vec::new(),
        };
        let mut conn = Connection::new(counting, addr);
        let names = [b"Michael".to_vec(), b"Tracy".to_vec()].map(Ok);
        let mut out = Vec::new();
        talk(&mut conn, Mode::Raw, names, &mut out).expect("conversation");
        assert_eq!(server.join().expect("server"), b"exit");
        assert_eq!(out, b"Welcome!\nHello, Michael!\nHello, Tracy!\n");
        let seen = conn.get_ref();
        assert_eq!(seen.sent, b"MichaelTracyexit");
        assert_eq!(seen.received, b"Welcome!Hello, Michael!Hello, Tracy!");
    }
}

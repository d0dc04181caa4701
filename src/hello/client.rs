//! The Hello client: the tutorial's client (greeting, one raw message per name, `exit`),
//! plus names from stdin. Replies are checked by [`Replies`], not taken one per receive:
//! the reply to `M` is `Hello, M!`, so a reply split across segments, or longer than one
//! receive, is still printed whole and next to the right name.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

pub use super::protocol::Mode;
use super::protocol::{exit_message, Exchange, Mismatch, Replies, GREETING};
use crate::net::{self, IoContext, RECV_SIZE};

/// What `sockdemo client` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The names to send; none: read them from stdin.
    pub names: Vec<Vec<u8>>,
    /// The server's name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Bounds the connect and each reply (zero: none).
    pub timeout: Duration,
    /// Raw messages (the tutorial's) or lines.
    pub mode: Mode,
}

/// `sockdemo client`.
pub fn run(config: Config) -> anyhow::Result<()> {
    if let Some((host, port)) = host_and_port(&config.names) {
        log::warn!(
            "the names {host} {port} are sent as messages; to connect to {host} port {port}, \
             use --host {host} --port {port}"
        );
    }
    let mut conn = Connection::open(&config.host, config.port, config.timeout)?;
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

fn print_line(out: &mut impl Write, bytes: &[u8]) -> anyhow::Result<()> {
    out.write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .io_context(|| "cannot write to stdout")
}

/// Names from `input`, one per line; blank lines are skipped. On a terminal, a prompt on
/// stderr asks for each.
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
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(err) => return Some(Err(err)),
        }
        let name = line.strip_suffix(b"\n").unwrap_or(&line);
        let name = name.strip_suffix(b"\r").unwrap_or(name);
        if !name.is_empty() {
            return Some(Ok(name.to_vec()));
        }
    })
}

/// A connection to a Hello server, over any stream (a socket, or a wrapper around one).
pub struct Connection<S = TcpStream> {
    stream: S,
    peer: SocketAddr,
    replies: Replies,
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
        Ok(Connection::new(stream, peer))
    }
}

impl<S: Read + Write> Connection<S> {
    /// A conversation over `stream`, already connected to `peer`.
    pub fn new(stream: S, peer: SocketAddr) -> Self {
        Connection {
            stream,
            peer,
            replies: Replies::new(),
        }
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
        self.stream
            .write_all(message)
            .io_context(|| format!("cannot send to {peer}"))
    }

    /// Reads until exactly `expected` has arrived.
    pub fn expect(&mut self, expected: &[u8], what: &str) -> anyhow::Result<()> {
        let peer = self.peer;
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
            let n = net::recv(&mut self.stream, &mut buf)
                .io_context(|| format!("cannot read the {what} from {peer}"))?;
            if n == 0 {
                anyhow::bail!("{peer} closed the connection before the {what} was complete");
            }
            self.replies.push(&buf[..n]);
        }
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

//! The Hello client: the tutorial's client (greeting, one raw message per name, `exit`),
//! plus names from stdin. Replies are read by length, not by receive: the reply to `M` is
//! `Hello, M!`, so a reply split across segments, or longer than one receive, is still
//! printed whole and next to the right name.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use anyhow::Context;

use crate::cli::ClientArgs;
use crate::hello::{self, EXIT, GREETING};
use crate::net::{self, IoContext, RECV_SIZE};

/// `sockdemo client`.
pub fn run(args: &ClientArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(&args.host, args.port, args.timeout)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mode = if args.lines { Mode::Lines } else { Mode::Raw };
    if args.names.is_empty() {
        let stdin = io::stdin();
        let interactive = stdin.is_terminal();
        talk(
            &mut conn,
            mode,
            names_from(stdin.lock(), interactive),
            &mut out,
        )
    } else {
        let names = args.names.iter().map(|n| Ok(n.as_bytes().to_vec()));
        talk(&mut conn, mode, names, &mut out)
    }
}

/// How a message is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The tutorial's: the message alone, one write, no line ending.
    Raw,
    /// The message and `\n`.
    Lines,
}

impl Mode {
    pub fn ending(self) -> &'static [u8] {
        match self {
            Mode::Raw => b"",
            Mode::Lines => b"\n",
        }
    }
}

/// The conversation: greeting, a reply per name, then `exit`. Each reply goes to `out` on
/// a line of its own as soon as it is complete.
pub fn talk(
    conn: &mut Connection,
    mode: Mode,
    names: impl IntoIterator<Item = io::Result<Vec<u8>>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    conn.expect(GREETING, "greeting")?;
    print_line(out, GREETING)?;
    if mode == Mode::Lines {
        conn.enter_line_mode()?;
    }
    let (mut message, mut reply) = (Vec::new(), Vec::new());
    for name in names {
        let name = name.context("cannot read a name from stdin")?;
        if name == EXIT {
            break;
        }
        message.clear();
        message.extend_from_slice(&name);
        message.extend_from_slice(mode.ending());
        conn.send(&message)?;
        reply.clear();
        hello::reply(&name, mode.ending(), &mut reply);
        conn.expect(&reply, "reply")?;
        print_line(out, &reply[..reply.len() - mode.ending().len()])?;
    }
    message.clear();
    message.extend_from_slice(EXIT);
    message.extend_from_slice(mode.ending());
    conn.send(&message)?;
    Ok(())
}

fn print_line(out: &mut impl Write, bytes: &[u8]) -> anyhow::Result<()> {
    out.write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Names from `input`, one per line; blank lines are skipped. On a terminal, a prompt on
/// stderr asks for each.
fn names_from(
    mut input: impl BufRead,
    interactive: bool,
) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    std::iter::from_fn(move || loop {
        if interactive {
            // Not eprint!: a closed stderr must not panic.
            let _ = io::stderr().write_all(b"name> ");
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

/// A connection to a Hello server that reads replies of a known content.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes received beyond the reply last expected.
    pending: Vec<u8>,
}

impl Connection {
    /// Connects to `host:port` (every address of a name, in turn), with `timeout` on the
    /// connect and on every reply.
    pub fn open(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Self> {
        let addrs = net::resolve(host, port, net::Family::Any)?;
        Self::connect(&addrs, timeout).map_err(refused_hint)
    }

    /// Connects to the first of `addrs` that answers, with `timeout` on the connect and on
    /// every reply. Unlike [`open`](Self::open) it adds no hint to the error, so a caller
    /// that retries can still find the `io::ErrorKind` in the chain.
    pub fn connect(addrs: &[SocketAddr], timeout: Duration) -> anyhow::Result<Self> {
        let stream = net::connect_any(addrs, timeout)?;
        Self::from_stream(stream, net::optional(timeout))
    }

    pub fn from_stream(stream: TcpStream, timeout: Option<Duration>) -> anyhow::Result<Self> {
        let peer = stream
            .peer_addr()
            .io_context(|| "cannot read the server's address")?;
        stream
            .set_nodelay(true)
            .io_context(|| format!("cannot configure the socket to {peer}"))?;
        stream
            .set_read_timeout(timeout)
            .io_context(|| format!("cannot configure the socket to {peer}"))?;
        stream
            .set_write_timeout(timeout)
            .io_context(|| format!("cannot configure the socket to {peer}"))?;
        Ok(Connection {
            stream,
            peer,
            pending: Vec::with_capacity(RECV_SIZE),
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Puts the server in line mode with an empty line. A lone `\n` is one byte, which no
    /// network can split; the first name's pieces could otherwise arrive before its `\n` and
    /// be taken for raw messages.
    pub fn enter_line_mode(&mut self) -> anyhow::Result<()> {
        self.send(b"\n")?;
        self.expect(b"Hello, !\n", "reply to an empty line")
    }

    /// Sends one message as one write.
    pub fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        let peer = self.peer;
        self.stream
            .write_all(message)
            .io_context(|| format!("cannot send to {peer}"))
    }

    /// Reads until exactly `expected` has arrived. A byte that differs ends it at once,
    /// rather than waiting for a length that a wrong reply may never reach.
    pub fn expect(&mut self, expected: &[u8], what: &str) -> anyhow::Result<()> {
        let peer = self.peer;
        let mut buf = [0u8; RECV_SIZE];
        loop {
            let have = self.pending.len().min(expected.len());
            if self.pending[..have] != expected[..have] {
                anyhow::bail!(
                    "unexpected {what} from {peer}: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
            }
            if have == expected.len() {
                self.pending.drain(..have);
                return Ok(());
            }
            let n = match self.stream.read(&mut buf) {
                Ok(0) => {
                    anyhow::bail!("{peer} closed the connection before the {what} was complete")
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(err).io_context(|| format!("cannot read the {what} from {peer}"))
                }
            };
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// "connection refused" usually means nobody is listening: say which command would.
pub fn refused_hint(err: anyhow::Error) -> anyhow::Error {
    let refused = err.chain().any(|cause| {
        cause
            .downcast_ref::<net::PlainIoError>()
            .is_some_and(|e| e.0.kind() == io::ErrorKind::ConnectionRefused)
    });
    if refused {
        anyhow::anyhow!("{err:#} (is `sockdemo serve` running?)")
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_one_per_line_without_endings_or_blanks() {
        let input: &[u8] = b"Michael\r\n\nTracy\nSarah";
        let names: Vec<Vec<u8>> = names_from(input, false).map(Result::unwrap).collect();
        assert_eq!(
            names,
            [b"Michael".to_vec(), b"Tracy".to_vec(), b"Sarah".to_vec()]
        );
    }
}

//! What both halves of the tutorial stand on: resolving, connecting, socket options in one
//! place, the receive loop, and the transport seam.
//!
//! The seam: a connected stream is any `Read + Write` value. The fetch conversation, the
//! client, bench and the server's conversation are generic over it, so a wrapper (a cap on
//! each receive, a tracer that shows every system call, TLS) is one type around another and
//! needs no change to them. The layers stack in one order, socket first: the receive cap,
//! then the tracer, then TLS, so that the tracer sees what crosses the socket and every
//! receive on the socket is capped. Who is at the other end travels beside the stream (see
//! [`Peer`]), so that a PROXY protocol header can replace it after accept.

pub mod capped;
mod error;
mod eyeballs;
pub mod tls;
pub mod trace;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::anyhow;
use anyhow::Context;

pub use error::{describe, io_error, io_kind, is_timeout, timed_out, IoContext, PlainIoError};
pub use eyeballs::{happy_eyeballs, interleave, ATTEMPT_DELAY};

/// The size of one receive, as in the tutorial's `recv(1024)`.
pub const RECV_SIZE: usize = 1024;
/// The tutorial's address: local only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The tutorial's port.
pub const DEFAULT_PORT: u16 = 9999;

/// Which address families a connection may use (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// Both, in the resolver's order.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// The two ends of a connection. `peer` is who the conversation is with: the socket's peer,
/// or the client a load balancer's PROXY header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Our end.
    pub local: SocketAddr,
    /// Their end, as reported in logs and traces.
    pub peer: SocketAddr,
}

impl Peer {
    /// Both ends of a connected socket.
    pub fn of(stream: &TcpStream) -> io::Result<Peer> {
        Ok(Peer {
            local: stream.local_addr()?,
            peer: stream.peer_addr()?,
        })
    }
}

/// One receive of at most `buf.len()` bytes, retried when a signal interrupts it: the
/// tutorial's `recv(1024)`. `Ok(0)` is the peer's close. The stream is a blocking one, so a
/// `WouldBlock` is its read timeout and comes back as `TimedOut` (see [`timed_out`]).
pub fn recv(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map_err(timed_out),
        }
    }
}

/// Sends all of `bytes` on a blocking stream; its write timeout comes back as `TimedOut`.
pub fn send(stream: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).map_err(timed_out)
}

/// Gives a connected socket the options every conversation here wants: TCP_NODELAY (each
/// message is one write and must leave at once) and `timeout` on reads and writes (`None`
/// for none).
pub fn configure(stream: &TcpStream, timeout: Option<Duration>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)
}

/// `host:port` as a user would type it back: IPv6 literals in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Every address of `host` in `family`, in the resolver's order.
pub fn resolve(host: &str, port: u16, family: Family) -> anyhow::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .io_context(|| format!("cannot resolve {bare}"))?
        .filter(|addr| family.admits(addr))
        .collect();
    if addrs.is_empty() {
        anyhow::bail!("cannot resolve {bare}: no address of the requested family");
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that answers within `timeout` (zero: the system's own),
/// and gives the socket [`configure`]'s options with `io_timeout`. The error names the last
/// address tried and why it failed.
pub fn connect_any(
    addrs: &[SocketAddr],
    timeout: Duration,
    io_timeout: Option<Duration>,
) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match connect_one(addr, timeout, io_timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                log::debug!("cannot connect to {addr}: {}", describe(&err));
                last = Some((addr, err));
            }
        }
    }
    let (addr, err) = last.ok_or_else(|| anyhow!("no address to connect to"))?;
    Err(anyhow::Error::new(PlainIoError(err))).with_context(|| format!("cannot connect to {addr}"))
}

fn connect_one(
    addr: &SocketAddr,
    timeout: Duration,
    io_timeout: Option<Duration>,
) -> io::Result<TcpStream> {
    let stream = if timeout.is_zero() {
        TcpStream::connect(addr)?
    } else {
        TcpStream::connect_timeout(addr, timeout)?
    };
    configure(&stream, io_timeout)?;
    Ok(stream)
}

/// A socket timeout of zero means "none" on our command line; std wants `None` for that.
pub fn optional(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(host_port("::1", 80), "[::1]:80");
        assert_eq!(host_port("example.org", 8080), "example.org:8080");
    }

    #[test]
    fn resolve_filters_by_family() {
        let v4 = resolve("127.0.0.1", 1, Family::V6);
        assert!(v4.is_err());
        let v6 = resolve("[::1]", 1, Family::V6).expect("::1 resolves");
        assert!(v6.iter().all(SocketAddr::is_ipv6));
    }

    /// A reader that is interrupted once before each byte it gives.
    struct Interrupting<'a>(&'a [u8], bool);

    impl Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.0.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_socket_read_timeout_is_a_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut stream =
            TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let err = recv(&mut stream, &mut [0u8; 8]).expect_err("nothing was sent");
        assert!(is_timeout(&err), "{err:?}");
        assert_eq!(describe(&err), "timed out");
    }

    #[test]
    fn a_receive_interrupted_by_a_signal_is_retried() {
        let mut stream = Interrupting(b"ab", false);
        let mut buf = [0u8; 8];
        assert_eq!(recv(&mut stream, &mut buf).unwrap(), 1);
        assert_eq!(recv(&mut stream, &mut buf).unwrap(), 1);
        assert_eq!(recv(&mut stream, &mut buf).unwrap(), 0);
    }
}

//! Resolving, connecting, and saying what went wrong: the socket plumbing that the server,
//! the client, fetch and bench share.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, Context};

/// The size of one receive, as in the tutorial's `recv(1024)`.
pub const RECV_SIZE: usize = 1024;

/// Which address families a connection may use (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
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

/// An `io::Error` worded like the rest of our messages: lowercase, without
/// "(os error N)", and a socket timeout (which Unix reports as `WouldBlock`) called
/// "timed out".
#[derive(Debug)]
pub struct PlainIoError(pub io::Error);

impl fmt::Display for PlainIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for PlainIoError {}

/// The words for an I/O error in a one-line message.
pub fn describe(err: &io::Error) -> String {
    if is_timeout(err) {
        return "timed out".to_string();
    }
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A read or write that ran into its socket timeout.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `with_context` for I/O results, with the cause worded by [`describe`].
pub trait IoContext<T> {
    fn io_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> anyhow::Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::new(PlainIoError(err)).context(context()))
    }
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

/// Connects to the first of `addrs` that answers within `timeout`; the error names the last
/// address tried and why it failed.
pub fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match connect_one(addr, timeout) {
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

fn connect_one(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = if timeout.is_zero() {
        TcpStream::connect(addr)?
    } else {
        TcpStream::connect_timeout(addr, timeout)?
    };
    stream.set_nodelay(true)?;
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
    fn os_errors_read_as_plain_lowercase_words() {
        let err = io::Error::from_raw_os_error(98);
        assert_eq!(describe(&err), "address already in use");
        let err = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&err), "connection refused");
    }

    #[test]
    fn socket_timeouts_read_as_timed_out() {
        assert_eq!(describe(&io::ErrorKind::WouldBlock.into()), "timed out");
        assert_eq!(describe(&io::ErrorKind::TimedOut.into()), "timed out");
    }

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
}

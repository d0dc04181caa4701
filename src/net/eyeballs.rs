//! Happy Eyeballs (RFC 8305) for fetch's connect: a host with a dead IPv6 route costs a
//! quarter of a second, not the connect timeout.
//!
//! When a name has addresses of both families, they are tried in the order RFC 8305 asks
//! for (families alternating, the resolver's first choice first), and each next attempt
//! starts [`ATTEMPT_DELAY`] after the previous one, or at once when the previous one fails,
//! without stopping the attempts already under way. The first connection made wins; every
//! other attempt is shut down at once (a socket still connecting is disconnected, which
//! wakes its thread) and its socket closed. Each attempt keeps its own connect timeout.
//!
//! Each attempt is a blocking connect on a thread of its own, which keeps the module free
//! of a poll loop and of `unsafe`. A name of one family only is tried in turn, as before:
//! there is nothing to race.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{configure, connect_any, describe, PlainIoError};

/// RFC 8305's recommended Connection Attempt Delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// A connect thread needs little more than its socket address and an error.
const ATTEMPT_STACK: usize = 64 * 1024;

/// Connects to the first of `addrs` that answers, racing the families as RFC 8305 does
/// when both are present (see the module's documentation), each attempt bounded by
/// `timeout` (zero: the system's own). The socket gets [`configure`]'s options with
/// `io_timeout`. When every attempt fails, the error names the last address to fail and why.
pub fn happy_eyeballs(
    addrs: &[SocketAddr],
    timeout: Duration,
    io_timeout: Option<Duration>,
) -> anyhow::Result<TcpStream> {
    let both = addrs.iter().any(SocketAddr::is_ipv4) && addrs.iter().any(SocketAddr::is_ipv6);
    if !both {
        return connect_any(addrs, timeout, io_timeout);
    }
    let stream = match race(&interleave(addrs), ATTEMPT_DELAY, timeout) {
        Ok(stream) => stream,
        Err((addr, err)) => {
            return Err(anyhow::Error::new(PlainIoError(err)))
                .with_context(|| format!("cannot connect to {addr}"))
        }
    };
    let peer = stream.peer_addr().ok();
    configure(&stream, io_timeout)
        .map_err(|err| anyhow::Error::new(PlainIoError(err)))
        .with_context(|| match peer {
            Some(peer) => format!("cannot set up the connection to {peer}"),
            None => "cannot set up the connection".to_string(),
        })?;
    Ok(stream)
}

/// `addrs` in RFC 8305's order (section 4): the families alternate, starting with the
/// family of the resolver's first address, each family keeping the resolver's order.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addrs
        .iter()
        .partition(|addr| addr.is_ipv6() == first.is_ipv6());
    let mut order = Vec::with_capacity(addrs.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return order,
            (a, b) => order.extend(a.into_iter().chain(b).copied()),
        }
    }
}

/// One attempt under way: the address, and a second handle on its socket to cancel it.
struct Attempt {
    addr: SocketAddr,
    cancel: Option<Socket>,
}

/// How an attempt ended, reported by its thread: its index and the outcome.
type Report = (usize, io::Result<TcpStream>);

/// Staggered, overlapping attempts on `order`, `delay` apart (or at once after a failure);
/// the first connection wins and the others are cancelled. On failure: the last address to
/// fail and its error.
fn race(
    order: &[SocketAddr],
    delay: Duration,
    timeout: Duration,
) -> Result<TcpStream, (SocketAddr, io::Error)> {
    let (tx, rx) = mpsc::channel::<Report>();
    let mut attempts: Vec<Attempt> = Vec::with_capacity(order.len());
    let mut pending = 0usize;
    let mut last_failure = None;
    let mut next_at = Instant::now();
    loop {
        let now = Instant::now();
        if let Some(&addr) = order.get(attempts.len()).filter(|_| now >= next_at) {
            log::debug!("Connecting to {addr}");
            match start(attempts.len(), addr, timeout, tx.clone()) {
                Ok(cancel) => {
                    pending += 1;
                    attempts.push(Attempt {
                        addr,
                        cancel: Some(cancel),
                    });
                    next_at = now + delay;
                }
                Err(err) => {
                    log::debug!("cannot connect to {addr}: {}", describe(&err));
                    attempts.push(Attempt { addr, cancel: None });
                    last_failure = Some((addr, err));
                }
            }
            continue;
        }
        if pending == 0 && attempts.len() == order.len() {
            break;
        }
        let report = if attempts.len() < order.len() {
            rx.recv_timeout(next_at.saturating_duration_since(now))
        } else {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match report {
            Ok((i, Ok(stream))) => {
                cancel_all_but(&mut attempts, i);
                return Ok(stream);
            }
            Ok((i, Err(err))) => {
                pending -= 1;
                let addr = attempts.get(i).map_or(order[0], |a| a.addr);
                log::debug!("cannot connect to {addr}: {}", describe(&err));
                last_failure = Some((addr, err));
                next_at = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Err(last_failure.unwrap_or_else(|| {
        let none = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        (
            order.first().copied().unwrap_or(([0, 0, 0, 0], 0).into()),
            none,
        )
    }))
}

/// Starts attempt `i` on a thread of its own, which reports to `tx`; returns a handle on
/// its socket to cancel it with.
fn start(i: usize, addr: SocketAddr, timeout: Duration, tx: Sender<Report>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    let cancel = socket.try_clone()?;
    thread::Builder::new()
        .name(format!("connect-{addr}"))
        .stack_size(ATTEMPT_STACK)
        .spawn(move || {
            // The receiver is gone once another attempt has won: this stream then closes.
            let _ = tx.send((i, connect(socket, addr, timeout)));
        })?;
    Ok(cancel)
}

/// A blocking connect of `socket` to `addr`, within `timeout` (zero: the system's own).
fn connect(socket: Socket, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let to = SockAddr::from(addr);
    if timeout.is_zero() {
        socket.connect(&to)?;
    } else {
        socket.connect_timeout(&to, timeout)?;
    }
    Ok(socket.into())
}

/// Shuts down every attempt but the winner's: one still connecting is disconnected (its
/// thread wakes with an error), one that has just connected is closed.
fn cancel_all_but(attempts: &mut [Attempt], winner: usize) {
    for (i, attempt) in attempts.iter_mut().enumerate() {
        if let Some(socket) = attempt.cancel.take() {
            if i != winner {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

#[cfg(test)]
mod tests;

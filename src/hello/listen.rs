//! The server's listening sockets: one on every address the host name gives, all on one
//! port. `--host localhost` resolves to `::1` and `127.0.0.1` on many systems, and the
//! tutorial's client (and `nc 127.0.0.1`) must not be refused because the resolver put `::1`
//! first; so every address is listened on, each accepted on by a thread of its own.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::net::describe;

/// With `--port 0` and several addresses, the port the system picks for the first may be
/// taken on another: tries at a port free on all of them.
const PORT_ATTEMPTS: u32 = 8;

/// Listens on each of `addrs` (duplicates once), on one port: the one they carry, or with
/// port 0 the one the system picks for the first. Accepted sockets inherit `idle_timeout` on
/// reads and writes and TCP_NODELAY on Linux (see the server's `configure`). `reuse_port`
/// sets SO_REUSEPORT, so that other processes that set it may listen on the same port.
/// `backlog` is `listen`'s (the system caps it).
pub(super) fn listen_all(
    addrs: &[SocketAddr],
    idle_timeout: Option<Duration>,
    reuse_port: bool,
    backlog: u32,
) -> anyhow::Result<Vec<TcpListener>> {
    // The command line keeps it within an int; a larger one would only be capped.
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let mut distinct: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !distinct.contains(addr) {
            distinct.push(*addr);
        }
    }
    let picked = distinct.first().is_some_and(|a| a.port() == 0);
    let mut attempt = 1;
    loop {
        match listen_each(&distinct, idle_timeout, reuse_port, backlog) {
            Ok(listeners) => return Ok(listeners),
            Err((_, err))
                if picked && err.kind() == io::ErrorKind::AddrInUse && attempt < PORT_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err((addr, err)) => return Err(listen_error(addr, err)),
        }
    }
}

/// One attempt of [`listen_all`]; the error names the address that failed.
fn listen_each(
    addrs: &[SocketAddr],
    idle_timeout: Option<Duration>,
    reuse_port: bool,
    backlog: i32,
) -> Result<Vec<TcpListener>, (SocketAddr, io::Error)> {
    // Alone, `::` also takes IPv4 (the system's default); beside other addresses it must
    // not, or `0.0.0.0` on the same port would be "in use".
    let v6_only = addrs.len() > 1;
    let mut port = addrs.first().map_or(0, SocketAddr::port);
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let addr = SocketAddr::new(addr.ip(), port);
        let listener =
            listen(addr, idle_timeout, v6_only, reuse_port, backlog).map_err(|err| (addr, err))?;
        if port == 0 {
            port = listener.local_addr().map_err(|err| (addr, err))?.port();
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The listening socket, with the options that accepted sockets inherit on Linux.
fn listen(
    addr: SocketAddr,
    idle_timeout: Option<Duration>,
    v6_only: bool,
    reuse_port: bool,
    backlog: i32,
) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if v6_only && addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(idle_timeout)?;
    socket.set_write_timeout(idle_timeout)?;
    Ok(socket.into())
}

fn listen_error(addr: SocketAddr, err: io::Error) -> anyhow::Error {
    let hint = match err.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        io::ErrorKind::AddrInUse => {
            " (another program listens there: --port 0 picks a free port, or choose another --port)"
        }
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr}: {}{hint}", describe(&err))
}

/// A client already waiting in `listener`'s backlog, if there is one, without waiting for
/// one to come.
pub(super) fn try_accept(listener: &TcpListener) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    listener.set_nonblocking(true)?;
    let accepted = listener.accept();
    listener.set_nonblocking(false)?;
    match accepted {
        Ok((stream, peer)) => {
            // Linux does not pass O_NONBLOCK on to accepted sockets; other systems do.
            stream.set_nonblocking(false)?;
            Ok(Some((stream, peer)))
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_gets_a_listener_on_the_port_picked_for_the_first() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:0".parse().unwrap(),
            "[::1]:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ];
        if TcpListener::bind("[::1]:0").is_err() {
            assert!(std::env::var_os("CI").is_none(), "no IPv6 loopback on CI");
            eprintln!("skipped: no IPv6 loopback here");
            return;
        }
        let listeners =
            listen_all(&addrs, None, false, crate::hello::server::LISTEN_BACKLOG).expect("listen");
        let locals: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(locals.len(), 2, "{locals:?}");
        assert_ne!(locals[0].port(), 0);
        assert_eq!(locals[0].port(), locals[1].port());
        for local in locals {
            TcpStream::connect(local).expect("each address accepts");
        }
    }

    #[test]
    fn an_empty_backlog_is_seen_without_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(try_accept(&listener).expect("probe").is_none());
        let _client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let accepted = loop {
            // The handshake completes in the kernel, a moment after connect returns.
            if let Some(accepted) = try_accept(&listener).expect("probe") {
                break accepted;
            }
            assert!(std::time::Instant::now() < deadline, "never accepted");
            std::thread::yield_now();
        };
        // The accepted socket blocks, whatever the listener was set to meanwhile: a read
        // waits for its timeout instead of failing at once.
        let wait = Duration::from_millis(50);
        accepted.0.set_read_timeout(Some(wait)).unwrap();
        let started = std::time::Instant::now();
        let mut byte = [0u8; 1];
        let _ = std::io::Read::read(&mut &accepted.0, &mut byte);
        assert!(started.elapsed() >= wait / 2, "{:?}", started.elapsed());
    }
}

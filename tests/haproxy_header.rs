//! Real HAProxy in front of a plain listener: the PROXY protocol headers it sends (v1, v2,
//! v2 with TLVs, the LOCAL header of its health checks) read off a real socket by
//! `sockdemo::hello::proxy`, in the pieces the socket gives, with the client's bytes after them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use crate::common::haproxy::{self, Haproxy};
use crate::common::STEP;
use sockdemo::hello::proxy::{Header, Parser, Status};

/// A backend on port 0 that hands over each connection it accepts.
fn backend(host: &str) -> (SocketAddr, mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind((host, 0)).expect("bind the backend");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            if tx.send(stream).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

/// HAProxy listening on `listen`, relaying to `backend` with `server_options`.
fn balancer(listen: &str, backend: SocketAddr, server_options: &str) -> Haproxy {
    Haproxy::start(
        &[listen],
        &format!(
            "frontend fe
    bind fd@${{LISTEN0}}
    default_backend be
backend be
    server s1 {backend} {server_options}
"
        ),
    )
}

/// Reads a header in small, odd-sized pieces, then `rest_len` more bytes: the header and
/// what followed it.
fn read_header(stream: &mut TcpStream, rest_len: usize) -> (Header, Vec<u8>) {
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mut parser = Parser::new();
    let mut piece = [0; 7];
    let (header, mut rest) = loop {
        let n = stream.read(&mut piece).expect("read the header");
        assert!(n > 0, "closed inside the header: {:?}", parser.finish());
        match parser.feed(&piece[..n]).expect("a valid header") {
            Status::Partial => {}
            Status::Complete { header, consumed } => break (header, piece[consumed..n].to_vec()),
        }
    };
    while rest.len() < rest_len {
        let n = stream.read(&mut piece).expect("read after the header");
        assert!(n > 0, "closed after the header");
        rest.extend_from_slice(&piece[..n]);
    }
    (header, rest)
}

/// A client through HAProxy: the backend must see the client's own address and the
/// balancer's listening address, then the client's bytes.
fn client_is_named(listen: &str, backend_host: &str, server_options: &str) {
    if !haproxy::installed() {
        return;
    }
    let (backend_addr, accepted) = backend(backend_host);
    let lb = balancer(listen, backend_addr, server_options);
    let mut client = TcpStream::connect_timeout(&lb.addr(0), STEP).expect("connect to haproxy");
    client.write_all(b"hello").unwrap();
    let mut conn = accepted.recv_timeout(STEP).expect("haproxy connects");
    let (header, rest) = read_header(&mut conn, 5);
    let want = Header::Proxied {
        source: client.local_addr().unwrap(),
        destination: lb.addr(0),
    };
    assert_eq!(header, want);
    assert_eq!(rest, b"hello");
    conn.write_all(b"Welcome!").unwrap();
    let mut greeting = [0; 8];
    client.set_read_timeout(Some(STEP)).unwrap();
    client
        .read_exact(&mut greeting)
        .expect("the backend's reply");
    assert_eq!(&greeting, b"Welcome!");
    lb.stop();
}

#[test]
fn haproxy_v2_names_the_client() {
    client_is_named("127.0.0.1:0", "127.0.0.1", "send-proxy-v2");
}

#[test]
fn haproxy_v2_with_tlvs_names_the_client() {
    client_is_named(
        "127.0.0.1:0",
        "127.0.0.1",
        "send-proxy-v2 proxy-v2-options crc32c,unique-id,ssl,authority",
    );
}

#[test]
fn haproxy_v2_names_an_ipv6_client_to_an_ipv4_backend() {
    client_is_named("[::1]:0", "127.0.0.1", "send-proxy-v2");
}

#[test]
fn haproxy_v1_names_the_client() {
    client_is_named("127.0.0.1:0", "127.0.0.1", "send-proxy");
}

#[test]
fn haproxy_v1_names_an_ipv6_client() {
    client_is_named("[::1]:0", "127.0.0.1", "send-proxy");
}

#[test]
fn haproxy_v2_health_checks_are_local() {
    if !haproxy::installed() {
        return;
    }
    let (backend_addr, accepted) = backend("127.0.0.1");
    let lb = balancer(
        "127.0.0.1:0",
        backend_addr,
        "send-proxy-v2 check inter 100ms",
    );
    for _ in 0..2 {
        let mut conn = accepted.recv_timeout(STEP).expect("a health check");
        let (header, _) = read_header(&mut conn, 0);
        assert_eq!(header, Header::Local);
    }
    assert_eq!(lb.server_stat("be", "s1", "status"), "UP");
    lb.stop();
}

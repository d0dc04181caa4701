//! `serve --proxy-protocol` met by clients of every kind on loopback: headers in one piece
//! and one byte at a time, with the conversation's first bytes right behind them; a health
//! check's `LOCAL` header; clients that come straight to the server without a header, with a
//! malformed or an oversized one, or that say nothing at all. Each bad one is closed with one
//! log line while a good connection beside it keeps being served. And `serve --reuse-port`:
//! two processes on one port, both reached.

use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::common::{
    assert_address_in_use, connect, read_n, read_to_close, read_to_hang_up, round_trip, run,
    sockdemo, stderr, Server, STEP,
};

/// The version 2 signature, version 2 and a command (`PROXY` = 1, `LOCAL` = 0) follow it.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A version 1 header for `source` talking to `destination`.
fn v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// A version 2 `PROXY` header for `source` talking to `destination` (same family).
fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut addresses = Vec::new();
    let family = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            addresses.extend(s.octets());
            addresses.extend(d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            addresses.extend(s.octets());
            addresses.extend(d.octets());
            0x21
        }
        _ => panic!("one family for both ends"),
    };
    addresses.extend(source.port().to_be_bytes());
    addresses.extend(destination.port().to_be_bytes());
    let mut header = V2_SIGNATURE.to_vec();
    header.extend([0x21, family]);
    header.extend((addresses.len() as u16).to_be_bytes());
    header.extend(addresses);
    header
}

/// The version 2 `LOCAL` header of a balancer's health check.
fn v2_local() -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend([0x20, 0x00, 0, 0]);
    header
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn proxy_server() -> Server {
    Server::start(&["--proxy-protocol", "-v"])
}

/// Log lines that mention `needle`.
fn lines_with(server: &Server, needle: &str) -> Vec<String> {
    server
        .log()
        .into_iter()
        .filter(|line| line.contains(needle))
        .collect()
}

#[test]
fn v1_header_names_the_client_and_what_follows_is_the_first_message() {
    let mut server = proxy_server();
    let mut stream = connect(server.addr);
    let mut bytes = v1(addr("192.0.2.7:40000"), addr("198.51.100.1:9999"));
    bytes.extend_from_slice(b"Michael");
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_n(&mut stream, 8), b"Welcome!");
    assert_eq!(read_n(&mut stream, 15), b"Hello, Michael!");
    round_trip(&mut stream, b"Tracy", b"Hello, Tracy!");
    // The balancer's address at debug, before the client's own line.
    let relayed = server.wait_for_log("Connection from 192.0.2.7:40000 relayed by 127.0.0.1:");
    assert!(relayed.contains("DEBUG"), "{relayed}");
    server.wait_for_log("Accept new connection from 192.0.2.7:40000...");
    stream.write_all(b"exit").unwrap();
    server.wait_for_log("Connection from 192.0.2.7:40000 closed.");
    assert_eq!(server.stop_and_count(), 1);
}

#[test]
fn v2_header_sent_one_byte_at_a_time_is_accepted() {
    let mut server = proxy_server();
    let mut stream = connect(server.addr);
    stream.set_nodelay(true).unwrap();
    let client = addr("[2001:db8::7]:40001");
    for byte in v2(client, addr("[2001:db8::1]:9999")) {
        stream.write_all(&[byte]).unwrap();
    }
    assert_eq!(read_n(&mut stream, 8), b"Welcome!");
    round_trip(&mut stream, b"Sarah", b"Hello, Sarah!");
    server.wait_for_log("Accept new connection from [2001:db8::7]:40001...");
    drop(stream);
    server.wait_for_log("Connection from [2001:db8::7]:40001 closed.");
    assert_eq!(server.stop_and_count(), 1);
}

#[test]
fn local_health_check_is_served_but_logged_at_debug_and_not_counted() {
    let mut server = proxy_server();
    let mut check = connect(server.addr);
    check.write_all(&v2_local()).unwrap();
    assert_eq!(read_n(&mut check, 8), b"Welcome!");
    round_trip(&mut check, b"ping", b"Hello, ping!");
    let me = check.local_addr().unwrap();
    drop(check);
    server.wait_for_log(&format!("Health check from {me}"));
    let closed = server.wait_for_log(&format!("Connection from {me} closed."));
    assert!(closed.contains("DEBUG"), "{closed}");
    let accepted = lines_with(&server, "Accept new connection");
    assert!(
        accepted.iter().all(|line| line.contains("DEBUG")),
        "{accepted:?}"
    );
    assert_eq!(server.stop_and_count(), 0);
}

/// What clients send instead of a valid header, and the words their rejection must hold.
fn bad_starts() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut endless_v1 = b"PROXY TCP4 ".to_vec();
    endless_v1.resize(300, b'1');
    vec![
        ("talks first", b"Michael".to_vec(), "it begins with \"M\""),
        (
            "http",
            b"GET / HTTP/1.1\r\n".to_vec(),
            "it begins with \"G\"",
        ),
        (
            "bad v1 address",
            b"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n".to_vec(),
            "address \"192.0.2.300\" is invalid",
        ),
        (
            "v1 with a bare LF",
            b"PROXY TCP4 192.0.2.3 198.51.100.1 1 2\n".to_vec(),
            "CR or LF that is not a CRLF",
        ),
        ("oversized v1", endless_v1, "without CRLF in 107 bytes"),
        (
            "bad v2 version",
            [V2_SIGNATURE, b"\x31\x11\0\x0c"].concat(),
            "proxy protocol version 3",
        ),
        (
            "v2 over udp",
            [V2_SIGNATURE, b"\x21\x12\0\x0c"].concat(),
            "only TCP is supported",
        ),
        (
            "oversized v2",
            [V2_SIGNATURE, b"\x21\x11\xff\xf0"].concat(),
            "is longer than 4096",
        ),
    ]
}

/// Sends `bytes` on a fresh connection (then closes its sending side when `close` says so);
/// the server must close it without a greeting and log the rejection, with `reason` in it.
/// Returns the client's address.
fn rejected(server: &mut Server, bytes: &[u8], close: bool, reason: &str) -> SocketAddr {
    let mut stream = connect(server.addr);
    let me = stream.local_addr().unwrap();
    // The server may close (and reset) before every byte is written: a rejection too.
    let _ = stream.write_all(bytes);
    if close {
        stream.shutdown(Shutdown::Write).unwrap();
    }
    assert_eq!(
        read_to_hang_up(&mut stream),
        b"",
        "no greeting for {bytes:?}"
    );
    let line = server.wait_for_log(&format!("Rejected connection from {me}: "));
    assert!(line.contains(reason), "{line:?} should say {reason:?}");
    me
}

#[test]
fn connections_without_a_valid_header_are_closed_while_others_are_served() {
    let mut server = proxy_server();
    let mut good = connect(server.addr);
    good.write_all(&v1(addr("192.0.2.1:1000"), addr("198.51.100.1:9999")))
        .unwrap();
    assert_eq!(read_n(&mut good, 8), b"Welcome!");

    let mut peers = Vec::new();
    for (name, bytes, reason) in bad_starts() {
        peers.push(rejected(&mut server, &bytes, false, reason));
        // The good client is served between every bad one.
        round_trip(
            &mut good,
            name.as_bytes(),
            format!("Hello, {name}!").as_bytes(),
        );
    }
    let cut = b"PROXY TCP4 192.0.2";
    let reason = "closed after 18 bytes of a proxy protocol header";
    peers.push(rejected(&mut server, cut, true, reason));
    round_trip(&mut good, b"cut", b"Hello, cut!");
    good.write_all(b"exit").unwrap();
    server.wait_for_log("Connection from 192.0.2.1:1000 closed.");

    assert_eq!(server.stop_and_count(), 1, "only the good client counts");
    for peer in peers {
        let lines = lines_with(&server, &format!("{peer}"));
        assert_eq!(lines.len(), 1, "one line for {peer}: {lines:?}");
        assert!(lines[0].contains("WARN"), "{lines:?}");
    }
    assert!(
        lines_with(&server, "Accept new connection from 127.0.0.1").is_empty(),
        "a connection without a header was served: {:?}",
        server.log()
    );
}

#[test]
fn a_direct_client_that_waits_for_the_greeting_is_closed_at_the_header_deadline() {
    let mut server = proxy_server();
    let began = Instant::now();
    let output = run(
        &mut sockdemo(["client", "--port", &server.port(), "Michael"]),
        STEP,
    );
    let took = began.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let line = server.wait_for_log("Rejected connection from 127.0.0.1:");
    assert!(
        line.contains("no proxy protocol header within 5s"),
        "{line}"
    );
    assert_eq!(server.stop_and_count(), 0);
}

#[test]
fn two_reuse_port_servers_share_a_port_and_both_are_reached() {
    let mut first = Server::start(&["--reuse-port"]);
    let port = first.port();
    let mut second = Server::spawn(sockdemo(["serve", "--port", &port, "--reuse-port"]));
    assert_eq!(second.addr, first.addr);
    // The kernel picks a listener by a hash of each connection's addresses: a hundred
    // connections from a hundred ports reach both (the odds against are 2^-99).
    for _ in 0..100 {
        let mut stream = connect(first.addr);
        assert_eq!(read_n(&mut stream, 8), b"Welcome!");
        stream.write_all(b"exit").unwrap();
        assert_eq!(read_to_close(&mut stream), b"");
    }
    first.wait_for_log("Accept new connection from");
    second.wait_for_log("Accept new connection from");
    let served = first.stop_and_count() + second.stop_and_count();
    assert_eq!(served, 100);
}

#[test]
fn without_reuse_port_a_second_server_on_the_port_is_refused() {
    let first = Server::start(&["--reuse-port"]);
    let output = run(&mut sockdemo(["serve", "--port", &first.port()]), STEP);
    assert_address_in_use(&output, first.addr);
}

//! The transport over real loopback sockets, counted from below: whatever the conversation
//! asks of it, no receive on the socket asks for more than `--recv-size` bytes, over TLS
//! too, and a TLS flight leaves as one vectored write. Then the words and exit statuses of
//! its failures, and the hint for http given to a port that speaks TLS.

use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection};

use super::*;
use crate::exit::{self, Numbering};
use crate::fetch::response;
use crate::net::capped::tests::Counting;
use crate::net::capped::Capped;
use crate::testing::TempDir;

use crate::test_pki as pki;

/// No single step may take longer than this: a hang is a failure.
const STEP: Duration = Duration::from_secs(10);

fn pki() -> &'static pki::Pki {
    static PKI: OnceLock<pki::Pki> = OnceLock::new();
    PKI.get_or_init(pki::Pki::generate)
}

fn server_config() -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let leaf = &pki().leaf;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain(), leaf.key())
        .expect("a certificate and its key");
    Arc::new(config)
}

/// A server on 127.0.0.1 that sends `body` on its one connection, in TLS when `tls`, then
/// closes cleanly (`close_notify` first over TLS).
fn serve(body: Vec<u8>, tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        let _ = sock.set_read_timeout(Some(STEP));
        let _ = sock.set_write_timeout(Some(STEP));
        if tls {
            let mut conn = ServerConnection::new(server_config()).expect("a server connection");
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            let _ = stream.write_all(&body).and_then(|()| stream.flush());
            conn.send_close_notify();
            let _ = conn.complete_io(&mut sock);
        } else {
            let _ = sock.write_all(&body);
        }
        let _ = sock.shutdown(Shutdown::Write);
        let _ = io::copy(&mut sock, &mut io::sink());
    });
    addr
}

fn connect(addr: SocketAddr) -> Counting<TcpStream> {
    let sock = TcpStream::connect_timeout(&addr, STEP).expect("connect");
    sock.set_read_timeout(Some(STEP)).expect("read timeout");
    sock.set_write_timeout(Some(STEP)).expect("write timeout");
    Counting::new(sock)
}

/// A connector trusting the test CA through a `--cacert` file in `dir`.
fn trusting(dir: &TempDir) -> Connector {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &pki().ca.cert_pem).expect("write the CA file");
    Connector::new(TlsOptions {
        cacert: Some(path),
        ..TlsOptions::default()
    })
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("a URL")
}

/// Everything until a clean end, read with buffers far larger than the cap.
fn read_to_end(stream: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(err) => panic!("read: {err}"),
        }
    }
}

#[test]
fn over_tls_no_receive_on_the_socket_asks_for_more_than_recv_size() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let addr = serve(body.clone(), true);
    let dir = TempDir::new("transport-cap");
    let target = url(&format!("https://localhost:{}/", addr.port()));
    // As fetch stacks them: the socket, the cap, TLS.
    let mut transport = trusting(&dir)
        .secure(Capped::new(connect(addr), 1024), &target)
        .expect("a TLS transport");
    assert!(transport.negotiated().is_some());
    transport
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .expect("send");
    assert_eq!(read_to_end(&mut transport), body);
    let counts = &transport.get_ref().get_ref().counts;
    let reads = counts.reads.load(Ordering::Relaxed);
    assert_eq!(counts.largest_read.load(Ordering::Relaxed), 1024);
    assert!(reads > body.len() / 1024, "{reads} receives");
    // Every TLS flight (handshake, request) left as one vectored write.
    assert_eq!(counts.writes.load(Ordering::Relaxed), 0);
    assert!(counts.vectored_writes.load(Ordering::Relaxed) >= 2);
}

#[test]
fn over_plain_http_the_socket_is_capped_too() {
    let body = vec![7u8; 10_000];
    let addr = serve(body.clone(), false);
    let target = url(&format!("http://127.0.0.1:{}/", addr.port()));
    let mut connector = Connector::new(TlsOptions::default());
    let mut transport = connector
        .secure(Capped::new(connect(addr), 100), &target)
        .expect("a plain transport");
    assert!(transport.negotiated().is_none());
    assert_eq!(read_to_end(&mut transport), body);
    let counts = &transport.get_ref().get_ref().counts;
    assert_eq!(counts.largest_read.load(Ordering::Relaxed), 100);
}

#[test]
fn http_never_reads_the_trust_store_or_cacert() {
    let dir = TempDir::new("transport-lazy");
    let mut connector = Connector::new(TlsOptions {
        cacert: Some(dir.join("missing.pem")),
        ..TlsOptions::default()
    });
    let plain = connector.secure(Cursor::new(Vec::new()), &url("http://127.0.0.1:1/"));
    assert!(plain.is_ok());
    assert!(connector.config.is_none());
    let Err(err) = connector.secure(Cursor::new(Vec::new()), &url("https://127.0.0.1:1/")) else {
        panic!("a missing --cacert is an error for https");
    };
    assert_eq!(exit::status(&err, Numbering::Curl), Some(77));
    assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
}

#[test]
fn a_handshake_failure_carries_host_port_and_its_exit_status() {
    // A server that closes at once: the handshake ends early (35).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || drop(listener.accept()));
    let dir = TempDir::new("transport-closed");
    let target = url(&format!("https://localhost:{}/", addr.port()));
    let Err(err) = trusting(&dir).secure(connect(addr), &target) else {
        panic!("a handshake with a closed socket succeeded");
    };
    assert_eq!(exit::status(&err, Numbering::Curl), Some(35));
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!(
            "cannot complete the TLS handshake with localhost:{}",
            addr.port()
        )),
        "{message}"
    );
}

/// The transport's verdict on a receive error, as fetch's receive loop words and tags it.
fn receive_error(err: io::Error) -> anyhow::Error {
    Err::<(), _>(err)
        .io_context(|| "cannot read from 127.0.0.1:1")
        .tag(Kind::Receive)
        .unwrap_err()
}

use crate::net::IoContext;

#[test]
fn a_close_without_close_notify_reads_as_a_cut_download() {
    let cut = worded(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer closed connection without sending TLS close_notify: https://docs.rs/...",
    ));
    assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
    let err = receive_error(cut);
    assert_eq!(
        format!("{err:#}"),
        "cannot read from 127.0.0.1:1: the server closed the connection without a TLS \
         close_notify, so the body may be incomplete"
    );
    assert_eq!(exit::status(&err, Numbering::Curl), Some(18));
}

#[test]
fn tls_errors_after_the_handshake_are_words_and_keep_their_kind() {
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac);
    let err = worded(io::Error::new(io::ErrorKind::InvalidData, alert));
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "the server sent the alert \"bad record mac\""
    );
    let timeout = worded(io::Error::from(io::ErrorKind::WouldBlock));
    assert_eq!(timeout.kind(), io::ErrorKind::WouldBlock);
    // As fetch's receive loop reads it (a blocking socket: WouldBlock is its timeout).
    let timeout = crate::net::timed_out(timeout);
    assert_eq!(
        exit::status(&receive_error(timeout), Numbering::Curl),
        Some(28)
    );
}

/// A plain transport that has received `start`, and how fetch explains `refused` over it.
fn explained(start: &[u8], err: anyhow::Error) -> (String, Option<u8>) {
    let mut plain = Transport::Plain(Plain::new(Cursor::new(start.to_vec())));
    let _ = plain.read(&mut [0u8; 1024]);
    let target = url("http://localhost:8443/a?b");
    let err = plain.explain(err, &target);
    (format!("{err:#}"), exit::status(&err, Numbering::Curl))
}

fn refused(err: response::Error) -> anyhow::Error {
    anyhow::Error::new(err).context("bad response from 127.0.0.1:8443")
}

#[test]
fn http_to_a_tls_port_says_so_and_keeps_the_exit_status() {
    let alert = b"\x15\x03\x01\x00\x02\x02\x46";
    let (message, status) = explained(alert, refused(response::Error::BadStatusLine));
    assert_eq!(
        message,
        "cannot fetch http://localhost:8443/a?b (the server answered in TLS: try \
         https://localhost:8443/a?b): bad response from 127.0.0.1:8443: no HTTP/1.x status line"
    );
    assert_eq!(status, Some(8));
    let (message, status) = explained(b"", refused(response::Error::NoResponse));
    assert!(
        message.starts_with(
            "cannot fetch http://localhost:8443/a?b (if the server speaks only TLS, try \
             https://localhost:8443/a?b): "
        ),
        "{message}"
    );
    assert_eq!(status, Some(52));
    let reset = receive_error(io::Error::from(io::ErrorKind::ConnectionReset));
    let (message, status) = explained(b"", reset);
    assert!(
        message.contains("try https://localhost:8443/a?b"),
        "{message}"
    );
    assert_eq!(status, Some(56));
}

#[test]
fn other_bad_replies_get_no_tls_hint() {
    for start in [&b"SSH-2.0-OpenSSH"[..], b"\x15\x48", b"HTTP/1.1 200 OK\r\n"] {
        let (message, status) = explained(start, refused(response::Error::BadStatusLine));
        assert!(!message.contains("https"), "{message}");
        assert_eq!(status, Some(8));
    }
    // A reset after some bytes came is no sign of TLS either.
    let reset = receive_error(io::Error::from(io::ErrorKind::ConnectionReset));
    let (message, _) = explained(b"HTTP/1.1 200 OK\r\n", reset);
    assert!(!message.contains("https"), "{message}");
}

#[test]
fn the_start_of_a_plain_reply_is_kept_across_small_receives() {
    let mut plain = Plain::new(Cursor::new(b"\x15\x03\x03rest".to_vec()));
    for _ in 0..3 {
        let _ = plain.read(&mut [0u8; 1]);
    }
    assert_eq!(plain.start(), b"\x15\x03\x03");
    let _ = plain.read(&mut [0u8; 8]);
    assert_eq!(plain.start(), b"\x15\x03\x03");
}

//! The TLS client against an in-test rustls server on 127.0.0.1 (and ::1), over real sockets:
//! every certificate verdict, every way a handshake fails, the end of a stream with and
//! without `close_notify`, the key log, and the receive cap below TLS. The servers here can
//! misbehave on purpose (close mid-handshake, stall, no `close_notify`), which peers such as
//! nginx or python's `ssl` cannot be made to do.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};

use super::*;
use crate::net::capped::tests::Counting;
use crate::net::capped::Capped;
use crate::testing::TempDir;

use crate::test_pki as pki;

use pki::{Identity, Pki};

/// No single step may take longer than this: a hang is a failure.
const STEP: Duration = Duration::from_secs(10);

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::generate)
}

// ---------------------------------------------------------------------------------------
// Servers

/// How the in-test server behaves once a client has connected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Sends the body, then `close_notify`, then FIN.
    CloseNotify,
    /// Sends the body, then FIN without `close_notify`.
    BareFin,
}

/// What the server saw: the name the client asked for (SNI), or why its handshake failed.
#[derive(Debug)]
struct Seen {
    sni: Option<String>,
    error: Option<String>,
}

/// A server on `bind` that runs `serve` on its one connection and reports what it returns.
fn spawn_server<T: Send + 'static>(
    bind: &str,
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> io::Result<(SocketAddr, Receiver<T>)> {
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("tls-server-{addr}"))
        .spawn(move || {
            let Ok((sock, _)) = listener.accept() else {
                return;
            };
            let _ = sock.set_read_timeout(Some(STEP));
            let _ = sock.set_write_timeout(Some(STEP));
            let _ = tx.send(serve(sock));
        })?;
    Ok((addr, rx))
}

fn server_config(
    identity: &Identity,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain(), identity.key())
        .expect("a certificate and its key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A TLS server that completes the handshake, sends `body`, and ends as `end` says.
fn tls_server(
    bind: &str,
    config: Arc<ServerConfig>,
    body: Vec<u8>,
    end: End,
) -> io::Result<(SocketAddr, Receiver<Seen>)> {
    spawn_server(bind, move |mut sock| {
        let mut conn = ServerConnection::new(config).expect("a server connection");
        while conn.is_handshaking() {
            if let Err(err) = conn.complete_io(&mut sock) {
                return Seen {
                    sni: conn.server_name().map(str::to_string),
                    error: Some(err.to_string()),
                };
            }
        }
        let sni = conn.server_name().map(str::to_string);
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let sent = tls.write_all(&body).and_then(|()| tls.flush());
        if end == End::CloseNotify {
            conn.send_close_notify();
            let _ = conn.complete_io(&mut sock);
        }
        finish(sock);
        Seen {
            sni,
            error: sent.err().map(|err| err.to_string()),
        }
    })
}

/// Sends FIN and waits for the client's, so that nothing unread turns the close into a reset.
fn finish(mut sock: TcpStream) {
    let _ = sock.shutdown(Shutdown::Write);
    let _ = io::copy(&mut sock, &mut io::sink());
}

/// Reads the client's first TLS record (its ClientHello) off `sock`, whole.
fn read_client_hello(sock: &mut TcpStream) -> io::Result<()> {
    let mut header = [0u8; 5];
    sock.read_exact(&mut header)?;
    let len = u64::from(u16::from_be_bytes([header[3], header[4]]));
    io::copy(&mut sock.take(len), &mut io::sink())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Clients

/// A client configuration trusting the test CA through a `--cacert` file (and the built-in
/// roots, as on a system with an empty store).
fn trusting(ca: &Identity) -> TlsConfig {
    let dir = TempDir::new("tls-ca");
    let path = dir.join("ca.pem");
    std::fs::write(&path, &ca.cert_pem).expect("write the CA file");
    let options = TlsOptions {
        cacert: Some(path),
        ..TlsOptions::default()
    };
    TlsConfig::with_system_roots(&options, Vec::new()).expect("a TLS configuration")
}

fn insecure() -> TlsConfig {
    let options = TlsOptions {
        insecure: true,
        ..TlsOptions::default()
    };
    TlsConfig::with_system_roots(&options, Vec::new()).expect("a TLS configuration")
}

fn connect(addr: SocketAddr, read_timeout: Duration) -> TcpStream {
    let sock = TcpStream::connect_timeout(&addr, STEP).expect("connect to the test server");
    sock.set_read_timeout(Some(read_timeout))
        .expect("read timeout");
    sock.set_write_timeout(Some(STEP)).expect("write timeout");
    sock
}

/// Connects to `addr` as `host` and runs the handshake.
fn handshake_with(
    addr: SocketAddr,
    host: &str,
    config: &TlsConfig,
) -> Result<TlsStream<TcpStream>, Error> {
    handshake(connect(addr, STEP), host, addr.port(), config)
}

/// The handshake's error against a server presenting `identity`, connecting as `host`.
fn failure(identity: &Identity, host: &str, config: &TlsConfig) -> Error {
    let (addr, _seen) = tls_server(
        "127.0.0.1:0",
        server_config(identity, BOTH),
        Vec::new(),
        End::CloseNotify,
    )
    .expect("start the server");
    match handshake_with(addr, host, config) {
        Ok(_) => panic!("the handshake with {host} succeeded"),
        Err(err) => err,
    }
}

/// Asserts that a message is plain words: no Rust type names, no Unix timestamps.
fn assert_plain(message: &str) {
    assert!(!message.contains("::"), "{message}");
    for word in message.split(|c: char| !c.is_ascii_alphanumeric()) {
        let camel = word
            .as_bytes()
            .windows(2)
            .any(|pair| pair[0].is_ascii_lowercase() && pair[1].is_ascii_uppercase());
        assert!(!camel, "a type name in: {message}");
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        assert!(digits < 9, "a timestamp in: {message}");
    }
    assert!(!message.contains('\n'), "{message}");
}

fn read_all(stream: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (got, Err(err)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Success

#[test]
fn handshake_succeeds_and_reports_what_was_negotiated() {
    let config = trusting(&pki().ca);
    let server = server_config(&pki().leaf, BOTH);
    let (addr, seen) = tls_server("127.0.0.1:0", server, b"hello".to_vec(), End::CloseNotify)
        .expect("start the server");
    let mut tls = handshake_with(addr, "localhost", &config).expect("handshake");
    let negotiated = tls.negotiated().clone();
    assert_eq!(negotiated.version, "TLSv1.3");
    assert!(
        negotiated.cipher_suite.starts_with("TLS13_"),
        "{negotiated:?}"
    );
    assert_eq!(negotiated.alpn.as_deref(), Some("http/1.1"));
    assert!(negotiated.key_exchange.is_some(), "{negotiated:?}");
    let line = negotiated.to_string();
    assert!(
        line.starts_with("TLSv1.3 TLS13_") && line.ends_with(" ALPN http/1.1"),
        "{line}"
    );
    let (body, end) = read_all(&mut tls);
    assert_eq!(body, b"hello");
    end.expect("a clean end after close_notify");
    drop(tls);
    let seen = seen.recv_timeout(STEP).expect("the server's report");
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.error, None);
}

#[test]
fn tls12_only_server_negotiates_tls12() {
    let config = trusting(&pki().ca);
    let server = server_config(&pki().leaf, TLS12_ONLY);
    let (addr, _seen) = tls_server("127.0.0.1:0", server, b"old".to_vec(), End::CloseNotify)
        .expect("start the server");
    let mut tls = handshake_with(addr, "localhost", &config).expect("handshake");
    assert_eq!(tls.negotiated().version, "TLSv1.2");
    assert!(
        tls.negotiated().cipher_suite.starts_with("TLS_ECDHE_"),
        "{:?}",
        tls.negotiated()
    );
    assert_eq!(read_all(&mut tls).0, b"old");
}

#[test]
fn ip_literals_are_verified_by_address_and_send_no_sni() {
    let config = trusting(&pki().ca);
    let server = server_config(&pki().leaf, BOTH);
    let (addr, seen) = tls_server("127.0.0.1:0", server, b"v4".to_vec(), End::CloseNotify)
        .expect("start the server");
    let mut tls = handshake_with(addr, "127.0.0.1", &config).expect("handshake by address");
    assert_eq!(read_all(&mut tls).0, b"v4");
    drop(tls);
    let seen = seen.recv_timeout(STEP).expect("the server's report");
    assert_eq!(seen.sni, None, "no SNI for an IP literal");
}

#[test]
fn ipv6_literals_work_with_and_without_brackets() {
    let config = trusting(&pki().ca);
    for host in ["::1", "[::1]"] {
        let server = server_config(&pki().leaf, BOTH);
        let Ok((addr, seen)) = tls_server("[::1]:0", server, b"v6".to_vec(), End::CloseNotify)
        else {
            assert!(std::env::var_os("CI").is_none(), "no IPv6 loopback on CI");
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let mut tls =
            handshake(connect(addr, STEP), host, addr.port(), &config).expect("handshake");
        assert_eq!(read_all(&mut tls).0, b"v6");
        drop(tls);
        assert_eq!(seen.recv_timeout(STEP).expect("report").sni, None);

        let server = server_config(&pki().wrong_name, BOTH);
        let (addr, _seen) =
            tls_server("[::1]:0", server, Vec::new(), End::CloseNotify).expect("start the server");
        let err = handshake(connect(addr, STEP), host, addr.port(), &config)
            .err()
            .expect("a wrong name");
        let message = err.to_string();
        let want = format!(
            "certificate of [::1]:{}: it is not valid for ::1, only",
            addr.port()
        );
        assert!(message.contains(&want), "{message}");
    }
}

// ---------------------------------------------------------------------------------------
// Certificates

#[test]
fn an_expired_certificate_says_on_which_day() {
    let err = failure(&pki().expired, "localhost", &trusting(&pki().ca));
    let message = err.to_string();
    assert_eq!(err.exit_kind(), Kind::Certificate);
    assert!(
        message.starts_with("cannot verify the certificate of localhost:"),
        "{message}"
    );
    assert!(
        message.contains(&format!("it expired on {}", pki::EXPIRED_ON)),
        "{message}"
    );
    assert!(message.contains("-k"), "{message}");
    assert_plain(&message);
}

#[test]
fn a_wrong_name_lists_the_names_the_certificate_is_valid_for() {
    for host in ["localhost", "127.0.0.1"] {
        let err = failure(&pki().wrong_name, host, &trusting(&pki().ca));
        let message = err.to_string();
        assert_eq!(err.exit_kind(), Kind::Certificate);
        let want = format!("it is not valid for {host}, only for {}", pki::WRONG_NAME);
        assert!(message.contains(&want), "{message}");
        assert!(message.contains(&format!("{host}:")), "{message}");
        assert_plain(&message);
    }
}

#[test]
fn an_unknown_ca_suggests_cacert_and_k() {
    let err = failure(&pki().unknown_ca, "localhost", &trusting(&pki().ca));
    let message = err.to_string();
    assert_eq!(err.exit_kind(), Kind::Certificate);
    assert!(message.contains("issued by an unknown CA"), "{message}");
    assert!(
        message.contains("--cacert FILE") && message.contains("-k"),
        "{message}"
    );
    assert_plain(&message);
}

#[test]
fn a_self_signed_certificate_is_named_as_such_and_trusted_through_cacert() {
    let err = failure(&pki().self_signed, "localhost", &trusting(&pki().ca));
    let message = err.to_string();
    assert_eq!(err.exit_kind(), Kind::Certificate);
    assert!(message.contains("it is self-signed"), "{message}");
    assert!(
        message.contains("--cacert FILE") && message.contains("-k"),
        "{message}"
    );
    assert_plain(&message);

    let server = server_config(&pki().self_signed, BOTH);
    let (addr, _seen) = tls_server("127.0.0.1:0", server, b"mine".to_vec(), End::CloseNotify)
        .expect("start the server");
    let mut tls = handshake_with(addr, "localhost", &trusting(&pki().self_signed))
        .expect("a self-signed certificate given to --cacert is trusted");
    assert_eq!(read_all(&mut tls).0, b"mine");
}

#[test]
fn a_ca_certificate_as_server_certificate_is_refused_even_when_trusted() {
    let untrusted = trusting(&pki().ca);
    let trusted = trusting(&pki().self_signed_ca);
    for config in [&untrusted, &trusted] {
        let err = failure(&pki().self_signed_ca, "localhost", config);
        let message = err.to_string();
        assert_eq!(err.exit_kind(), Kind::Certificate);
        assert!(
            message.contains("a self-signed CA certificate (CA:TRUE)"),
            "{message}"
        );
        assert!(
            message.contains("even when trusted with --cacert"),
            "{message}"
        );
        assert!(message.contains("-k"), "{message}");
        assert_plain(&message);
    }
}

#[test]
fn insecure_accepts_every_certificate_problem() {
    let config = insecure();
    assert!(config.is_insecure());
    let pki = pki();
    let bad = [
        &pki.expired,
        &pki.wrong_name,
        &pki.unknown_ca,
        &pki.self_signed,
        &pki.self_signed_ca,
    ];
    for identity in bad {
        let server = server_config(identity, BOTH);
        let (addr, _seen) = tls_server("127.0.0.1:0", server, b"anyway".to_vec(), End::CloseNotify)
            .expect("start the server");
        let mut tls = handshake_with(addr, "localhost", &config).expect("-k accepts it");
        assert_eq!(read_all(&mut tls).0, b"anyway");
    }
}

#[test]
fn insecure_still_checks_the_handshake_signature() {
    use rustls::server::ResolvesServerCert;
    use rustls::sign::CertifiedKey;

    /// Presents the good leaf but signs with another certificate's key.
    #[derive(Debug)]
    struct Impostor(Arc<CertifiedKey>);
    impl ResolvesServerCert for Impostor {
        fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let wrong_key = provider
        .key_provider
        .load_private_key(pki().self_signed.key())
        .expect("load a key");
    let impostor = Impostor(Arc::new(CertifiedKey::new(pki().leaf.chain(), wrong_key)));
    for versions in [BOTH, TLS12_ONLY] {
        let config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Impostor(Arc::clone(&impostor.0))));
        let (addr, _seen) = tls_server(
            "127.0.0.1:0",
            Arc::new(config),
            Vec::new(),
            End::CloseNotify,
        )
        .expect("start the server");
        let err = match handshake_with(addr, "localhost", &insecure()) {
            Ok(_) => panic!("-k accepted a handshake signed with the wrong key"),
            Err(err) => err,
        };
        let message = err.to_string();
        assert!(message.contains("a signature does not verify"), "{message}");
        assert!(!message.contains("-k"), "-k cannot help here: {message}");
        assert_plain(&message);
    }
}

// ---------------------------------------------------------------------------------------
// Handshakes that fail

#[test]
fn a_close_during_the_handshake_is_a_handshake_error() {
    let (addr, _done) = spawn_server("127.0.0.1:0", |mut sock| {
        let _ = read_client_hello(&mut sock);
        finish(sock);
    })
    .expect("start the server");
    let err = handshake_with(addr, "localhost", &trusting(&pki().ca))
        .err()
        .expect("an error");
    assert_eq!(err.exit_kind(), Kind::Handshake);
    let message = err.to_string();
    let want = format!(
        "cannot complete the TLS handshake with localhost:{}: the server closed the connection",
        addr.port()
    );
    assert_eq!(message, want);
}

#[test]
fn a_plain_http_server_is_told_apart() {
    let (addr, _done) = spawn_server("127.0.0.1:0", |mut sock| {
        let _ = read_client_hello(&mut sock);
        let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        finish(sock);
    })
    .expect("start the server");
    let err = handshake_with(addr, "127.0.0.1", &trusting(&pki().ca))
        .err()
        .expect("an error");
    assert_eq!(err.exit_kind(), Kind::Handshake);
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}", addr.port())),
        "{message}"
    );
    assert!(
        message.contains("the server may not speak TLS"),
        "{message}"
    );
    assert!(
        message.contains("it begins \"HTTP/1.1 400 Bad Request\""),
        "{message}"
    );
    assert_plain(&message);
}

#[test]
fn a_stalled_handshake_times_out() {
    let (addr, done) = spawn_server("127.0.0.1:0", |mut sock| {
        let _ = read_client_hello(&mut sock);
        // Say nothing until the client has given up and closed.
        let _ = io::copy(&mut sock, &mut io::sink());
    })
    .expect("start the server");
    let started = Instant::now();
    let result = handshake(
        connect(addr, Duration::from_millis(300)),
        "localhost",
        addr.port(),
        &trusting(&pki().ca),
    );
    let elapsed = started.elapsed();
    let err = result.err().expect("an error");
    assert_eq!(err.exit_kind(), Kind::Timeout);
    assert_eq!(
        err.to_string(),
        format!(
            "cannot complete the TLS handshake with localhost:{}: timed out",
            addr.port()
        )
    );
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < STEP, "{elapsed:?}");
    done.recv_timeout(STEP)
        .expect("the server saw the client go");
}

#[test]
fn a_reset_during_the_handshake_is_a_handshake_error() {
    let (addr, _done) = spawn_server("127.0.0.1:0", |sock| {
        // A zero linger turns the close into a reset (RST), with the ClientHello unread.
        let sock = socket2::Socket::from(sock);
        let _ = sock.set_linger(Some(Duration::ZERO));
        let mut byte = [0u8; 1];
        let _ = (&sock).read(&mut byte);
    })
    .expect("start the server");
    let err = handshake_with(addr, "localhost", &trusting(&pki().ca))
        .err()
        .expect("an error");
    assert_eq!(err.exit_kind(), Kind::Handshake);
    let message = err.to_string();
    assert!(message.ends_with("connection reset by peer"), "{message}");
}

#[test]
fn a_host_that_is_no_name_is_refused_before_any_byte() {
    let (addr, _done) = spawn_server("127.0.0.1:0", finish).expect("start the server");
    let err = handshake_with(addr, "bad host", &trusting(&pki().ca))
        .err()
        .expect("an error");
    assert_eq!(err.exit_kind(), Kind::Handshake);
    assert!(
        err.to_string()
            .contains("\"bad host\" is neither a host name nor an IP address"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// The end of a stream

#[test]
fn close_notify_ends_the_stream_cleanly() {
    let server = server_config(&pki().leaf, BOTH);
    let (addr, _seen) = tls_server(
        "127.0.0.1:0",
        server,
        b"all of it".to_vec(),
        End::CloseNotify,
    )
    .expect("start the server");
    let mut tls = handshake_with(addr, "localhost", &trusting(&pki().ca)).expect("handshake");
    let (body, end) = read_all(&mut tls);
    assert_eq!(body, b"all of it");
    end.expect("Ok(0) after close_notify");
}

#[test]
fn a_fin_without_close_notify_is_a_truncation() {
    for versions in [BOTH, TLS12_ONLY] {
        let server = server_config(&pki().leaf, versions);
        let (addr, _seen) = tls_server("127.0.0.1:0", server, b"part of it".to_vec(), End::BareFin)
            .expect("start the server");
        let mut tls = handshake_with(addr, "localhost", &trusting(&pki().ca)).expect("handshake");
        let (body, end) = read_all(&mut tls);
        assert_eq!(body, b"part of it", "what arrived is still delivered");
        let err = end.expect_err("an error instead of a clean end");
        assert!(is_truncation(&err), "{err:?}");
        assert_eq!(
            describe(&err),
            "the server closed the connection without a TLS close_notify"
        );
    }
}

#[test]
fn other_stream_errors_are_not_truncations() {
    assert!(!is_truncation(&io::ErrorKind::ConnectionReset.into()));
    assert!(!is_truncation(&io::ErrorKind::WouldBlock.into()));
    assert_eq!(describe(&io::ErrorKind::TimedOut.into()), "timed out");
    let alert = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac),
    );
    assert_eq!(
        describe(&alert),
        "the server sent the alert \"bad record mac\""
    );
}

#[test]
fn the_close_notify_we_send_reaches_the_server() {
    let server = server_config(&pki().leaf, BOTH);
    let (addr, rx) = spawn_server("127.0.0.1:0", move |mut sock| {
        let mut conn = ServerConnection::new(server).expect("a server connection");
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut got = Vec::new();
        tls.read_to_end(&mut got)
            .map(|_| got)
            .map_err(|err| err.kind())
    })
    .expect("start the server");
    let mut tls = handshake_with(addr, "localhost", &trusting(&pki().ca)).expect("handshake");
    tls.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    tls.close_notify().expect("close_notify");
    let got = rx.recv_timeout(STEP).expect("the server's report");
    assert_eq!(
        got,
        Ok(b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        "a clean end on the server's side"
    );
}

// ---------------------------------------------------------------------------------------
// The receive cap below TLS

#[test]
fn a_capped_socket_under_tls_never_receives_more_than_the_cap() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let server = server_config(&pki().leaf, BOTH);
    let (addr, _seen) = tls_server("127.0.0.1:0", server, body.clone(), End::CloseNotify)
        .expect("start the server");
    let counting = Counting::new(connect(addr, STEP));
    let counts = Arc::clone(&counting.counts);
    let capped = Capped::new(counting, 1024);
    let mut tls: TlsStream<Capped<Counting<TcpStream>>> =
        handshake(capped, "localhost", addr.port(), &trusting(&pki().ca)).expect("handshake");
    let (got, end) = read_all(&mut tls);
    end.expect("a clean end");
    assert!(
        got == body,
        "the body arrived changed ({} bytes)",
        got.len()
    );
    let largest = counts.largest_read.load(Ordering::Relaxed);
    let reads = counts.reads.load(Ordering::Relaxed);
    assert_eq!(largest, 1024, "the largest receive asked for");
    assert!(reads >= 200_000 / 1024, "{reads} receives");
    assert_eq!(
        counts.writes.load(Ordering::Relaxed),
        0,
        "every send is vectored"
    );
    assert!(counts.vectored_writes.load(Ordering::Relaxed) >= 1);
}

// ---------------------------------------------------------------------------------------
// --cacert

#[test]
fn cacert_problems_are_exit_77_and_name_the_file() {
    let dir = TempDir::new("tls-cacert");
    let missing = dir.join("missing.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let key_only = dir.join("key.pem");
    std::fs::write(&key_only, &pki().leaf.key_pem).expect("write");
    let der = dir.join("ca.der");
    std::fs::write(&der, pki().ca.cert_der.as_ref()).expect("write");
    let bad_base64 = dir.join("bad64.pem");
    std::fs::write(
        &bad_base64,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let not_a_cert = dir.join("notcert.pem");
    std::fs::write(
        &not_a_cert,
        "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let unterminated = dir.join("open.pem");
    std::fs::write(&unterminated, "-----BEGIN CERTIFICATE-----\nAAECAwQF\n").expect("write");
    let table = [
        (&missing, "no such file or directory"),
        (&garbage, "it holds no PEM certificate"),
        (&key_only, "it holds no PEM certificate"),
        (&der, "it holds no PEM certificate"),
        (
            &bad_base64,
            "it is not valid PEM: a section is not valid base64",
        ),
        (
            &not_a_cert,
            "certificate 1 in it cannot be trusted: it is malformed",
        ),
        (
            &unterminated,
            "it is not valid PEM: a section has no END line",
        ),
        (&dir.path().to_path_buf(), "is a directory"),
    ];
    for (path, want) in table {
        let options = TlsOptions {
            cacert: Some(path.clone()),
            ..TlsOptions::default()
        };
        let err = TlsConfig::with_system_roots(&options, Vec::new()).expect_err("a bad --cacert");
        assert_eq!(err.exit_kind(), Kind::CaFile);
        let message = err.to_string();
        let head = format!("cannot use the --cacert file {}: ", path.display());
        assert!(message.starts_with(&head), "{message}");
        assert!(message.contains(want), "{message}");
        assert_plain(&message);
    }
}

#[test]
fn a_huge_cacert_file_is_refused_without_reading_it_all() {
    let dir = TempDir::new("tls-huge");
    let path = dir.join("huge.pem");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(MAX_CA_FILE + 1).expect("a sparse file");
    let err = read_ca_file(&path).expect_err("too large");
    assert_eq!(err.exit_kind(), Kind::CaFile);
    assert!(
        err.to_string().ends_with("it is larger than 8 MiB"),
        "{err}"
    );
}

#[test]
fn cacert_adds_every_certificate_and_skips_other_sections() {
    let dir = TempDir::new("tls-bundle");
    let path = dir.join("bundle.pem");
    let bundle = format!(
        "{}{}{}",
        pki().leaf.key_pem,
        pki().ca.cert_pem,
        pki().self_signed.cert_pem
    );
    std::fs::write(&path, bundle).expect("write");
    let options = TlsOptions {
        cacert: Some(path),
        ..TlsOptions::default()
    };
    let config = TlsConfig::with_system_roots(&options, Vec::new()).expect("config");
    assert_eq!(config.cacert_certificates(), 2);
}

#[test]
fn insecure_does_not_read_cacert() {
    let dir = TempDir::new("tls-insecure");
    let options = TlsOptions {
        cacert: Some(dir.join("missing.pem")),
        insecure: true,
        keylog: None,
    };
    let config = TlsConfig::with_system_roots(&options, Vec::new()).expect("config");
    assert_eq!(config.trust_store(), TrustStore::Unchecked);
}

// ---------------------------------------------------------------------------------------
// Trust stores

#[test]
fn an_empty_system_store_falls_back_to_the_built_in_roots() {
    let config = TlsConfig::with_system_roots(&TlsOptions::default(), Vec::new()).expect("config");
    match config.trust_store() {
        TrustStore::BuiltIn(count) => assert!(count > 100, "{count} built-in roots"),
        other => panic!("{other:?}"),
    }
    let err = failure(&pki().leaf, "localhost", &config);
    assert!(err.to_string().contains("issued by an unknown CA"), "{err}");
}

#[test]
fn system_roots_are_used_when_there_are_some() {
    let system = vec![pki().ca.cert_der.clone()];
    let config = TlsConfig::with_system_roots(&TlsOptions::default(), system).expect("config");
    assert_eq!(config.trust_store(), TrustStore::System(1));
    let server = server_config(&pki().leaf, BOTH);
    let (addr, _seen) = tls_server("127.0.0.1:0", server, b"ok".to_vec(), End::CloseNotify)
        .expect("start the server");
    let mut tls =
        handshake_with(addr, "localhost", &config).expect("trusted through the system store");
    assert_eq!(read_all(&mut tls).0, b"ok");
}

// ---------------------------------------------------------------------------------------
// Tests that need their own environment run in a child process: environment variables are
// shared by every thread of this one.

/// Set in a child process to the case it is to run.
const CHILD: &str = "SOCKDEMO_TLS_TEST_CHILD";

/// Runs the ignored test `name` of this module in a child process with `env` added.
fn run_child(name: &str, case: &str, env: &[(&str, OsString)]) {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let test = format!("{module}::{name}");
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        test.as_str(),
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, case)
    .env_remove("SSLKEYLOGFILE")
    .env_remove("RUST_LOG");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child test");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(STEP * 3) {
        Ok(output) => output.expect("wait for the child test"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("the child test {test} ({case}) did not finish in time");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} ({case}):\n{stdout}\n{stderr}"
    );
}

#[test]
fn the_system_store_honours_ssl_cert_file_and_dir() {
    let dir = TempDir::new("tls-store");
    let ca = dir.join("ca.pem");
    let empty_file = dir.join("empty.pem");
    std::fs::write(&empty_file, "").expect("write");
    let empty_dir = dir.join("certs");
    std::fs::create_dir(&empty_dir).expect("mkdir");
    let cert_dir = [("SSL_CERT_DIR", empty_dir.into_os_string())];
    // The child makes a PKI of its own: it writes its CA where SSL_CERT_FILE points.
    let trusted = [("SSL_CERT_FILE", ca.into_os_string()), cert_dir[0].clone()];
    run_child("system_store_child", "trusted", &trusted);
    let empty = [
        ("SSL_CERT_FILE", empty_file.into_os_string()),
        cert_dir[0].clone(),
    ];
    run_child("system_store_child", "empty", &empty);
}

#[test]
#[ignore = "run by the_system_store_honours_ssl_cert_file_and_dir, in its own environment"]
fn system_store_child() {
    let Some(case) = std::env::var_os(CHILD) else {
        return;
    };
    if case == "trusted" {
        let path = std::env::var_os("SSL_CERT_FILE").expect("SSL_CERT_FILE is set");
        std::fs::write(path, &pki().ca.cert_pem).expect("write the CA file");
    }
    let config = TlsConfig::new(&TlsOptions::default()).expect("config");
    let server = server_config(&pki().leaf, BOTH);
    let (addr, _seen) = tls_server("127.0.0.1:0", server, b"ok".to_vec(), End::CloseNotify)
        .expect("start the server");
    let result = handshake_with(addr, "localhost", &config);
    if case == "trusted" {
        assert_eq!(config.trust_store(), TrustStore::System(1));
        result.expect("trusted through SSL_CERT_FILE");
    } else {
        assert!(
            matches!(config.trust_store(), TrustStore::BuiltIn(_)),
            "{config:?}"
        );
        let err = result.err().expect("not trusted");
        assert!(err.to_string().contains("issued by an unknown CA"), "{err}");
    }
}

#[test]
fn the_key_log_gets_a_line_per_connection() {
    for (versions, label) in [
        (BOTH, "CLIENT_TRAFFIC_SECRET_0 "),
        (TLS12_ONLY, "CLIENT_RANDOM "),
    ] {
        let dir = TempDir::new("tls-keylog");
        let path = dir.join("keys.log");
        let options = TlsOptions {
            keylog: Some(path.clone()),
            ..TlsOptions::default()
        };
        let config = TlsConfig::with_system_roots(&options, vec![pki().ca.cert_der.clone()])
            .expect("config");
        for _ in 0..2 {
            let server = server_config(&pki().leaf, versions);
            let (addr, _seen) = tls_server("127.0.0.1:0", server, b"k".to_vec(), End::CloseNotify)
                .expect("start the server");
            let mut tls = handshake_with(addr, "localhost", &config).expect("handshake");
            assert_eq!(read_all(&mut tls).0, b"k");
        }
        let log = std::fs::read_to_string(&path).expect("the key log was written");
        let lines = log.lines().filter(|line| line.starts_with(label)).count();
        assert_eq!(lines, 2, "two connections, two {label}lines:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------
// The certificate parser

#[test]
fn self_issued_certificates_are_recognised() {
    let pki = pki();
    assert!(verify::is_self_issued(&pki.self_signed.cert_der));
    assert!(verify::is_self_issued(&pki.self_signed_ca.cert_der));
    assert!(verify::is_self_issued(&pki.ca.cert_der));
    assert!(!verify::is_self_issued(&pki.leaf.cert_der));
    assert!(!verify::is_self_issued(&pki.unknown_ca.cert_der));
}

#[test]
fn any_cut_or_corrupted_certificate_is_simply_not_self_issued() {
    let der: &[u8] = &pki().self_signed.cert_der;
    for len in 0..der.len() {
        let _ = verify::is_self_issued(&der[..len]);
    }
    let mut rng = crate::testing::Rng::new(10);
    for _ in 0..2000 {
        let mut bytes = der.to_vec();
        let at = rng.below(bytes.len());
        bytes[at] = rng.next_u64() as u8;
        let _ = verify::is_self_issued(&bytes);
    }
    assert!(!verify::is_self_issued(b"\x30\x84\xff\xff\xff\xff"));
    assert!(!verify::is_self_issued(b"\x30\x80"));
}

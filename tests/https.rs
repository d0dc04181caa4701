//! `sockdemo fetch` over TLS, end to end: the real binary against real TLS servers on
//! loopback port 0. nginx and python3's `ssl` module are peers nobody here wrote; a scripted
//! rustls server does what they will not (end without `close_notify`, close or stall in the
//! middle of a handshake). The certificates come from a test PKI made at test time, and
//! every run sets its own `SSL_CERT_FILE` and `SSL_CERT_DIR` so that no certificate of this
//! machine changes a verdict. Every run is bounded by `common::STEP`.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{mpsc, OnceLock};
use std::time::Instant;

use crate::common::http_peer::{holds_noise, ok, Noise, Peer, PythonServer, Reply, TempDir};
use crate::common::nginx::{self, Nginx};
use crate::common::pki::{Pki, EXPIRED_ON, WRONG_NAME};
use crate::common::tls_peer::{End, PythonTls, Script, TlsPeer};
use crate::common::{self, run, sockdemo, stderr, stdout, succeeded, STEP};

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::generate)
}

/// What the "system" trust store of a run holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// The test CA (through `SSL_CERT_FILE`).
    TestCa,
    /// Nothing (an empty `SSL_CERT_FILE`): only `--cacert` or `-k` lets a test server in.
    Nothing,
}

/// The files of one test: the PKI's PEM files and a `www` directory to serve, and an empty
/// directory each fetch runs in (what it leaves there is checked).
struct Files {
    pki: TempDir,
    work: TempDir,
}

impl Files {
    fn new(label: &str) -> Files {
        let files = Files {
            pki: TempDir::new(&format!("{label}-pki")),
            work: TempDir::new(label),
        };
        pki().write_to(files.pki.path()).expect("write the PKI");
        fs::write(files.pki.join("empty.pem"), "").expect("write an empty store");
        fs::create_dir(files.pki.join("certs")).expect("an empty certificate directory");
        fs::create_dir(files.www()).expect("mkdir www");
        fs::write(files.www().join("index.html"), "hello over tls\n").expect("write a page");
        files
    }

    fn www(&self) -> PathBuf {
        self.pki.join("www")
    }

    /// `NAME.pem` of the PKI (`ca`, `leaf`, `expired`, ...).
    fn pem(&self, name: &str) -> PathBuf {
        self.pki.join(&format!("{name}.pem"))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.pki.join(&format!("{name}.key"))
    }

    /// python3's TLS server on 127.0.0.1 presenting the PKI's identity `name`.
    fn python(&self, name: &str, extra: &[&str]) -> PythonTls {
        PythonTls::start(
            "127.0.0.1",
            &self.www(),
            &self.pem(name),
            &self.key(name),
            extra,
        )
    }

    /// `sockdemo fetch ARGS...` in the work directory, with `trust` as its system store.
    fn fetch(&self, trust: Trust, args: &[&str]) -> Output {
        self.fetch_with(trust, &[], args)
    }

    fn fetch_with(&self, trust: Trust, env: &[(&str, &Path)], args: &[&str]) -> Output {
        let store = match trust {
            Trust::TestCa => self.pem("ca"),
            Trust::Nothing => self.pki.join("empty.pem"),
        };
        let mut cmd = sockdemo(["fetch"]);
        cmd.args(args)
            .current_dir(self.work.path())
            .env("SSL_CERT_FILE", store)
            .env("SSL_CERT_DIR", self.pki.join("certs"))
            .env_remove("SSLKEYLOGFILE");
        for (name, value) in env {
            cmd.env(name, value);
        }
        run(&mut cmd, STEP)
    }

    /// What the fetches left in the work directory.
    fn left(&self) -> Vec<String> {
        self.work.names()
    }
}

/// Asserts exit `code` with one `error: ` line that names `peer` (`host:port`), and no
/// panic; returns that line.
#[track_caller]
fn failed_with(code: i32, peer: &str, output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    assert!(last.contains(peer), "the error names {peer}: {last}");
    last
}

/// Asserts that a message speaks words, not Rust type names or Unix timestamps.
#[track_caller]
fn assert_plain(message: &str) {
    for raw in [
        "Error", "Context", "DnsName", "UnixTime", "(UNIX)", "docs.rs",
    ] {
        assert!(!message.contains(raw), "{raw} in {message}");
    }
    assert!(
        !message
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n.len() >= 9),
        "a timestamp in {message}"
    );
}

// ---------------------------------------------------------------------------------------
// nginx

/// A `server` block for nginx listening with TLS, presenting the test leaf, serving `www`.
fn nginx_server(files: &Files, extra: &str) -> String {
    format!(
        "server {{
        listen {{LISTEN0}} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www};
        {extra}
    }}",
        cert = files.pem("leaf").display(),
        key = files.key("leaf").display(),
        www = files.www().display(),
    )
}

/// `https://HOST:PORT` followed by `path`, nginx's first listener.
fn nginx_url(nginx: &Nginx, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", nginx.addr(0).port())
}

#[test]
fn nginx_sends_8_mib_byte_exact_over_tls() {
    if !nginx::http_installed() {
        return;
    }
    let files = Files::new("nginx-8mib");
    const LEN: usize = 8 << 20;
    fs::write(files.www().join("big.bin"), Noise::bytes(41, LEN)).expect("write the body");
    // nginx 1.22 offers TLS 1.3 only when asked to (its default list ends at 1.2).
    let tls13 = "ssl_protocols TLSv1.2 TLSv1.3;";
    let nginx = Nginx::start_http(&["127.0.0.1:0"], &nginx_server(&files, tls13));
    let output = files.fetch(
        Trust::TestCa,
        &[
            "-v",
            &nginx_url(&nginx, "localhost", "/big.bin"),
            "-o",
            "big.bin",
        ],
    );
    succeeded(&output);
    assert!(
        stderr(&output).contains(": TLSv1.3 "),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains(&format!("Content-Length: {LEN}")));
    assert!(holds_noise(&files.work.join("big.bin"), 41, LEN as u64));
}

#[test]
fn nginx_chunked_response_is_saved_dechunked() {
    if !nginx::http_installed() {
        return;
    }
    let files = Files::new("nginx-chunked");
    let lines: String = (0..20_000).map(|n| format!("line {n}\n")).collect();
    let page =
        format!("{lines}<!--# set var=\"who\" value=\"nginx\" --><!--# echo var=\"who\" -->\n");
    fs::write(files.www().join("page.txt"), page).expect("write the page");
    // SSI rewrites the page as it goes: nginx cannot know its length and chunks it.
    let nginx = Nginx::start_http(
        &["127.0.0.1:0"],
        &nginx_server(&files, "ssi on; ssi_types *;"),
    );
    let output = files.fetch(
        Trust::TestCa,
        &[&nginx_url(&nginx, "localhost", "/page.txt")],
    );
    succeeded(&output);
    assert!(
        stdout(&output).contains("Transfer-Encoding: chunked"),
        "{}",
        stdout(&output)
    );
    let saved = fs::read_to_string(files.work.join("page.txt")).expect("the page was saved");
    let want = format!("{lines}nginx\n");
    assert!(
        saved == want,
        "{} bytes saved, {} expected",
        saved.len(),
        want.len()
    );
}

#[test]
fn nginx_speaking_only_tls_1_2_is_understood_and_keyed() {
    if !nginx::http_installed() {
        return;
    }
    let files = Files::new("nginx-tls12");
    let nginx = Nginx::start_http(
        &["127.0.0.1:0"],
        &nginx_server(&files, "ssl_protocols TLSv1.2;"),
    );
    let keys = files.pki.join("keys.log");
    let output = files.fetch_with(
        Trust::TestCa,
        &[("SSLKEYLOGFILE", &keys)],
        &["-v", &nginx_url(&nginx, "127.0.0.1", "/index.html")],
    );
    succeeded(&output);
    assert!(
        stderr(&output).contains("TLSv1.2"),
        "the debug log names the version: {}",
        stderr(&output)
    );
    let saved = fs::read_to_string(files.work.join("index.html")).expect("saved");
    assert_eq!(saved, "hello over tls\n");
    let log = fs::read_to_string(&keys).expect("the key log");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.starts_with("CLIENT_RANDOM "), "{log}");
}

#[test]
fn http_given_to_nginx_tls_port_is_what_its_reply_says() {
    if !nginx::http_installed() {
        return;
    }
    let files = Files::new("nginx-plain");
    let nginx = Nginx::start_http(&["127.0.0.1:0"], &nginx_server(&files, ""));
    // nginx answers plain HTTP on a TLS port with a plain 400 of its own: that is a
    // response, saved like any other (and a failure with -f).
    let url = format!("http://{}/", nginx.addr(0));
    let output = files.fetch(Trust::TestCa, &[&url, "-o", "reply.html"]);
    succeeded(&output);
    assert!(stdout(&output).starts_with("HTTP/1.1 400 Bad Request\r\n"));
    let reply = fs::read_to_string(files.work.join("reply.html")).expect("saved");
    assert!(
        reply.contains("plain HTTP request was sent to HTTPS port"),
        "{reply}"
    );
}

// ---------------------------------------------------------------------------------------
// python3's ssl module: names, certificates, trust

#[test]
fn python_sees_sni_for_a_name_and_none_for_an_ip_literal() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("sni");
    let mut server = files.python("leaf", &[]);
    succeeded(&files.fetch(Trust::TestCa, &[&server.url("localhost", "/"), "-o", "-"]));
    assert_eq!(server.wait_for("SNI "), "SNI localhost");
    let (_, headers) = server.request();
    let host = format!("Host: localhost:{}", server.port);
    assert!(headers.contains(&host), "{headers:?}");
    succeeded(&files.fetch(Trust::TestCa, &[&server.url("127.0.0.1", "/"), "-o", "-"]));
    assert_eq!(server.wait_for("SNI "), "SNI -");
    if TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback here
    }
    let mut six = PythonTls::start(
        "::1",
        &files.www(),
        &files.pem("leaf"),
        &files.key("leaf"),
        &[],
    );
    let url = format!("https://[::1]:{}/", six.port);
    let output = files.fetch(Trust::TestCa, &[&url, "-o", "-"]);
    succeeded(&output);
    assert_eq!(stdout(&output), "hello over tls\n");
    assert_eq!(six.wait_for("SNI "), "SNI -");
    let (_, headers) = six.request();
    let host = format!("Host: [::1]:{}", six.port);
    assert!(headers.contains(&host), "{headers:?}");
}

#[test]
fn the_trace_shows_ciphertext_in_receives_no_larger_than_recv_size_and_the_plaintext_apart() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("trace");
    let page = "hello over tls, line after line\n".repeat(4000);
    fs::write(files.www().join("page.txt"), &page).expect("write the page");
    let server = files.python("leaf", &[]);
    let url = server.url("localhost", "/page.txt");
    let output = files.fetch(
        Trust::TestCa,
        &["--trace", "--trace-bytes", "0", &url, "--recv-size", "1024"],
    );
    succeeded(&output);
    let trace = stderr(&output);
    let handshake = trace
        .lines()
        .find(|line| line.starts_with("== TLS handshake "))
        .unwrap_or_else(|| panic!("no handshake line:\n{trace}"));
    assert!(
        handshake.contains(&format!(":{}: TLSv1.3 ", server.port)),
        "{handshake}"
    );
    assert!(handshake.ends_with("ALPN http/1.1"), "{handshake}");
    // Every receive on the socket, as the trace counts them: none over the cap, and
    // together more than the page (the records' headers and tags come on top).
    let receives: Vec<usize> = trace
        .lines()
        .filter_map(|line| line.strip_prefix("<= recv "))
        .filter_map(|rest| rest.strip_suffix(" bytes"))
        .map(|n| n.parse().expect("a byte count"))
        .collect();
    assert!(receives.iter().all(|&n| n <= 1024), "{receives:?}");
    assert!(receives.iter().sum::<usize>() > page.len(), "{receives:?}");
    // What crossed the socket is ciphertext; the decrypted bytes are traced as well, under
    // their own words, and add up to the whole response.
    let events = common::trace::events(&trace);
    let (sent, received) = common::trace::streams(&events);
    for wire in [&sent, &received] {
        assert!(
            !wire.windows(8).any(|w| w == b"over tls"),
            "the socket lines show ciphertext only"
        );
    }
    let plaintext: Vec<u8> = events
        .iter()
        .filter(|e| e.marker.starts_with("<= tls recv "))
        .flat_map(|e| e.bytes.clone())
        .collect();
    assert!(plaintext.starts_with(b"HTTP/1."), "{plaintext:?}");
    assert!(
        plaintext.ends_with(page.as_bytes()),
        "the decrypted bytes end with the page"
    );
    let request: Vec<u8> = events
        .iter()
        .filter(|e| e.marker.starts_with("=> tls send "))
        .flat_map(|e| e.bytes.clone())
        .collect();
    assert!(
        request.starts_with(b"GET /page.txt HTTP/1.1\r\n"),
        "{request:?}"
    );
    let saved = fs::read_to_string(files.work.join("page.txt")).expect("saved");
    assert!(saved == page, "{} bytes saved", saved.len());
}

#[test]
fn trust_comes_from_ssl_cert_file_or_from_cacert() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("trust");
    let server = files.python("leaf", &[]);
    let url = server.url("localhost", "/index.html");
    let output = files.fetch(Trust::TestCa, &[&url, "-o", "system"]);
    succeeded(&output);
    let ca = files.pem("ca");
    let ca = ca.to_str().expect("a UTF-8 path");
    succeeded(&files.fetch(Trust::Nothing, &[&url, "--cacert", ca, "-o", "cacert"]));
    let peer = format!("localhost:{}", server.port);
    let refused = files.fetch(Trust::Nothing, &[&url, "-o", "none"]);
    let error = failed_with(60, &peer, &refused);
    assert!(error.contains("issued by an unknown CA"), "{error}");
    let mut left = files.left();
    left.sort();
    assert_eq!(left, ["cacert", "system"]);
    for name in left {
        let saved = fs::read_to_string(files.work.join(&name)).expect("saved");
        assert_eq!(saved, "hello over tls\n");
    }
}

/// The error of fetching from python presenting identity `name`, trusting the test CA.
fn verdict(files: &Files, name: &str, args: &[&str]) -> (String, String) {
    let server = files.python(name, &[]);
    let url = server.url("localhost", "/index.html");
    let mut all = vec![url.as_str()];
    all.extend_from_slice(args);
    let peer = format!("localhost:{}", server.port);
    let error = failed_with(60, &peer, &files.fetch(Trust::TestCa, &all));
    assert_plain(&error);
    assert!(files.left().is_empty(), "{:?}", files.left());
    (error, peer)
}

#[test]
fn an_expired_certificate_is_60_with_its_last_day() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("expired");
    let (error, peer) = verdict(&files, "expired", &[]);
    assert_eq!(
        error,
        format!(
            "error: cannot verify the certificate of {peer}: it expired on {EXPIRED_ON}; \
             -k skips verification (insecure)"
        )
    );
}

#[test]
fn a_certificate_for_another_name_is_60_naming_both() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("wrong-name");
    let (error, _) = verdict(&files, "wrong_name", &[]);
    assert!(
        error.contains(&format!(
            "it is not valid for localhost, only for {WRONG_NAME}"
        )),
        "{error}"
    );
}

#[test]
fn a_certificate_from_an_unknown_ca_is_60_and_says_how_to_trust_it() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("unknown-ca");
    let (error, _) = verdict(&files, "unknown_ca", &[]);
    assert!(
        error.contains("it is issued by an unknown CA; trust that CA with --cacert FILE, or -k"),
        "{error}"
    );
}

#[test]
fn a_self_signed_certificate_is_60_unless_given_with_cacert() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("self-signed");
    let (error, _) = verdict(&files, "self_signed", &[]);
    assert!(
        error.contains("it is self-signed; trust it with --cacert FILE"),
        "{error}"
    );
    let server = files.python("self_signed", &[]);
    let cert = files.pem("self_signed");
    let url = server.url("localhost", "/index.html");
    let output = files.fetch(
        Trust::TestCa,
        &[&url, "--cacert", cert.to_str().expect("UTF-8")],
    );
    succeeded(&output);
    assert_eq!(files.left(), ["index.html"]);
}

#[test]
fn a_self_signed_ca_certificate_is_60_even_with_cacert() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("self-signed-ca");
    let cert = files.pem("self_signed_ca");
    let (error, _) = verdict(
        &files,
        "self_signed_ca",
        &["--cacert", cert.to_str().expect("UTF-8")],
    );
    assert!(
        error.contains("(CA:TRUE) used as the server's certificate, which rustls rejects even when trusted with --cacert"),
        "{error}"
    );
}

#[test]
fn insecure_accepts_any_certificate_and_warns_unless_quiet() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("insecure");
    for name in ["expired", "wrong_name", "unknown_ca", "self_signed_ca"] {
        let server = files.python(name, &[]);
        let url = server.url("localhost", "/index.html");
        let output = files.fetch(Trust::TestCa, &["-k", &url, "-o", name]);
        succeeded(&output);
        let warning = format!(
            "not verifying the certificate of localhost:{} (-k/--insecure)",
            server.port
        );
        assert!(stderr(&output).contains(&warning), "{}", stderr(&output));
        let quiet = files.fetch(Trust::TestCa, &["-q", "--insecure", &url, "-o", "-"]);
        succeeded(&quiet);
        assert!(
            !stderr(&quiet).contains("not verifying"),
            "{}",
            stderr(&quiet)
        );
        assert_eq!(stdout(&quiet), "hello over tls\n");
    }
    assert_eq!(files.left().len(), 4);
}

#[test]
fn a_missing_or_unreadable_cacert_is_77() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("cacert-77");
    let server = files.python("leaf", &[]);
    let url = server.url("localhost", "/");
    fs::write(files.pki.join("garbage.pem"), "not a certificate\n").expect("write");
    let broken = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    fs::write(files.pki.join("broken.pem"), broken).expect("write");
    let cases = [
        ("missing.pem", "no such file or directory"),
        ("garbage.pem", "it holds no PEM certificate"),
        ("broken.pem", "it is not valid PEM"),
    ];
    for (name, words) in cases {
        let path = files.pki.join(name);
        let path = path.to_str().expect("UTF-8");
        let output = files.fetch(Trust::TestCa, &[&url, "--cacert", path]);
        let error = failed_with(77, name, &output);
        assert!(
            error.contains(&format!("cannot use the --cacert file {path}: {words}")),
            "{error}"
        );
    }
    // http never needs it: curl does not read it there either.
    let plain = Peer::v4(vec![ok("plain")]);
    let output = files.fetch(
        Trust::TestCa,
        &[&plain.url("/p"), "--cacert", "missing.pem", "-o", "-"],
    );
    succeeded(&output);
    assert_eq!(stdout(&output), "plain");
    assert!(files.left().is_empty(), "{:?}", files.left());
}

#[test]
fn https_to_a_plain_http_server_is_35() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("https-to-plain");
    let server = PythonServer::start(&files.www());
    let url = format!("https://127.0.0.1:{}/index.html", server.port);
    let peer = format!("127.0.0.1:{}", server.port);
    let error = failed_with(35, &peer, &files.fetch(Trust::TestCa, &[&url]));
    // python takes the ClientHello for an HTTP/0.9 request and answers with a bare page.
    assert!(
        error.contains("the reply is not TLS (it begins \"<!DOCTYPE HTML>"),
        "{error}"
    );
    assert!(error.ends_with("the server may not speak TLS"), "{error}");
    assert!(files.left().is_empty());
}

#[test]
fn http_to_a_tls_port_keeps_its_exit_status_and_hints_at_https() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("http-to-tls");
    // python drops the connection: no byte comes back (52, or 56 when the request it
    // left unread turns the close into a reset).
    let server = files.python("leaf", &[]);
    let url = format!("http://localhost:{}/index.html", server.port);
    let output = files.fetch(Trust::TestCa, &[&url]);
    let code = output.status.code();
    assert!(
        matches!(code, Some(52 | 56)),
        "{code:?}: {}",
        stderr(&output)
    );
    let error = failed_with(code.unwrap_or(0), &format!(":{}", server.port), &output);
    let https = format!("https://localhost:{}/index.html", server.port);
    assert!(
        error.contains(&format!("(if the server speaks only TLS, try {https})")),
        "{error}"
    );
    // rustls answers with an alert, which is not HTTP (8) but plainly TLS.
    let peer = TlsPeer::start(&pki().leaf, vec![Script::Handshake]);
    let url = format!("http://127.0.0.1:{}/", peer.addr.port());
    let error = failed_with(
        8,
        &peer.addr.to_string(),
        &files.fetch(Trust::TestCa, &[&url]),
    );
    let https = format!("https://127.0.0.1:{}/", peer.addr.port());
    assert!(
        error.contains(&format!("(the server answered in TLS: try {https})")),
        "{error}"
    );
    assert!(files.left().is_empty());
}

#[test]
fn redirects_cross_between_http_and_https_and_credentials_stay_home() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("redirects");
    // The scripted peer's redirect needs python's port, and python's the peer's: the
    // peer's first reply waits for python's URL.
    let (tx, python_url) = mpsc::channel::<String>();
    let to_python = Reply::Custom(Box::new(move |stream| {
        let location = python_url.recv_timeout(STEP).expect("python's URL");
        let reply =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let _ = stream.write_all(reply.as_bytes());
    }));
    let plain = Peer::v4(vec![to_python, ok("back on http")]);
    let hop = format!("/hop={}", plain.url("/final"));
    let mut server = files.python("leaf", &["--redirect", &hop]);
    tx.send(server.url("localhost", "/hop"))
        .expect("send python's URL");
    let output = files.fetch(
        Trust::TestCa,
        &[
            "-L",
            &plain.url("/start"),
            "-H",
            "Authorization: Bearer secret",
            "-H",
            "Cookie: id=1",
            "-H",
            "X-Kept: yes",
            "-o",
            "-",
        ],
    );
    succeeded(&output);
    assert_eq!(stdout(&output), "back on http");
    let first = plain.request();
    assert!(first.starts_with("GET /start "), "{first}");
    assert!(
        first.contains("Authorization: Bearer secret\r\n"),
        "{first}"
    );
    let (path, headers) = server.request();
    assert_eq!(path, "/hop");
    assert!(headers.contains(&"X-Kept: yes".to_string()), "{headers:?}");
    for header in &headers {
        assert!(
            !header.starts_with("Authorization") && !header.starts_with("Cookie"),
            "https got the credentials: {headers:?}"
        );
    }
    // Back on TARGET's own scheme, host and port: the credentials are its, as in curl.
    let last = plain.request();
    assert!(last.starts_with("GET /final "), "{last}");
    assert!(last.contains("Cookie: id=1\r\n"), "{last}");
    assert!(files.left().is_empty());
}

#[test]
fn https_redirects_to_http_without_the_credentials() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("https-to-http");
    let plain = Peer::v4(vec![ok("on http now")]);
    let mut server = files.python(
        "leaf",
        &["--redirect", &format!("/start={}", plain.url("/landed"))],
    );
    let output = files.fetch(
        Trust::TestCa,
        &[
            "--location",
            &server.url("localhost", "/start"),
            "-H",
            "Authorization: Basic eDp5",
            "-o",
            "-",
        ],
    );
    succeeded(&output);
    assert_eq!(stdout(&output), "on http now");
    let (_, headers) = server.request();
    assert!(headers.contains(&"Authorization: Basic eDp5".to_string()));
    let request = plain.request();
    assert!(request.starts_with("GET /landed "), "{request}");
    assert!(!request.contains("Authorization"), "{request}");
}

#[test]
fn sslkeylogfile_gets_a_line_per_connection() {
    if !common::have("python3") {
        return;
    }
    let files = Files::new("keylog");
    let server = files.python("leaf", &["--redirect", "/a=/index.html"]);
    let keys = files.pki.join("keys.log");
    let output = files.fetch_with(
        Trust::TestCa,
        &[("SSLKEYLOGFILE", &keys)],
        &["-L", &server.url("localhost", "/a"), "-o", "-"],
    );
    succeeded(&output);
    assert_eq!(stdout(&output), "hello over tls\n");
    let log = fs::read_to_string(&keys).expect("the key log");
    let lines = log
        .lines()
        .filter(|line| line.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
        .count();
    assert_eq!(lines, 2, "two connections:\n{log}");
}

// ---------------------------------------------------------------------------------------
// A scripted rustls server: handshakes that fail, streams that end badly

#[test]
fn a_close_during_the_handshake_is_35() {
    let files = Files::new("close-in-handshake");
    let peer = TlsPeer::start(&pki().leaf, vec![Script::CloseInHandshake]);
    let url = peer.url("localhost", "/x");
    let peer_name = format!("localhost:{}", peer.addr.port());
    let error = failed_with(35, &peer_name, &files.fetch(Trust::TestCa, &[&url]));
    assert_eq!(
        error,
        format!(
            "error: cannot complete the TLS handshake with {peer_name}: the server closed \
             the connection"
        )
    );
    assert!(files.left().is_empty());
}

#[test]
fn a_stalled_handshake_is_28_within_timeout_or_max_time() {
    let files = Files::new("stall");
    for limit in ["--timeout", "--max-time"] {
        let peer = TlsPeer::start(&pki().leaf, vec![Script::Stall]);
        let url = peer.url("localhost", "/x");
        let peer_name = format!("localhost:{}", peer.addr.port());
        let started = Instant::now();
        let output = files.fetch(Trust::TestCa, &[limit, "500ms", &url]);
        let error = failed_with(28, &peer_name, &output);
        assert!(error.ends_with("timed out"), "{limit}: {error}");
        assert!(
            started.elapsed() < STEP / 2,
            "{limit}: {:?}",
            started.elapsed()
        );
        assert!(files.left().is_empty());
    }
}

/// A response with each framing, cut or whole, and how it ends.
fn framed(body: &str) -> Vec<(&'static str, String)> {
    let len = body.len();
    vec![
        (
            "length",
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}"),
        ),
        (
            "chunked",
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{len:x}\r\n{body}\r\n0\r\n\r\n"),
        ),
    ]
}

#[test]
fn a_cut_in_every_framing_is_18_and_leaves_no_file() {
    let files = Files::new("cut");
    let cut_length = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part";
    let cut_chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nonly part";
    let to_eof = "HTTP/1.1 200 OK\r\n\r\nno length, no close_notify";
    let cases = [
        (
            cut_length,
            End::CloseNotify,
            "the body ended after 9 of 100 bytes",
        ),
        (cut_length, End::BareFin, "without a TLS close_notify"),
        (cut_chunked, End::CloseNotify, "before its last chunk"),
        (cut_chunked, End::BareFin, "without a TLS close_notify"),
        (
            to_eof,
            End::BareFin,
            "without a TLS close_notify, so the body may be incomplete",
        ),
    ];
    for (reply, end, words) in cases {
        let peer = TlsPeer::start(
            &pki().leaf,
            vec![Script::Reply(reply.as_bytes().to_vec(), end)],
        );
        let url = peer.url("localhost", "/cut.bin");
        let output = files.fetch(Trust::TestCa, &[&url]);
        let error = failed_with(18, &peer.addr.to_string(), &output);
        assert!(error.contains(words), "{reply:?} {end:?}: {error}");
        assert_plain(&error);
        assert!(files.left().is_empty(), "{reply:?}: {:?}", files.left());
    }
}

#[test]
fn a_framed_body_ends_at_its_end_whatever_follows() {
    let files = Files::new("framed");
    for (framing, reply) in framed("whole body") {
        // No close_notify after the end, or no close at all: the body is complete, and
        // fetch neither reads on nor waits.
        for end in [End::BareFin, End::Hold] {
            let peer = TlsPeer::start(
                &pki().leaf,
                vec![Script::Reply(reply.as_bytes().to_vec(), end)],
            );
            let output = files.fetch(Trust::TestCa, &[&peer.url("localhost", "/f"), "-o", "-"]);
            succeeded(&output);
            assert_eq!(stdout(&output), "whole body", "{framing} {end:?}");
            assert!(peer.request().starts_with("GET /f HTTP/1.1\r\n"));
        }
    }
}

#[test]
fn a_body_to_eof_is_whole_only_with_close_notify() {
    let files = Files::new("to-eof");
    let reply = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
    let peer = TlsPeer::start(
        &pki().leaf,
        vec![Script::Reply(reply.as_bytes().to_vec(), End::CloseNotify)],
    );
    let output = files.fetch(Trust::TestCa, &[&peer.url("localhost", "/eof.txt")]);
    succeeded(&output);
    let saved = fs::read_to_string(files.work.join("eof.txt")).expect("saved");
    assert_eq!(saved, "until the end");
}

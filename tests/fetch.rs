//! `sockdemo fetch` end to end: the real binary, run in a fresh temporary directory, against
//! scripted peers on loopback port 0 (each case its own thread) and against
//! `python3 -m http.server`. Every run is bounded by `common::STEP`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::http_peer::{
    bytes, free_port, holds_noise, ok, redirect, Noise, Peer, PythonServer, Reply, TempDir,
};
use crate::common::{
    failed_with, fetch_in, require, sockdemo, stderr, stdout, succeeded, wait_for_part,
    wait_output, STEP,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The request the contract fixes, with `extra` lines before the blank one.
fn expected_request(path: &str, host: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sockdemo/{VERSION}\r\n\
         Connection: close\r\n{extra}\r\n"
    )
}

#[test]
fn content_length_body_is_saved_under_the_last_path_segment() {
    let dir = TempDir::new("content-length");
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\n";
    let peer = Peer::v4(vec![bytes(&format!("{head}helloEXTRA BYTES"))]);
    let output = fetch_in(dir.path(), &[&peer.url("/files/data.txt?x=1")]);
    succeeded(&output);
    assert_eq!(stdout(&output), head, "the header block as received");
    assert!(stderr(&output).contains("Saved 5 bytes to data.txt"));
    assert_eq!(dir.names(), ["data.txt"]);
    assert_eq!(fs::read(dir.join("data.txt")).unwrap(), b"hello");
    let host = format!("127.0.0.1:{}", peer.port());
    assert_eq!(
        peer.request(),
        expected_request("/files/data.txt?x=1", &host, "")
    );
}

#[test]
fn request_bytes_carry_extra_headers_and_percent_encoding_as_given() {
    let dir = TempDir::new("request-bytes");
    let peer = Peer::v4(vec![ok("a"), ok("b")]);
    let target = format!("127.0.0.1:{}/a%20b/c?d=%2F", peer.port());
    let args = [
        &target[..],
        "-H",
        "Accept: */*",
        "-H",
        "X-Token: a b",
        "-o",
        "out",
    ];
    succeeded(&fetch_in(dir.path(), &args));
    let host = format!("127.0.0.1:{}", peer.port());
    let extra = "Accept: */*\r\nX-Token: a b\r\n";
    assert_eq!(
        peer.request(),
        expected_request("/a%20b/c?d=%2F", &host, extra)
    );
    let args = [
        &target[..],
        "-H",
        "host: example.org",
        "-H",
        "User-Agent: test/1",
        "-o",
        "out",
    ];
    succeeded(&fetch_in(dir.path(), &args));
    let replaced = "GET /a%20b/c?d=%2F HTTP/1.1\r\nhost: example.org\r\nUser-Agent: test/1\r\n\
                    Connection: close\r\n\r\n";
    assert_eq!(peer.request(), replaced);
}

#[test]
fn chunked_body_with_extensions_and_trailers_is_dechunked() {
    let dir = TempDir::new("chunked");
    let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\n7 ; a=\"b\"\r\n, world\r\n0\r\nX-Sum: 9\r\n\r\nJUNK";
    let peer = Peer::v4(vec![bytes(response)]);
    succeeded(&fetch_in(dir.path(), &[&peer.url("/c.txt")]));
    assert_eq!(fs::read(dir.join("c.txt")).unwrap(), b"hello, world");
}

#[test]
fn a_body_without_length_ends_at_eof() {
    let dir = TempDir::new("eof");
    let peer = Peer::v4(vec![bytes(
        "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end\n",
    )]);
    let output = fetch_in(dir.path(), &[&peer.url("/")]);
    succeeded(&output);
    assert_eq!(
        fs::read(dir.join("index.html")).unwrap(),
        b"until the end\n"
    );
    assert!(stderr(&output).contains("Saved 14 bytes to index.html"));
}

#[test]
fn a_short_body_fails_and_leaves_no_file_and_no_change() {
    let dir = TempDir::new("short");
    let short = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    let peer = Peer::v4(vec![bytes(short), bytes(short)]);
    let error = failed_with(18, &fetch_in(dir.path(), &[&peer.url("/short.bin")]));
    let expected = format!(
        "error: bad response from {}: the body ended after 10 of 100 bytes",
        peer.addr
    );
    assert_eq!(error, expected);
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    fs::write(dir.join("keep"), b"old").unwrap();
    failed_with(
        18,
        &fetch_in(dir.path(), &[&peer.url("/short.bin"), "-o", "keep"]),
    );
    assert_eq!(dir.names(), ["keep"]);
    assert_eq!(fs::read(dir.join("keep")).unwrap(), b"old");
}

#[test]
fn a_reset_mid_body_fails_and_leaves_nothing() {
    let dir = TempDir::new("reset");
    let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial".to_vec();
    let peer = Peer::v4(vec![Reply::ThenReset(partial)]);
    let error = failed_with(56, &fetch_in(dir.path(), &[&peer.url("/r.bin")]));
    assert!(error.contains(&peer.addr.to_string()), "{error}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
}

#[test]
fn broken_chunking_and_garbage_fail_with_a_message() {
    let cases = [
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
            "chunk data not followed",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            "chunk size too large",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "bad chunk size",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
            "conflicting",
        ),
        ("Welcome!", "no HTTP/1.x status line"),
        ("", "without a response"),
    ];
    for (response, expected) in cases {
        let dir = TempDir::new("garbage");
        let peer = Peer::v4(vec![bytes(response)]);
        // curl's 52 for a server that sent nothing, its 8 for a malformed response.
        let code = if response.is_empty() { 52 } else { 8 };
        let error = failed_with(code, &fetch_in(dir.path(), &[&peer.url("/g")]));
        assert!(
            error.contains(&format!("bad response from {}", peer.addr)),
            "{error}"
        );
        assert!(error.contains(expected), "{error}");
        assert!(dir.names().is_empty());
    }
}

#[test]
fn a_header_block_over_64_kib_is_refused() {
    let dir = TempDir::new("huge-head");
    let huge = format!("HTTP/1.1 200 OK\r\nX-Pad: {}\r\n\r\n", "p".repeat(70_000));
    let peer = Peer::v4(vec![bytes(&huge)]);
    let error = failed_with(8, &fetch_in(dir.path(), &[&peer.url("/h")]));
    assert!(
        error.contains("header block longer than 65536 bytes"),
        "{error}"
    );
}

#[test]
fn hostile_names_never_leave_the_current_directory() {
    let root = TempDir::new("hostile");
    let work = root.join("work");
    fs::create_dir(&work).unwrap();
    let cases = [
        ("/..", "index.html"),
        ("/a/../..", "index.html"),
        ("/.hidden", "hidden"),
        ("/...", "index.html"),
        ("/a%2Fb", "a%2Fb"),
        ("/x/..%2F..%2Fescape", "%2F..%2Fescape"),
        ("/%2e%2e", "%2e%2e"),
        ("/dir/.", "index.html"),
        ("/..\\..\\win", "%5C..%5Cwin"),
    ];
    for (path, name) in cases {
        let peer = Peer::v4(vec![ok("x")]);
        let output = fetch_in(&work, &[&peer.url(path)]);
        succeeded(&output);
        assert_eq!(sockdemo::testing::names_in(&work), [name], "{path}");
        fs::remove_file(work.join(name)).unwrap();
        assert_eq!(
            root.names(),
            ["work"],
            "nothing beside the working directory"
        );
    }
}

#[test]
fn a_name_from_a_redirect_never_leaves_the_current_directory() {
    let root = TempDir::new("hostile-redirect");
    let work = root.join("work");
    fs::create_dir(&work).unwrap();
    let peer = Peer::v4(vec![redirect(302, "/../../../etc/.passwd"), ok("x")]);
    succeeded(&fetch_in(&work, &["-L", &peer.url("/start")]));
    assert_eq!(
        sockdemo::testing::names_in(&work),
        ["start"],
        "the TARGET's name"
    );
    assert_eq!(root.names(), ["work"]);
}

#[test]
fn default_names_are_numbered_instead_of_overwritten() {
    let dir = TempDir::new("numbering");
    let peer = Peer::v4(vec![ok("one"), ok("two"), ok("three")]);
    for _ in 0..3 {
        succeeded(&fetch_in(dir.path(), &[&peer.url("/")]));
    }
    assert_eq!(dir.names(), ["index.html", "index.html.1", "index.html.2"]);
    assert_eq!(fs::read(dir.join("index.html")).unwrap(), b"one");
    assert_eq!(fs::read(dir.join("index.html.2")).unwrap(), b"three");
}

#[test]
fn dash_o_replaces_an_existing_file() {
    let dir = TempDir::new("overwrite");
    fs::write(dir.join("out"), b"old contents").unwrap();
    let peer = Peer::v4(vec![ok("new")]);
    let output = fetch_in(dir.path(), &[&peer.url("/x"), "-o", "out"]);
    succeeded(&output);
    assert!(stderr(&output).contains("Saved 3 bytes to out"));
    assert_eq!(dir.names(), ["out"]);
    assert_eq!(fs::read(dir.join("out")).unwrap(), b"new");
}

#[test]
fn redirects_are_followed_and_credentials_stay_with_their_host() {
    let dir = TempDir::new("redirects");
    let other = Peer::v4(vec![ok("final")]);
    let absolute = format!("http://127.0.0.1:{}/elsewhere/final.txt", other.port());
    let peer = Peer::v4(vec![redirect(301, "../b/next"), redirect(307, &absolute)]);
    let args = [
        "-L",
        &peer.url("/a/start"),
        "-H",
        "Authorization: Bearer secret",
        "-H",
        "Cookie: id=1",
        "-H",
        "X-Keep: 1",
    ];
    let output = fetch_in(dir.path(), &args);
    succeeded(&output);
    let out = stdout(&output);
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        3,
        "each header block: {out}"
    );
    assert_eq!(fs::read(dir.join("start")).unwrap(), b"final");
    let credentials = "Authorization: Bearer secret\r\nCookie: id=1\r\nX-Keep: 1\r\n";
    let host = format!("127.0.0.1:{}", peer.port());
    assert_eq!(
        peer.request(),
        expected_request("/a/start", &host, credentials)
    );
    assert_eq!(
        peer.request(),
        expected_request("/b/next", &host, credentials)
    );
    let other_host = format!("127.0.0.1:{}", other.port());
    let expected = expected_request("/elsewhere/final.txt", &other_host, "X-Keep: 1\r\n");
    assert_eq!(other.request(), expected);
}

#[test]
fn every_redirect_status_is_followed() {
    for status in [301, 302, 303, 307, 308] {
        let dir = TempDir::new("statuses");
        let peer = Peer::v4(vec![redirect(status, "/to"), ok("there")]);
        succeeded(&fetch_in(dir.path(), &["-L", &peer.url("/from")]));
        assert_eq!(fs::read(dir.join("from")).unwrap(), b"there", "{status}");
    }
}

#[test]
fn a_redirect_loop_stops_at_max_redirs() {
    let dir = TempDir::new("loop");
    let peer = Peer::v4((0..4).map(|_| redirect(302, "/loop")).collect());
    let output = fetch_in(dir.path(), &["-L", "--max-redirs", "3", &peer.url("/loop")]);
    let error = failed_with(47, &output);
    assert!(error.contains("more than 3 redirects"), "{error}");
    assert_eq!(stdout(&output).matches("302 Moved").count(), 4);
    assert!(dir.names().is_empty());
}

#[test]
fn without_dash_l_a_redirect_is_saved_like_any_response() {
    let dir = TempDir::new("no-follow");
    let peer = Peer::v4(vec![redirect(302, "/elsewhere")]);
    succeeded(&fetch_in(dir.path(), &[&peer.url("/here")]));
    assert_eq!(fs::read(dir.join("here")).unwrap(), b"moved");
}

#[test]
fn redirects_to_other_schemes_are_refused() {
    for location in ["file:///etc/passwd", "ftp://127.0.0.1/x"] {
        let dir = TempDir::new("schemes");
        let peer = Peer::v4(vec![redirect(302, location)]);
        let error = failed_with(3, &fetch_in(dir.path(), &["-L", &peer.url("/x")]));
        assert!(
            error.contains("only http:// and https:// are followed"),
            "{error}"
        );
        assert!(error.contains(location), "{error}");
        assert!(dir.names().is_empty());
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let dir = TempDir::new("silent");
    let peer = Peer::v4(vec![Reply::ThenHang(Vec::new())]);
    let started = Instant::now();
    let error = failed_with(
        28,
        &fetch_in(dir.path(), &["--timeout", "1s", &peer.url("/x")]),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error,
        format!(
            "error: cannot read from {}: timed out after 0 bytes: no byte for 1s (--timeout)",
            peer.addr
        )
    );
    assert!(dir.names().is_empty());
}

#[test]
fn a_refused_connection_names_the_address() {
    let dir = TempDir::new("refused");
    let port = free_port();
    let error = failed_with(7, &fetch_in(dir.path(), &[&format!("127.0.0.1:{port}")]));
    assert_eq!(
        error,
        format!("error: cannot connect to 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn schemes_other_than_http_and_https_are_refused_up_front() {
    let dir = TempDir::new("ftp");
    let error = failed_with(1, &fetch_in(dir.path(), &["ftp://127.0.0.1/"]));
    assert!(error.contains("unsupported scheme `ftp://`"), "{error}");
}

#[test]
fn not_found_is_saved_and_fails_only_with_dash_dash_fail() {
    let dir = TempDir::new("404");
    let missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nmissing";
    let peer = Peer::v4(vec![bytes(missing), bytes(missing)]);
    succeeded(&fetch_in(dir.path(), &[&peer.url("/nope"), "-o", "plain"]));
    let error = failed_with(
        22,
        &fetch_in(dir.path(), &["--fail", &peer.url("/nope"), "-o", "failed"]),
    );
    assert!(error.contains("404 Not Found"), "{error}");
    assert_eq!(fs::read(dir.join("plain")).unwrap(), b"missing");
    assert_eq!(dir.names(), ["plain"], "--fail saves nothing");
}

#[test]
fn ipv6_loopback_works_with_brackets() {
    let peer = Peer::start("[::1]:0", vec![ok("six"), ok("six")]);
    if !require(peer.is_ok(), "no IPv6 loopback here") {
        return;
    }
    let peer = peer.unwrap();
    let dir = TempDir::new("ipv6");
    let target = format!("http://[::1]:{}/v6.txt", peer.port());
    succeeded(&fetch_in(dir.path(), &[&target]));
    assert_eq!(fs::read(dir.join("v6.txt")).unwrap(), b"six");
    let host = format!("[::1]:{}", peer.port());
    assert_eq!(peer.request(), expected_request("/v6.txt", &host, ""));
    succeeded(&fetch_in(
        dir.path(),
        &["-6", &format!("[::1]:{}", peer.port()), "-o", "x"],
    ));
    let error = failed_with(
        6,
        &fetch_in(dir.path(), &["-4", &format!("[::1]:{}", peer.port())]),
    );
    assert!(
        error.contains("no address of the requested family"),
        "{error}"
    );
}

#[test]
fn dash_o_dash_sends_the_body_to_stdout_and_the_header_to_stderr() {
    let dir = TempDir::new("stdout");
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    let peer = Peer::v4(vec![bytes(&format!("{head}body"))]);
    let output = fetch_in(dir.path(), &["-o", "-", &peer.url("/x")]);
    succeeded(&output);
    assert_eq!(output.stdout, b"body");
    assert!(stderr(&output).starts_with(head), "{}", stderr(&output));
    assert!(dir.names().is_empty());
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let body = Noise::bytes(7, 4 << 20);
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend(&body);
    let peer = Peer::v4(vec![Reply::Bytes(response)]);
    let dir = TempDir::new("closed-stdout");
    let mut child = sockdemo(["fetch", "-o", "-", &peer.url("/big")])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    out.read_exact(&mut [0; 10]).unwrap();
    drop(out);
    let output = wait_output(child, STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error"), "{}", stderr(&output));
}

#[test]
fn a_fifo_is_written_in_place_and_stays_a_fifo() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("pipe");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        thread::spawn(move || fs::read(fifo).expect("read the fifo"))
    };
    let peer = Peer::v4(vec![ok("through the pipe")]);
    succeeded(&fetch_in(dir.path(), &[&peer.url("/x"), "-o", "pipe"]));
    assert_eq!(reader.join().unwrap(), b"through the pipe");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(dir.names(), ["pipe"]);
}

#[test]
fn a_character_device_is_written_in_place_and_stays_one() {
    let dir = TempDir::new("chardev");
    let node = dir.join("null");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status();
    if !require(
        made.is_ok_and(|status| status.success()),
        "mknod needs root",
    ) {
        return;
    }
    let peer = Peer::v4(vec![ok("into the void")]);
    let output = fetch_in(dir.path(), &[&peer.url("/x"), "-o", "null"]);
    succeeded(&output);
    assert!(stderr(&output).contains("Saved 13 bytes to null"));
    assert!(fs::symlink_metadata(&node)
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(dir.names(), ["null"]);
}

#[test]
fn python_http_server_files_are_saved_byte_for_byte() {
    let served = TempDir::new("python-root");
    let seed = std::process::id() as u64 ^ 0x51ed;
    let len = (1 << 20) + (seed as usize * 7919) % (2 << 20);
    let original = Noise::bytes(seed, len);
    fs::write(served.join("blob.bin"), &original).unwrap();
    let server = PythonServer::start(served.path());
    let dir = TempDir::new("python-out");
    let url = format!("http://127.0.0.1:{}/blob.bin", server.port);
    let output = fetch_in(dir.path(), &[&url]);
    succeeded(&output);
    assert!(stdout(&output).starts_with("HTTP/1.0 200 OK\r\n"));
    assert!(
        fs::read(dir.join("blob.bin")).unwrap() == original,
        "{len} bytes differ"
    );
}

#[test]
fn a_64_mib_body_is_saved_byte_exact() {
    const LEN: u64 = 64 << 20;
    let stream_body = |stream: &mut std::net::TcpStream| {
        use std::io::Write;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        let mut noise = Noise::new(64);
        let mut block = vec![0; 1 << 16];
        for _ in 0..LEN / (1 << 16) {
            noise.fill(&mut block);
            if stream.write_all(&block).is_err() {
                return;
            }
        }
    };
    let peer = Peer::v4(vec![Reply::Custom(Box::new(stream_body))]);
    let dir = TempDir::new("64mib");
    let output = fetch_in(dir.path(), &[&peer.url("/big.bin")]);
    succeeded(&output);
    assert!(holds_noise(&dir.join("big.bin"), 64, LEN));
}

#[test]
fn sigint_and_sigterm_remove_the_partial_file() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = TempDir::new("signal");
        fs::write(dir.join("out"), b"old").unwrap();
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhalf".to_vec();
        let peer = Peer::v4(vec![Reply::ThenHang(partial)]);
        let child = sockdemo(["fetch", &peer.url("/x"), "-o", "out"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_part(dir.path());
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap()
            .success());
        let output = wait_output(child, STEP);
        assert_eq!(
            output.status.code(),
            Some(code),
            "SIG{signal}: {}",
            stderr(&output)
        );
        assert_eq!(dir.names(), ["out"], "SIG{signal}");
        assert_eq!(fs::read(dir.join("out")).unwrap(), b"old");
    }
}

#[test]
fn dash_v_logs_the_request_sent() {
    let dir = TempDir::new("verbose");
    let peer = Peer::v4(vec![ok("x")]);
    let output = fetch_in(dir.path(), &["-v", &peer.url("/v"), "-H", "X-A: 1"]);
    succeeded(&output);
    let err = stderr(&output);
    for line in ["> GET /v HTTP/1.1", "> Connection: close", "> X-A: 1"] {
        assert!(err.contains(line), "{line}: {err}");
    }
    let quiet = fetch_in(dir.path(), &[&peer.url("/v")]);
    assert!(!stderr(&quiet).contains("> GET"), "{}", stderr(&quiet));
}

#[test]
fn any_recv_size_reads_the_same_body() {
    let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: 1\r\n\r\n";
    for size in ["1", "2", "7", "65536"] {
        let dir = TempDir::new("recv-size");
        let peer = Peer::v4(vec![bytes(response)]);
        succeeded(&fetch_in(
            dir.path(),
            &["--recv-size", size, &peer.url("/r")],
        ));
        assert_eq!(
            fs::read(dir.join("r")).unwrap(),
            b"abcdefg",
            "--recv-size {size}"
        );
    }
}

#[test]
fn dash_o_through_a_symlink_replaces_the_file_it_points_to() {
    let dir = TempDir::new("symlink");
    fs::write(dir.join("real"), b"old").unwrap();
    std::os::unix::fs::symlink("real", dir.join("link")).unwrap();
    let peer = Peer::v4(vec![ok("new")]);
    succeeded(&fetch_in(dir.path(), &[&peer.url("/x"), "-o", "link"]));
    assert!(fs::symlink_metadata(dir.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(dir.join("real")).unwrap(), b"new");
    assert_eq!(dir.names(), ["link", "real"]);
}

#[test]
fn connect_timeout_gives_up_on_a_listener_that_never_completes_the_handshake() {
    // A listener that never accepts: once its backlog is full, the kernel drops new SYNs,
    // so a connect hangs until its timeout, all on loopback.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let full = (0..2048).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => {
                held.push(stream);
                false
            }
            Err(_) => true,
        }
    });
    if !require(full, "the listen backlog never filled") {
        return;
    }
    let dir = TempDir::new("connect-timeout");
    let started = Instant::now();
    let output = fetch_in(
        dir.path(),
        &["--connect-timeout", "500ms", &format!("http://{addr}/")],
    );
    let error = failed_with(28, &output);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(error, format!("error: cannot connect to {addr}: timed out"));
}

/// A peer script: `head` at once, then `endless` over and over (at most 1 GiB) until the
/// client goes away.
fn endless(head: &str, endless: &'static [u8]) -> Reply {
    let head = head.as_bytes().to_vec();
    Reply::Custom(Box::new(move |stream| {
        use std::io::Write;
        let block = endless.repeat((64 << 10) / endless.len());
        let _ = stream.write_all(&head);
        for _ in 0..(1 << 30) / block.len() {
            if stream.write_all(&block).is_err() {
                return;
            }
        }
    }))
}

#[test]
fn endless_headers_and_chunk_size_lines_are_cut_off_at_their_limits() {
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases = [
        (
            endless("HTTP/1.1 200 OK\r\nX-Endless: ", b"e"),
            "header block longer than 65536 bytes",
        ),
        (
            endless("HTTP/1.1 200 OK\r\n", b"X-Field: 1\r\n"),
            "more than 1000 header fields",
        ),
        (
            endless(&format!("{chunked}5;ext="), b"x"),
            "chunk-size line longer than 4096 bytes",
        ),
        (
            endless(chunked, b"1"),
            "chunk-size line longer than 4096 bytes",
        ),
    ];
    for (reply, expected) in cases {
        let dir = TempDir::new("endless");
        let peer = Peer::v4(vec![reply]);
        let error = failed_with(8, &fetch_in(dir.path(), &[&peer.url("/e")]));
        assert!(error.contains(expected), "{expected}: {error}");
        assert!(dir.names().is_empty(), "{expected}: {:?}", dir.names());
    }
}

#[test]
fn ten_thousand_header_fields_are_refused() {
    let dir = TempDir::new("fields");
    let mut response = String::from("HTTP/1.1 200 OK\r\n");
    for n in 0..10_000 {
        response.push_str(&format!("X-{n}: {n}\r\n"));
    }
    response.push_str("Content-Length: 2\r\n\r\nok");
    let peer = Peer::v4(vec![bytes(&response)]);
    let error = failed_with(8, &fetch_in(dir.path(), &[&peer.url("/f")]));
    assert!(error.contains("more than 1000 header fields"), "{error}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
}

#[test]
fn a_server_dripping_a_byte_a_second_finishes_inside_the_idle_timeout() {
    // Five gaps of a second against an idle bound of three: the whole response takes longer
    // than --timeout, but no single wait does.
    let drip = |stream: &mut std::net::TcpStream| {
        use std::io::Write;
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r");
        for byte in b"\ndrip" {
            thread::sleep(Duration::from_secs(1));
            if stream.write_all(&[*byte]).is_err() {
                return;
            }
        }
    };
    let peer = Peer::v4(vec![Reply::Custom(Box::new(drip))]);
    let dir = TempDir::new("drip");
    let started = Instant::now();
    let output = fetch_in(dir.path(), &["--timeout", "3s", &peer.url("/drip.txt")]);
    succeeded(&output);
    assert!(started.elapsed() > Duration::from_secs(4), "it dripped");
    assert_eq!(fs::read(dir.join("drip.txt")).unwrap(), b"drip");
}

#[test]
fn bytes_past_the_end_of_the_body_are_not_written_nor_waited_for() {
    // Each server sends more than the body and then keeps the connection open: fetch must
    // end at the body's end, not at --timeout (which would be a failure).
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
    let cases = [
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbo",
        chunked,
    ];
    for head in cases {
        let head = head.to_string();
        let extra = move |stream: &mut std::net::TcpStream| {
            use std::io::Write;
            let _ = stream.write_all(head.as_bytes());
            let rest: &[u8] = if head.ends_with("bo") { b"dy" } else { b"" };
            let _ = stream.write_all(&[rest, &b"EXTRA".repeat(20_000)].concat());
            // Hold the connection until the client closes it.
            let _ = stream.read_to_end(&mut Vec::new());
        };
        let peer = Peer::v4(vec![Reply::Custom(Box::new(extra))]);
        let dir = TempDir::new("extra");
        let output = fetch_in(dir.path(), &["--timeout", "10s", &peer.url("/b")]);
        succeeded(&output);
        assert!(stderr(&output).contains("Saved 4 bytes to b"));
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"body");
    }
}

#[test]
fn a_signal_mid_download_leaves_a_default_name_and_a_fifo_as_they_were() {
    let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhalf".to_vec();

    // A default name: the file already there is not replaced, and no partial stays.
    let dir = TempDir::new("signal-default");
    fs::write(dir.join("x"), b"old").unwrap();
    let peer = Peer::v4(vec![Reply::ThenHang(partial.clone())]);
    let child = spawn_fetch(dir.path(), &[&peer.url("/x")]);
    wait_for_part(dir.path());
    let output = signal(child, "TERM");
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert_eq!(dir.names(), ["x"]);
    assert_eq!(fs::read(dir.join("x")).unwrap(), b"old");

    // A FIFO written in place: still a FIFO afterwards.
    let dir = TempDir::new("signal-fifo");
    let fifo = dir.join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let peer = Peer::v4(vec![Reply::ThenHang(partial)]);
    let child = spawn_fetch(dir.path(), &[&peer.url("/x"), "-o", "pipe"]);
    // Opening the read end returns once fetch has opened the write end.
    let (opened, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reader = fs::File::open(fifo).unwrap();
        opened.send(()).unwrap();
        let _ = reader.read_to_end(&mut Vec::new());
    });
    rx.recv_timeout(STEP).expect("fetch opens the FIFO");
    let output = signal(child, "INT");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    reader.join().unwrap();
    let fifo = dir.join("pipe");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(dir.names(), ["pipe"]);
}

fn spawn_fetch(dir: &Path, args: &[&str]) -> std::process::Child {
    sockdemo(["fetch"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIG`name` to `child` and collects its output.
fn signal(child: std::process::Child, name: &str) -> Output {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-s", name, &pid]).status();
    assert!(sent.unwrap().success());
    wait_output(child, STEP)
}

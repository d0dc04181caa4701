//! `sockdemo fetch` as scripts and pipes use it, the way curl users expect: a closed stdout
//! that must not cost the download, `-f` and `--fail-with-body`, `-q`/`-s`, `-m`, a redirect
//! not followed, `-o -` showing a slow stream live, names from the TARGET as given, and the
//! protocol details a server may send (folded lines, raw Location bytes, an empty
//! Content-Length). The real binary against scripted peers on loopback port 0; every run is
//! bounded by `common::STEP`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::http_peer::{bytes, ok, redirect, Peer, Reply, TempDir};
use crate::common::{
    failed_with, fetch_in, run, sockdemo, stderr, stdout, succeeded, wait_output, STEP,
};

/// `cmd` run with a stdout whose reading end is already closed, as in
/// `sockdemo fetch URL | (exec 0<&-; sleep 1)`: every write to it fails with EPIPE.
fn run_with_stdout_closed(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockdemo");
    wait_output(child, STEP)
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nmissing";

#[test]
fn a_closed_stdout_stops_the_header_not_the_download() {
    let dir = TempDir::new("closed-stdout-file");
    let peer = Peer::v4(vec![ok("saved"), redirect(302, "/b"), ok("after")]);

    let mut cmd = sockdemo(["fetch", &peer.url("/a.txt")]);
    let output = run_with_stdout_closed(cmd.current_dir(dir.path()));
    succeeded(&output);
    assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"saved");

    let mut cmd = sockdemo(["fetch", "-L", &peer.url("/first"), "-o", "out"]);
    let output = run_with_stdout_closed(cmd.current_dir(dir.path()));
    succeeded(&output);
    assert_eq!(fs::read(dir.join("out")).unwrap(), b"after");
    assert!(stderr(&output).contains("Saved 5 bytes to out"));
    assert_eq!(dir.names(), ["a.txt", "out"]);
}

#[test]
fn a_closed_stdout_never_hides_a_failed_download() {
    let dir = TempDir::new("closed-stdout-short");
    let peer = Peer::v4(vec![bytes(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    )]);
    let mut cmd = sockdemo(["fetch", &peer.url("/cut")]);
    let output = run_with_stdout_closed(cmd.current_dir(dir.path()));
    let error = failed_with(18, &output);
    assert!(
        error.contains("the body ended after 5 of 10 bytes"),
        "{error}"
    );
    assert!(dir.names().is_empty());
}

#[test]
fn dash_f_saves_nothing_and_leaves_an_existing_file_untouched() {
    let dir = TempDir::new("fail");
    fs::write(dir.join("keep"), b"good").unwrap();
    let peer = Peer::v4(vec![bytes(NOT_FOUND), bytes(NOT_FOUND), bytes(NOT_FOUND)]);
    for args in [
        vec!["-f", "-o", "keep"],
        vec!["--fail", "-o", "keep"],
        vec!["--fail"],
    ] {
        let url = peer.url("/missing.html");
        let output = fetch_in(dir.path(), &[&args[..], &[&url[..]]].concat());
        let error = failed_with(22, &output);
        assert_eq!(
            error,
            format!("error: cannot fetch {url}: the server answered 404 Not Found")
        );
        assert!(stdout(&output).starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert_eq!(dir.names(), ["keep"], "{args:?}");
        assert_eq!(fs::read(dir.join("keep")).unwrap(), b"good");
    }
}

#[test]
fn fail_with_body_saves_the_body_and_exits_22() {
    let dir = TempDir::new("fail-with-body");
    fs::write(dir.join("page"), b"good").unwrap();
    let peer = Peer::v4(vec![bytes(NOT_FOUND), bytes(NOT_FOUND), ok("fine")]);
    let url = peer.url("/missing.html");
    let output = fetch_in(dir.path(), &["--fail-with-body", "-o", "page", &url]);
    let error = failed_with(22, &output);
    assert!(error.contains("404 Not Found"), "{error}");
    assert_eq!(fs::read(dir.join("page")).unwrap(), b"missing");
    failed_with(22, &fetch_in(dir.path(), &["--fail-with-body", &url]));
    assert_eq!(fs::read(dir.join("missing.html")).unwrap(), b"missing");
    succeeded(&fetch_in(
        dir.path(),
        &["--fail-with-body", "-o", "ok", &peer.url("/")],
    ));
    assert_eq!(fs::read(dir.join("ok")).unwrap(), b"fine");
    let both = fetch_in(dir.path(), &["-f", "--fail-with-body", &url]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn default_names_come_from_the_target_not_from_a_redirect() {
    let dir = TempDir::new("name-from-target");
    let peer = Peer::v4(vec![redirect(302, "/evil.sh"), ok("body")]);
    succeeded(&fetch_in(
        dir.path(),
        &["-L", &peer.url("/report.pdf?id=1")],
    ));
    assert_eq!(dir.names(), ["report.pdf"]);
    assert_eq!(fs::read(dir.join("report.pdf")).unwrap(), b"body");
}

#[test]
fn a_folded_header_line_is_read_as_one_space() {
    let dir = TempDir::new("obs-fold");
    let head = "HTTP/1.1 302 Found\r\nX-Long: first\r\n  second\r\nLocation:\r\n /fol\r\n\t\
                ded\r\nContent-Length: 0\r\n\r\n";
    let peer = Peer::v4(vec![bytes(head), ok("end")]);
    let output = fetch_in(dir.path(), &["-L", &peer.url("/start"), "-o", "out"]);
    succeeded(&output);
    assert!(stdout(&output).starts_with(head), "printed as received");
    peer.request();
    let followed = peer.request();
    assert!(
        followed.starts_with("GET /fol%20ded HTTP/1.1\r\n"),
        "{followed}"
    );
    assert_eq!(fs::read(dir.join("out")).unwrap(), b"end");
}

#[test]
fn location_bytes_are_percent_encoded_as_they_came() {
    let dir = TempDir::new("location-bytes");
    let mut moved = b"HTTP/1.1 301 Moved\r\nLocation: /a\xff\x01b\xc3\xa9\r\n".to_vec();
    moved.extend(b"Content-Length: 0\r\n\r\n");
    let peer = Peer::v4(vec![Reply::Bytes(moved), ok("x")]);
    succeeded(&fetch_in(dir.path(), &["-L", &peer.url("/"), "-o", "x"]));
    peer.request();
    let followed = peer.request();
    assert!(
        followed.starts_with("GET /a%FF%01b%C3%A9 HTTP/1.1\r\n"),
        "{followed}"
    );
}

#[test]
fn an_empty_or_comma_only_content_length_is_malformed() {
    for value in ["", " ", ",", " , ", "5,"] {
        let dir = TempDir::new("empty-length");
        let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nhello");
        let peer = Peer::v4(vec![bytes(&response)]);
        let error = failed_with(8, &fetch_in(dir.path(), &[&peer.url("/x")]));
        assert!(
            error.contains("invalid Content-Length"),
            "{value:?}: {error}"
        );
        assert!(dir.names().is_empty(), "{value:?}");
    }
}

/// A peer that sends `head` and then one byte of `len` every `every`, stopping when the
/// client has gone.
fn drip(head: &'static str, len: usize, every: Duration) -> Reply {
    Reply::Custom(Box::new(move |stream: &mut TcpStream| {
        let _ = stream.write_all(head.as_bytes());
        for _ in 0..len {
            thread::sleep(every);
            if stream.write_all(b"x").is_err() {
                return;
            }
        }
    }))
}

#[test]
fn max_time_bounds_the_whole_transfer_and_says_so() {
    let dir = TempDir::new("max-time");
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    let peer = Peer::v4(vec![drip(head, 100, Duration::from_millis(100))]);
    let started = Instant::now();
    let output = fetch_in(
        dir.path(),
        &["--timeout", "5s", "-m", "1500ms", &peer.url("/slow")],
    );
    let elapsed = started.elapsed();
    let error = failed_with(28, &output);
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let prefix = format!("error: cannot read from {}: timed out after ", peer.addr);
    let suffix = " bytes: the transfer took 1.5s (--max-time)";
    assert!(
        error.starts_with(&prefix) && error.ends_with(suffix),
        "{error}"
    );
    let received: u64 = error[prefix.len()..error.len() - suffix.len()]
        .parse()
        .expect(&error);
    assert!(received > head.len() as u64, "{error}");
    assert!(received < (head.len() + 100) as u64, "{error}");
    assert!(dir.names().is_empty());
}

#[test]
fn max_time_counts_the_redirects_before_it() {
    // The redirect takes 800 ms of the second -m gives; the next response's first byte would
    // come 300 ms after its head, past the deadline. A limit that started again for each
    // request would have let three bytes in.
    let dir = TempDir::new("max-time-redirects");
    let late_redirect = Reply::Custom(Box::new(|stream: &mut TcpStream| {
        thread::sleep(Duration::from_millis(800));
        let _ = stream.write_all(b"HTTP/1.1 302 Found\r\nLocation: /next\r\n\r\n");
    }));
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";
    let peer = Peer::v4(vec![
        late_redirect,
        drip(head, 20, Duration::from_millis(300)),
    ]);
    let started = Instant::now();
    let output = fetch_in(dir.path(), &["-L", "-m", "1s", &peer.url("/first")]);
    let elapsed = started.elapsed();
    // How many bytes of the head arrived before the deadline depends on the machine's load;
    // what a per-request limit would have let in (body bytes) never may.
    let error = failed_with(28, &output);
    let prefix = format!("error: cannot read from {}: timed out after ", peer.addr);
    let suffix = " bytes: the transfer took 1s (--max-time)";
    assert!(
        error.starts_with(&prefix) && error.ends_with(suffix),
        "{error}"
    );
    let received: usize = error[prefix.len()..error.len() - suffix.len()]
        .parse()
        .expect(&error);
    assert!(received <= head.len(), "{error}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(dir.names().is_empty());
}

#[test]
fn a_gap_timeout_says_how_many_bytes_had_arrived() {
    let dir = TempDir::new("gap");
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart";
    let peer = Peer::v4(vec![Reply::ThenHang(head.as_bytes().to_vec())]);
    let output = fetch_in(
        dir.path(),
        &["--timeout", "1s", "-m", "60s", &peer.url("/")],
    );
    assert_eq!(
        failed_with(28, &output),
        format!(
            "error: cannot read from {}: timed out after {} bytes: no byte for 1s (--timeout)",
            peer.addr,
            head.len()
        )
    );
}

#[test]
fn quiet_and_silent_print_nothing_but_save_the_file() {
    let flags: [&[&str]; 4] = [
        &["-q", "fetch"],
        &["fetch", "-s"],
        &["fetch", "--silent"],
        &["-s", "fetch"],
    ];
    for flags in flags {
        let dir = TempDir::new("quiet");
        let peer = Peer::v4(vec![redirect(301, "/moved")]);
        let mut cmd = sockdemo(flags);
        cmd.arg(peer.url("/page")).current_dir(dir.path());
        let output = run(&mut cmd, STEP);
        succeeded(&output);
        assert_eq!(stdout(&output), "", "{flags:?}");
        assert_eq!(stderr(&output), "", "{flags:?}");
        assert_eq!(fs::read(dir.join("page")).unwrap(), b"moved");
    }
}

#[test]
fn quiet_with_dash_o_dash_writes_the_body_alone() {
    let dir = TempDir::new("quiet-stdout");
    let peer = Peer::v4(vec![ok("only this")]);
    let output = fetch_in(dir.path(), &["-s", "-o", "-", &peer.url("/")]);
    succeeded(&output);
    assert_eq!(stdout(&output), "only this");
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_redirect_not_followed_is_named_in_a_note() {
    let dir = TempDir::new("note");
    let peer = Peer::v4(vec![redirect(302, "/elsewhere?x=1")]);
    let output = fetch_in(dir.path(), &[&peer.url("/here")]);
    succeeded(&output);
    let err = stderr(&output);
    assert!(
        err.contains("Not following the redirect to /elsewhere?x=1: add -L to follow it"),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("here")).unwrap(), b"moved");
}

#[test]
fn dash_o_dash_shows_a_slow_stream_live() {
    const CHUNKS: usize = 10;
    let (finished, has_finished) = mpsc::channel();
    let slow = move |stream: &mut TcpStream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for n in 0..CHUNKS {
            thread::sleep(Duration::from_millis(200));
            if stream
                .write_all(format!("6\r\nchunk{n}\r\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
        let _ = finished.send(());
        let _ = stream.write_all(b"0\r\n\r\n");
    };
    let peer = Peer::v4(vec![Reply::Custom(Box::new(slow))]);
    let dir = TempDir::new("live");
    let mut child = sockdemo(["fetch", "-o", "-", &peer.url("/stream")])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockdemo");
    let mut out = child.stdout.take().expect("stdout");
    let (first, got_first) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut start = [0; 6];
        let read = out.read_exact(&mut start);
        let _ = first.send(read.map(|()| start));
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        [&start[..], &rest].concat()
    });
    let start = got_first
        .recv_timeout(STEP)
        .expect("the first bytes in time");
    assert_eq!(&start.expect("six bytes"), b"chunk0");
    assert!(
        has_finished.try_recv().is_err(),
        "the first bytes reached the pipe only after the server had sent everything"
    );
    let output = wait_output(child, STEP);
    succeeded(&output);
    let body = reader.join().expect("the reader thread");
    let expected: String = (0..CHUNKS).map(|n| format!("chunk{n}")).collect();
    assert_eq!(String::from_utf8_lossy(&body), expected);
}

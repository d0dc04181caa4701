//! `sockdemo bench` against the real server and against misbehaving ones, over loopback.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::peer::Peer;
use crate::common::{have, require, run, run_with_input, sockdemo, stderr, stdout, Server, STEP};

fn bench(addr: SocketAddr, extra: &[&str]) -> Output {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut cmd = sockdemo(["bench", "--host", &host, "--port", &port, "--timeout", "5s"]);
    cmd.args(extra);
    run(&mut cmd, STEP)
}

/// The value of `"key":` in a flat JSON object, as text.
fn field(json: &str, key: &str) -> String {
    let needle = format!("\"{key}\":");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + needle.len();
    json[at..]
        .split([',', '}'])
        .next()
        .expect("a value")
        .to_string()
}

fn number(json: &str, key: &str) -> f64 {
    let text = field(json, key);
    text.parse()
        .unwrap_or_else(|_| panic!("{key} is {text}, not a number"))
}

/// Exactly one JSON object on stdout, checked by Python's parser when there is one.
fn the_json(out: &Output) -> String {
    let text = stdout(out);
    let json = text.trim_end();
    assert!(json.starts_with('{') && json.ends_with('}'), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    let mut python = Command::new("python3");
    python.args(["-c", "import json,sys; json.load(sys.stdin)"]);
    if have("python3") {
        let checked = run_with_input(&mut python, json.as_bytes(), STEP);
        assert!(
            checked.status.success(),
            "invalid JSON: {json}\n{}",
            stderr(&checked)
        );
    }
    json.to_string()
}

/// Greets, then answers every message with `Hello, wrong!`.
fn wrong_replies(mut stream: TcpStream) {
    let _ = stream.write_all(b"Welcome!");
    let mut buf = [0; 1024];
    for _ in 0..100 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = stream.write_all(b"Hello, wrong!");
    }
}

/// Greets, then hangs up.
fn close_after_greeting(mut stream: TcpStream) {
    let _ = stream.write_all(b"Welcome!");
}

/// A correct server that sends every reply in two segments.
fn split_replies(mut stream: TcpStream) {
    let _ = stream.write_all(b"Welcome!");
    let mut buf = [0; 1024];
    for _ in 0..1000 {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if &buf[..n] == b"exit" {
            return;
        }
        let _ = stream.write_all(b"Hello, ");
        let _ = stream.write_all(&[&buf[..n], b"!"].concat());
    }
}

#[test]
fn every_round_trip_against_serve_is_counted_and_checked() {
    let server = Server::start(&["--delay", "0"]);
    let out = bench(server.addr, &["-c", "4", "-n", "50", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = the_json(&out);
    assert_eq!(number(&json, "clients"), 4.0);
    assert_eq!(number(&json, "connections"), 4.0);
    assert_eq!(number(&json, "messages"), 200.0);
    assert_eq!(number(&json, "errors"), 0.0);
    assert_eq!(field(&json, "mode"), "\"persistent\"");
    assert!(number(&json, "messages_per_s") > 0.0);
    let (p50, p99, max) = (
        number(&json, "p50"),
        number(&json, "p99"),
        number(&json, "max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{json}");
}

#[test]
fn text_summary_names_every_figure_with_units() {
    let server = Server::start(&["--delay", "0"]);
    let out = bench(server.addr, &["-c", "2", "-n", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "connections    2 ",
        "messages       20\n",
        "errors         0\n",
        "elapsed ",
        "messages/s ",
        "connections/s ",
        "latency        p50 ",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("s (from every client connected"), "{text}");
}

#[test]
fn reconnect_opens_a_connection_per_round_trip() {
    let server = Server::start(&["--delay", "0"]);
    let out = bench(
        server.addr,
        &["-c", "3", "-n", "5", "--reconnect", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json = the_json(&out);
    assert_eq!(number(&json, "connections"), 15.0);
    assert_eq!(number(&json, "messages"), 15.0);
    assert_eq!(field(&json, "mode"), "\"reconnect\"");
    assert!(number(&json, "connections_per_s") > 0.0);
}

#[test]
fn duration_runs_about_that_long() {
    let server = Server::start(&["--delay", "0"]);
    let began = Instant::now();
    let out = bench(server.addr, &["-c", "2", "--duration", "1s", "--json"]);
    let took = began.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let json = the_json(&out);
    let elapsed = number(&json, "elapsed_s");
    assert!((1.0..5.0).contains(&elapsed), "{json}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(10));
    assert_eq!(field(&json, "messages_per_client"), "null");
    assert!(number(&json, "messages") > 0.0);
}

#[test]
fn replies_split_across_segments_are_read_whole() {
    let peer = Peer::each(2, split_replies);
    let out = bench(peer.addr, &["-c", "2", "-n", "20", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = the_json(&out);
    assert_eq!(number(&json, "messages"), 40.0);
    assert_eq!(number(&json, "errors"), 0.0);
    peer.finish();
}

#[test]
fn a_wrong_reply_is_an_error_and_exit_1() {
    let peer = Peer::each(2, wrong_replies);
    let out = bench(peer.addr, &["-c", "2", "-n", "3", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json = the_json(&out);
    assert_eq!(number(&json, "errors"), 2.0);
    assert_eq!(number(&json, "messages"), 0.0);
    let err = stderr(&out);
    assert!(err.contains("Hello, wrong!"), "{err}");
    assert!(err.contains("error: 2 errors during the bench"), "{err}");
    peer.finish();
}

#[test]
fn a_server_that_closes_after_the_greeting_is_an_error() {
    let peer = Peer::each(3, close_after_greeting);
    let out = bench(peer.addr, &["-c", "3", "-n", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("errors         3\n"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("error: 3 errors during the bench"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    peer.finish();
}

#[test]
fn refused_connection_exits_1_naming_the_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local address")
    };
    let began = Instant::now();
    let out = bench(port, &["-c", "20", "-n", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "retries took too long"
    );
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: 20 errors during the bench"),
        "{err}"
    );
    assert!(last.contains(&format!("cannot connect to {port}")), "{err}");
    assert!(last.contains("connection refused"), "{err}");
    assert!(last.contains("sockdemo serve"), "{err}");
}

#[test]
fn bench_works_over_ipv6_too() {
    if !require(
        TcpListener::bind("[::1]:0").is_ok(),
        "no IPv6 loopback here",
    ) {
        return;
    }
    let server = Server::start(&["--host", "::1"]);
    let out = bench(server.addr, &["-c", "2", "-n", "5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = the_json(&out);
    assert_eq!(number(&json, "messages"), 10.0);
    assert!(field(&json, "target").starts_with("\"[::1]:"), "{json}");
}

#[test]
fn clients_beyond_the_thread_budget_are_refused_before_any_starts() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("local address");
    let mut cmd = sockdemo([
        "bench",
        "--port",
        &addr.port().to_string(),
        "-c",
        "100",
        "-n",
        "1",
    ]);
    // Stands in for a system that can give 50 more threads.
    cmd.env("SOCKDEMO_THREAD_BUDGET", "50");
    let out = run(&mut cmd, STEP);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: cannot run 100 clients, one thread each: at most 50 more threads are \
         allowed; use -c 42 or fewer\n"
    );
    assert_eq!(stdout(&out), "");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "a client connected: {accepted:?}"
    );
}

/// Greets, then drips each reply a byte every 250 ms.
fn dripping_replies(mut stream: TcpStream) {
    let _ = stream.write_all(b"Welcome!");
    let mut buf = [0; 1024];
    let Ok(n) = stream.read(&mut buf) else { return };
    let reply = [b"Hello, ".as_slice(), &buf[..n], b"!"].concat();
    for byte in reply {
        if stream.write_all(&[byte]).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_reply_dripped_past_the_timeout_is_a_timeout_however_steady_the_drip() {
    let peer = Peer::each(1, dripping_replies);
    let began = Instant::now();
    let mut cmd = sockdemo([
        "bench",
        "--port",
        &peer.port().to_string(),
        "--timeout",
        "1s",
        "-c",
        "1",
        "-n",
        "1",
    ]);
    let out = run(&mut cmd, STEP);
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot read the reply from"), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn a_duration_too_long_to_add_up_runs_until_stopped() {
    let (counted, rounds) = std::sync::mpsc::channel();
    let peer = Peer::one(move |mut stream| {
        let _ = stream.write_all(b"Welcome!");
        let mut buf = [0; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            let reply = [b"Hello, ".as_slice(), &buf[..n], b"!"].concat();
            if stream.write_all(&reply).is_err() {
                return;
            }
            let _ = counted.send(());
        }
    });
    let mut child = sockdemo([
        "bench",
        "--port",
        &peer.port().to_string(),
        "-c",
        "1",
        "--duration",
        "10000000000000000000",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("spawn bench");
    let ran = (0..50).all(|_| rounds.recv_timeout(STEP).is_ok());
    let still_running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ran, "fewer than 50 round trips");
    assert!(
        still_running,
        "bench ended although its duration cannot end"
    );
}

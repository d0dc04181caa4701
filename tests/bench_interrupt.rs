//! `sockdemo bench` stopped by SIGINT mid-run, as ApacheBench is: the figures so far are
//! printed, marked as interrupted, and the exit status is 130.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{run_with_input, sockdemo, stderr, stdout, wait_output, Server, STEP};

const CLIENTS: usize = 4;

/// `bench --duration 60s ARGS...` against a fresh server, interrupted by SIGINT once every
/// client is connected and some round trips are done; its output, and how long it took
/// from the signal to its exit.
fn interrupted_bench(extra: &[&str]) -> (std::process::Output, Duration) {
    let mut server = Server::start(&[]);
    let port = server.port();
    let clients = CLIENTS.to_string();
    let mut cmd = sockdemo([
        "bench",
        "--port",
        &port,
        "-c",
        &clients,
        "--duration",
        "60s",
    ]);
    let child = cmd
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    for _ in 0..CLIENTS {
        server.wait_for_log("Accept new connection from");
    }
    // Every client is connected; let them make round trips for a moment.
    thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let sent = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let output = wait_output(child, STEP);
    (output, signalled.elapsed())
}

/// The number after `label` at the start of a line of the text summary.
fn figure(text: &str, label: &str) -> u64 {
    let line = text
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in\n{text}"));
    let value = line[label.len()..].split_whitespace().next().unwrap();
    value.parse().unwrap_or_else(|_| panic!("{line}"))
}

#[test]
fn sigint_prints_the_figures_so_far_marked_interrupted_and_exits_130() {
    let (output, took) = interrupted_bench(&[]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(130),
        "{text}\n{}",
        stderr(&output)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        text.starts_with("interrupted    by SIGINT: the figures cover the run until then\n"),
        "{text}"
    );
    assert!(figure(&text, "messages ") > 0, "{text}");
    assert_eq!(figure(&text, "errors "), 0, "{text}");
    assert_eq!(figure(&text, "connections "), CLIENTS as u64, "{text}");
    assert!(text.contains("latency        p50 "), "{text}");
    assert!(
        stderr(&output).ends_with("error: stopped by SIGINT\n"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sigint_with_json_prints_one_object_marked_interrupted() {
    let (output, _) = interrupted_bench(&["--json"]);
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let json = stdout(&output);
    assert_eq!(json.lines().count(), 1, "{json}");
    // Python's parser reads it, and the figures are what the run did.
    let check = "import json, sys\n\
        o = json.load(sys.stdin)\n\
        assert o['interrupted'] is True, o\n\
        assert o['messages'] > 0 and o['errors'] == 0, o\n\
        assert o['latency_us']['p50'] > 0, o";
    let mut python = Command::new("python3");
    python.args(["-c", check]);
    if python.output().is_ok() {
        let checked = run_with_input(&mut python, json.as_bytes(), STEP);
        assert!(checked.status.success(), "{json}\n{}", stderr(&checked));
    }
}

//! `sockdemo serve` at the limit of the threads the system can give: it admits what it can
//! give threads to, says so once, keeps the other clients waiting in the backlog, and never
//! goes down. The limits are reached without thousands of threads: a budget given through
//! the environment, and a real `RLIMIT_NPROC` of a dozen threads for a user of our own.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, connect, greeted, read_n, Server, BIN, STEP};

/// The number after `at most ` in a log line.
fn at_most(line: &str) -> usize {
    line.split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `at most` in {line}"))
}

/// True when nothing arrives on `stream` within a short while (it is not being served).
fn waits(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_read_timeout(Some(STEP)).unwrap();
    waited
}

#[test]
fn admission_is_capped_by_the_thread_budget_and_said_once() {
    let mut cmd = common::sockdemo(["serve", "--port", "0", "--max-connections", "100"]);
    // Stands in for a system that can give 20 more threads.
    cmd.env("SOCKDEMO_THREAD_BUDGET", "20");
    let mut server = Server::spawn(cmd);
    let line = server.wait_for_log("Admitting at most");
    assert!(
        line.contains("not 100: at most 20 more threads are allowed"),
        "{line}"
    );
    let cap = at_most(&line);
    assert!((1..20).contains(&cap), "{line}");

    let mut admitted: Vec<TcpStream> = (0..cap).map(|_| greeted(&server)).collect();
    let mut waiting = connect(server.addr);
    let pause = server.wait_for_log("new clients wait");
    assert!(
        pause.contains("as many as the system can give threads to"),
        "{pause}"
    );
    assert!(waits(&mut waiting), "served beyond the cap");
    admitted.pop();
    assert_eq!(read_n(&mut waiting, 8), b"Welcome!");
    let said = server.log();
    assert_eq!(
        said.iter()
            .filter(|l| l.contains("Admitting at most"))
            .count(),
        1
    );
}

#[test]
fn a_thread_the_system_refuses_caps_admission_and_is_not_called_a_timeout() {
    if !common::have("setpriv") || !common::have("prlimit") {
        return;
    }
    // A user nobody else runs as, allowed 12 threads in all: the server's own few, then
    // connection threads until the kernel refuses one (EAGAIN from pthread_create).
    let uid = format!("{}", 61_000 + std::process::id() % 4000);
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nproc=12")
        .arg("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".to_string(),
        ])
        .args([BIN, "serve", "--port", "0", "--max-connections", "100"])
        // The real limit must be met, not the budget read from it.
        .env("SOCKDEMO_THREAD_BUDGET", "10000")
        .env_remove("RUST_LOG");
    let mut server = Server::spawn(cmd);

    let mut clients: Vec<TcpStream> = (0..16).map(|_| connect(server.addr)).collect();
    let refusal = server.wait_for_log("Cannot start a thread");
    assert!(
        refusal.contains("resource temporarily unavailable"),
        "{refusal}"
    );
    assert!(!refusal.contains("timed out"), "{refusal}");
    let cap = at_most(&refusal);
    assert!((1..12).contains(&cap), "{refusal}");

    // Those admitted are served; the one refused is closed; the rest wait.
    for (i, client) in clients.iter_mut().enumerate().take(cap) {
        let mut greeting = [0u8; 8];
        client.read_exact(&mut greeting).expect("greeting");
        assert_eq!(&greeting, b"Welcome!", "client {i}");
    }
    let mut refused = Vec::new();
    let _ = clients[cap].read_to_end(&mut refused);
    assert_eq!(refused, b"", "the refused client was served");
    assert!(waits(&mut clients[cap + 1]), "served beyond the new cap");

    // A slot given back goes to the next client waiting, on the thread that is free.
    drop(clients.remove(0));
    assert_eq!(read_n(&mut clients[cap], 8), b"Welcome!");
    assert!(server.is_running(), "server exited");
    let refusals = server
        .log()
        .iter()
        .filter(|l| l.contains("Cannot start a thread"))
        .count();
    assert_eq!(refusals, 1, "{:?}", server.log());
}

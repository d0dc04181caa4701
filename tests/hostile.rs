//! The server against hostile and careless clients, and short of file descriptors: it stays
//! up, stays bounded and keeps serving everyone else.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    self, connect, greeted, read_n, read_to_hang_up, round_trip, Server, BIN, STEP,
};

/// Opens `n` connections that never send a byte.
fn silent_connections(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| connect(server.addr)).collect()
}

#[test]
fn slow_loris_connections_time_out_and_a_real_client_gets_in() {
    let mut server = Server::start(&["--max-connections", "1000", "--idle-timeout", "1s"]);
    let _loris = silent_connections(&server, 1000);
    let started = Instant::now();
    let mut real = connect(server.addr);
    assert_eq!(read_n(&mut real, 8), b"Welcome!");
    round_trip(&mut real, b"real", b"Hello, real!");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The log reaches stderr through its own writer thread, maybe after the greeting.
    server.wait_for_log("timed out");
}

#[test]
fn without_an_idle_timeout_the_wait_is_explained_in_the_log() {
    let mut server = Server::start(&["--max-connections", "50", "--idle-timeout", "0"]);
    let mut loris = silent_connections(&server, 50);
    let mut real = connect(server.addr);
    let line = server.wait_for_log("new clients wait");
    assert!(
        line.contains("50 connections open (--max-connections)"),
        "{line}"
    );
    loris.truncate(49);
    assert_eq!(read_n(&mut real, 8), b"Welcome!");
    server.wait_for_log("accepting again");
}

#[test]
fn a_megabyte_a_second_without_a_newline_is_cut_off_and_bounded() {
    let server = Server::start(&[]);
    let mut other = greeted(&server);
    let mut flood = greeted(&server);
    round_trip(&mut flood, b"line mode\n", b"Hello, line mode!\n");
    let before = common::rss_kib(server.pid());
    let mut sender = flood.try_clone().unwrap();
    let drip = thread::spawn(move || {
        // 16 KiB every 16 ms is a megabyte a second; at most 3 s of it.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && sender.write_all(&[b'm'; 16 * 1024]).is_ok() {
            thread::sleep(Duration::from_millis(16));
        }
    });
    round_trip(&mut other, b"meanwhile\n", b"Hello, meanwhile!\n");
    // Cut off with input unread (the drip goes on): a reset rather than a FIN.
    assert_eq!(
        read_to_hang_up(&mut flood),
        b"error: line longer than 65536 bytes\n"
    );
    let after = common::rss_kib(server.pid());
    assert!(
        after < before + 4 * 1024,
        "VmRSS {before} KiB -> {after} KiB"
    );
    drip.join().unwrap();
}

#[test]
fn a_hundred_megabytes_of_lines_leave_memory_flat() {
    let server = Server::start(&[]);
    let pid = server.pid();
    let mut flood = greeted(&server);
    let before = common::rss_kib(pid);
    let mut reader = flood.try_clone().unwrap();
    let replies = thread::spawn(move || {
        let mut total = 0u64;
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let chunk = b"a\n".repeat(512 * 1024); // 1 MiB
    let mut peak = before;
    for _ in 0..100 {
        flood.write_all(&chunk).unwrap();
        peak = peak.max(common::rss_kib(pid));
    }
    flood.shutdown(Shutdown::Write).unwrap();
    let total = replies.join().unwrap();
    assert_eq!(total, 100 * 512 * 1024 * "Hello, a!\n".len() as u64);
    assert!(
        peak < before + 4 * 1024,
        "VmRSS {before} KiB, peak {peak} KiB"
    );
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_serves_everyone() {
    /// How long the clients keep the server short of descriptors once it has run out.
    const SHORTAGE: Duration = Duration::from_millis(500);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("ulimit -n 64 && exec {BIN} serve --port 0")]);
    let mut server = Server::spawn(cmd);
    let addr = server.addr;
    // Each client holds its descriptor until its `hold` sender is dropped.
    let mut holds = Vec::new();
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let (hold, held) = mpsc::channel::<()>();
            holds.push(hold);
            thread::spawn(move || {
                let mut stream = connect(addr);
                assert_eq!(read_n(&mut stream, 8), b"Welcome!");
                let name = format!("c{i}");
                round_trip(
                    &mut stream,
                    name.as_bytes(),
                    format!("Hello, {name}!").as_bytes(),
                );
                let _ = held.recv_timeout(STEP);
                stream.write_all(b"exit").unwrap();
            })
        })
        .collect();
    server.wait_for_log("Cannot accept: too many open files");
    // The clients keep it short for a while: a server spinning on accept would burn a core.
    let pid = server.pid();
    let (cpu_before, short_since) = (common::cpu_time(pid), Instant::now());
    thread::sleep(SHORTAGE);
    let cpu = common::cpu_time(pid) - cpu_before;
    let wall = short_since.elapsed();
    drop(holds);
    for client in clients {
        client.join().expect("every client is served");
    }
    assert!(
        cpu < wall / 2,
        "cpu {cpu:?} over {wall:?} out of descriptors"
    );
    // Stopped, so that the log is complete.
    assert!(server.signal_and_wait("TERM", STEP).success());
    server.wait_for_log("Server stopped");
    let log = server.log();
    let shortages = log
        .iter()
        .filter(|l| l.contains("Cannot accept: too many open files"))
        .count();
    let recoveries = log
        .iter()
        .filter(|l| l.contains("Accepting again after"))
        .count();
    assert!(
        recoveries >= 1 && shortages <= recoveries + 1,
        "logged once per burst, not per failure:\n{}",
        log.join("\n")
    );
}

#[test]
fn sigterm_with_five_hundred_connections_ends_every_thread_within_a_second() {
    let mut server = Server::start(&[]);
    let mut streams: Vec<TcpStream> = (0..500).map(|_| connect(server.addr)).collect();
    for stream in &mut streams {
        assert_eq!(read_n(stream, 8), b"Welcome!");
    }
    let pid = server.pid();
    assert!(common::threads(pid) > 500);
    let last = streams[499].local_addr().unwrap();
    server.wait_for_log(&format!("Accept new connection from {last}"));
    let started = Instant::now();
    let status = server.signal_and_wait("TERM", Duration::from_secs(1));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Its exit closed whatever it still held: the log tells what it closed while it ran.
    server.wait_for_log("Server stopped after serving 500 connections");
    server.assert_closed_before_stopping(&streams);
}

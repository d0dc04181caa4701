//! The tutorial's lesson on threads, on the real server: a thread for every connection
//! against `--serial` (one at a time on the accepting thread), the listen backlog of
//! `--backlog` as the kernel reports it and as clients meet it, and the log lines that say
//! which thread serves each connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, connect, greeted, read_n, read_to_close, round_trip, Server, STEP};

/// Three clients connect at once; each, on a thread of its own, reads the greeting, sends
/// its name and reads the reply. When each reply came, counted from the first connect.
fn three_clients(server: &Server) -> Vec<Duration> {
    let start = Instant::now();
    let streams: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            thread::spawn(move || {
                assert_eq!(read_n(&mut stream, 8), b"Welcome!");
                let name = format!("client-{i}");
                round_trip(
                    &mut stream,
                    name.as_bytes(),
                    format!("Hello, {name}!").as_bytes(),
                );
                let answered = start.elapsed();
                stream.write_all(b"exit").unwrap();
                assert_eq!(read_to_close(&mut stream), b"");
                answered
            })
        })
        .collect();
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

#[test]
fn serial_answers_three_clients_one_after_another_and_threads_answer_them_together() {
    let delay = Duration::from_millis(300);
    let serial = Server::start(&["--serial", "--delay", "300ms"]);
    let times = three_clients(&serial);
    let last = times.iter().max().unwrap();
    // Three waits of 300 ms, one after the other.
    assert!(*last >= delay * 3 - Duration::from_millis(10), "{times:?}");
    assert!(*last < STEP, "{times:?}");

    let threaded = Server::start(&["--delay", "300ms"]);
    let times = three_clients(&threaded);
    for answered in &times {
        assert!(
            *answered >= delay - Duration::from_millis(10) && *answered < delay * 8 / 3,
            "{times:?}"
        );
    }
}

#[test]
fn the_log_says_which_thread_serves_each_connection_and_how_many_are_open() {
    let mut server = Server::start(&[]);
    let mut first = greeted(&server);
    let one = first.local_addr().unwrap();
    server.wait_for_log(&format!(
        "Accept new connection from {one}... (thread hello-conn-1, 1 open)"
    ));
    let second = greeted(&server);
    let two = second.local_addr().unwrap();
    server.wait_for_log(&format!(
        "Accept new connection from {two}... (thread hello-conn-2, 2 open)"
    ));
    first.write_all(b"exit").unwrap();
    // Closed at once: the server need not wait for it to go after `exit`.
    drop(first);
    server.wait_for_log(&format!(
        "Connection from {one} closed. (thread hello-conn-1, 1 open)"
    ));

    let mut serial = Server::start(&["--serial"]);
    let mut client = greeted(&serial);
    let local = client.local_addr().unwrap();
    serial.wait_for_log(&format!(
        "Accept new connection from {local}... (thread main, 1 open)"
    ));
    client.write_all(b"exit").unwrap();
    drop(client);
    serial.wait_for_log(&format!(
        "Connection from {local} closed. (thread main, 0 open)"
    ));
}

/// The Send-Q that `ss -ltn` shows for the listener on `addr`: its backlog.
fn send_q(addr: SocketAddr) -> usize {
    let output = Command::new("ss")
        .args(["-ltn", &format!("sport = :{}", addr.port())])
        .output()
        .expect("run ss");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("LISTEN") && l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("no listener on {addr} in\n{text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn the_backlog_is_what_ss_shows_as_send_q() {
    if !common::have("ss") {
        return;
    }
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(4096);
    let default = Server::start(&[]);
    assert_eq!(send_q(default.addr), 1024.min(somaxconn));
    let five = Server::start(&["--serial", "--backlog", "5"]);
    assert_eq!(send_q(five.addr), 5);
}

#[test]
fn with_serial_and_a_backlog_of_one_clients_queue_and_then_are_turned_away() {
    let server = Server::start(&["--serial", "--backlog", "1"]);
    let mut first = greeted(&server);
    // Queued by the kernel: connected, but not greeted while the first is served.
    let mut second = connect(server.addr);
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let waited = second.read(&mut [0; 8]);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
        "a queued client was answered: {waited:?}"
    );
    // The queue holds about what the backlog says; a connect beyond it is not completed
    // (the kernel drops its SYN) or is refused.
    let mut queued = Vec::new();
    let turned_away = (0..8).find_map(|_| {
        match TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)) {
            Ok(stream) => {
                queued.push(stream);
                None
            }
            Err(err) => Some(err),
        }
    });
    let err = turned_away.expect("eight connects beyond a backlog of one all completed");
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused
        ),
        "{err:?}"
    );
    // Once the first leaves, the next in the queue is greeted.
    first.write_all(b"exit").unwrap();
    assert_eq!(read_to_close(&mut first), b"");
    drop(first);
    second.set_read_timeout(Some(STEP)).unwrap();
    assert_eq!(read_n(&mut second, 8), b"Welcome!");
}

//! `sockdemo client` against the tutorial's Python server, our own server, and in-test peers
//! that split, delay, cut short or get wrong their replies.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::peer::Peer;
use crate::common::{self, read_n, run, run_with_input, sockdemo, stderr, stdout, Server, STEP};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
const TUTORIAL_OUTPUT: &str = "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n";

fn client(port: u16, extra: &[&str]) -> Command {
    let mut cmd = sockdemo(["client", "--port", &port.to_string()]);
    cmd.args(extra);
    cmd
}

#[test]
fn against_the_tutorials_server_it_prints_the_tutorial_lines() {
    let mut python = Command::new("python3");
    python
        .arg(format!("{PEERS}/tutorial_server.py"))
        .args(["127.0.0.1", "0", "0.05"]);
    let server = Server::spawn(python);
    let output = run(
        &mut client(server.addr.port(), &["Michael", "Tracy", "Sarah"]),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), TUTORIAL_OUTPUT);
}

#[test]
fn against_our_server_it_prints_the_tutorial_lines() {
    let server = Server::start(&[]);
    let output = run(
        &mut client(server.addr.port(), &["Michael", "Tracy", "Sarah"]),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), TUTORIAL_OUTPUT);
}

#[test]
fn names_come_from_stdin_when_none_are_given() {
    let server = Server::start(&[]);
    let output = run_with_input(
        &mut client(server.addr.port(), &[]),
        b"Michael\n\nTracy\r\nSarah\nexit\nNobody\n",
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), TUTORIAL_OUTPUT);
}

#[test]
fn a_name_is_resolved() {
    let server = Server::start(&[]);
    let output = run(
        &mut client(server.addr.port(), &["--host", "localhost", "Ann"]),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Welcome!\nHello, Ann!\n");
}

#[test]
fn every_address_is_tried_in_turn() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [closed, open.local_addr().unwrap()];
    let stream = sockdemo::net::connect_any(&addrs, STEP, None).expect("second address answers");
    assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
}

#[test]
fn connection_refused_names_the_address_and_the_server() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = run(&mut client(closed.port(), &["x"]), STEP);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("error: cannot connect to {closed}: connection refused (is `sockdemo serve` running?)\n")
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn a_reply_in_three_delayed_segments_is_printed_whole() {
    let peer = Peer::one(|mut s| {
        for piece in [b"Wel".as_slice(), b"come!"] {
            s.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(read_n(&mut s, 7), b"Michael");
        for piece in [b"Hel".as_slice(), b"lo, Mic", b"hael!"] {
            s.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(read_n(&mut s, 4), b"exit");
    });
    let output = run(&mut client(peer.port(), &["Michael"]), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Welcome!\nHello, Michael!\n");
    peer.finish();
}

#[test]
fn a_five_thousand_byte_name_is_printed_whole() {
    let name = "n".repeat(5000);
    let expected = format!("Hello, {name}!");
    let peer = Peer::one(move |mut s| {
        s.write_all(b"Welcome!").unwrap();
        let got = read_n(&mut s, 5000);
        s.write_all(format!("Hello, {}!", String::from_utf8(got).unwrap()).as_bytes())
            .unwrap();
        assert_eq!(read_n(&mut s, 4), b"exit");
    });
    let output = run(&mut client(peer.port(), &[&name]), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("Welcome!\n{expected}\n"));
    peer.finish();
}

#[test]
fn a_server_that_closes_early_is_an_error() {
    let peer = Peer::one(|mut s| {
        s.write_all(b"Welcome!").unwrap();
        let _ = read_n(&mut s, 5);
    });
    let output = run(&mut client(peer.port(), &["Tracy"]), STEP);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "Welcome!\n");
    assert_eq!(
        stderr(&output),
        format!(
            "error: {} closed the connection before the reply was complete\n",
            peer.addr
        )
    );
    peer.finish();
}

#[test]
fn a_wrong_reply_is_an_error_not_a_hang() {
    let peer = Peer::one(|mut s| {
        s.write_all(b"Welcome!").unwrap();
        let _ = read_n(&mut s, 5);
        s.write_all(b"Hi!").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let started = Instant::now();
    let output = run(&mut client(peer.port(), &["Sarah"]), STEP);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).starts_with(&format!("error: unexpected reply from {}", peer.addr)));
    peer.finish();
}

#[test]
fn a_silent_server_times_out() {
    let peer = Peer::one(|mut s| {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let started = Instant::now();
    let output = run(&mut client(peer.port(), &["--timeout", "500ms", "x"]), STEP);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot read the greeting from {}: timed out\n",
            peer.addr
        )
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    peer.finish();
}

#[test]
fn a_terminal_gets_a_prompt_for_each_name() {
    if !common::have("script") {
        return;
    }
    let server = Server::start(&[]);
    // script(1) runs the client on a pseudo-terminal and copies what it shows to stdout.
    let client = format!("{} client --port {}", common::BIN, server.addr.port());
    let output = run_with_input(
        Command::new("script").args(["-qec", &client, "/dev/null"]),
        b"Michael\nexit\n",
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let screen = stdout(&output).replace('\r', "");
    assert!(
        screen.contains("Welcome!\nname> Hello, Michael!\nname> "),
        "{screen:?}"
    );
}

#[test]
fn an_empty_name_or_one_with_a_line_ending_is_a_usage_error_before_anything_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for bad in ["", "Tracy\n", "a\nb", "Sarah\r"] {
        let output = run(&mut client(port, &["--timeout", "0", "Michael", bad]), STEP);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(err.starts_with("error: invalid value"), "{bad:?}: {err}");
        assert!(
            err.contains("a name cannot be empty") || err.contains("a line ending"),
            "{bad:?}: {err}"
        );
        assert_eq!(stdout(&output), "");
    }
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the client connected: {accepted:?}"
    );
}

#[test]
fn a_reply_dripped_a_byte_at_a_time_is_bounded_by_the_timeout_as_a_whole() {
    let peer = Peer::one(|mut s| {
        s.write_all(b"Welcome!").unwrap();
        assert_eq!(read_n(&mut s, 5), b"Sarah");
        // Each byte well inside the timeout; the reply as a whole far beyond it.
        for byte in b"Hello, Sarah!" {
            if s.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(250));
        }
    });
    let started = Instant::now();
    let output = run(
        &mut client(peer.port(), &["--timeout", "1s", "Sarah"]),
        STEP,
    );
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot read the reply from {}: timed out\n",
            peer.addr
        )
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    peer.finish();
}

#[test]
fn a_stdin_line_longer_than_the_servers_limit_is_refused_as_it_arrives() {
    let server = Server::start(&[]);
    let mut child = client(server.addr.port(), &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the client");
    // A megabyte without a newline, and stdin kept open after it: a client that waited for
    // the end of the line would wait (and grow) for ever; it must give up at 64 KiB.
    let mut stdin = child.stdin.take().expect("stdin");
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&vec![b'x'; 1024 * 1024]);
        let _ = finished.recv_timeout(STEP);
    });
    let output = common::wait_output(child, STEP);
    drop(done);
    writer.join().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Welcome!\n");
    assert_eq!(
        stderr(&output),
        "error: cannot read a name from stdin: a line is longer than 65536 bytes, \
         the server's limit\n"
    );
    // A name of exactly the limit, sent as a line, still goes through.
    let name = "n".repeat(65536);
    let output = run_with_input(
        &mut client(server.addr.port(), &["--lines"]),
        format!("{name}\r\n").as_bytes(),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("Welcome!\nHello, {name}!\n"));
}

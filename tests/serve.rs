//! `sockdemo serve` over real sockets: the tutorial's exchange, line mode, hostile bytes,
//! concurrency, limits, timeouts and shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::netns::Netns;
use crate::common::{
    self, connect, greeted, read_n, read_to_close, read_to_hang_up, round_trip, run, sockdemo,
    stderr, Server, STEP,
};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");

#[test]
fn tutorial_client_gets_the_tutorial_lines() {
    let server = Server::start(&[]);
    let output = run(
        Command::new("python3")
            .arg(format!("{PEERS}/tutorial_client.py"))
            .arg(server.port()),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        common::stdout(&output),
        "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
    );
}

#[test]
fn every_connection_is_logged_open_and_closed() {
    let mut server = Server::start(&[]);
    let mut stream = greeted(&server);
    let local = stream.local_addr().unwrap();
    server.wait_for_log(&format!("Accept new connection from {local}..."));
    stream.write_all(b"exit").unwrap();
    assert_eq!(read_to_close(&mut stream), b"");
    server.wait_for_log(&format!("Connection from {local} closed."));
    assert!(server
        .log()
        .iter()
        .any(|l| l.contains("Waiting for connection...")));
}

#[test]
fn several_lines_in_one_segment_get_one_reply_each() {
    let server = Server::start(&[]);
    let mut stream = greeted(&server);
    round_trip(
        &mut stream,
        b"a\nb\nc\n",
        b"Hello, a!\nHello, b!\nHello, c!\n",
    );
}

#[test]
fn line_split_across_segments_is_one_message() {
    let server = Server::start(&[]);
    let mut stream = greeted(&server);
    stream.set_nodelay(true).unwrap();
    round_trip(&mut stream, b"start\n", b"Hello, start!\n");
    for piece in [b"Mi".as_slice(), b"cha", b"el\r", b"\nTra", b"cy\n"] {
        stream.write_all(piece).unwrap();
        // Let each piece leave as its own segment; the server must not answer a half line.
        thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(
        read_n(&mut stream, 31),
        b"Hello, Michael!\r\nHello, Tracy!\n"
    );
}

#[test]
fn crlf_is_kept_and_empty_lines_are_messages() {
    let server = Server::start(&[]);
    let mut stream = greeted(&server);
    round_trip(
        &mut stream,
        b"x\r\n\n\r\n",
        b"Hello, x!\r\nHello, !\nHello, !\r\n",
    );
}

#[test]
fn printf_into_netcat_style_input_gets_a_greeting_per_line() {
    let server = Server::start(&[]);
    let mut stream = greeted(&server);
    stream.write_all(b"a\nb\n").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut stream), b"Hello, a!\nHello, b!\n");
}

#[test]
fn a_line_over_64_kib_is_refused_and_only_that_client_is_closed() {
    let mut server = Server::start(&[]);
    let mut other = greeted(&server);
    let mut stream = greeted(&server);
    round_trip(&mut stream, b"ok\n", b"Hello, ok!\n");
    let long = vec![b'x'; 65 * 1024 + 1];
    // The server may close before all of it is sent; that is the point. It closes with
    // input unread, which the kernel turns into a reset rather than a FIN.
    let _ = stream.write_all(&long);
    let said = read_to_hang_up(&mut stream);
    assert_eq!(said, b"error: line longer than 65536 bytes\n");
    server.wait_for_log("line too long");
    round_trip(&mut other, b"still here\n", b"Hello, still here!\n");
}

#[test]
fn invalid_utf8_nul_and_control_bytes_are_echoed_exactly() {
    let server = Server::start(&[]);
    let mut stream = greeted(&server);
    round_trip(
        &mut stream,
        b"\xff\xfe\x00\x1b[2J",
        b"Hello, \xff\xfe\x00\x1b[2J!",
    );
    round_trip(
        &mut stream,
        b"\xc3\x28\x00\x07\n",
        b"Hello, \xc3\x28\x00\x07!\n",
    );
    round_trip(&mut stream, b"after\n", b"Hello, after!\n");
}

#[test]
fn exit_closes_without_a_reply() {
    let server = Server::start(&[]);
    let mut raw = greeted(&server);
    round_trip(&mut raw, b"Bob", b"Hello, Bob!");
    raw.write_all(b"exit").unwrap();
    assert_eq!(read_to_close(&mut raw), b"");

    let mut lines = greeted(&server);
    lines.write_all(b"a\nexit\nnot answered\n").unwrap();
    assert_eq!(read_to_close(&mut lines), b"Hello, a!\n");
}

#[test]
fn eof_closes_the_connection() {
    let mut server = Server::start(&[]);
    let stream = greeted(&server);
    let local = stream.local_addr().unwrap();
    drop(stream);
    server.wait_for_log(&format!("Connection from {local} closed."));
}

#[test]
fn the_server_survives_a_client_that_resets() {
    let mut server = Server::start(&[]);
    let output = run(
        Command::new("python3")
            .arg(format!("{PEERS}/reset.py"))
            .arg(server.port()),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    server.wait_for_log("closed.");
    let mut stream = greeted(&server);
    round_trip(&mut stream, b"next", b"Hello, next!");
    assert!(server.is_running(), "server exited");
}

#[test]
fn a_hundred_slow_replies_are_served_concurrently() {
    let server = Server::start(&["--delay", "200ms"]);
    let addr = server.addr;
    let started = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            thread::spawn(move || {
                let mut stream = connect(addr);
                assert_eq!(read_n(&mut stream, 8), b"Welcome!");
                let name = format!("client{i}");
                stream.write_all(name.as_bytes()).unwrap();
                let want = format!("Hello, {name}!");
                assert_eq!(read_n(&mut stream, want.len()), want.as_bytes());
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200),
        "{elapsed:?}: --delay ignored"
    );
    // One at a time would take 20 s.
    assert!(
        elapsed < Duration::from_secs(4),
        "{elapsed:?}: not concurrent"
    );
}

#[test]
fn at_max_connections_a_third_client_waits_until_one_leaves() {
    let mut server = Server::start(&["--max-connections", "2"]);
    let mut first = greeted(&server);
    let _second = greeted(&server);

    let mut third = connect(server.addr);
    server.wait_for_log("new clients wait");
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = third.read(&mut byte);
    assert!(
        early.is_err(),
        "third client served while two were open: {early:?}"
    );

    first.write_all(b"exit").unwrap();
    third.set_read_timeout(Some(STEP)).unwrap();
    assert_eq!(read_n(&mut third, 8), b"Welcome!");
    round_trip(&mut third, b"third", b"Hello, third!");
}

#[test]
fn an_idle_client_is_closed_and_an_active_one_is_not() {
    let mut server = Server::start(&["--idle-timeout", "1s"]);
    let mut idle = greeted(&server);
    let mut active = greeted(&server);
    let started = Instant::now();
    for i in 0..8 {
        thread::sleep(Duration::from_millis(250));
        round_trip(
            &mut active,
            format!("{i}\n").as_bytes(),
            format!("Hello, {i}!\n").as_bytes(),
        );
    }
    assert_eq!(read_to_close(&mut idle), b"");
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.wait_for_log("timed out");
    round_trip(&mut active, b"still\n", b"Hello, still!\n");
}

#[test]
fn idle_timeout_zero_keeps_a_silent_client() {
    let server = Server::start(&["--idle-timeout", "0"]);
    let mut idle = greeted(&server);
    idle.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        idle.read(&mut byte).is_err(),
        "closed although the idle timeout is off"
    );
    round_trip(&mut idle, b"awake", b"Hello, awake!");
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    // No idle timeout: once the server's thread for the hog is stuck in a write, it stays
    // stuck, and a server that let that hold up anyone else would never serve them.
    let server = Server::start(&["--idle-timeout", "0"]);
    let mut hog = greeted(&server);
    // Lines without end, never reading a reply, until a write has waited 300 ms: then the
    // buffers both ways are full and the server has stopped reading, stuck writing to it.
    hog.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = b"a\n".repeat(32 * 1024);
    let deadline = Instant::now() + STEP;
    loop {
        match hog.write_all(&chunk) {
            Ok(()) => assert!(
                Instant::now() < deadline,
                "the server kept reading from a client that never reads"
            ),
            Err(err) if common::is_timeout(&err) => break,
            Err(err) => panic!("the hog's write failed: {err}"),
        }
    }
    for i in 0..20 {
        let mut other = greeted(&server);
        let msg = format!("other{i}\n");
        let reply = format!("Hello, other{i}!\n");
        round_trip(&mut other, msg.as_bytes(), reply.as_bytes());
    }
}

#[test]
fn a_port_in_use_is_a_one_line_error() {
    let server = Server::start(&[]);
    let output = run(&mut sockdemo(["serve", "--port", &server.port()]), STEP);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: cannot listen on {}: address already in use (another program listens \
             there: --port 0 picks a free port, or choose another --port)",
            server.addr
        )
    );
}

#[test]
fn a_bad_host_is_a_one_line_error() {
    let output = run(
        &mut sockdemo(["serve", "--host", "no.such.host.invalid", "--port", "0"]),
        STEP,
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: cannot resolve no.such.host.invalid"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn sigint_with_open_connections_exits_zero_within_a_second() {
    for signal in ["INT", "TERM"] {
        let mut server = Server::start(&[]);
        let streams: Vec<TcpStream> = (0..5).map(|_| greeted(&server)).collect();
        let last = streams[4].local_addr().unwrap();
        server.wait_for_log(&format!("Accept new connection from {last}"));
        let started = Instant::now();
        let status = server.signal_and_wait(signal, Duration::from_secs(1));
        assert!(status.success(), "SIG{signal}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // Its exit has closed every socket it held, whatever it did before: only its log
        // tells whether it closed the connections itself while it still ran.
        server.wait_for_log("Server stopped after serving 5 connections");
        server.assert_closed_before_stopping(&streams);
    }
}

/// Shutdown as seen on the wire. With the server in this process, no exit closes its
/// sockets for it: each clean close below is the server's own, while it still runs.
#[test]
fn shutdown_closes_every_open_connection_while_the_server_still_runs() {
    use sockdemo::hello::server::{Config, Server};
    let server = Server::bind(Config {
        port: 0,
        ..Config::default()
    })
    .expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    let (stopped, served) = mpsc::channel();
    thread::spawn(move || stopped.send(server.run()));
    let mut streams: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut stream = connect(addr);
            assert_eq!(read_n(&mut stream, 8), b"Welcome!");
            stream
        })
        .collect();
    handle.shutdown();
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(read_to_close(stream), b"", "connection left open");
    }
    let served = served
        .recv_timeout(Duration::from_secs(1))
        .expect("run returns within a second of shutdown");
    assert_eq!(served, 5);
}

#[test]
fn ipv6_and_all_interfaces_work() {
    for host in ["::1", "0.0.0.0"] {
        let server = Server::start(&["--host", host]);
        let target = if host == "::1" {
            server.addr
        } else {
            format!("127.0.0.1:{}", server.port()).parse().unwrap()
        };
        let mut stream = connect(target);
        assert_eq!(read_n(&mut stream, 8), b"Welcome!");
        round_trip(&mut stream, b"v6", b"Hello, v6!");
    }
}

#[test]
fn netcat_gets_one_greeting_per_line() {
    if !common::have("nc") {
        return;
    }
    let server = Server::start(&[]);
    let output = common::run_with_input(
        Command::new("nc").args(["-q", "2", "127.0.0.1", &server.port()]),
        b"Alice\nBob\r\nexit\n",
        STEP,
    );
    assert_eq!(
        common::stdout(&output),
        "Welcome!Hello, Alice!\nHello, Bob!\r\n"
    );
}

/// Run in a network namespace of its own, where ports below 1024 are privileged whatever
/// the host says.
#[test]
fn a_privileged_port_without_the_right_says_so() {
    let Some(ns) = Netns::new() else {
        return;
    };
    ns.privileged_ports();
    let as_nobody = |args: &[&str]| {
        let mut cmd = ns.command("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::BIN,
        ]);
        cmd.args(args).env_remove("RUST_LOG");
        run(&mut cmd, STEP)
    };
    if !common::have("setpriv") {
        return;
    }
    let dropped = as_nobody(&["--version"]).status.success();
    if !common::require(dropped, "cannot run sockdemo as nobody (needs root)") {
        return;
    }
    let output = as_nobody(&["serve", "--port", "80"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: cannot listen on 127.0.0.1:80: permission denied \
         (ports below 1024 need root or CAP_NET_BIND_SERVICE)\n"
    );
}

#[test]
fn a_host_with_two_addresses_is_listened_on_at_both() {
    // A private mount namespace whose /etc/hosts gives one name both loopback addresses, as
    // `localhost` has on many systems.
    let dir = std::env::temp_dir().join(format!("sockdemo-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "::1 both.test\n127.0.0.1 both.test\n").unwrap();
    let probe = Command::new("unshare")
        .args(["--mount", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let ipv6 = !TcpStream::connect("[::1]:1")
        .is_err_and(|e| e.kind() != std::io::ErrorKind::ConnectionRefused);
    let why = "no mount namespace (unshare --mount) or no IPv6 loopback here";
    if !common::require(probe && ipv6, why) {
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$1\" serve --host both.test --port 0")
        .arg(&hosts)
        .arg(common::BIN)
        .env_remove("RUST_LOG");
    let mut server = Server::spawn(cmd);
    // Listening means the hosts file is mounted and read: it is not needed any more.
    let _ = std::fs::remove_dir_all(&dir);
    let second = server.wait_for_log("Listening on ");
    let second: std::net::SocketAddr = second
        .split("Listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let both = [server.addr, second];
    assert!(both[0].is_ipv6() && both[1].is_ipv4(), "{both:?}");
    assert_eq!(both[0].port(), both[1].port(), "{both:?}");
    for addr in both {
        let mut stream = connect(addr);
        assert_eq!(read_n(&mut stream, 8), b"Welcome!");
        round_trip(&mut stream, b"both", b"Hello, both!");
    }
    // The tutorial's client knows only 127.0.0.1.
    let output = run(
        Command::new("python3")
            .arg(format!("{PEERS}/tutorial_client.py"))
            .arg(server.port()),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn three_hundred_clients_at_one_connection_log_one_pause_not_one_per_client() {
    let mut server = Server::start(&["--max-connections", "1"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..300)
        .map(|i| {
            thread::spawn(move || {
                let mut stream = connect(addr);
                assert_eq!(read_n(&mut stream, 8), b"Welcome!");
                let name = format!("c{i}\n");
                round_trip(
                    &mut stream,
                    name.as_bytes(),
                    format!("Hello, c{i}!\n").as_bytes(),
                );
                stream.write_all(b"exit\n").unwrap();
                assert_eq!(read_to_close(&mut stream), b"");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    server.wait_for_log("accepting again");
    let log = server.log();
    let pauses = log
        .iter()
        .filter(|l| l.contains("new clients wait"))
        .count();
    let resumptions = log.iter().filter(|l| l.contains("accepting again")).count();
    // Once per episode: clients that trickle in may make a few, never one per client.
    assert!((1..=10).contains(&pauses), "{pauses} pause lines");
    assert!(resumptions <= pauses, "{resumptions} for {pauses} pauses");
}

#[test]
fn exit_with_bytes_behind_it_ends_with_fin_after_the_replies() {
    let server = Server::start(&[]);
    for _ in 0..20 {
        let mut stream = greeted(&server);
        // One write: two lines, exit, and more the server will not answer.
        let mut pipelined = b"a\nb\nexit\n".to_vec();
        pipelined.extend(b"more after exit\n".repeat(2000));
        stream.write_all(&pipelined).unwrap();
        let mut got = Vec::new();
        let outcome = stream.read_to_end(&mut got);
        assert!(
            outcome.is_ok(),
            "{outcome:?} after {got:?}: a reset, not a clean close"
        );
        assert_eq!(got, b"Hello, a!\nHello, b!\n");
    }
}

#[test]
fn a_delay_too_long_to_add_up_sleeps_instead_of_panicking() {
    let mut server = Server::start(&["--max-connections", "2", "--delay", "10000000000000000000"]);
    let mut stream = greeted(&server);
    // Two replies in one chunk: the delay is multiplied by two.
    stream.write_all(b"a\nb\n").unwrap();
    let local = stream.local_addr().unwrap();
    server.wait_for_log(&format!("Accept new connection from {local}"));
    server.assert_no_log_within("panicked", Duration::from_secs(1));
    // The sleeping connection holds its slot; the other is free (a greeting is not delayed).
    let _other = greeted(&server);
    assert!(server.is_running(), "server exited");
}

//! `--trace` on the real binary over real sockets: what each program traces is compared with
//! what crossed the socket, as the other end saw it (the server's own trace, a scripted HTTP
//! peer's bytes), and with the receive sizes each command promises.

use std::io::Write;
use std::net::SocketAddr;

use crate::common::http_peer::{Peer, Reply, TempDir};
use crate::common::trace::{self, events, is_log, split_label, streams, Event};
use crate::common::{
    self, greeted, read_to_close, round_trip, run, sockdemo, stderr, stdout, Server, STEP,
};

const TUTORIAL_OUTPUT: &str = "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n";

/// The address in `== connect LOCAL -> PEER`.
fn connected_from(event: &Event) -> SocketAddr {
    let rest = event
        .marker
        .strip_prefix("== connect ")
        .expect("a connect line");
    let (local, _) = rest.split_once(" -> ").expect("local -> peer");
    local.parse().expect("a socket address")
}

#[test]
fn client_trace_shows_each_send_and_receive_and_leaves_stdout_alone() {
    let mut server = Server::start(&["--trace", "--trace-bytes", "0"]);
    let output = run(
        sockdemo(["-q", "--trace", "--trace-bytes", "0", "client", "--port"])
            .arg(server.port())
            .args(["Michael", "Tracy", "Sarah"])
            // Neither -q nor RUST_LOG hides trace lines.
            .env("RUST_LOG", "off"),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), TUTORIAL_OUTPUT);
    let text = stderr(&output);
    assert!(text.lines().all(|l| !is_log(l)), "{text}");
    let events = events(&text);
    let local = connected_from(&events[0]);
    assert_eq!(
        events[0].marker,
        format!("== connect {local} -> {}", server.addr)
    );
    let michael = events
        .iter()
        .position(|e| e.marker == "=> send 7 bytes")
        .expect("a send of 7 bytes");
    assert_eq!(events[michael].bytes, b"Michael");
    assert_eq!(
        events.last().unwrap().marker,
        format!("== close {local} -> {}", server.addr)
    );
    let (sent, received) = streams(&events);
    assert_eq!(sent, b"MichaelTracySarahexit");
    // The server's trace of the same connection: what it sent is what the client received.
    server.wait_for_log(&format!("[{local}] == close"));
    let theirs = trace::of(
        &common::trace::events(&server.log().join("\n")),
        Some(&local.to_string()),
    );
    let (server_sent, server_received) = streams(&theirs);
    assert_eq!(received, server_sent);
    assert_eq!(sent, server_received);
    assert_eq!(
        received,
        b"Welcome!Hello, Michael!Hello, Tracy!Hello, Sarah!"
    );
    let total: usize = events.iter().filter_map(Event::received).sum();
    assert_eq!(total, server_sent.len());
}

/// An HTTP response of exactly `size` bytes, head included.
fn response_of(size: usize) -> Vec<u8> {
    let head = |n: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
    let mut body_len = size - head(size).len();
    while head(body_len).len() + body_len != size {
        body_len += 1;
    }
    let body = (0..body_len).map(|i| b"0123456789abcdef\n"[i % 17]);
    head(body_len)
        .into_bytes()
        .into_iter()
        .chain(body)
        .collect()
}

#[test]
fn fetch_trace_shows_each_receive_of_at_most_recv_size_bytes() {
    let response = response_of(5000);
    assert_eq!(response.len(), 5000);
    for recv_size in [1024, 7] {
        let peer = Peer::v4(vec![Reply::Bytes(response.clone())]);
        let dir = TempDir::new("trace-fetch");
        let page = dir.join("page");
        let output = run(
            sockdemo(["-q", "--trace", "--trace-bytes", "0", "fetch"])
                .arg(peer.url("/page"))
                .arg("-o")
                .arg(&page)
                .args(["--recv-size", &recv_size.to_string()]),
            STEP,
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let events = events(&stderr(&output));
        let receives: Vec<usize> = events.iter().filter_map(Event::received).collect();
        assert!(
            receives.iter().all(|&n| (1..=recv_size).contains(&n)),
            "--recv-size {recv_size}: {receives:?}"
        );
        assert_eq!(receives.iter().sum::<usize>(), 5000, "{receives:?}");
        assert!(receives.len() >= 5000 / recv_size);
        let (sent, received) = streams(&events);
        assert_eq!(received, response);
        assert_eq!(sent, peer.request().as_bytes());
        let local = connected_from(&events[0]);
        assert_eq!(
            events[0].marker,
            format!("== connect {local} -> {}", peer.addr)
        );
        assert_eq!(
            events.last().unwrap().marker,
            format!("== close {local} -> {}", peer.addr)
        );
        let head = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(std::fs::read(&page).unwrap(), &response[head..]);
    }
}

#[test]
fn a_dump_stops_at_256_bytes_unless_told_otherwise() {
    let response = response_of(5000);
    let peer = Peer::v4(vec![Reply::Bytes(response)]);
    let dir = TempDir::new("trace-cut");
    let output = run(
        sockdemo(["-q", "--trace", "fetch"])
            .arg(peer.url("/page"))
            .arg("-o")
            .arg(dir.join("page")),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    let full = events(&text)
        .into_iter()
        .find(|e| e.received() == Some(1024))
        .expect("a full receive");
    assert_eq!(full.bytes.len(), 256);
    assert!(full.cut);
    assert!(text.contains("... 768 more bytes not shown (--trace-bytes 0 shows all)"));
}

#[test]
fn trace_bytes_without_trace_is_a_usage_error() {
    let output = run(&mut sockdemo(["--trace-bytes", "3", "demo", "hello"]), STEP);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("error:"), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
}

#[test]
fn serve_trace_marks_every_line_with_its_peer_and_keeps_each_conversation_whole() {
    let mut server = Server::start(&["--trace", "--trace-bytes", "0"]);
    let mut clients: Vec<_> = (0..3).map(|_| greeted(&server)).collect();
    let locals: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    // Round robin, so that the three conversations' lines interleave in the log.
    for round in 0..3 {
        for (i, client) in clients.iter_mut().enumerate() {
            let message = format!("c{i}-r{round}");
            round_trip(
                client,
                message.as_bytes(),
                format!("Hello, {message}!").as_bytes(),
            );
        }
    }
    for mut client in clients {
        client.write_all(b"exit").unwrap();
        assert_eq!(read_to_close(&mut client), b"");
    }
    for _ in &locals {
        server.wait_for_log("] == close ");
    }
    let log = server.log();
    let labels: Vec<String> = locals.iter().map(SocketAddr::to_string).collect();
    for line in log.iter().filter(|l| !is_log(l)) {
        let (label, _) = split_label(line);
        assert!(
            label.is_some_and(|l| labels.iter().any(|x| x == l)),
            "a trace line without its peer: {line:?}"
        );
    }
    let events = events(&log.join("\n"));
    for (i, label) in labels.iter().enumerate() {
        let mine = trace::of(&events, Some(label));
        assert_eq!(
            mine[0].marker,
            format!("== accept {} <- {label}", server.addr)
        );
        assert_eq!(
            mine.last().unwrap().marker,
            format!("== close {} <- {label} (peer sent exit)", server.addr)
        );
        let (sent, received) = streams(&mine);
        let messages: String = (0..3).map(|r| format!("c{i}-r{r}")).collect();
        let replies: String = (0..3).map(|r| format!("Hello, c{i}-r{r}!")).collect();
        assert_eq!(String::from_utf8(received).unwrap(), messages + "exit");
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "Welcome!".to_string() + &replies
        );
    }
}

#[test]
fn behind_a_proxy_header_the_lines_carry_the_client_it_names() {
    let mut server = Server::start(&["--proxy-protocol", "--trace", "--trace-bytes", "0"]);
    let mut stream = common::connect(server.addr);
    let local = stream.local_addr().unwrap();
    let header = format!(
        "PROXY TCP4 203.0.113.7 127.0.0.1 4242 {}\r\n",
        server.port()
    );
    stream.write_all(header.as_bytes()).unwrap();
    assert_eq!(common::read_n(&mut stream, 8), b"Welcome!");
    round_trip(&mut stream, b"Michael", b"Hello, Michael!");
    stream.write_all(b"exit").unwrap();
    assert_eq!(read_to_close(&mut stream), b"");
    drop(stream);
    server.wait_for_log("[203.0.113.7:4242] == close ");
    let events = events(&server.log().join("\n"));
    let before = trace::of(&events, Some(&local.to_string()));
    assert_eq!(
        before[0].marker,
        format!("== accept {} <- {local}", server.addr)
    );
    let (_, header_received) = streams(&before);
    assert_eq!(header_received, header.as_bytes());
    let after = trace::of(&events, Some("203.0.113.7:4242"));
    assert_eq!(
        after[0].marker,
        format!("== proxy protocol header from {local}: client 203.0.113.7:4242")
    );
    let (sent, received) = streams(&after);
    assert_eq!(sent, b"Welcome!Hello, Michael!");
    assert_eq!(received, b"Michaelexit");
    assert_eq!(
        after.last().unwrap().marker,
        format!("== close {} <- {local} (peer sent exit)", server.addr)
    );
}

#[test]
fn bench_trace_marks_each_connection_with_its_own_address() {
    let server = Server::start(&[]);
    let output = run(
        sockdemo([
            "--trace",
            "--trace-bytes",
            "0",
            "bench",
            "-c",
            "2",
            "-n",
            "3",
            "--port",
        ])
        .arg(server.port()),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("messages       6"));
    let text = stderr(&output);
    assert!(text.contains("--trace slows every round trip"));
    let events = events(&text);
    let mut labels: Vec<String> = events.iter().filter_map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 2, "{labels:?}");
    for label in &labels {
        let mine = trace::of(&events, Some(label));
        assert_eq!(
            mine[0].marker,
            format!("== connect {label} -> {}", server.addr)
        );
        let (sent, received) = streams(&mine);
        let sent = String::from_utf8(sent).unwrap();
        let name = &sent[..7];
        assert_eq!(sent, name.repeat(3) + "exit");
        let reply = format!("Hello, {name}!");
        assert_eq!(
            received,
            ("Welcome!".to_string() + &reply.repeat(3)).as_bytes()
        );
    }
}

#[test]
fn the_trace_reader_reads_back_labels_markers_and_rows() {
    let text = "\
[2026-11-26T10:28:02.522Z INFO ] Listening on 127.0.0.1:38779
[127.0.0.1:44190] == accept 127.0.0.1:38779 <- 127.0.0.1:44190
[127.0.0.1:44190] => send 17 bytes
[127.0.0.1:44190] 0000: 57 65 6c 63 6f 6d 65 21 57 65 6c 63 6f 6d 65 21  Welcome!Welcome!
[127.0.0.1:44191] <= recv 2 bytes
[127.0.0.1:44191] 0000: 0a 21                                            .!
[127.0.0.1:44190] 0010: 30                                               0
<= recv 40 bytes
0000: 61 62 63                                         abc
... 37 more bytes not shown (--trace-bytes 0 shows all)
";
    let events = events(text);
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0].marker,
        "== accept 127.0.0.1:38779 <- 127.0.0.1:44190"
    );
    assert_eq!(events[1].bytes, b"Welcome!Welcome!0");
    assert_eq!(events[1].sent(), Some(17));
    assert_eq!(events[2].bytes, b"\n!");
    assert_eq!(events[2].label.as_deref(), Some("127.0.0.1:44191"));
    assert_eq!((events[3].label.clone(), events[3].cut), (None, true));
    assert_eq!(events[3].received(), Some(40));
}

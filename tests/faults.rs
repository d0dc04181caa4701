//! Everything across a bad network: a fault-injecting proxy splits every write into pieces
//! down to one byte, jitters and stalls them, and cuts or resets connections. Replies must
//! still be exact, and failures must be clean.

mod common;

use std::process::Command;
use std::thread;

use common::proxy::{Plan, Proxy};
use common::{run, sockdemo, stderr, stdout, Server, STEP};

const NAMES: [&str; 5] = ["Michael", "Tracy", "Sarah", "\u{4e2d}\u{6587}", "x y z"];

fn client_through(proxy: &Proxy, extra: &[&str]) -> Command {
    let mut cmd = sockdemo(["client", "--port", &proxy.addr.port().to_string()]);
    cmd.args(extra).args(NAMES);
    cmd
}

fn expected_output() -> String {
    let mut want = String::from("Welcome!\n");
    for name in NAMES {
        want.push_str(&format!("Hello, {name}!\n"));
    }
    want
}

#[test]
fn fifty_line_mode_clients_across_a_choppy_network_get_exact_replies() {
    let server = Server::start(&[]);
    for seed in [1, 2] {
        let proxy = Proxy::start(server.addr, Plan::choppy(seed));
        let sessions: Vec<_> = (0..50)
            .map(|_| {
                let mut cmd = client_through(&proxy, &["--lines"]);
                thread::spawn(move || run(&mut cmd, STEP))
            })
            .collect();
        for session in sessions {
            let output = session.join().unwrap();
            assert!(output.status.success(), "seed {seed}: {}", stderr(&output));
            assert_eq!(stdout(&output), expected_output(), "seed {seed}");
        }
    }
}

#[test]
fn raw_replies_split_to_single_bytes_are_reassembled() {
    // Raw messages are framed by the server's receives, so only the way back is split here:
    // the client must put every reply back together.
    let server = Server::start(&[]);
    let plan = Plan {
        max_piece: 1,
        split_upstream: false,
        ..Plan::choppy(7)
    };
    let proxy = Proxy::start(server.addr, plan);
    let output = run(&mut client_through(&proxy, &[]), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), expected_output());
}

#[test]
fn a_connection_cut_mid_reply_is_a_clean_error() {
    use common::proxy::Fault;
    let server = Server::start(&[]);
    for fault in [Fault::Cut(12), Fault::Reset(12), Fault::HalfClose(12)] {
        let plan = Plan {
            fault,
            ..Plan::choppy(3)
        };
        let proxy = Proxy::start(server.addr, plan);
        let output = run(&mut client_through(&proxy, &["--lines"]), STEP);
        assert_eq!(output.status.code(), Some(1), "{fault:?}");
        assert_eq!(stdout(&output), "Welcome!\n", "{fault:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{fault:?}: {err}"
        );
    }
}

#[test]
fn bench_with_twenty_clients_across_a_choppy_network_has_no_errors() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(server.addr, Plan::choppy(11));
    let port = proxy.addr.port().to_string();
    let output = run(
        &mut sockdemo([
            "bench", "--port", &port, "--lines", "-c", "20", "-n", "50", "--json",
        ]),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json = stdout(&output);
    assert!(json.contains("\"messages\":1000,"), "{json}");
    assert!(json.contains("\"errors\":0,"), "{json}");
}

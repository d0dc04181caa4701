//! Everything across a bad network: a fault-injecting proxy splits every write into pieces
//! down to one byte, jitters and stalls them, and cuts or resets connections. Replies must
//! still be exact, and failures must be clean.

use std::process::Command;
use std::thread;

use crate::common::proxy::{Plan, Proxy};
use crate::common::{self, run, sockdemo, stderr, stdout, Server, STEP};

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

mod fetch {
    //! `sockdemo fetch` across the proxy: an 8 MiB file from `python3 -m http.server` and a
    //! chunked body from a peer of ours come out byte for byte, and a connection cut, reset,
    //! half-closed or silenced half-way fails cleanly, within `--timeout`, leaving no file.

    use std::fs;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::Output;
    use std::time::{Duration, Instant};

    use sockdemo::testing::{chunked_response, Rng};

    use crate::common::http_peer::{holds_noise, Noise, Peer, PythonServer, Reply, TempDir};
    use crate::common::proxy::{Fault, Plan, Proxy};
    use crate::common::{run, sockdemo, stderr, STEP};

    const BIG: usize = 8 << 20;
    const SEEDS: [u64; 3] = [1, 2, 3];

    fn fetch_in(dir: &Path, args: &[&str]) -> Output {
        let mut cmd = sockdemo(["fetch"]);
        cmd.args(args).current_dir(dir);
        run(&mut cmd, STEP)
    }

    /// `python3 -m http.server` serving `big.bin`, [`BIG`] bytes of noise from seed 8.
    fn python_serving_noise(served: &TempDir) -> (PythonServer, SocketAddr) {
        fs::write(served.join("big.bin"), Noise::bytes(8, BIG)).unwrap();
        let server = PythonServer::start(served.path());
        let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
        (server, addr)
    }

    /// `body` as a chunked response, in chunks of 1 byte to 40,000 (see
    /// [`chunked_response`] for the rest of what varies).
    fn chunked(body: &[u8], seed: u64) -> Reply {
        Reply::Bytes(chunked_response(&mut Rng::new(seed), body, 40_000))
    }

    #[test]
    fn an_8_mib_file_from_python_http_server_arrives_byte_exact_for_every_seed() {
        let served = TempDir::new("bad-net-served");
        let (_server, upstream) = python_serving_noise(&served);
        for seed in SEEDS {
            let proxy = Proxy::start(upstream, Plan::bulk(seed));
            let dir = TempDir::new("bad-net-8mib");
            let output = fetch_in(dir.path(), &[&format!("http://{}/big.bin", proxy.addr)]);
            assert!(output.status.success(), "seed {seed}: {}", stderr(&output));
            assert!(
                holds_noise(&dir.join("big.bin"), 8, BIG as u64),
                "seed {seed}: the copy differs"
            );
        }
    }

    #[test]
    fn a_chunked_body_arrives_byte_exact_for_every_seed() {
        for seed in SEEDS {
            // A large body in bulk pieces, and a small one down to single bytes.
            for (plan, len, recv_size) in [
                (Plan::bulk(seed), 300_000 + seed as usize, "1024"),
                (Plan::choppy(seed), 6_000 + seed as usize, "7"),
            ] {
                let body = Noise::bytes(seed, len);
                let peer = Peer::v4(vec![chunked(&body, seed)]);
                let proxy = Proxy::start(peer.addr, plan);
                let dir = TempDir::new("bad-net-chunked");
                let url = format!("http://{}/c.bin", proxy.addr);
                let output = fetch_in(dir.path(), &["--recv-size", recv_size, &url]);
                assert!(output.status.success(), "seed {seed}: {}", stderr(&output));
                assert!(
                    holds_noise(&dir.join("c.bin"), seed, len as u64),
                    "seed {seed}, {len} bytes: the copy differs"
                );
            }
        }
    }

    /// Each fault half-way through the 8 MiB: curl's exit status for it (18 cut short,
    /// 56 reset, 28 timed out) with one error line, within
    /// `--timeout` (plus a loose allowance for a loaded machine), no file left behind and an
    /// existing file untouched.
    #[test]
    fn a_fetch_cut_half_way_fails_within_the_timeout_and_leaves_no_file() {
        const TIMEOUT: Duration = Duration::from_secs(2);
        const ALLOWANCE: Duration = Duration::from_secs(10);
        let served = TempDir::new("cut-served");
        let (_server, upstream) = python_serving_noise(&served);
        let at = (3 << 20) + 12_345;
        let faults = [
            (Fault::Cut(at), "the body ended after", 18),
            (Fault::Reset(at), "cannot read from", 56),
            (Fault::HalfClose(at), "the body ended after", 18),
            (Fault::Stall(at), "timed out", 28),
        ];
        for (fault, expected, code) in faults {
            for keep in [false, true] {
                let plan = Plan {
                    fault,
                    ..Plan::bulk(at)
                };
                let proxy = Proxy::start(upstream, plan);
                let dir = TempDir::new("cut");
                let url = format!("http://{}/big.bin", proxy.addr);
                let mut args = vec!["--timeout", "2s", &url];
                if keep {
                    fs::write(dir.join("keep"), b"old").unwrap();
                    args.extend(["-o", "keep"]);
                }
                let started = Instant::now();
                let output = fetch_in(dir.path(), &args);
                let elapsed = started.elapsed();
                let err = stderr(&output);
                assert_eq!(output.status.code(), Some(code), "{fault:?}: {err}");
                assert!(
                    err.starts_with("error: ") && err.lines().count() == 1,
                    "{fault:?}: {err}"
                );
                assert!(err.contains(expected), "{fault:?}: {err}");
                assert!(elapsed < TIMEOUT + ALLOWANCE, "{fault:?}: {elapsed:?}");
                if matches!(fault, Fault::Stall(_)) {
                    assert!(elapsed >= TIMEOUT, "{fault:?}: {elapsed:?}");
                }
                let left: Vec<String> = if keep { vec!["keep".into()] } else { vec![] };
                assert_eq!(dir.names(), left, "{fault:?}");
                if keep {
                    assert_eq!(fs::read(dir.join("keep")).unwrap(), b"old");
                }
            }
        }
    }
}

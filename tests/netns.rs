//! Real packet-level segmentation: server and clients inside a network namespace whose
//! loopback has an MTU of 576 bytes (plus netem delay, loss and reordering where the kernel
//! has netem; this one may not, and the test says so instead of failing). Fetch runs there
//! too, against `python3 -m http.server` and a chunked peer, both inside the namespace.

use std::fs;
use std::thread;

use crate::common::http_peer::{holds_noise, Noise, PythonServer, TempDir};
use crate::common::netns::Netns;
use crate::common::{have, run, stderr, stdout, Server, STEP};

#[test]
fn clients_and_bench_at_mtu_576_get_exact_replies() {
    let Some(ns) = Netns::with_mtu(576) else {
        return;
    };
    ns.try_netem();
    let server = Server::spawn(ns.sockdemo(&["serve", "--port", "0"]));
    let port = server.port();

    // Long lines cross several segments each.
    let long = "n".repeat(3000);
    let sessions: Vec<_> = (0..20)
        .map(|i| {
            let name = format!("{long}{i}");
            let mut cmd = ns.sockdemo(&["client", "--port", &port, "--lines", "Michael", &name]);
            thread::spawn(move || (name, run(&mut cmd, STEP)))
        })
        .collect();
    for session in sessions {
        let (name, output) = session.join().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            stdout(&output),
            format!("Welcome!\nHello, Michael!\nHello, {name}!\n")
        );
    }

    let raw = run(
        &mut ns.sockdemo(&["client", "--port", &port, "Michael", "Tracy", "Sarah"]),
        STEP,
    );
    assert_eq!(
        stdout(&raw),
        "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
    );

    for mode in [None, Some("--lines")] {
        let mut args = vec!["bench", "--port", &port, "-c", "20", "-n", "100", "--json"];
        args.extend(mode);
        let output = run(&mut ns.sockdemo(&args), STEP);
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
        let json = stdout(&output);
        assert!(
            json.contains("\"messages\":2000,") && json.contains("\"errors\":0,"),
            "{json}"
        );
    }
}

/// A peer of ours for inside the namespace (a thread of the test cannot go there): serves
/// the file `argv[1]` once, chunked in sizes drawn from seed `argv[2]`, with extensions and
/// a trailer. Every wait is bounded.
const CHUNKED_PEER: &str = r#"
import random, socket, sys
data = open(sys.argv[1], "rb").read()
rng = random.Random(int(sys.argv[2]))
listener = socket.socket()
listener.settimeout(20)
listener.bind(("127.0.0.1", 0))
listener.listen(1)
sys.stderr.write("Listening on 127.0.0.1:%d\n" % listener.getsockname()[1])
sys.stderr.flush()
conn, _ = listener.accept()
conn.settimeout(20)
request = b""
while b"\r\n\r\n" not in request and len(request) < 65536:
    more = conn.recv(4096)
    if not more:
        break
    request += more
conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
at = 0
while at < len(data):
    part = data[at:at + rng.choice([1, 7, 100, 1500, 40000])]
    at += len(part)
    conn.sendall(b"%x;n=%d\r\n" % (len(part), at % 97) + part + b"\r\n")
conn.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
conn.close()
"#;

#[test]
fn fetch_at_mtu_576_saves_python_http_server_files_and_chunked_bodies_byte_exact() {
    if !have("python3") {
        return;
    }
    let Some(ns) = Netns::with_mtu(576) else {
        return;
    };
    ns.try_netem();
    const LEN: usize = 8 << 20;
    let served = TempDir::new("netns-served");
    fs::write(served.join("big.bin"), Noise::bytes(576, LEN)).unwrap();
    let server = PythonServer::spawn(ns.command("python3"), served.path());

    let dir = TempDir::new("netns-fetch");
    let url = format!("http://127.0.0.1:{}/big.bin", server.port);
    let mut fetch = ns.sockdemo(&["fetch", &url]);
    let output = run(fetch.current_dir(dir.path()), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(holds_noise(&dir.join("big.bin"), 576, LEN as u64));

    for seed in [1, 2, 3] {
        let len = 500_000 + seed as usize;
        let body = served.join(&format!("chunked-{seed}.bin"));
        fs::write(&body, Noise::bytes(seed, len)).unwrap();
        let mut cmd = ns.command("python3");
        cmd.args(["-u", "-c", CHUNKED_PEER])
            .arg(&body)
            .arg(seed.to_string());
        let peer = Server::spawn(cmd);
        let url = format!("http://{}/c.bin", peer.addr);
        let mut fetch = ns.sockdemo(&["fetch", &url]);
        let output = run(fetch.current_dir(dir.path()), STEP);
        assert!(output.status.success(), "seed {seed}: {}", stderr(&output));
        assert!(
            holds_noise(&dir.join("c.bin"), seed, len as u64),
            "seed {seed}: the copy differs"
        );
        fs::remove_file(dir.join("c.bin")).unwrap();
    }
}

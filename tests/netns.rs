//! Real packet-level segmentation: server and clients inside a network namespace whose
//! loopback has an MTU of 576 bytes (plus netem delay, loss and reordering where the kernel
//! has netem; this one may not, and the test says so instead of failing).

mod common;

use std::thread;

use common::netns::Netns;
use common::{run, stderr, stdout, Server, STEP};

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

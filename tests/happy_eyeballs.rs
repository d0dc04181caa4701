//! Happy Eyeballs through the real binary: inside a network namespace made by the test, the
//! name `dual.test` has an IPv6 address whose route leads nowhere (packets to it vanish, so
//! a connect to it hangs, as on a host with a broken IPv6 uplink) and the IPv4 address of a
//! `python3 -m http.server`. `ip netns exec` gives the namespace its own `hosts` file from
//! `/etc/netns/NAME/`, so the name resolves through the system resolver as any name would.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::http_peer::{PythonServer, TempDir};
use crate::common::netns::Netns;
use crate::common::{have, require, run, stderr, STEP};

/// The address with no one behind it.
const DEAD_V6: &str = "2001:db8::1";

/// A namespace where `dual.test` resolves to [`DEAD_V6`] first, then 127.0.0.1.
struct DualStack {
    ns: Netns,
    hosts_dir: PathBuf,
}

impl DualStack {
    fn new() -> Option<DualStack> {
        let ns = Netns::with_mtu(65536)?;
        let ip = |args: &[&str]| {
            let output = ns.command("ip").args(args).output().expect("run ip");
            let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
            output.status.success().then_some(()).ok_or(err)
        };
        // A veth pair whose far end drops every frame not addressed to it, and a permanent
        // neighbour entry with a MAC nobody has: the SYNs leave and nothing ever answers.
        if let Err(why) = ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]) {
            require(false, &format!("this kernel has no veth ({why})"));
            return None;
        }
        for args in [
            &["link", "set", "v0", "up"][..],
            &["link", "set", "v1", "up"],
            &["-6", "addr", "add", "2001:db8:1::2/64", "dev", "lo"],
            &["-6", "route", "add", "2001:db8::/64", "dev", "v0"],
            &[
                "-6",
                "neigh",
                "add",
                DEAD_V6,
                "lladdr",
                "02:00:00:00:00:01",
                "dev",
                "v0",
                "nud",
                "permanent",
            ],
        ] {
            ip(args).unwrap_or_else(|why| panic!("ip {args:?}: {why}"));
        }
        let hosts_dir = PathBuf::from("/etc/netns").join(&ns.name);
        fs::create_dir_all(&hosts_dir).expect("create the namespace's /etc directory");
        let hosts = format!("127.0.0.1 localhost\n{DEAD_V6} dual.test\n127.0.0.1 dual.test\n");
        fs::write(hosts_dir.join("hosts"), hosts).expect("write the namespace's hosts file");
        Some(DualStack { ns, hosts_dir })
    }
}

impl Drop for DualStack {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.hosts_dir);
        let _ = fs::remove_dir("/etc/netns");
    }
}

#[test]
fn a_dead_ipv6_route_costs_a_quarter_second_not_the_connect_timeout() {
    if !have("python3") {
        return;
    }
    let Some(dual) = DualStack::new() else {
        return;
    };
    let served = TempDir::new("eyeballs-served");
    fs::write(served.join("page.txt"), "over IPv4\n").unwrap();
    let server = PythonServer::spawn(dual.ns.command("python3"), served.path());
    let url = format!("http://dual.test:{}/page.txt", server.port);
    let dir = TempDir::new("eyeballs-fetch");

    // The IPv6 address really is dead: alone, it costs the whole connect timeout.
    let began = Instant::now();
    let mut only_v6 = dual
        .ns
        .sockdemo(&["fetch", "-6", "--connect-timeout", "1s", &url]);
    let output = run(only_v6.current_dir(dir.path()), STEP);
    assert!(began.elapsed() >= Duration::from_millis(900));
    assert_eq!(output.status.code(), Some(28), "{}", stderr(&output));
    let want = format!("cannot connect to [{DEAD_V6}]:{}: timed out", server.port);
    assert!(stderr(&output).contains(&want), "{}", stderr(&output));

    // Both families: IPv6 first (the resolver prefers it), IPv4 a quarter second later wins.
    let began = Instant::now();
    let mut both = dual
        .ns
        .sockdemo(&["-v", "fetch", "--connect-timeout", "10s", &url]);
    let output = run(both.current_dir(dir.path()), STEP);
    let took = began.elapsed();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(took < Duration::from_secs(3), "took {took:?}\n{log}");
    assert_eq!(
        fs::read_to_string(dir.join("page.txt")).unwrap(),
        "over IPv4\n"
    );
    let v6 = log.find(&format!("Connecting to [{DEAD_V6}]:"));
    let v4 = log.find("Connecting to 127.0.0.1:");
    assert!(
        v6.is_some() && v4.is_some() && v6 < v4,
        "IPv6 was not tried first:\n{log}"
    );
    assert!(
        log.contains(&format!("Connected to 127.0.0.1:{}", server.port)),
        "{log}"
    );
}

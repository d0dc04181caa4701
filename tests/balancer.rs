//! `sockdemo serve --proxy-protocol` behind the load balancers people run, across machines:
//! every host is a network namespace with an address of its own on one bridge (see
//! `common/lan.rs`). A client host, a balancer host (HAProxy from Debian, or nginx's stream
//! module) and backend hosts, so that "who is the client?" has three possible answers and
//! the backends' logs must give the right one.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::thread;

use crate::common::haproxy::{self, Haproxy};
use crate::common::lan::{Host, Lan};
use crate::common::nginx::{self, Nginx};
use crate::common::{run, stderr, stdout, wait_output, Server, STEP};

/// The hosts of every test: the client, the balancer, then the backends.
const CLIENT: usize = 0;
const BALANCER: usize = 1;
const FIRST_BACKEND: usize = 2;
/// Bench clients while a backend is killed.
const CLIENTS: usize = 8;

/// `sockdemo serve --proxy-protocol -v` on `host`, on a port the system picks.
fn backend(host: &Host) -> Server {
    let ip = host.ip.to_string();
    let args = [
        "serve",
        "--host",
        &ip,
        "--port",
        "0",
        "--proxy-protocol",
        "-v",
    ];
    Server::spawn(host.sockdemo(&args))
}

/// HAProxy on `host`, listening on a port of its own, relaying to `backends` with
/// `server_options` after `backend_options` (lines of its `backend` section).
fn haproxy(
    host: &Host,
    backends: &[Server],
    server_options: &str,
    backend_options: &str,
) -> Haproxy {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, server)| format!("    server b{i} {} {server_options}\n", server.addr))
        .collect();
    let config = format!(
        "frontend fe
    bind fd@${{LISTEN0}}
    default_backend hello
backend hello
    balance roundrobin
{backend_options}
{servers}"
    );
    Haproxy::start_in(&host.prefix(), &[&format!("{}:0", host.ip)], &config)
}

/// The lines of `log` that hold `needle`.
fn count_lines(log: &[String], needle: &str) -> usize {
    log.iter().filter(|line| line.contains(needle)).count()
}

/// One figure of `sockdemo bench --json` output.
fn figure(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {json}"))
}

/// Every `Accept new connection from` line names `client`, none the balancer or any other
/// host; only the balancer's health checks, logged at debug, name the balancer.
fn accepts_name(log: &[String], client: Ipv4Addr) {
    let want = format!("Accept new connection from {client}:");
    let wrong: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("Accept new connection from"))
        .filter(|line| !line.contains(&want))
        .filter(|line| !(line.contains("DEBUG") && line.contains(&balancer_ip())))
        .collect();
    assert!(wrong.is_empty(), "not the client's address: {wrong:?}");
}

/// The balancer's address on every test's LAN.
fn balancer_ip() -> String {
    format!("from {}:", Lan::address(BALANCER))
}

#[test]
fn haproxy_v2_spreads_a_bench_over_three_hosts_that_each_log_the_client() {
    if !haproxy::installed() {
        return;
    }
    let Some(lan) = Lan::new(5) else { return };
    let client = lan.host(CLIENT);
    let mut backends: Vec<Server> = lan.hosts[FIRST_BACKEND..].iter().map(backend).collect();
    let lb = haproxy(
        lan.host(BALANCER),
        &backends,
        "send-proxy-v2 check inter 200ms fall 3 rise 1",
        "    timeout check 2s",
    );
    // Health checks reach every backend, marked LOCAL: served at debug, not counted.
    for server in &mut backends {
        let line = server.wait_for_log(&format!("Health check from {}:", lan.host(BALANCER).ip));
        assert!(line.contains("DEBUG"), "{line}");
    }

    let port = lb.addr(0).port().to_string();
    let lb_ip = lan.host(BALANCER).ip.to_string();
    let args = [
        "bench", "--host", &lb_ip, "--port", &port, "-c", "50", "-n", "20", "--json",
    ];
    let output = run(&mut client.sockdemo(&args), STEP);
    let json = stdout(&output);
    assert!(output.status.success(), "{json}{}", stderr(&output));
    assert_eq!(figure(&json, "errors"), 0, "{json}");
    assert_eq!(figure(&json, "connections"), 50, "{json}");
    drop(lb);

    let mut served = Vec::new();
    for server in &mut backends {
        served.push(server.stop_and_count());
        let log = server.wait_for_eof();
        accepts_name(&log, client.ip);
        assert_eq!(
            count_lines(
                &log,
                &format!("INFO ] Accept new connection from {}:", client.ip)
            ),
            *served.last().unwrap() as usize,
            "every connection counted is one the client made: {log:?}"
        );
    }
    assert!(
        served.iter().all(|&n| n > 0),
        "every backend served some: {served:?}"
    );
    assert_eq!(served.iter().sum::<u64>(), 50, "{served:?}");
}

#[test]
fn haproxy_takes_out_a_backend_killed_during_a_reconnect_bench() {
    if !haproxy::installed() {
        return;
    }
    let Some(lan) = Lan::new(5) else { return };
    let client = lan.host(CLIENT);
    let mut backends: Vec<Server> = lan.hosts[FIRST_BACKEND..].iter().map(backend).collect();
    let mut lb = haproxy(
        lan.host(BALANCER),
        &backends,
        "send-proxy-v2 check inter 100ms fall 1 rise 1",
        "    option redispatch\n    retries 3\n    timeout connect 1s",
    );

    let port = lb.addr(0).port().to_string();
    let lb_ip = lan.host(BALANCER).ip.to_string();
    let args = [
        "bench",
        "--host",
        &lb_ip,
        "--port",
        &port,
        "-c",
        &CLIENTS.to_string(),
        "--reconnect",
        "--duration",
        "4s",
        "--json",
    ];
    let bench = client
        .sockdemo(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    let bench = thread::spawn(move || wait_output(bench, STEP));

    // In the middle of the run: once the victim has taken some of it.
    let mut victim = backends.remove(1);
    for _ in 0..30 {
        victim.wait_for_log(&format!("Accept new connection from {}:", client.ip));
    }
    victim.kill();
    lb.wait_for_log("hello/b1 is DOWN");
    let others_at_down = others_stot(&lb);

    let output = bench.join().expect("the bench thread");
    let json = stdout(&output);
    let errors = figure(&json, "errors");
    assert!(
        figure(&json, "connections") > 0,
        "{json}{}",
        stderr(&output)
    );

    // The connections open to b1, or being made to it, when it died: every connection its
    // host's kernel took (a SYN on its listener) and its server did not finish. Each one
    // finished is one line in its log: closed (clients, and health checks at debug) or
    // rejected. Nothing else can end in an error: HAProxy redispatches a connect that fails.
    let log = victim.wait_for_eof();
    let finished = count_lines(&log, " closed.") + count_lines(&log, "Rejected connection");
    let taken = passive_opens(lan.host(FIRST_BACKEND + 1));
    let cut = taken.saturating_sub(finished as u64);
    eprintln!(
        "b1 killed: bench {} connections, {errors} errors; b1 took {taken}, finished {finished}",
        figure(&json, "connections")
    );
    assert!(
        errors <= cut,
        "{errors} errors, but only {cut} connections were cut by the kill: {json}"
    );
    accepts_name(&log, client.ip);
    assert!(
        others_stot(&lb) > others_at_down,
        "the others went on serving after b1 was taken out"
    );
    assert_eq!(lb.server_stat("hello", "b1", "status"), "DOWN");
    drop(lb);
    for server in &mut backends {
        assert!(server.stop_and_count() > 0);
        accepts_name(&server.wait_for_eof(), client.ip);
    }
}

/// One counter of a server of backend `hello` in HAProxy's `show stat`.
fn stat(lb: &Haproxy, server: &str, field: &str) -> u64 {
    let value = lb.server_stat("hello", server, field);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{field} of {server}: {value:?}"))
}

/// Connections HAProxy has given the backends that were not killed.
fn others_stot(lb: &Haproxy) -> u64 {
    stat(lb, "b0", "stot") + stat(lb, "b2", "stot")
}

/// TCP connections `host`'s kernel has taken on a listener (`PassiveOpens`: SYNs that
/// reached a listening socket), from its namespace's own `/proc/net/snmp`.
fn passive_opens(host: &Host) -> u64 {
    let output = run(host.command("cat").arg("/proc/net/snmp"), STEP);
    let text = stdout(&output);
    let mut tcp = text.lines().filter(|line| line.starts_with("Tcp: "));
    let (names, values) = (
        tcp.next().expect("Tcp names"),
        tcp.next().expect("Tcp values"),
    );
    let at = names
        .split(' ')
        .position(|name| name == "PassiveOpens")
        .expect("PassiveOpens");
    let value = values.split(' ').nth(at).expect("a PassiveOpens value");
    value.parse().expect("PassiveOpens is a number")
}

/// The tutorial's client on the client host, through the balancer at `port`, and what the
/// backend logged.
fn tutorial_exchange(lan: &Lan, port: u16, backend: &mut Server) {
    let client = lan.host(CLIENT);
    let (lb_ip, port) = (lan.host(BALANCER).ip.to_string(), port.to_string());
    let args = [
        "client", "--host", &lb_ip, "--port", &port, "Michael", "Tracy", "Sarah",
    ];
    let output = run(&mut client.sockdemo(&args), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
    );
    backend.wait_for_log(&format!("Accept new connection from {}:", client.ip));
    backend.wait_for_log(" closed.");
    assert_eq!(backend.stop_and_count(), 1);
    accepts_name(&backend.wait_for_eof(), client.ip);
}

#[test]
fn haproxy_v1_names_the_client_to_a_backend_on_another_host() {
    if !haproxy::installed() {
        return;
    }
    let Some(lan) = Lan::new(3) else { return };
    let mut backends = vec![backend(lan.host(FIRST_BACKEND))];
    let lb = haproxy(lan.host(BALANCER), &backends, "send-proxy", "");
    tutorial_exchange(&lan, lb.addr(0).port(), &mut backends[0]);
}

#[test]
fn nginx_stream_proxy_protocol_names_the_client_to_a_backend_on_another_host() {
    if !nginx::installed() {
        return;
    }
    let Some(lan) = Lan::new(3) else { return };
    let mut server = backend(lan.host(FIRST_BACKEND));
    let balancer = lan.host(BALANCER);
    let stream = format!(
        "    server {{
        listen {{LISTEN0}};
        proxy_pass {};
        proxy_protocol on;
    }}",
        server.addr
    );
    let lb = Nginx::start_in(
        &balancer.prefix(),
        &[&format!("{}:0", balancer.ip)],
        &stream,
    );
    tutorial_exchange(&lan, lb.addr(0).port(), &mut server);
}

//! `sockdemo demo` and the README's step-by-step table: every lesson runs, alone and all
//! together, within its time, leaving nothing behind; and every command of the table runs and
//! shows what the table says to look at.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::netns::Netns;
use crate::common::trace::events;
use crate::common::{
    self, assert_address_in_use, run, sockdemo, stderr, stdout, succeeded, Server, STEP,
};
use sockdemo::testing::TempDir;

const TUTORIAL_OUTPUT: &str = "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n";

#[test]
fn demo_runs_every_lesson_in_the_tutorials_order_within_ten_seconds() {
    let started = Instant::now();
    let output = run(&mut sockdemo(["demo"]), STEP);
    let elapsed = started.elapsed();
    succeeded(&output);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let out = stdout(&output);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{out}"))
    };
    let fetch = at("--- Lesson 1 of 3: fetch");
    let header = at("HTTP/1.1 200 OK\r\n");
    let hello = at("--- Lesson 2 of 3: hello");
    let client = at(TUTORIAL_OUTPUT);
    let threads = at("--- Lesson 3 of 3: threads");
    let totals = at("last reply after");
    assert!(fetch < header && header < hello && hello < client && client < threads);
    assert!(threads < totals);
}

#[test]
fn each_lesson_runs_alone() {
    for (lesson, shows) in [
        ("fetch", "The loop took "),
        ("hello", TUTORIAL_OUTPUT),
        ("threads", "last reply after"),
    ] {
        let output = run(&mut sockdemo(["demo", lesson]), STEP);
        succeeded(&output);
        let out = stdout(&output);
        assert!(out.starts_with(&format!("--- {lesson}: ")), "{out}");
        assert!(
            out.contains(shows),
            "{lesson}: {shows:?} missing from\n{out}"
        );
        assert!(!out.contains("Lesson 2 of"), "{out}");
    }
}

#[test]
fn demo_fetch_counts_its_receives_and_leaves_no_file_behind() {
    let tmp = TempDir::new("demo-tmp");
    let cwd = TempDir::new("demo-cwd");
    let output = run(
        sockdemo(["demo", "fetch"])
            .env("TMPDIR", tmp.path())
            .current_dir(cwd.path()),
        STEP,
    );
    succeeded(&output);
    assert_eq!(
        tmp.names(),
        Vec::<String>::new(),
        "left in the temporary directory"
    );
    assert_eq!(
        cwd.names(),
        Vec::<String>::new(),
        "left in the current directory"
    );
    let out = stdout(&output);
    assert!(
        out.contains(&format!("{}/sockdemo-demo-", tmp.path().display())),
        "{out}"
    );
    // `The loop took 5 receives of at most 1024 bytes: 1024 + ... + 440 = 4536 bytes.`
    let line = out
        .lines()
        .find(|l| l.starts_with("The loop took "))
        .expect("the receive count");
    let count: usize = line["The loop took ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (terms, total) = line.split_once(": ").unwrap().1.split_once(" = ").unwrap();
    let sizes: Vec<usize> = terms.split(" + ").map(|t| t.parse().unwrap()).collect();
    let total: usize = total.trim_end_matches(" bytes.").parse().unwrap();
    assert_eq!(sizes.len(), count);
    assert!(
        count >= 4,
        "a page of a few KiB takes several receives: {line}"
    );
    assert!(sizes.iter().all(|&n| (1..=1024).contains(&n)), "{line}");
    assert_eq!(sizes.iter().sum::<usize>(), total);
    let header = out.find("HTTP/1.1 200 OK").unwrap();
    let blank = out[header..].find("\r\n\r\n").unwrap();
    let page: usize = out
        .lines()
        .find_map(|l| {
            l.split("; the ")
                .nth(1)?
                .strip_suffix(" bytes")
                .map(str::to_string)
        })
        .expect("the page's size")
        .parse()
        .unwrap();
    assert_eq!(total, blank + 4 + page, "header and page, all received");
}

/// The commands of the README's step-by-step table: the code spans of its Command column.
fn table_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## The tutorial, step by step\n")
        .nth(1)
        .expect("a step-by-step section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut commands = Vec::new();
    for row in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = row.split('|').collect();
        assert!(cells.len() >= 5, "a row of four cells: {row}");
        let spans = cells[3].split('`').skip(1).step_by(2);
        let before = commands.len();
        commands.extend(spans.map(str::to_string));
        assert!(commands.len() > before, "a row without a command: {row}");
    }
    commands.dedup();
    commands
}

/// `sockdemo ARGS...` from a table command. A `serve` that would take the default port is
/// given `--port 0` instead, so that a test never takes port 9999 from anyone.
fn command_of(line: &str) -> Command {
    command_on(line, "0")
}

/// [`command_of`], a `serve` without a port given `port`.
fn command_on(line: &str, port: &str) -> Command {
    let args: Vec<&str> = line
        .strip_prefix("sockdemo ")
        .expect("a sockdemo command")
        .split_whitespace()
        .collect();
    let mut cmd = sockdemo(&args);
    if args.contains(&"serve") && !args.contains(&"--port") {
        cmd.args(["--port", port]);
    }
    cmd
}

/// Starts a table command that is a server, on port 0 unless it names a port.
fn serve(line: &str) -> Server {
    Server::spawn(command_of(line))
}

fn check_fetch_trace(line: &str) {
    let output = run(&mut command_of(line), STEP);
    succeeded(&output);
    let events = events(&stderr(&output));
    assert!(
        events[0].marker.starts_with("== connect 127.0.0.1:"),
        "{events:?}"
    );
    let request = events.iter().find(|e| e.sent().is_some()).expect("a send");
    assert!(request.bytes.starts_with(b"GET /sina.html HTTP/1.1\r\n"));
    if !request.cut {
        assert!(request.bytes.ends_with(b"Connection: close\r\n\r\n"));
    }
    let receives: Vec<usize> = events.iter().filter_map(|e| e.received()).collect();
    assert!(receives.len() >= 4 && receives[0] == 1024, "{receives:?}");
    if line.contains("--trace-bytes 32") {
        let first = events.iter().find(|e| e.received().is_some()).unwrap();
        assert_eq!(first.bytes.len(), 32);
        assert!(first.cut);
    }
}

fn check_fetch(line: &str) {
    let output = run(&mut command_of(line), STEP);
    succeeded(&output);
    let out = stdout(&output);
    assert!(out.contains("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("/sina.html (a temporary directory"), "{out}");
}

fn check_any_interface(line: &str) {
    let server = serve(line);
    assert_eq!(server.addr.ip().to_string(), "0.0.0.0");
}

/// As a user who is not root: `nobody`, through setpriv, when the tests run as root, in a
/// network namespace of its own where port 80 is privileged whatever the host says.
fn check_low_port(line: &str) {
    let args: Vec<&str> = line.strip_prefix("sockdemo ").unwrap().split(' ').collect();
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let mut namespace = None;
    let mut cmd = if root {
        if !common::have("setpriv") {
            return;
        }
        let Some(ns) = Netns::new() else {
            return;
        };
        ns.privileged_ports();
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let mut cmd = ns.command("setpriv");
        cmd.arg(format!("--reuid={}", id("-u")))
            .arg(format!("--regid={}", id("-g")))
            .args(["--clear-groups", "--"])
            .arg(common::BIN)
            .args(&args)
            .env_remove("RUST_LOG");
        namespace = Some(ns);
        cmd
    } else {
        let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
        let why = format!("`{line}`: this system lets every user bind port 80");
        if !common::require(start > 80, &why) {
            return;
        }
        sockdemo(&args)
    };
    let output = run(&mut cmd, STEP);
    drop(namespace);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: cannot listen on 127.0.0.1:80: permission denied \
         (ports below 1024 need root or CAP_NET_BIND_SERVICE)\n"
    );
}

fn check_backlog_server(line: &str) {
    let mut server = serve(line);
    server.wait_for_log("Waiting for connection...");
}

/// `ss -ltn 'sport = :9999'`, against the server of the same row on a port of its own.
fn check_ss(line: &str) {
    if !common::have("ss") {
        return;
    }
    let server = serve("sockdemo serve --serial --backlog 5");
    let filter = line
        .strip_prefix("ss -ltn '")
        .and_then(|l| l.strip_suffix('\''))
        .expect("ss -ltn 'FILTER'")
        .replace("9999", &server.port());
    let output = run(Command::new("ss").args(["-ltn", &filter]), STEP);
    succeeded(&output);
    let out = stdout(&output);
    let listener = out
        .lines()
        .find(|l| l.contains(&server.addr.to_string()))
        .unwrap_or_else(|| panic!("no listener in\n{out}"));
    assert_eq!(listener.split_whitespace().nth(2), Some("5"), "{out}");
}

fn check_hello_trace(line: &str) {
    let output = run(&mut command_of(line), STEP);
    succeeded(&output);
    assert!(stdout(&output).contains(TUTORIAL_OUTPUT));
    let events = events(&stderr(&output));
    let connect = events
        .iter()
        .find_map(|e| e.marker.strip_prefix("== connect "))
        .expect("the client's connect");
    let (local, peer) = connect.split_once(" -> ").unwrap();
    let accept = events
        .iter()
        .find(|e| e.marker.starts_with("== accept "))
        .expect("the server's accept");
    assert_eq!(accept.marker, format!("== accept {peer} <- {local}"));
    assert_eq!(accept.label.as_deref(), Some(local));
}

fn check_threads(line: &str) {
    let output = run(&mut command_of(line), STEP);
    succeeded(&output);
    let out = stdout(&output);
    let totals = out
        .lines()
        .find(|l| l.starts_with("last reply after"))
        .expect("the totals");
    let seconds: Vec<f64> = totals
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(seconds.len(), 2, "{totals}");
    assert!(seconds[0] >= 0.99 && seconds[0] < 2.0, "{totals}");
    assert!(seconds[1] >= 2.99 && seconds[1] < 6.0, "{totals}");
    let log = stderr(&output);
    assert!(log.contains("(thread hello-conn-3, "), "{log}");
    assert!(log.contains("(thread accept, 1 open)"), "{log}");
}

/// `sockdemo serve`, in two terminals: the second cannot have the port.
fn check_one_listener(line: &str) {
    let first = serve(line);
    let output = run(&mut command_on(line, &first.port()), STEP);
    assert_address_in_use(&output, first.addr);
}

/// What a table command must show.
type Check = fn(&str);

#[test]
fn every_command_of_the_step_by_step_table_runs_and_shows_its_step() {
    let checks: &[(&str, Check)] = &[
        ("sockdemo --trace demo fetch", check_fetch_trace),
        (
            "sockdemo --trace --trace-bytes 32 demo fetch",
            check_fetch_trace,
        ),
        ("sockdemo demo fetch", check_fetch),
        ("sockdemo serve --host 0.0.0.0", check_any_interface),
        ("sockdemo serve --port 80", check_low_port),
        ("sockdemo serve --serial --backlog 5", check_backlog_server),
        ("ss -ltn 'sport = :9999'", check_ss),
        ("sockdemo --trace demo hello", check_hello_trace),
        ("sockdemo demo threads", check_threads),
        ("sockdemo serve", check_one_listener),
    ];
    let commands = table_commands();
    for command in &commands {
        let (_, check) = checks
            .iter()
            .find(|(c, _)| c == command)
            .unwrap_or_else(|| panic!("no test for the README's `{command}`"));
        check(command);
    }
    for (command, _) in checks {
        assert!(
            commands.iter().any(|c| c == command),
            "`{command}` is tested but no longer in the README's table"
        );
    }
    assert!(Path::new(common::BIN).exists());
}

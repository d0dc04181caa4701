//! The python3 launcher HAProxy and nginx share: neither can listen on port 0, and a port
//! picked beforehand can be taken by someone else before they bind it. So a short python3
//! script binds each listener on port 0 itself, prints `LISTEN <address>` for each once all
//! of them listen, and `exec`s the balancer, which inherits the sockets (each says in its
//! own way how it is told their file descriptors). What differs is in each one's script;
//! binding, announcing and starting the script are here.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Python definitions every launcher script starts with: `listen_on(specs)` binds each of
/// `specs` (`HOST:PORT`, `[V6]:PORT`) as an inheritable listener and returns the sockets with
/// their real addresses; `announce(bound)` prints a `LISTEN <address>` line for each. The
/// sockets stay in the list returned, so that none is closed before the `exec`.
const LISTEN_ON: &str = r#"
import os, socket, sys

def listen_on(specs):
    bound = []
    for spec in specs:
        host, port = spec.rsplit(":", 1)
        family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host.strip("[]"), int(port)))
        s.listen(1024)
        s.set_inheritable(True)
        host, port = s.getsockname()[:2]
        if family == socket.AF_INET6:
            bound.append((s, "[%s]:%d" % (host, port)))
        else:
            bound.append((s, "%s:%d" % (host, port)))
    return bound

def announce(bound):
    for _, address in bound:
        print("LISTEN " + address)
    sys.stdout.flush()
"#;

/// Starts `python3 -c SCRIPT FILES... LISTEN...` (the script after [`LISTEN_ON`]) run
/// through `prefix` (`&["ip", "netns", "exec", "ns1"]` or `&[]`), its stdout and stderr
/// piped; `what` names the balancer, for the message when python3 cannot be started.
pub fn spawn(prefix: &[&str], script: &str, files: &[&Path], listen: &[&str], what: &str) -> Child {
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg("python3");
            cmd
        }
        None => Command::new("python3"),
    };
    cmd.arg("-c").arg(format!("{LISTEN_ON}{script}"));
    cmd.args(files).args(listen);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("spawn python3 to launch {what}: {err}"))
}

/// The address in a launcher's `LISTEN <address>` line.
pub fn listener(line: &str) -> SocketAddr {
    let addr = line.trim_start_matches("LISTEN ").trim();
    addr.parse().expect("a listener address")
}

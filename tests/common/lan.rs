//! A small network made by the test: a few hosts, each a network namespace with an address
//! of its own, on one Ethernet bridge, as separate machines on one LAN would be. A balancer
//! on one host, servers on others and a client on another see each other's real addresses,
//! which is what the PROXY protocol is about. Everything is deleted when dropped.
//!
//! ```text
//!   host 0 (192.0.2.1)   host 1 (192.0.2.2)   ...      each: its own namespace, eth0
//!        |                    |
//!   +----+--------------------+-------- br0 ---+       the hub: a namespace with a bridge
//! ```
//!
//! The addresses are from 192.0.2.0/24 (TEST-NET-1, for documentation): inside namespaces
//! of their own they meet nothing else.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::netns::Netns;

/// A namespace's loopback MTU: Linux's default.
const LOOPBACK_MTU: u32 = 65536;

/// Hosts on one bridge, deleted when dropped.
pub struct Lan {
    pub hosts: Vec<Host>,
    // Last: the hub goes once no host needs it.
    _hub: Netns,
}

/// One host: a namespace whose `eth0` is on the bridge.
pub struct Host {
    pub ns: Netns,
    pub ip: Ipv4Addr,
}

impl Lan {
    /// `count` hosts, 192.0.2.1 to 192.0.2.<count>, or `None` (with one line saying why)
    /// where this machine does not allow network namespaces; on CI (`CI` set) that fails.
    pub fn new(count: usize) -> Option<Lan> {
        let hub = Netns::with_mtu(LOOPBACK_MTU)?;
        ip(&["-n", &hub.name, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub.name, "link", "set", "br0", "up"]);
        let hosts = (0..count).map(|index| Host::plug(&hub, index)).collect();
        Some(Lan { hosts, _hub: hub })
    }

    /// The address of host `index`: 192.0.2.<index + 1>.
    pub fn address(index: usize) -> Ipv4Addr {
        let last = u8::try_from(index + 1).expect("at most 254 hosts");
        Ipv4Addr::new(192, 0, 2, last)
    }

    /// Host `index` (0-based; its address ends in `index + 1`).
    pub fn host(&self, index: usize) -> &Host {
        &self.hosts[index]
    }
}

impl Host {
    /// A namespace with a veth pair: `eth0` inside with the host's address, the other end
    /// on the hub's bridge.
    fn plug(hub: &Netns, index: usize) -> Host {
        let ns = Netns::with_mtu(LOOPBACK_MTU).expect("a second namespace where one was made");
        let host = Host {
            ns,
            ip: Lan::address(index),
        };
        let port = format!("port{index}");
        let name = &host.ns.name;
        let hub = &hub.name;
        ip(&[
            "-n", hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]);
        ip(&["-n", hub, "link", "set", &port, "master", "br0", "up"]);
        let cidr = format!("{}/24", host.ip);
        ip(&["-n", name, "addr", "add", &cidr, "dev", "eth0"]);
        ip(&["-n", name, "link", "set", "eth0", "up"]);
        host
    }

    /// What runs a command in this host's namespace: `ip netns exec NAME`.
    pub fn prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.ns.name]
    }

    /// `program` run on this host.
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    /// `sockdemo ARGS...` run on this host.
    pub fn sockdemo(&self, args: &[&str]) -> Command {
        self.ns.sockdemo(args)
    }
}

/// `ip ARGS...`, which must succeed.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

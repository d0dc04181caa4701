//! A network namespace made by the test, for real packet-level conditions: its own loopback
//! with a small MTU (and netem delay, loss and reordering where the kernel has them).
//! Deleted when dropped, whatever happened in between.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::BIN;

pub struct Netns {
    pub name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// A namespace whose loopback is up, or `None` where this machine does not allow
    /// namespaces (see [`require`](super::require): under CI that fails the test).
    pub fn new() -> Option<Netns> {
        let name = format!(
            "sockdemo-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(why) = ip(&["netns", "add", &name]) {
            super::require(false, &format!("no network namespaces here ({why})"));
            return None;
        }
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]).expect("bring the loopback up");
        Some(ns)
    }

    /// A namespace whose loopback has `mtu`, or `None` as for [`Netns::new`].
    pub fn with_mtu(mtu: u32) -> Option<Netns> {
        let ns = Netns::new()?;
        ip(&["-n", &ns.name, "link", "set", "lo", "mtu", &mtu.to_string()])
            .expect("configure the namespace's loopback");
        Some(ns)
    }

    /// Makes ports below 1024 privileged in the namespace (`ip_unprivileged_port_start`,
    /// which is per namespace, back at 1024), whatever the host says: containers often open
    /// them to everyone.
    pub fn privileged_ports(&self) {
        let mut cmd = self.command("sh");
        cmd.args([
            "-c",
            "echo 1024 > /proc/sys/net/ipv4/ip_unprivileged_port_start",
        ]);
        run_ok(&mut cmd).expect("make ports below 1024 privileged");
    }

    /// Adds netem delay, loss and reordering to the loopback; `false` (with one line saying
    /// so) where the kernel has no netem.
    pub fn try_netem(&self) -> bool {
        let args = [
            "qdisc", "add", "dev", "lo", "root", "netem", "delay", "2ms", "1ms", "loss", "1%",
            "reorder", "10%",
        ];
        match run_ok(self.command("tc").args(args)) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("netem is not available in this kernel ({why}); running without delay, loss or reordering");
                false
            }
        }
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// `sockdemo ARGS...` run inside the namespace.
    pub fn sockdemo(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(BIN);
        cmd.args(args).env_remove("RUST_LOG");
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run_ok(Command::new("ip").args(args))
}

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&output.stderr);
        Err(err.lines().next().unwrap_or("failed").trim().to_string())
    }
}

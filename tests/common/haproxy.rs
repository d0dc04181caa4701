//! A real HAProxy (Debian's `haproxy` package) as a child process for tests: a load
//! balancer nobody here wrote, in front of `sockdemo serve`.
//!
//! HAProxy refuses `bind :0`, and a port picked beforehand can be taken by someone else
//! before HAProxy binds it. So a small python3 launcher binds every listener on port 0
//! itself (and the stats socket), prints the real addresses, and `exec`s
//! `haproxy -f CFG -db` with those sockets inherited: the configuration names them
//! `fd@${LISTEN0}`, `fd@${LISTEN1}`, ... Because they listen before HAProxy even starts,
//! clients may connect at once; "ready" is the stats socket answering `show info`, a
//! blocking request with a time limit, not a sleep.
//!
//! ```ignore
//! let lb = Haproxy::start(&["127.0.0.1:0"], &format!("
//! frontend fe
//!     bind fd@${{LISTEN0}}
//!     default_backend hello
//! backend hello
//!     server s1 {backend} send-proxy-v2 check inter 200ms
//! "));
//! let client = TcpStream::connect(lb.addr(0))?;   // reaches `backend` through HAProxy
//! lb.wait_for_log("is DOWN");                      // HAProxy's own log lines, as events
//! let rows = lb.show_stat();                       // per-server counters (`stot`, `status`)
//! lb.stop();                                       // or just drop it
//! ```
//!
//! The configuration given follows a `global` section (logs to stderr, the stats socket)
//! and a `defaults` section (`mode tcp`, `log global`, timeouts) written here; it may add
//! `defaults` of its own. Run HAProxy in a network namespace with [`Haproxy::start_in`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;

use sockdemo::testing::TempDir;

use super::{launcher, LogLines, STEP};

/// Binds the stats socket and the listeners named on the command line, prints
/// `LISTEN <address>` for each, then becomes HAProxy (see [`launcher`]).
const LAUNCHER: &str = r#"
config, stats, listen = sys.argv[1], sys.argv[2], sys.argv[3:]
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind(stats)
u.listen(16)
u.set_inheritable(True)
os.environ["STATS"] = str(u.fileno())
bound = listen_on(listen)
for i, (s, _) in enumerate(bound):
    os.environ["LISTEN%d" % i] = str(s.fileno())
# Only now, with every socket listening, say where.
announce(bound)
os.execvp("haproxy", ["haproxy", "-f", config, "-db"])
"#;

const PREAMBLE: &str = "global
    log stderr format raw local0
    stats socket fd@${STATS} level admin

defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 1m
    timeout server 1m
";

/// True when haproxy and python3 can run; see [`require`](super::require) for what happens
/// when they cannot.
pub fn installed() -> bool {
    ["haproxy", "python3"].into_iter().all(|tool| {
        let found = Command::new(tool)
            .arg(if tool == "haproxy" { "-v" } else { "--version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        super::require(found, &format!("{tool} is not installed"))
    })
}

/// A running `haproxy -db`, stopped when dropped.
pub struct Haproxy {
    /// `None` once stopped.
    child: Option<Child>,
    /// The real addresses of the listeners asked for, in order (`${LISTEN0}`, ...).
    pub listeners: Vec<SocketAddr>,
    stats: PathBuf,
    /// The launcher's lines and HAProxy's, stdout and stderr merged.
    log: LogLines,
    // Last: the directory outlives nothing that needs it.
    _dir: TempDir,
}

impl Haproxy {
    /// Starts HAProxy with `config` (after our `global` and `defaults`), listening on each
    /// of `listen` (`127.0.0.1:0`, `[::1]:0`, ...), and waits until it answers on its stats
    /// socket.
    pub fn start(listen: &[&str], config: &str) -> Haproxy {
        Haproxy::start_in(&[], listen, config)
    }

    /// The same, run through `prefix`: `&["ip", "netns", "exec", "ns1"]` puts HAProxy and
    /// its listeners in that namespace (the stats socket, a file, stays reachable).
    pub fn start_in(prefix: &[&str], listen: &[&str], config: &str) -> Haproxy {
        let dir = TempDir::new("haproxy");
        let config_path = dir.join("haproxy.cfg");
        let stats = dir.join("stats.sock");
        std::fs::write(&config_path, format!("{PREAMBLE}\n{config}\n")).expect("write config");
        let files = [config_path.as_path(), stats.as_path()];
        let mut child = launcher::spawn(prefix, LAUNCHER, &files, listen, "haproxy");
        let mut haproxy = Haproxy {
            log: LogLines::follow("haproxy", &mut child),
            child: Some(child),
            listeners: Vec::new(),
            stats,
            _dir: dir,
        };
        for _ in listen {
            let line = haproxy.wait_for_log("LISTEN ");
            haproxy.listeners.push(launcher::listener(&line));
        }
        let info = haproxy
            .try_command("show info")
            .unwrap_or_else(|e| e.to_string());
        assert!(
            info.contains("Name: HAProxy"),
            "haproxy did not start ({info:?}); its log:\n{}",
            haproxy.log().join("\n")
        );
        haproxy
    }

    /// The address of listener `index` (`${LISTEN<index>}` in the configuration).
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.listeners[index]
    }

    /// Waits (at most 20 s) for a line of HAProxy's output containing `needle` and returns
    /// it: lines already waited past are not seen again.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Every line HAProxy (and the launcher) wrote so far.
    pub fn log(&self) -> Vec<String> {
        self.log.all()
    }

    /// One command on the runtime API (`show info`, `show stat`, `disable server be/s1`)
    /// and its whole answer.
    pub fn command(&self, line: &str) -> String {
        self.try_command(line)
            .unwrap_or_else(|err| panic!("stats command {line:?}: {err}"))
    }

    fn try_command(&self, line: &str) -> std::io::Result<String> {
        let mut socket = UnixStream::connect(&self.stats)?;
        socket.set_read_timeout(Some(STEP))?;
        socket.set_write_timeout(Some(STEP))?;
        socket.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// `show stat` as one map per proxy or server, keyed by the CSV header (`pxname`,
    /// `svname`, `status`, `stot`, `scur`, ...).
    pub fn show_stat(&self) -> Vec<BTreeMap<String, String>> {
        let answer = self.command("show stat");
        let mut rows = answer.lines().filter(|line| !line.trim().is_empty());
        let header = rows.next().unwrap_or_default();
        let names: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        rows.map(|row| {
            let values = row.split(',').map(str::to_string);
            names.iter().map(|n| n.to_string()).zip(values).collect()
        })
        .collect()
    }

    /// One server's field from `show stat` (`stot`: connections it was given; `status`).
    pub fn server_stat(&self, backend: &str, server: &str, field: &str) -> String {
        let rows = self.show_stat();
        let row = rows
            .iter()
            .find(|row| row["pxname"] == backend && row["svname"] == server)
            .unwrap_or_else(|| panic!("no server {backend}/{server} in show stat"));
        row[field].clone()
    }

    /// Stops HAProxy at once (SIGTERM: a hard stop, open connections are closed) and waits
    /// for it; HAProxy 2.6 then ends by the signal, so the status is not a success.
    pub fn stop(mut self) -> ExitStatus {
        terminate(self.child.take().expect("a running haproxy"))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if thread::panicking() {
            let _ = child.kill();
            let _ = child.wait();
        } else {
            terminate(child);
        }
    }
}

/// SIGTERM, then a blocking wait of at most [`STEP`] (after which it is killed and the test
/// fails).
fn terminate(mut child: Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-s", "TERM", &pid]).status();
    super::wait_for_exit(child, STEP)
}

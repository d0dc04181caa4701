//! Helpers shared by the integration tests: run the real binary with a time limit, start a
//! server on port 0 and read its real address from its log, talk to it with timeouts.

#![allow(dead_code)]

pub mod haproxy;
pub mod http_peer;
pub mod lan;
pub mod launcher;
pub mod log_lines;
pub mod netns;
pub mod nginx;
pub mod peer;
pub mod pki;
pub mod proxy;
pub mod tls_peer;
pub mod trace;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

pub use log_lines::LogLines;

pub const BIN: &str = env!("CARGO_BIN_EXE_sockdemo");
/// No single step of a test may take longer than this: a hang is a failure.
pub const STEP: Duration = Duration::from_secs(20);

/// `sockdemo ARGS...`, ready to run.
pub fn sockdemo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd` to completion with `input` on stdin; panics if it takes longer than `limit`.
pub fn run_with_input(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockdemo");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    wait_output(child, limit)
}

/// Runs `cmd` with stdin closed; panics if it takes longer than `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    run_with_input(cmd, b"", limit)
}

/// Collects a child's output, killing it (and failing the test) after `limit`.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    wait_bounded(child, limit, Child::wait_with_output)
}

/// Waits for a child to exit, killing it (and failing the test) after `limit`.
pub fn wait_for_exit(child: Child, limit: Duration) -> ExitStatus {
    wait_bounded(child, limit, |mut child| child.wait())
}

/// Waits for a child to exit, at most `limit`; after that kills it and returns `None`
/// (for a `Drop`, which must not fail the test a second time).
pub fn wait_within(child: Child, limit: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    let waited = wait_on_thread(child, limit, |mut child| child.wait());
    if waited.is_none() {
        kill_hard(pid);
    }
    waited.map(|status| status.expect("wait for a child process"))
}

/// Runs `wait` (which blocks until `child` exits) on a thread of its own and returns what it
/// returned; after `limit`, kills the child and fails the test instead. A blocking wait
/// with a time limit, where std only offers a blocking wait or a poll.
fn wait_bounded<T: Send + 'static>(
    child: Child,
    limit: Duration,
    wait: impl FnOnce(Child) -> io::Result<T> + Send + 'static,
) -> T {
    let pid = child.id();
    match wait_on_thread(child, limit, wait) {
        Some(waited) => waited.expect("wait for a child process"),
        None => {
            kill_hard(pid);
            panic!("pid {pid} did not finish within {limit:?}");
        }
    }
}

/// What `wait` returned, or `None` when it has not returned within `limit`.
fn wait_on_thread<T: Send + 'static>(
    child: Child,
    limit: Duration,
    wait: impl FnOnce(Child) -> io::Result<T> + Send + 'static,
) -> Option<io::Result<T>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(wait(child));
    });
    rx.recv_timeout(limit).ok()
}

/// SIGKILL to `pid`, for a child that has been handed to a waiting thread.
fn kill_hard(pid: u32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `sockdemo fetch ARGS...` run in `dir`.
pub fn fetch_in(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = sockdemo(["fetch"]);
    cmd.args(args).current_dir(dir);
    run(&mut cmd, STEP)
}

/// Asserts exit 0, showing both streams otherwise.
#[track_caller]
pub fn succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// Asserts exit `code` with exactly one `error: ` line, the last, and no panic; returns it.
#[track_caller]
pub fn failed_with(code: i32, output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{err}");
    last
}

/// Reads `reader` line by line on a thread of its own, hands each line to `each` and sends it
/// down the returned channel, so that a test can wait for a line with a time limit.
pub fn forward_lines(
    reader: impl Read + Send + 'static,
    mut each: impl FnMut(&str) + Send + 'static,
) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            each(&line);
            let _ = tx.send(line);
        }
    });
    lines
}

/// A `sockdemo serve` process on a free port, killed when dropped.
pub struct Server {
    /// `None` once it has been waited for.
    child: Option<Child>,
    pid: u32,
    pub addr: SocketAddr,
    log: LogLines,
}

impl Server {
    /// Starts `sockdemo serve --port 0 EXTRA...` and waits for its `Listening on` line.
    pub fn start(extra: &[&str]) -> Server {
        let mut cmd = sockdemo(["serve", "--port", "0"]);
        cmd.args(extra);
        Server::spawn(cmd)
    }

    /// Starts a server command (which must log `Listening on`) and waits for that line.
    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut server = Server {
            pid: child.id(),
            log: LogLines::follow("server", &mut child),
            child: Some(child),
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = server.wait_for_log("Listening on ");
        let addr = line.split("Listening on ").nth(1).expect("address");
        server.addr = addr
            .trim()
            .parse()
            .expect("a socket address after `Listening on`");
        server
    }

    /// Waits (at most [`STEP`]) for a log line containing `needle` and returns it.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Waits (at most [`STEP`]) until the server's stderr closes, as it does when the
    /// server exits or is killed, and returns every line it wrote.
    pub fn wait_for_eof(&mut self) -> Vec<String> {
        self.log.wait_for_eof()
    }

    /// Waits out `window` (blocked on the log, not polling it) and then fails the test if a
    /// log line so far contains `needle`.
    pub fn assert_no_log_within(&mut self, needle: &str, window: Duration) {
        self.log.assert_none_within(needle, window)
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.all()
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Asserts that the server logged each of `streams` closed, and no connection still open,
    /// before it logged that it stopped.
    pub fn assert_closed_before_stopping(&self, streams: &[TcpStream]) {
        let log = self.log();
        let stopped = log
            .iter()
            .position(|line| line.contains("Server stopped"))
            .expect("the server logs that it stopped");
        let before = &log[..stopped];
        assert!(
            !before.iter().any(|line| line.contains("still closing")),
            "connections left open at exit:\n{}",
            log.join("\n")
        );
        for stream in streams {
            let local = stream.local_addr().unwrap();
            let closed = format!("Connection from {local} closed.");
            assert!(
                before.iter().any(|line| line.contains(&closed)),
                "{local} left open until the server exited:\n{}",
                log.join("\n")
            );
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running (it has not exited, nor been waited for).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child
                .try_wait()
                .expect("query the server process")
                .is_none(),
            None => false,
        }
    }

    /// Kills the server (SIGKILL) and waits for it, as a crash would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "INT") and waits for the exit, at most `limit`.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {signal} {}", self.pid);
        let child = self.child.take().expect("a server not yet waited for");
        wait_for_exit(child, limit)
    }

    /// Stops the server with SIGTERM and returns how many connections it says it served.
    pub fn stop_and_count(&mut self) -> u64 {
        let pid = self.pid.to_string();
        let sent = Command::new("kill").args(["-s", "TERM", &pid]).status();
        assert!(sent.is_ok_and(|status| status.success()));
        let line = self.wait_for_log("Server stopped after serving ");
        let count = line.split("serving ").nth(1).unwrap_or_default();
        let count = count.split(' ').next().unwrap_or_default();
        count
            .parse()
            .unwrap_or_else(|_| panic!("a count in {line:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Asserts that a second `serve` failed as the contract says when `addr` is taken: exit
/// status 1 and one line naming the address.
pub fn assert_address_in_use(output: &Output, addr: SocketAddr) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let want = format!("error: cannot listen on {addr}: address already in use");
    assert!(err.starts_with(&want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A plain TCP peer with timeouts, so that a test waiting for bytes fails instead of hanging.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, STEP).expect("connect");
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream.set_write_timeout(Some(STEP)).unwrap();
    stream
}

/// Connects to a Hello server and consumes the greeting.
pub fn greeted(server: &Server) -> TcpStream {
    let mut stream = connect(server.addr);
    assert_eq!(read_n(&mut stream, 8), b"Welcome!");
    stream
}

/// Sends `message` and reads a reply of the expected length.
pub fn round_trip(stream: &mut TcpStream, message: &[u8], want: &[u8]) {
    stream.write_all(message).unwrap();
    assert_eq!(read_n(stream, want.len()), want);
}

/// Reads exactly `n` bytes (or fails the test).
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .expect("read the expected bytes");
    buf
}

/// Reads until the peer hangs up, with a FIN or with a reset (as a server does when it
/// closes with unread input), and returns the bytes. A connection still open when the read
/// timeout passes fails the test.
pub fn read_to_hang_up(stream: &mut TcpStream) -> Vec<u8> {
    let (bytes, ending) = read_to_end_of(stream);
    assert!(
        matches!(ending, Ending::Closed | Ending::Reset),
        "expected the peer to hang up, got {ending:?} after {} bytes: {:?}",
        bytes.len(),
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// Whether an I/O error is a socket timeout (`WouldBlock` on Unix, `TimedOut` elsewhere).
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// How a connection's stream of bytes ended, as seen by the reading side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A clean close: the peer sent a FIN and every byte before it arrived.
    Closed,
    /// The peer reset the connection.
    Reset,
    /// Nothing arrived within the stream's read timeout: the connection was left open.
    LeftOpen,
    /// Any other read error.
    Failed(io::ErrorKind),
}

/// Reads until the stream ends, in whatever way; the bytes that arrived and how it ended.
/// Bounded by the stream's read timeout (see [`connect`]).
pub fn read_to_end_of(stream: &mut TcpStream) -> (Vec<u8>, Ending) {
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (all, Ending::Closed),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(err) => match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::ConnectionReset => return (all, Ending::Reset),
                _ if is_timeout(&err) => return (all, Ending::LeftOpen),
                kind => return (all, Ending::Failed(kind)),
            },
        }
    }
}

/// Reads until the peer closes the connection cleanly and returns the bytes. A reset, or a
/// connection still open when the read timeout passes, fails the test.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let (bytes, ending) = read_to_end_of(stream);
    assert_eq!(
        ending,
        Ending::Closed,
        "expected a clean close (FIN) after {} bytes: {:?}",
        bytes.len(),
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// Whether a test may go on: true when what it needs is `available`. Otherwise it says why
/// it skips (`missing`, e.g. "nc is not installed") and returns false, and the test returns
/// at once. Under CI (env `CI` set), where every tool is installed and every privilege
/// granted (see .ci/run), a missing piece fails the test instead: a skip there would be a
/// test that silently never runs. Every skip goes through here.
pub fn require(available: bool, missing: &str) -> bool {
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "{missing}: under CI every test must run"
        );
        eprintln!("skipped: {missing}");
    }
    available
}

/// True when `tool` is on PATH; see [`require`] for what happens when it is not.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    require(found, &format!("{tool} is not installed"))
}

/// Waits (at most [`STEP`]) for the temporary file of a download in `dir` (its name ends in
/// `.part`) and returns its path. Nothing fetch says announces that file, and std cannot
/// watch a directory, so this is the one wait in the tests that polls.
pub fn wait_for_part(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + STEP;
    loop {
        let names = sockdemo::testing::names_in(dir);
        if let Some(part) = names.iter().find(|name| name.ends_with(".part")) {
            return dir.join(part);
        }
        assert!(Instant::now() < deadline, "no temporary file in {names:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A process's resident memory, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// A process's thread count, from /proc.
pub fn threads(pid: u32) -> u64 {
    proc_status(pid, "Threads:")
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .expect("field in /proc status");
    line[field.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    let ticks_per_second = 100; // USER_HZ, 100 on every Linux this runs on
    Duration::from_millis((fields[0] + fields[1]) * 1000 / ticks_per_second)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc fd")
        .count()
}

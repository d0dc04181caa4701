//! `sockdemo serve` with stderr a pipe that nobody reads (`sockdemo serve 2>&1 | less`, the
//! pager stopped): the pipe fills (64 KiB on Linux), and still every client is greeted, SIGTERM
//! ends the server with exit 0 at once, and once stderr is read again it says how many log
//! records it had to drop.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{connect, forward_lines, read_n, sockdemo, wait_for_exit, STEP};

/// Connections that log far more than a pipe holds (two lines of about 80 bytes each).
const FILL_PIPE: usize = 1500;
/// A greeting later than this means the connection waited for stderr.
const GREETING_LIMIT: Duration = Duration::from_secs(5);
/// The contract says a second; this allows for a loaded machine.
const EXIT_LIMIT: Duration = Duration::from_secs(2);

/// A server whose stderr is read up to its `Listening on` line, and then no further.
struct Unread {
    /// `None` once it has been waited for.
    child: Option<Child>,
    addr: SocketAddr,
    /// `None` once handed to a reading thread.
    stderr: Option<BufReader<ChildStderr>>,
}

impl Unread {
    fn start() -> Unread {
        let mut child = sockdemo(["serve", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockdemo serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let addr = listening_on(&mut stderr);
        Unread {
            child: Some(child),
            addr,
            stderr: Some(stderr),
        }
    }

    /// `count` clients, one after another, each greeted within [`GREETING_LIMIT`].
    fn clients(&self, count: usize) {
        for i in 0..count {
            let mut stream = connect(self.addr);
            stream.set_read_timeout(Some(GREETING_LIMIT)).unwrap();
            let mut greeting = [0; 8];
            if let Err(err) = stream.read_exact(&mut greeting) {
                panic!("client {i} was not greeted within {GREETING_LIMIT:?} ({err}): the server waits for its stderr");
            }
            assert_eq!(&greeting, b"Welcome!");
        }
    }

    /// Sends SIGTERM and waits for the exit, at most [`EXIT_LIMIT`].
    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let child = self.child.take().expect("a running server");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-s", "TERM", &pid]).status();
        assert!(sent.expect("run kill").success());
        let started = Instant::now();
        let status = wait_for_exit(child, EXIT_LIMIT);
        (status, started.elapsed())
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads stderr up to the `Listening on` line and returns the address in it. A thread reads
/// so that a server that never says it is limited by [`STEP`].
fn listening_on(stderr: &mut BufReader<ChildStderr>) -> SocketAddr {
    let started = Instant::now();
    let mut line = String::new();
    loop {
        assert!(started.elapsed() < STEP, "no `Listening on` line");
        line.clear();
        let n = stderr
            .read_line(&mut line)
            .expect("read the server's stderr");
        assert!(n > 0, "the server ended before listening");
        if let Some((_, addr)) = line.split_once("Listening on ") {
            return addr
                .trim()
                .parse()
                .expect("an address after `Listening on`");
        }
    }
}

#[test]
fn a_server_whose_stderr_nobody_reads_keeps_greeting_and_stops_on_sigterm() {
    let mut server = Unread::start();
    server.clients(FILL_PIPE);
    let (status, took) = server.terminate();
    assert!(status.success(), "{status} after {took:?}");
    eprintln!("exit 0 {took:?} after SIGTERM");
    // The test tested what it says only if the pipe was full when the signal came.
    let mut rest = Vec::new();
    let stderr = server.stderr.as_mut().expect("stderr");
    stderr.read_to_end(&mut rest).expect("read the rest");
    assert!(
        rest.len() >= 60 * 1024,
        "only {} bytes were waiting in the pipe: it was never full",
        rest.len()
    );
}

#[test]
fn dropped_log_records_are_counted_once_stderr_is_read_again() {
    let mut server = Unread::start();
    // Well beyond the pipe and the server's own queue (1 MiB), at about 150 bytes of log
    // per connection: logging has to drop records.
    let fill = 2 * 1024 * 1024 / 150;
    let addr = server.addr;
    let fillers: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || fill_from(addr, fill / 4 + 1)))
        .collect();
    for filler in fillers {
        filler.join().expect("a filler thread");
    }
    let lines = forward_lines(server.stderr.take().expect("stderr"), |_| {});
    // Stderr is read again; the next record admitted comes after the note.
    let started = Instant::now();
    let note = loop {
        assert!(started.elapsed() < STEP, "no note about dropped records");
        let mut stream = connect(server.addr);
        assert_eq!(read_n(&mut stream, 8), b"Welcome!");
        drop(stream);
        let line = lines.recv_timeout(Duration::from_millis(100));
        if let Some(note) = line
            .into_iter()
            .chain(lines.try_iter())
            .find(|l| is_note(l))
        {
            break note;
        }
    };
    let count: u64 = note
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {note:?}"));
    assert!(count > 0, "{note}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

fn is_note(line: &str) -> bool {
    line.starts_with("note: ") && line.ends_with(" dropped while stderr was not being read")
}

/// Like [`Unread::clients`], from another thread.
fn fill_from(addr: SocketAddr, count: usize) {
    for _ in 0..count {
        let mut stream = connect(addr);
        stream.set_read_timeout(Some(GREETING_LIMIT)).unwrap();
        assert_eq!(read_n(&mut stream, 8), b"Welcome!");
    }
}

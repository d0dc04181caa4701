//! A child process's output lines as events: each line is kept (for a failure message and
//! for assertions over the whole log) and handed, in order, to a test waiting for one, with
//! a time limit. The servers the tests start (`sockdemo serve`, HAProxy, nginx, python's TLS
//! server) say "ready" and everything else worth waiting for in such lines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::STEP;

/// The lines a child writes on its piped stdout and stderr.
pub struct LogLines {
    /// Who writes them, for failure messages ("server", "haproxy").
    who: String,
    /// Each line once, in arrival order, for [`LogLines::wait_for`] and its kin.
    lines: Receiver<String>,
    /// Every line so far.
    kept: Arc<Mutex<Vec<String>>>,
}

impl LogLines {
    /// Follows whichever of `child`'s stdout and stderr are piped (and not yet taken), their
    /// lines merged in the order they arrive.
    pub fn follow(who: &str, child: &mut Child) -> LogLines {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            forward(stdout, tx.clone(), Arc::clone(&kept));
        }
        if let Some(stderr) = child.stderr.take() {
            forward(stderr, tx, Arc::clone(&kept));
        }
        LogLines {
            who: who.to_string(),
            lines,
            kept,
        }
    }

    /// Follows one more stream into the same log, its lines sent down a channel of their own:
    /// for a launcher's lines, which must not be taken for (or pass over) the child's.
    pub fn also(&self, reader: impl Read + Send + 'static) -> Receiver<String> {
        let (tx, lines) = mpsc::channel();
        forward(reader, tx, Arc::clone(&self.kept));
        lines
    }

    /// Waits (at most [`STEP`]) for the next line containing `needle` and returns it: lines
    /// already waited past are not seen again.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_until(&format!("with {needle:?}"), |line| line.contains(needle))
    }

    /// Waits (at most [`STEP`]) for the next line starting with `prefix` and returns it.
    pub fn wait_for_start(&mut self, prefix: &str) -> String {
        self.wait_until(&format!("starting with {prefix:?}"), |line| {
            line.starts_with(prefix)
        })
    }

    /// Waits for the next line that `wanted` accepts; `what` says which, when none comes.
    fn wait_until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no {} line {what} within {STEP:?}; its log so far:\n{}",
                    self.who,
                    self.all().join("\n")
                ),
            }
        }
    }

    /// Waits (at most [`STEP`]) until every stream followed has closed, as they do when the
    /// child exits or is killed, and returns every line.
    pub fn wait_for_eof(&mut self) -> Vec<String> {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return self.all(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the {}'s output is still open after {STEP:?}", self.who)
                }
            }
        }
    }

    /// Waits out `window` (blocked on the lines, not polling them) and then fails the test
    /// if a line so far contains `needle`.
    pub fn assert_none_within(&mut self, needle: &str, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Every line received is kept already; a disconnect means the child is gone.
            if left.is_zero()
                || self.lines.recv_timeout(left) == Err(RecvTimeoutError::Disconnected)
            {
                break;
            }
        }
        let log = self.all();
        assert!(
            !log.iter().any(|line| line.contains(needle)),
            "a {} line with {needle:?}:\n{}",
            self.who,
            log.join("\n")
        );
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.kept.lock().unwrap().clone()
    }
}

/// Reads `reader` line by line on a thread of its own into `kept` and down `to`.
fn forward(reader: impl Read + Send + 'static, to: Sender<String>, kept: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            kept.lock().unwrap().push(line.clone());
            let _ = to.send(line);
        }
    });
}

//! The one writer of stderr. Log records, trace events and (later) the progress line all
//! go through it, so that no two of them ever mix within a line, and none of them can stall
//! the program when stderr is a pipe that nobody reads (`sockdemo serve 2>&1 | less` with the
//! pager stopped): a server whose every connection logs before its greeting would otherwise
//! stop greeting, and a signal handler that logs before shutting down would never shut down.
//!
//! Callers only queue bytes; one thread writes them. The queue is bounded in bytes (half of
//! it for printed output, so that a busy trace leaves room for the log), and what does not
//! fit depends on what it is:
//! - a log record is dropped at once (logging must never block); the count is reported in a
//!   `note:` line as soon as stderr takes bytes again;
//! - printed output (trace events, the final error line) waits for room while the writer is
//!   making progress, because the user asked to see it; once the writer has been stuck in one
//!   write for [`STALL`], nobody is reading, and it is dropped and counted like a log record.
//!
//! The writer takes whole entries, up to 4 KiB at a time (the size a pipe writes atomically),
//! so what other processes write to the same pipe cannot land inside one of our lines. At
//! exit, [`finish`] waits at most [`EXIT_FLUSH`] for the queue to drain (less when the writer
//! is stuck), so a full pipe never holds the process.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes queued at most (beyond one entry larger than that, admitted alone). Printed
/// output may fill only half of it, so that a busy trace never crowds out the log.
pub const QUEUE_BYTES: usize = 1024 * 1024;
/// A single write stuck this long means nobody reads stderr.
pub const STALL: Duration = Duration::from_millis(500);
/// How long [`finish`] waits at most for the queue to drain.
pub const EXIT_FLUSH: Duration = Duration::from_secs(1);
/// Entries are written together up to this size: PIPE_BUF, what a pipe writes atomically.
const BATCH: usize = 4096;

/// A handle on a stderr writer (or, in tests, on a writer over anything). Clones share the
/// queue; the writer thread ends once every handle is gone and the queue is drained.
#[derive(Clone)]
pub struct Console {
    handle: Arc<Handle>,
}

/// Owned by the handles only, so that its drop tells the writer thread to end.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when an entry is queued (or the last handle is dropped).
    work: Condvar,
    /// Signalled when the writer has written a batch (or the console closed).
    room: Condvar,
    target: Mutex<Box<dyn Write + Send>>,
    queue_bytes: usize,
    stall: Duration,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    /// Entries ever queued, and entries written (or given up on): flush waits for the second
    /// to reach the first.
    queued_total: u64,
    written_total: u64,
    /// Dropped since the last note.
    dropped: Dropped,
    /// Set while the writer is inside a write.
    writing_since: Option<Instant>,
    /// No writer thread could be started: callers write themselves.
    direct: bool,
    /// [`Console::finish`] was called, or stderr is gone: everything is discarded.
    closed: bool,
    /// Every handle is gone: the writer drains the queue and ends.
    hung_up: bool,
}

#[derive(Default, Clone, Copy)]
struct Dropped {
    logs: u64,
    prints: u64,
}

/// Whether an entry may be dropped when the queue is full.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Log,
    Print,
}

impl Kind {
    /// How much of the queue this kind may fill: printers wait for room, so without a
    /// share of its own the log would find the queue full whenever a trace is busy.
    fn share(self, queue_bytes: usize) -> usize {
        match self {
            Kind::Log => queue_bytes,
            Kind::Print => queue_bytes / 2,
        }
    }
}

impl Console {
    /// A console writing to `target` from a thread of its own.
    pub fn new(target: impl Write + Send + 'static) -> Console {
        Console::with_limits(Box::new(target), QUEUE_BYTES, STALL)
    }

    fn with_limits(target: Box<dyn Write + Send>, queue_bytes: usize, stall: Duration) -> Console {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            target: Mutex::new(target),
            queue_bytes,
            stall,
        });
        let writer = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("stderr".to_string())
            .stack_size(64 * 1024)
            .spawn(move || writer.run());
        if spawned.is_err() {
            shared.lock().direct = true;
        }
        Console {
            handle: Arc::new(Handle { shared }),
        }
    }

    /// Queues a log record (whole lines). Never blocks: when the queue is full the record is
    /// dropped and counted.
    pub fn log(&self, bytes: &[u8]) {
        self.shared().submit(bytes, Kind::Log);
    }

    /// Queues output the user asked for (a trace event, an error line, a prompt): waits for
    /// room while stderr is being read, and is dropped (and counted) only when the writer
    /// has been stuck for [`STALL`].
    pub fn print(&self, bytes: &[u8]) {
        self.shared().submit(bytes, Kind::Print);
    }

    /// Waits until everything queued so far is written, at most `limit`, and less when the
    /// writer is stuck (nobody reads). True when it was all written.
    pub fn flush(&self, limit: Duration) -> bool {
        self.shared().flush(limit)
    }

    /// For the end of the program: says what was dropped (if anything), flushes for at most
    /// [`EXIT_FLUSH`], then discards anything written later, so that no thread can block on
    /// stderr any more. True when everything was written.
    pub fn finish(&self) -> bool {
        self.shared().finish(EXIT_FLUSH)
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().hung_up = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; should something, the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&self, bytes: &[u8], kind: Kind) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.lock();
        if state.direct {
            drop(state);
            self.write_direct(bytes);
            return;
        }
        loop {
            if state.closed {
                return;
            }
            if state.has_room(bytes.len(), kind.share(self.queue_bytes)) {
                state.push_note();
                state.push(bytes.to_vec());
                drop(state);
                self.work.notify_one();
                return;
            }
            if kind == Kind::Log || state.stalled(self.stall) {
                state.dropped.count(kind);
                return;
            }
            state = self.wait_room(state, self.stall);
        }
    }

    /// Waits for what is queued now to be written: at most `limit`, and no longer than
    /// [`STALL`] without the writer getting anywhere.
    fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        let target = state.queued_total;
        let mut seen = state.written_total;
        let mut moved_at = Instant::now();
        loop {
            if state.written_total >= target {
                return true;
            }
            if state.written_total != seen {
                seen = state.written_total;
                moved_at = Instant::now();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let stuck = state.stalled(self.stall) && moved_at.elapsed() >= self.stall;
            if left.is_zero() || stuck {
                return false;
            }
            state = self.wait_room(state, left.min(self.stall));
        }
    }

    fn finish(&self, limit: Duration) -> bool {
        {
            let mut state = self.lock();
            if state.direct {
                return true;
            }
            if !state.closed && state.push_note() {
                self.work.notify_one();
            }
        }
        let flushed = self.flush(limit);
        self.lock().closed = true;
        self.room.notify_all();
        flushed
    }

    fn wait_room<'a>(
        &self,
        state: MutexGuard<'a, State>,
        limit: Duration,
    ) -> MutexGuard<'a, State> {
        match self.room.wait_timeout(state, limit) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Without a writer thread: write at once, under the target's lock.
    fn write_direct(&self, bytes: &[u8]) {
        let mut target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        let _ = target.write_all(bytes);
        let _ = target.flush();
    }

    /// The writer thread: take a batch, write it, tell the waiters; until hung up.
    fn run(&self) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(entries) = self.next_batch(&mut batch) {
            let result = {
                let mut target = self.target.lock().unwrap_or_else(|e| e.into_inner());
                target.write_all(&batch).and_then(|()| target.flush())
            };
            self.written(entries, batch.len(), result);
            if batch.capacity() > 4 * BATCH {
                batch = Vec::with_capacity(BATCH);
            }
        }
    }

    /// Moves whole entries, up to [`BATCH`] bytes (or one larger entry), into `batch`;
    /// `None` once hung up with nothing left.
    fn next_batch(&self, batch: &mut Vec<u8>) -> Option<u64> {
        batch.clear();
        let mut state = self.lock();
        while state.queue.is_empty() {
            if state.hung_up {
                return None;
            }
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let mut entries = 0;
        while let Some(next) = state.queue.front() {
            if !batch.is_empty() && batch.len() + next.len() > BATCH {
                break;
            }
            let entry = state.queue.pop_front().unwrap_or_default();
            batch.extend_from_slice(&entry);
            entries += 1;
        }
        state.writing_since = Some(Instant::now());
        Some(entries)
    }

    fn written(&self, entries: u64, bytes: usize, result: io::Result<()>) {
        let mut state = self.lock();
        state.writing_since = None;
        state.written_total += entries;
        state.queued_bytes = state.queued_bytes.saturating_sub(bytes);
        if result.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
            // Nobody will ever read: stop queueing, forget what is queued.
            state.closed = true;
            state.written_total += state.queue.len() as u64;
            state.queue.clear();
            state.queued_bytes = 0;
        }
        drop(state);
        self.room.notify_all();
    }
}

impl State {
    fn has_room(&self, len: usize, limit: usize) -> bool {
        self.queue.is_empty() || self.queued_bytes.saturating_add(len) <= limit
    }

    /// True when the writer has been inside one write for `stall` or longer.
    fn stalled(&self, stall: Duration) -> bool {
        self.writing_since
            .is_some_and(|since| since.elapsed() >= stall)
    }

    fn push(&mut self, entry: Vec<u8>) {
        self.queued_bytes += entry.len();
        self.queued_total += 1;
        self.queue.push_back(entry);
    }

    /// Queues the note about dropped entries, if any were; true when it did.
    fn push_note(&mut self) -> bool {
        let Some(note) = self.dropped.note() else {
            return false;
        };
        self.dropped = Dropped::default();
        self.push(note.into_bytes());
        true
    }
}

impl Dropped {
    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Log => self.logs += 1,
            Kind::Print => self.prints += 1,
        }
    }

    /// `note: 12 log records and 3 trace events dropped while stderr was not being read`.
    /// Everything printed counts as a trace event: nothing else prints often enough to be
    /// dropped more than once.
    fn note(self) -> Option<String> {
        let part = |n: u64, what: &str| match n {
            0 => None,
            1 => Some(format!("1 {what}")),
            n => Some(format!("{n} {what}s")),
        };
        let parts: Vec<String> = [
            part(self.logs, "log record"),
            part(self.prints, "trace event"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "note: {} dropped while stderr was not being read\n",
            parts.join(" and ")
        ))
    }
}

static GLOBAL: OnceLock<Console> = OnceLock::new();

/// The console over the process's stderr (started on first use).
pub fn global() -> &'static Console {
    GLOBAL.get_or_init(|| Console::new(io::stderr()))
}

/// [`Console::print`] on the process's stderr: for the final `error:` line, prompts, a
/// header sent to stderr, anything that must keep its place among the log lines.
pub fn print(bytes: impl AsRef<[u8]>) {
    global().print(bytes.as_ref());
}

/// [`Console::finish`] on the process's stderr, if it was ever used: call it last in
/// `main`, and before any `std::process::exit`, or queued lines are lost.
pub fn finish() -> bool {
    // Not `global()`: a program that never wrote to stderr needs no writer thread.
    GLOBAL.get().is_none_or(Console::finish)
}

/// [`finish`], then exit with `code`: for exits away from `main` (after a signal).
pub fn exit(code: i32) -> ! {
    finish();
    std::process::exit(code)
}

/// Starts the logger: `level` unless `RUST_LOG` says otherwise, records as
/// `[2024-05-01T12:00:00.123Z INFO ] text` (millisecond timestamps, no target), coloured
/// when stderr is a terminal (or as `RUST_LOG_STYLE` says), all through the console.
/// rustls's own debug lines (in Rust types) wait for `-vv`.
pub fn init_logging(level: log::LevelFilter) {
    let style: env_logger::WriteStyle = anstream::AutoStream::choice(&io::stderr()).into();
    // rustls's own debug lines speak in Rust types: they come with -vv, not with -v.
    let rustls = match level {
        log::LevelFilter::Debug => log::LevelFilter::Info,
        other => other,
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .filter_module("rustls", rustls)
        .write_style(style)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .format_target(false)
        .target(env_logger::Target::Pipe(Box::new(LogPipe)))
        .try_init();
}

/// env_logger's target: each record arrives as one `write` of whole lines.
struct LogPipe;

impl Write for LogPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        global().log(buf);
        Ok(buf.len())
    }

    /// Nothing to wait for: waiting is what logging must never do.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// For tests: a clonable in-memory target and trace sink that keeps each write as one entry.
#[derive(Clone, Default, Debug)]
pub struct Capture {
    entries: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Capture {
    /// Adds one entry.
    pub fn append(&self, bytes: &[u8]) {
        self.lock().push(bytes.to_vec());
    }

    /// Every entry so far, one per write.
    pub fn events(&self) -> Vec<Vec<u8>> {
        self.lock().clone()
    }

    /// Everything so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().concat()).into_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A target whose writes block until it is opened, as a pipe nobody reads does; what it
    /// writes lands in a [`Capture`].
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        out: Capture,
    }

    impl Gate {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.out.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const TEST_STALL: Duration = Duration::from_millis(100);

    fn console(target: impl Write + Send + 'static, queue_bytes: usize) -> Console {
        Console::with_limits(Box::new(target), queue_bytes, TEST_STALL)
    }

    /// Fills a stuck console: the writer holds the first entry inside its write, the queue
    /// holds what fits after it.
    fn stuck(queue_bytes: usize) -> (Console, Gate) {
        let gate = Gate::default();
        let console = console(gate.clone(), queue_bytes);
        console.log(b"first\n");
        // Wait until the writer is inside its write of the first entry.
        while console.shared().lock().writing_since.is_none() {
            thread::yield_now();
        }
        (console, gate)
    }

    #[test]
    fn concurrent_lines_arrive_whole_and_in_each_threads_order() {
        let capture = Capture::default();
        let console = Console::new(capture.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let console = console.clone();
                thread::spawn(move || {
                    for i in 0..500 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 90));
                        match i % 2 {
                            0 => console.log(line.as_bytes()),
                            _ => console.print(line.as_bytes()),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(console.flush(Duration::from_secs(10)));
        let text = capture.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let number = |at: usize| -> usize {
                words[at]
                    .parse()
                    .unwrap_or_else(|_| panic!("a broken line: {line:?}"))
            };
            let (t, i) = (number(1), number(3));
            assert_eq!(i, next[t], "thread {t}'s lines out of order or lost");
            assert_eq!(words.get(4).map_or(0, |x| x.len()), i % 90, "{line}");
            next[t] += 1;
        }
        assert_eq!(
            next, [500; 4],
            "nothing is dropped while the target takes it"
        );
        assert!(capture.events().iter().all(|w| w.len() <= BATCH));
    }

    #[test]
    fn logging_never_waits_for_a_stuck_stderr_and_counts_what_it_drops() {
        let (console, gate) = stuck(1000);
        let started = Instant::now();
        for i in 0..10_000 {
            console.log(format!("record {i:05} {}\n", "y".repeat(80)).as_bytes());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "logging waited");
        gate.open();
        // Stderr is read again: the next record is preceded by the count of the lost ones.
        console.log(b"after\n");
        assert!(console.flush(Duration::from_secs(10)));
        let text = gate.out.text();
        let lines: Vec<&str> = text.lines().collect();
        let kept = lines.iter().filter(|l| l.starts_with("record")).count();
        // What fitted beside "first\n", which the stuck write still holds.
        assert_eq!(kept, (1000 - 6) / 93, "{text}");
        let dropped = 10_000 - kept;
        assert_eq!(
            lines[lines.len() - 2],
            format!("note: {dropped} log records dropped while stderr was not being read")
        );
        assert_eq!(lines[lines.len() - 1], "after");
    }

    #[test]
    fn printing_waits_for_a_slow_reader_and_loses_nothing() {
        struct Slow(Capture);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                thread::sleep(Duration::from_millis(2));
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        // A stall far longer than the test: a loaded machine may leave the writer thread
        // unscheduled for a while, and waiting is what is tested here, not giving up.
        let console = Console::with_limits(
            Box::new(Slow(capture.clone())),
            300,
            Duration::from_secs(60),
        );
        for i in 0..200 {
            console.print(format!("event {i:03} {}\n", "z".repeat(90)).as_bytes());
        }
        assert!(console.flush(Duration::from_secs(10)));
        let text = capture.text();
        assert_eq!(text.lines().count(), 200);
        assert!(!text.contains("note:"));
    }

    #[test]
    fn printing_to_a_stuck_stderr_gives_up_after_the_stall_and_says_so_later() {
        let (console, gate) = stuck(100);
        // Printed output may fill half the queue, of which "first\n" still takes 6.
        console.print(&[b'a'; 44]);
        let started = Instant::now();
        for _ in 0..50 {
            console.print(b"dropped\n");
        }
        // The first waits out the stall; the rest see it at once.
        assert!(
            started.elapsed() < TEST_STALL * 5,
            "{:?}",
            started.elapsed()
        );
        gate.open();
        assert!(console.flush(Duration::from_secs(10)));
        console.print(b"seen\n");
        assert!(console.flush(Duration::from_secs(10)));
        let text = gate.out.text();
        assert!(
            text.ends_with("note: 50 trace events dropped while stderr was not being read\nseen\n"),
            "{text}"
        );
    }

    #[test]
    fn flush_and_finish_give_up_quickly_on_a_stuck_stderr() {
        let (console, gate) = stuck(1000);
        console.log(b"queued\n");
        let started = Instant::now();
        assert!(!console.flush(Duration::from_secs(30)));
        assert!(
            started.elapsed() < TEST_STALL * 5,
            "{:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(!console.finish());
        assert!(
            started.elapsed() < TEST_STALL * 5,
            "{:?}",
            started.elapsed()
        );
        // Finished: later output is discarded instead of waiting.
        let started = Instant::now();
        for _ in 0..1000 {
            console.print(&[b'p'; 100]);
        }
        assert!(started.elapsed() < TEST_STALL);
        gate.open();
        assert!(console.flush(Duration::from_secs(10)));
        assert_eq!(gate.out.text(), "first\nqueued\n");
    }

    #[test]
    fn finish_reports_drops_that_were_never_reported() {
        let (console, gate) = stuck(10);
        console.log(b"0123456789\n");
        console.log(b"lost\n");
        gate.open();
        assert!(console.finish());
        assert_eq!(
            gate.out.text(),
            "first\n0123456789\nnote: 1 log record dropped while stderr was not being read\n"
        );
    }

    #[test]
    fn a_closed_stderr_stops_everything_without_waiting() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let console = console(Closed, 100);
        console.print(b"one\n");
        assert!(console.flush(Duration::from_secs(10)));
        let started = Instant::now();
        for _ in 0..1000 {
            console.print(&[b'x'; 100]);
        }
        assert!(started.elapsed() < TEST_STALL);
    }

    #[test]
    fn the_writer_thread_ends_with_the_last_handle() {
        let (tx, rx) = mpsc::channel::<()>();
        /// Holds the sender only so that the channel disconnects when the target is dropped.
        struct Tell {
            _alive: mpsc::Sender<()>,
        }
        impl Write for Tell {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        // The target is dropped with the writer's state, when the thread has ended.
        let console = console(Tell { _alive: tx }, 100);
        console.log(b"x\n");
        drop(console.clone());
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        drop(console);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }
}

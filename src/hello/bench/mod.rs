//! `sockdemo bench`: a load generator for Hello servers.
//!
//! CLIENTS threads, one each, speak the raw Hello protocol: read `Welcome!`, then send the
//! client's own message (`bench-<i>`, one write, no line ending) and check that exactly
//! `Hello, bench-<i>!` comes back, MESSAGES times or for `--duration`, then send `exit`.
//! With `--reconnect`, every round trip gets a fresh connection (connect, greeting, one
//! message, `exit`, close): that measures connections per second.
//!
//! Timing. In the default mode the clients first open their connections and read the
//! greeting; the clock starts when all of them are ready, so `elapsed` covers the round
//! trips only, from that start to the last client's `exit`. Opening the connections is timed
//! apart (`setup`), and connections/s is measured over it. With `--reconnect` there is no
//! set-up: `elapsed` runs from the start to the last `exit`, and every connect is inside it.
//! Latency is the time from a message's send to its whole reply (with `--reconnect`, from
//! the connect to the whole reply); see `latency.rs` for how it is kept.
//!
//! Opening many connections at once can overflow a small listen backlog (the tutorial's
//! server listens with a backlog of 5). Then the kernel drops the handshake and the client
//! waits a whole second for the retransmission, or the connect is refused. So at most
//! [`CONNECT_WINDOW`] connections are between `connect` and greeting at any time during the
//! set-up, and a refused, reset or timed-out connect is retried up to [`CONNECT_ATTEMPTS`]
//! times with a doubling back-off, then counted as an error.
//!
//! With `--trace` every connection's socket events are traced, each line marked with the
//! connection's own address (`[127.0.0.1:50548] `), the label the server's trace gives the same
//! connection. That is a lot of output and slows every round trip: the figures then measure
//! the tracing too, and the bench says so. Without it the clients use the plain socket.
//!
//! A client stops at its first error (wrong reply, close, reset, timeout, failed connect):
//! the error is counted, the first few are logged, and the bench exits 1 after printing
//! its figures.
//!
//! Every client is a thread, so CLIENTS beyond what the system can give threads to (see
//! [`threads`]) is refused before anything starts, rather than left to a
//! thread creation that can abort the process.
//!
//! SIGINT (or any terminating signal the process can catch) ends the run early, as
//! ApacheBench does: every client stops after its round trip in flight, the figures so far
//! are printed, marked as interrupted, and the exit status is 128 + the signal's number.

mod latency;
mod report;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::client::{self, Connection};
use super::protocol::{exit_message, Exchange, Mode, GREETING};
use super::threads;
use crate::exit::Signalled;
use crate::net::trace::{TracedSocket, Tracer};
use crate::net::{self, IoContext, PlainIoError};

pub use latency::{Latency, Samples, LATENCY_BUDGET};
pub use report::{human, Rounds, Summary};

/// Connections between `connect` and greeting at once, at most, while setting up.
pub const CONNECT_WINDOW: usize = 4;
/// Tries for one connection before it counts as an error.
pub const CONNECT_ATTEMPTS: u32 = 5;
/// The wait after the first failed try; it doubles after each (10, 20, 40, 80 ms).
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// Errors described on stderr; the rest are only counted.
const MAX_WARNINGS: u64 = 5;
/// Stack for a client thread: a 1 KiB receive buffer, an error message, a log line.
const CLIENT_STACK: usize = 256 * 1024;
/// Threads of the process besides the clients (main, signals, the stderr writer, spare).
const OTHER_THREADS: usize = 8;

/// What `sockdemo bench` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Concurrent clients, one connection and one thread each.
    pub clients: usize,
    /// Round trips per client, or how long to run.
    pub rounds: Rounds,
    /// A fresh connection for every round trip.
    pub reconnect: bool,
    /// Raw messages (the tutorial's) or lines.
    pub mode: Mode,
    /// Bounds each connect and reply.
    pub timeout: Duration,
    /// One JSON object instead of the text summary.
    pub json: bool,
    /// How many more threads the system can give; `None`: read from the system's limits.
    pub thread_budget: Option<usize>,
    /// `--trace`: every connection's socket events.
    pub trace: Option<Tracer>,
}

/// `sockdemo bench`.
pub fn run(config: Config) -> anyhow::Result<()> {
    check_threads(config.clients, threads::budget(config.thread_budget))?;
    let plan = Plan::new(&config)?;
    let shared = Shared::new();
    let stop = Arc::clone(&shared.stop);
    crate::signals::on_interrupt(move |signal| stop.store(signal, Ordering::Relaxed))?;
    info!(
        "Benchmarking {} with {} clients{}",
        plan.target,
        plan.clients,
        if plan.reconnect {
            ", a new connection per round trip"
        } else {
            ""
        }
    );
    let summary = match &config.trace {
        None => bench(&plan, &shared, &Plain),
        Some(tracer) => {
            warn!("--trace slows every round trip: these figures measure the tracing too");
            bench(&plan, &shared, &Tracing(tracer.clone()))
        }
    };
    let printed = if config.json {
        summary.json() + "\n"
    } else {
        summary.text()
    };
    let mut out = io::stdout().lock();
    let written = out.write_all(printed.as_bytes()).and_then(|()| out.flush());
    crate::exit::output_write(written, "stdout")?;
    if let Some(signal) = summary.interrupted {
        return Err(Signalled(signal).into());
    }
    match (summary.errors, shared.errors.first()) {
        (0, _) => Ok(()),
        (n, Some(first)) => anyhow::bail!("{n} errors during the bench; the first: {first}"),
        (n, None) => anyhow::bail!("{n} errors during the bench"),
    }
}

/// Refuses `clients` threads beyond `budget`, before any is started.
fn check_threads(clients: usize, budget: Option<threads::Budget>) -> anyhow::Result<()> {
    let Some(budget) = budget else {
        return Ok(());
    };
    let most = budget.threads.saturating_sub(OTHER_THREADS);
    if clients > most {
        anyhow::bail!(
            "cannot run {clients} clients, one thread each: {budget}; use -c {} or fewer",
            most.max(1)
        );
    }
    Ok(())
}

/// What every client is to do.
struct Plan {
    target: String,
    addrs: Vec<SocketAddr>,
    clients: usize,
    rounds: Rounds,
    reconnect: bool,
    mode: Mode,
    timeout: Duration,
    samples_per_client: usize,
}

impl Plan {
    fn new(config: &Config) -> anyhow::Result<Plan> {
        let addrs = net::resolve(&config.host, config.port, net::Family::Any)?;
        let count = match config.rounds {
            Rounds::Count(n) => Some(n),
            Rounds::For(_) => None,
        };
        Ok(Plan {
            target: net::host_port(&config.host, config.port),
            addrs,
            clients: config.clients,
            rounds: config.rounds,
            reconnect: config.reconnect,
            mode: config.mode,
            timeout: config.timeout,
            samples_per_client: latency::capacity_per_client(config.clients, count),
        })
    }

    /// Round trips a client may make at most; with `--duration`, the deadline ends it.
    fn max_rounds(&self) -> u64 {
        match self.rounds {
            Rounds::Count(n) => n,
            Rounds::For(_) => u64::MAX,
        }
    }

    /// When the clients stop, if a duration says so; one too long to reach is no deadline.
    fn deadline(&self, start: Instant) -> Option<Instant> {
        match self.rounds {
            Rounds::Count(_) => None,
            Rounds::For(d) => start.checked_add(d),
        }
    }
}

/// What a client's connection is carried on: the socket itself, or the socket traced. Chosen
/// once for the whole bench, so that without `--trace` every round trip is the plain
/// socket's, with no branch in it.
trait Carrier: Sync {
    /// The stream the conversation runs over.
    type Stream: Read + Write;
    /// Puts a freshly connected socket's conversation on [`Self::Stream`].
    fn carry(&self, conn: Connection) -> anyhow::Result<Connection<Self::Stream>>;
}

/// The socket itself.
struct Plain;

impl Carrier for Plain {
    type Stream = TcpStream;

    fn carry(&self, conn: Connection) -> anyhow::Result<Connection> {
        Ok(conn)
    }
}

/// The socket traced, each connection's lines marked with its own address.
struct Tracing(Tracer);

impl Carrier for Tracing {
    type Stream = TracedSocket<TcpStream>;

    fn carry(&self, conn: Connection) -> anyhow::Result<Connection<Self::Stream>> {
        let local = conn
            .get_ref()
            .local_addr()
            .io_context(|| "cannot read the socket's address")?;
        conn.traced(self.0.for_connection(local.to_string()))
    }
}

/// What the clients share: the connect window, the start signal, the error count.
struct Shared {
    window: Window,
    /// Set when a client could not open its connection during the set-up.
    gave_up: AtomicBool,
    start: Gate,
    errors: ErrorLog,
    /// The terminating signal that asked the run to stop, or 0.
    stop: Arc<AtomicI32>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            window: Window::new(CONNECT_WINDOW),
            gave_up: AtomicBool::new(false),
            start: Gate::default(),
            errors: ErrorLog::default(),
            stop: Arc::new(AtomicI32::new(0)),
        }
    }

    /// The signal that stopped the run, if one has.
    fn stopped(&self) -> Option<i32> {
        Some(self.stop.load(Ordering::Relaxed)).filter(|&signal| signal != 0)
    }
}

/// What one client did.
struct Tally {
    connections: u64,
    messages: u64,
    samples: Samples,
    /// When it finished its last round trip (or gave up).
    end: Option<Instant>,
}

/// Runs every client and gathers their figures.
fn bench<C: Carrier>(plan: &Plan, shared: &Shared, carrier: &C) -> Summary {
    let (tallies, setup, start) = thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let setup_began = Instant::now();
        let mut handles = Vec::with_capacity(plan.clients);
        for i in 0..plan.clients {
            let ready = ready_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("bench-{i}"))
                .stack_size(CLIENT_STACK)
                .spawn_scoped(scope, move || client(i, plan, shared, carrier, ready));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => shared.errors.report(
                    i,
                    &anyhow::Error::new(PlainIoError(err)).context("cannot start its thread"),
                ),
            }
        }
        drop(ready_tx);
        // Each client says once that it is ready (connected, or failed); one that died
        // drops its sender instead, and then `recv` fails rather than waiting forever.
        for _ in 0..handles.len() {
            if ready_rx.recv().is_err() {
                break;
            }
        }
        let start = Instant::now();
        shared.start.open(start);
        let tallies: Vec<Tally> = handles
            .into_iter()
            .enumerate()
            .filter_map(|(i, handle)| match handle.join() {
                Ok(tally) => Some(tally),
                Err(_) => {
                    shared
                        .errors
                        .report(i, &anyhow::anyhow!("its thread panicked"));
                    None
                }
            })
            .collect();
        (tallies, start.duration_since(setup_began), start)
    });
    let last = tallies.iter().filter_map(|t| t.end).max();
    Summary {
        target: plan.target.clone(),
        clients: plan.clients,
        rounds: plan.rounds,
        reconnect: plan.reconnect,
        connections: tallies.iter().map(|t| t.connections).sum(),
        messages: tallies.iter().map(|t| t.messages).sum(),
        errors: shared.errors.count(),
        setup: if plan.reconnect {
            Duration::ZERO
        } else {
            setup
        },
        elapsed: last.map_or(Duration::ZERO, |end| end.saturating_duration_since(start)),
        latency: Latency::merge(tallies.iter().map(|t| &t.samples)),
        interrupted: shared.stopped(),
    }
}

/// One client thread: set up, say it is ready, wait for the start, run.
fn client<C: Carrier>(
    i: usize,
    plan: &Plan,
    shared: &Shared,
    carrier: &C,
    ready: mpsc::Sender<()>,
) -> Tally {
    let exchange = Exchange::new(format!("bench-{i}").as_bytes(), plan.mode);
    let mut tally = Tally {
        connections: 0,
        messages: 0,
        samples: Samples::with_capacity(plan.samples_per_client, i as u64 + 1),
        end: None,
    };
    let result = if plan.reconnect {
        let _ = ready.send(());
        drop(ready);
        let start = shared.start.wait();
        reconnecting(plan, shared, carrier, &exchange, start, &mut tally)
    } else {
        let conn = set_up(i, plan, shared, carrier);
        let _ = ready.send(());
        drop(ready);
        match conn {
            Some(mut conn) => {
                tally.connections += 1;
                let start = shared.start.wait();
                persistent(&mut conn, plan, shared, &exchange, start, &mut tally)
            }
            None => return tally,
        }
    };
    tally.end = Some(Instant::now());
    if let Err(err) = result {
        shared.errors.report(i, &err);
    }
    tally
}

/// Opens client `i`'s connection inside the connect window. Once one client has given up
/// connecting, the bench has failed: the clients still waiting for the window do not try,
/// so that a server that is not running costs the retries of a few clients, not of all.
/// Every failure, skipped clients included, is reported here.
fn set_up<C: Carrier>(
    i: usize,
    plan: &Plan,
    shared: &Shared,
    carrier: &C,
) -> Option<Connection<C::Stream>> {
    let _slot = shared.window.enter();
    if shared.stopped().is_some() {
        return None;
    }
    if shared.gave_up.load(Ordering::Relaxed) {
        let err = anyhow::anyhow!("not started: another client could not connect");
        shared.errors.report(i, &err);
        return None;
    }
    match open_greeted(plan, carrier) {
        Ok(conn) => Some(conn),
        Err(err) => {
            // Reported first, so that the first error on record is the real cause.
            shared.errors.report(i, &err);
            shared.gave_up.store(true, Ordering::Relaxed);
            None
        }
    }
}

/// Round trips on one connection, then `exit`.
fn persistent<S: Read + Write>(
    conn: &mut Connection<S>,
    plan: &Plan,
    shared: &Shared,
    exchange: &Exchange,
    start: Instant,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    rounds(plan, shared, start, tally, || {
        let sent = Instant::now();
        conn.round_trip(exchange)?;
        Ok((sent, 0))
    })?;
    conn.send(exit_message(plan.mode))
}

/// A new connection for every round trip: connect, greeting, message, reply, `exit`.
fn reconnecting<C: Carrier>(
    plan: &Plan,
    shared: &Shared,
    carrier: &C,
    exchange: &Exchange,
    start: Instant,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    rounds(plan, shared, start, tally, || {
        let began = Instant::now();
        let mut conn = open_greeted(plan, carrier)?;
        conn.round_trip(exchange)?;
        conn.send(exit_message(plan.mode))?;
        Ok((began, 1))
    })
}

/// The skeleton both modes share: round trips until the count, the deadline or a signal,
/// each timed from the instant `round` returns to its end. `round` also says how many
/// connections it opened.
fn rounds(
    plan: &Plan,
    shared: &Shared,
    start: Instant,
    tally: &mut Tally,
    mut round: impl FnMut() -> anyhow::Result<(Instant, u64)>,
) -> anyhow::Result<()> {
    let deadline = plan.deadline(start);
    let mut now = start;
    for _ in 0..plan.max_rounds() {
        if deadline.is_some_and(|d| now >= d) || shared.stopped().is_some() {
            break;
        }
        let (began, connections) = round()?;
        now = Instant::now();
        tally.connections += connections;
        tally.samples.record(now - began);
        tally.messages += 1;
    }
    Ok(())
}

/// A connection that has said `Welcome!`.
fn open_greeted<C: Carrier>(plan: &Plan, carrier: &C) -> anyhow::Result<Connection<C::Stream>> {
    let mut conn = carrier.carry(connect_with_retry(&plan.addrs, plan.timeout)?)?;
    conn.expect(GREETING, "greeting")?;
    if plan.mode == Mode::Lines {
        conn.enter_line_mode()?;
    }
    Ok(conn)
}

/// Connects, retrying what a busy listener causes (refused, reset, timed out, no free
/// local port) with a doubling back-off, [`CONNECT_ATTEMPTS`] tries in all.
fn connect_with_retry(addrs: &[SocketAddr], timeout: Duration) -> anyhow::Result<Connection> {
    let mut backoff = BACKOFF_FIRST;
    let mut attempt = 1;
    loop {
        let err = match Connection::connect(addrs, timeout) {
            Ok(conn) => return Ok(conn),
            Err(err) => err,
        };
        if attempt >= CONNECT_ATTEMPTS || !is_transient(&err) {
            let err = client::refused_hint(err);
            return Err(if attempt > 1 {
                err.context(format!("gave up after {attempt} attempts"))
            } else {
                err
            });
        }
        debug!("connect attempt {attempt} failed: {err:#}; retrying in {backoff:?}");
        thread::sleep(backoff);
        backoff *= 2;
        attempt += 1;
    }
}

/// True for connect errors that a later try may not meet.
fn is_transient(err: &anyhow::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        net::io_kind(err),
        Some(ConnectionRefused | ConnectionReset | TimedOut | WouldBlock | AddrNotAvailable)
    )
}

/// A counting semaphore: at most N holders of a slot at once.
struct Window {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Window);

impl Window {
    fn new(slots: usize) -> Self {
        Window {
            free: Mutex::new(slots),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot. A slot is held for one bounded connect-and-greet.
    fn enter(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// The start signal: closed until the main thread opens it with the start time.
#[derive(Default)]
struct Gate {
    start: Mutex<Option<Instant>>,
    opened: Condvar,
}

impl Gate {
    fn open(&self, start: Instant) {
        *self.start.lock().unwrap_or_else(PoisonError::into_inner) = Some(start);
        self.opened.notify_all();
    }

    /// Waits for [`open`](Self::open), which the main thread calls once every client has
    /// reported ready or died.
    fn wait(&self) -> Instant {
        let mut start = self.start.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(start) = *start {
                return start;
            }
            start = self
                .opened
                .wait(start)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Counts errors, describes the first few, remembers the very first for the exit message.
#[derive(Default)]
struct ErrorLog {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl ErrorLog {
    fn report(&self, client: usize, err: &anyhow::Error) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= MAX_WARNINGS {
            warn!("client {client}: {err:#}");
        } else if n == MAX_WARNINGS + 1 {
            warn!("more errors; only the first {MAX_WARNINGS} are described");
        }
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(format!("client {client}: {err:#}"));
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn first(&self) -> Option<String> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_listener_errors_are_retried_and_others_are_not() {
        let io_err = |kind: io::ErrorKind| {
            anyhow::Error::new(PlainIoError(kind.into())).context("cannot connect to x")
        };
        assert!(is_transient(&io_err(io::ErrorKind::ConnectionRefused)));
        assert!(is_transient(&io_err(io::ErrorKind::WouldBlock)));
        assert!(!is_transient(&io_err(io::ErrorKind::PermissionDenied)));
        assert!(!is_transient(&anyhow::anyhow!("no address to connect to")));
    }

    #[test]
    fn clients_beyond_the_thread_budget_are_refused_up_front() {
        assert!(check_threads(100_000, None).is_ok());
        assert!(check_threads(92, Some(threads::Budget::given(100))).is_ok());
        let err = check_threads(93, Some(threads::Budget::given(100))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot run 93 clients, one thread each: at most 100 more threads are allowed; \
             use -c 92 or fewer"
        );
    }

    #[test]
    fn a_duration_too_long_to_add_up_runs_until_stopped() {
        let config = Config {
            host: "127.0.0.1".to_string(),
            port: 1,
            clients: 1,
            rounds: Rounds::For(Duration::from_secs(10_000_000_000_000_000_000)),
            reconnect: false,
            mode: Mode::Raw,
            timeout: Duration::from_secs(1),
            json: false,
            thread_budget: None,
            trace: None,
        };
        let plan = Plan::new(&config).expect("plan");
        assert_eq!(plan.deadline(Instant::now()), None);
        let config = Config {
            rounds: Rounds::For(Duration::from_secs(2)),
            ..config
        };
        let start = Instant::now();
        let plan = Plan::new(&config).expect("plan");
        assert_eq!(plan.deadline(start), Some(start + Duration::from_secs(2)));
    }

    #[test]
    fn the_window_never_lets_more_than_its_slots_in() {
        let window = Window::new(2);
        let inside = AtomicU64::new(0);
        let most = AtomicU64::new(0);
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _slot = window.enter();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}

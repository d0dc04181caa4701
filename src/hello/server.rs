//! The Hello server: bind, then one OS thread per accepted connection, as the tutorial
//! teaches, made to hold up: the number of open connections is capped (by
//! `--max-connections`, and by the threads the system can give), idle and never-reading
//! clients time out, accept errors are waited out instead of ending the server, and
//! SIGINT/SIGTERM close everything and exit cleanly (another terminating signal closes
//! everything too, then exits 128 + its number).
//!
//! A thread that has finished its connection waits a few seconds for the next one before it
//! exits. Each thread still serves one connection at a time; the cache only saves the cost
//! of creating a thread when clients come and go quickly.
//!
//! At the cap, the accepting thread holds the client it has just accepted (ungreeted, as if
//! still in the listen backlog) until a connection closes. A client that has to wait like
//! this starts a pause, logged once; while the pause lasts, each free slot goes to a client
//! already waiting in the backlog, and the first free slot that finds the backlog empty ends
//! the pause, logged once too.
//!
//! A connection thread is named after the connection it was started for (`hello-conn-7`),
//! and the log says which thread serves each connection and how many are open, so that a
//! learner sees a thread per connection, and a thread reused. `--serial` is the server the
//! tutorial warns against: every connection is served on the accepting thread, so the next
//! client waits in the listen backlog until this one leaves.
//!
//! This module is the accept loop, admission, the shared state and the threads; what a
//! thread does with one connection (the PROXY header, the conversation, the linger) is in
//! its `connection` submodule.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use socket2::SockRef;

use super::listen;
use super::threads;
use crate::exit::Signalled;
use crate::net::trace::Tracer;
use crate::net::{self, describe, IoContext};
use crate::signals;
use signal_hook::consts::{SIGINT, SIGTERM};

mod connection;

pub use connection::PROXY_HEADER_TIMEOUT;
use connection::{connection_thread, serve};

/// Stack for a connection thread. It holds a 1 KiB buffer and a few frames; the default
/// 2 MiB would only cost address space, but a small one makes the cost per connection plain.
const CONN_STACK: usize = 64 * 1024;
/// Open connections at most, unless the config says otherwise.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Connections the kernel may hold for us while we are not accepting (std's own is 128),
/// unless the config says otherwise: the tutorial's `listen(5)`.
pub const LISTEN_BACKLOG: u32 = 1024;
/// How long a thread that has finished a connection waits for another before it exits.
const THREAD_KEEPALIVE: Duration = Duration::from_secs(5);
/// Threads kept waiting at most; beyond that a finished thread exits at once.
const MAX_IDLE_THREADS: usize = 64;
/// Threads of the process besides the connection threads (main, signals, the stderr writer,
/// accepting threads, spare), counted against the system's thread budget.
const OTHER_THREADS: usize = 8;
/// How long shutdown waits for connection threads to notice their sockets closed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Back-off after a failed accept, doubling up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// What `sockdemo serve` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name or address to listen on (a name: every address it resolves to).
    pub host: String,
    /// The port (0: the system picks one).
    pub port: u16,
    /// Open connections at most; at the cap, accepting pauses.
    pub max_connections: usize,
    /// `None`: a client may stay silent forever.
    pub idle_timeout: Option<Duration>,
    /// Waited before each reply, as the tutorial's `time.sleep(1)`.
    pub delay: Duration,
    /// How many more threads the system can give; `None`: read from the system's limits
    /// (see [`threads`]).
    pub thread_budget: Option<usize>,
    /// SO_REUSEPORT on the listeners: several processes may listen on the same port.
    pub reuse_port: bool,
    /// Every connection begins with a PROXY protocol header naming the real client.
    pub proxy_protocol: bool,
    /// The listen backlog (the system caps it at `net.core.somaxconn`).
    pub backlog: u32,
    /// Serve one connection at a time, on the accepting thread.
    pub serial: bool,
    /// `--trace`: every connection's socket events, each line marked with its peer.
    pub trace: Option<Tracer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: net::DEFAULT_HOST.to_string(),
            port: net::DEFAULT_PORT,
            max_connections: MAX_CONNECTIONS as usize,
            idle_timeout: Some(Duration::from_secs(300)),
            delay: Duration::ZERO,
            thread_budget: None,
            reuse_port: false,
            proxy_protocol: false,
            backlog: LISTEN_BACKLOG,
            serial: false,
            trace: None,
        }
    }
}

/// `sockdemo serve`: serve until a terminating signal. SIGINT and SIGTERM are how a server
/// is stopped: a clean shutdown, exit 0. Any other (SIGHUP, SIGQUIT, SIGUSR1, ...) gets the
/// same clean shutdown, then exit status 128 + its number.
pub fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config)?;
    let handle = server.handle();
    let (received, signal) = std::sync::mpsc::channel();
    signals::on_interrupt(move |signal| {
        info!("Received {}, shutting down", signals::name(signal));
        let _ = received.send(signal);
        handle.shutdown();
    })?;
    server.run();
    match signal.try_recv() {
        Ok(signal) if signal != SIGINT && signal != SIGTERM => Err(Signalled(signal).into()),
        _ => Ok(()),
    }
}

/// Bound listeners, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<Arc<TcpListener>>,
    locals: Vec<SocketAddr>,
    config: Arc<Config>,
    shared: Arc<Shared>,
    /// Whether accepted sockets arrive with the listener's options (see [`Server::configure`]).
    inherited: OnceLock<bool>,
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Handle {
    locals: Vec<SocketAddr>,
    shared: Arc<Shared>,
    /// Not owners: the sockets close when the server is done with them.
    listeners: Vec<Weak<TcpListener>>,
}

/// What the accepting threads and the connection threads share.
struct Shared {
    stopping: AtomicBool,
    served: AtomicU64,
    open: Mutex<Open>,
    /// Signalled when a connection closes or shutdown begins.
    changed: Condvar,
    pool: Mutex<Pool>,
    /// Signalled when a connection is handed to a waiting thread or shutdown begins.
    work: Condvar,
    /// Finished threads kept waiting for the next connection, at most.
    idle_max: usize,
}

/// One accepted connection on its way to a thread.
struct Conn {
    id: u64,
    stream: Arc<TcpStream>,
    peer: SocketAddr,
}

/// Threads waiting for a connection, and connections handed over but not yet picked up.
/// The accept loop only hands over when `idle > queue.len()`, and a thread only leaves when
/// the queue is empty, so nothing handed over is ever left behind.
#[derive(Default)]
struct Pool {
    idle: usize,
    queue: VecDeque<Conn>,
}

/// The open connections, kept so that shutdown can close them, and the cap on them.
struct Open {
    next_id: u64,
    streams: HashMap<u64, Arc<TcpStream>>,
    /// Threads waiting on `changed`: closing a connection wakes no one when there are none.
    waiters: usize,
    /// Connections admitted at most.
    cap: usize,
    /// What set the cap, as the pause line names it.
    capped_by: CappedBy,
    /// Whether clients are waiting at the cap (see the module's documentation).
    paused: bool,
}

/// What the number of connections is capped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CappedBy {
    /// `--max-connections`.
    Flag,
    /// The threads the system can give, as measured at the start.
    Budget,
    /// The system refused a thread.
    Refusal,
    /// `--serial`: one at a time.
    Serial,
}

impl fmt::Display for CappedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CappedBy::Flag => "--max-connections",
            CappedBy::Budget => "as many as the system can give threads to",
            CappedBy::Refusal => "as many as the system gave threads to",
            CappedBy::Serial => "--serial",
        })
    }
}

/// How many connections to admit and how many finished threads to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Admission {
    cap: usize,
    idle_max: usize,
    capped_by: CappedBy,
}

impl Admission {
    /// `--max-connections`, within what `budget` threads allow: the connection threads, the
    /// finished threads kept waiting, and the process's other threads must all fit in it.
    fn within(max_connections: usize, budget: Option<threads::Budget>, listeners: usize) -> Self {
        let wanted = max_connections.max(1);
        let Some(budget) = budget else {
            return Admission {
                cap: wanted,
                idle_max: MAX_IDLE_THREADS,
                capped_by: CappedBy::Flag,
            };
        };
        let spare = budget.threads.saturating_sub(OTHER_THREADS + listeners);
        let idle_max = MAX_IDLE_THREADS.min(spare / 4);
        let most = (spare - idle_max).max(1);
        if wanted <= most {
            return Admission {
                cap: wanted,
                idle_max,
                capped_by: CappedBy::Flag,
            };
        }
        warn!("Admitting at most {most} connections, not {wanted}: {budget}");
        Admission {
            cap: most,
            idle_max,
            capped_by: CappedBy::Budget,
        }
    }
}

impl Server {
    /// Binds every address of `config.host` on `config.port` and logs `Listening on` with
    /// each real address; port 0 picks a free port (see [`local_addr`]).
    ///
    /// [`local_addr`]: Server::local_addr
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        let addrs = net::resolve(&config.host, config.port, net::Family::Any)?;
        let listeners = listen::listen_all(
            &addrs,
            config.idle_timeout,
            config.reuse_port,
            config.backlog,
        )?;
        let mut locals = Vec::with_capacity(listeners.len());
        for listener in &listeners {
            let local = listener
                .local_addr()
                .io_context(|| format!("cannot read the address of {}", config.host))?;
            info!("Listening on {local}");
            locals.push(local);
        }
        let budget = threads::budget(config.thread_budget);
        let mut admission = Admission::within(config.max_connections, budget, listeners.len());
        if config.serial {
            // One at a time, also across the accepting threads of several addresses.
            admission.cap = 1;
            admission.capped_by = CappedBy::Serial;
        }
        Ok(Server {
            listeners: listeners.into_iter().map(Arc::new).collect(),
            locals,
            config: Arc::new(config),
            shared: Arc::new(Shared::new(admission)),
            inherited: OnceLock::new(),
        })
    }

    /// The first address really bound (with the port the system picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.locals[0]
    }

    /// Every address really bound, one per address of the host, all on one port.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// A handle that can stop the server from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            locals: self.locals.clone(),
            shared: Arc::clone(&self.shared),
            listeners: self.listeners.iter().map(Arc::downgrade).collect(),
        }
    }

    /// Accepts and serves until [`Handle::shutdown`]; returns how many connections it served.
    /// The first listener is accepted on by the calling thread, any other by one of its own.
    pub fn run(self) -> u64 {
        info!("Waiting for connection...");
        thread::scope(|scope| {
            for (listener, local) in self.listeners.iter().zip(&self.locals).skip(1) {
                let spawned = thread::Builder::new()
                    .name("hello-accept".to_string())
                    .spawn_scoped(scope, || self.accept_loop(listener));
                if let Err(err) = spawned {
                    warn!("Cannot accept on {local}: no thread: {}", describe(&err));
                }
            }
            self.accept_loop(&self.listeners[0]);
        });
        self.finish()
    }

    /// Accepts on one listener until shutdown.
    fn accept_loop(&self, listener: &TcpListener) {
        let mut backoff = Backoff::default();
        while !self.shared.stopping() {
            match self.next_client(listener) {
                Ok(_) if self.shared.stopping() => break,
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    self.take(stream, peer);
                }
                Err(_) if self.shared.stopping() => break,
                Err(err) => backoff.failed(&err),
            }
        }
    }

    /// The next client. During a pause, the next one already waiting in the backlog; when
    /// there is none, the pause is over, and it is whoever connects next.
    fn next_client(&self, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        if self.shared.paused() {
            if let Some(client) = listen::try_accept(listener)? {
                return Ok(client);
            }
            self.shared.resume();
        }
        listener.accept()
    }

    /// Sets up an accepted client, waits for a free slot for it, and hands it to a thread.
    fn take(&self, stream: TcpStream, peer: SocketAddr) {
        if let Err(err) = self.configure(&stream) {
            warn!("Cannot set up {peer}, dropping it: {}", describe(&err));
            return;
        }
        let stream = Arc::new(stream);
        let Some(id) = self.shared.admit(&stream) else {
            return;
        };
        let conn = Conn { id, stream, peer };
        if self.config.serial {
            self.serve_here(conn);
        } else {
            self.dispatch(conn);
        }
    }

    /// `--serial`: serves the connection on the accepting thread, to its end.
    fn serve_here(&self, conn: Conn) {
        let slot = Slot {
            shared: &self.shared,
            id: conn.id,
        };
        serve(&conn, &self.shared, &self.config);
        drop(conn);
        drop(slot);
    }

    /// Gives an accepted socket TCP_NODELAY (one write per reply must leave at once) and the
    /// idle timeout on reads and writes (a client that stops reading must not hold its thread
    /// forever). Linux copies all three from the listener on accept, which saves three system
    /// calls per connection; the first connection tells whether this system does, and where
    /// it does not, every connection gets them set here.
    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        let config = &self.config;
        let inherited = *self
            .inherited
            .get_or_init(|| has_options(stream, config).unwrap_or(false));
        if inherited {
            return Ok(());
        }
        net::configure(stream, config.idle_timeout)
    }

    /// Gives the connection to a waiting thread, or to a new one.
    fn dispatch(&self, conn: Conn) {
        let mut pool = self.shared.pool_lock();
        if pool.idle > pool.queue.len() {
            pool.queue.push_back(conn);
            drop(pool);
            self.shared.work.notify_one();
        } else {
            drop(pool);
            self.spawn(conn);
        }
    }

    fn spawn(&self, conn: Conn) {
        let (id, peer) = (conn.id, conn.peer);
        let shared = Arc::clone(&self.shared);
        let config = Arc::clone(&self.config);
        let spawned = thread::Builder::new()
            .name(format!("hello-conn-{id}"))
            .stack_size(CONN_STACK)
            .spawn(move || connection_thread(conn, &shared, |c| serve(c, &shared, &config)));
        if let Err(err) = spawned {
            // The closure, and the connection in it, is gone: only the slot is left.
            self.shared.unregister(id);
            self.shared.refused(peer, &err);
            thread::sleep(ACCEPT_BACKOFF_MIN);
        }
    }

    /// After the accept loops: wait briefly for the connection threads, then report.
    fn finish(self) -> u64 {
        drop(self.listeners);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut open = self.shared.lock();
        while !open.streams.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!("{} connections still closing at exit", open.streams.len());
                break;
            }
            open = self.shared.wait_changed(open, Some(left));
        }
        let served = self.shared.served.load(Ordering::Relaxed);
        let s = if served == 1 { "" } else { "s" };
        info!("Server stopped after serving {served} connection{s}");
        served
    }
}

impl Handle {
    /// Stops accepting, closes every open connection and lets [`Server::run`] return.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        {
            let open = self.shared.lock();
            for stream in open.streams.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();
        self.shared.work.notify_all();
        // The accept loops may be blocked in accept(). Shutting a listening socket down
        // wakes its loop on Linux; elsewhere a connection of our own does, which with
        // `--reuse-port` may reach another server instead.
        for (local, listener) in self.locals.iter().zip(&self.listeners) {
            if !stop_listening(listener) {
                let _ = TcpStream::connect_timeout(&wake_addr(*local), Duration::from_millis(200));
            }
        }
    }
}

/// Stops a listening socket, waking a blocked accept(); false where that fails.
fn stop_listening(listener: &Weak<TcpListener>) -> bool {
    match listener.upgrade() {
        Some(listener) => SockRef::from(&*listener).shutdown(Shutdown::Read).is_ok(),
        None => true,
    }
}

impl Shared {
    fn new(admission: Admission) -> Shared {
        Shared {
            stopping: AtomicBool::new(false),
            served: AtomicU64::new(0),
            open: Mutex::new(Open {
                next_id: 0,
                streams: HashMap::new(),
                waiters: 0,
                cap: admission.cap,
                capped_by: admission.capped_by,
                paused: false,
            }),
            changed: Condvar::new(),
            pool: Mutex::default(),
            work: Condvar::new(),
            idle_max: admission.idle_max,
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // A connection thread that panicked cannot leave the map half-updated.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free slot (the first wait of a pause is logged) and registers `stream`
    /// in it, in one step, so that several accepting threads never admit past the cap.
    /// `None` once shutdown has begun.
    fn admit(&self, stream: &Arc<TcpStream>) -> Option<u64> {
        let mut open = self.lock();
        while open.streams.len() >= open.cap && !self.stopping() {
            if !open.paused {
                open.paused = true;
                info!(
                    "{} connections open ({}): new clients wait until one closes",
                    open.streams.len(),
                    open.capped_by
                );
            }
            open = self.wait_changed(open, None);
        }
        if self.stopping() {
            return None;
        }
        // Numbered from 1 in the order of admission: the thread started for it bears it.
        open.next_id += 1;
        let id = open.next_id;
        open.streams.insert(id, Arc::clone(stream));
        Some(id)
    }

    /// Connections open now.
    fn open_count(&self) -> usize {
        self.lock().streams.len()
    }

    fn paused(&self) -> bool {
        self.lock().paused
    }

    /// Ends a pause: no client is left waiting.
    fn resume(&self) {
        let mut open = self.lock();
        if open.paused {
            open.paused = false;
            info!("No client is waiting any more, accepting again");
        }
    }

    /// The system refused a thread: admit no more connections than are open now, so that
    /// the clients beyond wait in the backlog instead of being dropped one after another.
    /// Said once; a later refusal lowers the cap again, quietly.
    fn refused(&self, peer: SocketAddr, err: &io::Error) {
        let mut open = self.lock();
        let cap = open.streams.len().max(1);
        let first = open.capped_by != CappedBy::Refusal;
        open.cap = open.cap.min(cap);
        open.capped_by = CappedBy::Refusal;
        let cap = open.cap;
        drop(open);
        let why = describe(err);
        if first {
            warn!(
                "Cannot start a thread for {peer} ({why}), dropping it; \
                 admitting at most {cap} connections from now on"
            );
        } else {
            debug!("Cannot start a thread for {peer} ({why}), dropping it; cap {cap}");
        }
    }

    fn unregister(&self, id: u64) {
        let waiters = {
            let mut open = self.lock();
            open.streams.remove(&id);
            open.waiters
        };
        if waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Waits (up to `limit`, if given) for a connection to close or shutdown to begin.
    fn wait_changed<'a>(
        &self,
        mut open: MutexGuard<'a, Open>,
        limit: Option<Duration>,
    ) -> MutexGuard<'a, Open> {
        open.waiters += 1;
        let mut open = match limit {
            None => self.changed.wait(open).unwrap_or_else(|e| e.into_inner()),
            Some(limit) => match self.changed.wait_timeout(open, limit) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            },
        };
        open.waiters -= 1;
        open
    }

    fn pool_lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back `slot` and waits up to [`THREAD_KEEPALIVE`] for a connection to be handed
    /// over; `None` when the calling thread should exit instead. The thread counts as idle
    /// before the slot is free, so the client admitted to that slot is handed to it rather
    /// than to a new thread the system may refuse while this one still exists.
    fn next_connection(&self, slot: Slot<'_>) -> Option<Conn> {
        let mut pool = self.pool_lock();
        if pool.idle >= self.idle_max {
            return None;
        }
        pool.idle += 1;
        drop(pool);
        drop(slot);
        let mut pool = self.pool_lock();
        let deadline = Instant::now() + THREAD_KEEPALIVE;
        loop {
            if let Some(conn) = pool.queue.pop_front() {
                pool.idle -= 1;
                return Some(conn);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping() {
                pool.idle -= 1;
                return None;
            }
            pool = match self.work.wait_timeout(pool, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// A connection's slot, given back when dropped: after the conversation, or while a panic
/// unwinds the thread, so that no panic can keep a slot from the clients waiting for one.
struct Slot<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

/// Logs accept failures once per burst, and sleeps a growing while between them so that a
/// shortage (of file descriptors, say) is waited out without spinning a core.
#[derive(Default)]
struct Backoff {
    failures: u64,
}

impl Backoff {
    fn failed(&mut self, err: &io::Error) {
        if is_transient(err) {
            debug!("accept: {}", describe(err));
            return;
        }
        if self.failures == 0 {
            warn!("Cannot accept: {}; retrying", describe(err));
        }
        self.failures += 1;
        let exp = self.failures.min(16) as u32 - 1;
        thread::sleep((ACCEPT_BACKOFF_MIN * 2u32.pow(exp.min(6))).min(ACCEPT_BACKOFF_MAX));
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            info!("Accepting again after {} failed attempts", self.failures);
            self.failures = 0;
        }
    }
}

/// Errors about one would-be connection that vanished before accept, and the listener's
/// own read timeout (which accept honours, as `WouldBlock`): nothing to wait out.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Whether `stream` already has the options [`Server::configure`] would give it.
fn has_options(stream: &TcpStream, config: &Config) -> io::Result<bool> {
    Ok(stream.nodelay()?
        && stream.read_timeout()? == config.idle_timeout
        && stream.write_timeout()? == config.idle_timeout)
}

/// Where to connect to reach our own listener (an unspecified address is not connectable).
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of a loopback connection.
    pub(super) fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (server, client)
    }

    /// Shared state that admits `cap` connections and keeps no thread waiting.
    pub(super) fn shared(cap: usize) -> Shared {
        Shared::new(Admission {
            cap,
            idle_max: 0,
            capped_by: CappedBy::Flag,
        })
    }

    #[test]
    fn the_cap_leaves_room_for_every_thread_within_the_budget() {
        let flag = Admission::within(1024, None, 1);
        assert_eq!((flag.cap, flag.capped_by), (1024, CappedBy::Flag));
        let roomy = Admission::within(1024, Some(threads::Budget::given(12_000)), 1);
        assert_eq!((roomy.cap, roomy.capped_by), (1024, CappedBy::Flag));
        let tight = Admission::within(100_000, Some(threads::Budget::given(12_000)), 2);
        assert_eq!(tight.capped_by, CappedBy::Budget);
        assert_eq!(tight.idle_max, MAX_IDLE_THREADS);
        assert_eq!(tight.cap + tight.idle_max + OTHER_THREADS + 2, 12_000);
        let none = Admission::within(10, Some(threads::Budget::given(0)), 1);
        assert_eq!(none.cap, 1, "a server that admits nobody would only hang");
    }

    #[test]
    fn a_refused_thread_caps_admission_at_what_is_open() {
        let shared = shared(100);
        let (a, _a) = pair();
        let (b, _b) = pair();
        let peer = a.peer_addr().unwrap();
        shared.admit(&Arc::new(a)).expect("slot");
        shared.admit(&Arc::new(b)).expect("slot");
        shared.refused(peer, &io::Error::from_raw_os_error(11));
        let open = shared.lock();
        assert_eq!(
            (open.cap, open.capped_by),
            (2, CappedBy::Refusal),
            "clients beyond wait in the backlog"
        );
    }
}

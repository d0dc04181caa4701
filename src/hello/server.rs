//! The Hello server: bind, then one OS thread per accepted connection, as the tutorial
//! teaches, made to hold up: the number of open connections is capped, idle and
//! never-reading clients time out, accept errors are waited out instead of ending the
//! server, and SIGINT/SIGTERM close everything and exit cleanly (another terminating
//! signal closes everything too, then exits 128 + its number).
//!
//! A thread that has finished its connection waits a few seconds for the next one before it
//! exits. Each thread still serves one connection at a time; the cache only saves the cost
//! of creating a thread when clients come and go quickly.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use super::protocol::{End, Framer, GREETING};
use crate::exit::Signalled;
use crate::net::{self, describe, IoContext, RECV_SIZE};
use crate::signals;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Stack for a connection thread. It holds a 1 KiB buffer and a few frames; the default
/// 2 MiB would only cost address space, but a small one makes the cost per connection plain.
const CONN_STACK: usize = 64 * 1024;
/// Open connections at most, unless the config says otherwise.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Connections the kernel may hold for us while we are not accepting (std's own is 128).
const LISTEN_BACKLOG: i32 = 1024;
/// How long a thread that has finished a connection waits for another before it exits.
const THREAD_KEEPALIVE: Duration = Duration::from_secs(5);
/// Threads kept waiting at most; beyond that a finished thread exits at once.
const MAX_IDLE_THREADS: usize = 64;
/// How long shutdown waits for connection threads to notice their sockets closed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Back-off after a failed accept, doubling up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// What `sockdemo serve` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name or address to listen on.
    pub host: String,
    /// The port (0: the system picks one).
    pub port: u16,
    /// Open connections at most; at the cap, accepting pauses.
    pub max_connections: usize,
    /// `None`: a client may stay silent forever.
    pub idle_timeout: Option<Duration>,
    /// Waited before each reply, as the tutorial's `time.sleep(1)`.
    pub delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: net::DEFAULT_HOST.to_string(),
            port: net::DEFAULT_PORT,
            max_connections: MAX_CONNECTIONS as usize,
            idle_timeout: Some(Duration::from_secs(300)),
            delay: Duration::ZERO,
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

/// A bound listener, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    config: Arc<Config>,
    shared: Arc<Shared>,
    /// Whether accepted sockets arrive with the listener's options (see [`Server::configure`]).
    inherited: OnceLock<bool>,
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Handle {
    local: SocketAddr,
    shared: Arc<Shared>,
}

/// What the accept loop and the connection threads share.
#[derive(Default)]
struct Shared {
    stopping: AtomicBool,
    served: AtomicU64,
    open: Mutex<Open>,
    /// Signalled when a connection closes or shutdown begins.
    changed: Condvar,
    pool: Mutex<Pool>,
    /// Signalled when a connection is handed to a waiting thread or shutdown begins.
    work: Condvar,
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

/// The open connections, kept so that shutdown can close them.
#[derive(Default)]
struct Open {
    next_id: u64,
    streams: HashMap<u64, Arc<TcpStream>>,
    /// Threads waiting on `changed`: closing a connection wakes no one when there are none.
    waiters: usize,
}

impl Server {
    /// Binds `config.host:config.port` and logs `Listening on` with the real address; port 0
    /// picks a free port (see [`local_addr`]).
    ///
    /// [`local_addr`]: Server::local_addr
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        let addrs = net::resolve(&config.host, config.port, net::Family::Any)?;
        let addr = addrs[0];
        let listener = listen(addr, &config).map_err(|err| listen_error(addr, err))?;
        let local = listener
            .local_addr()
            .io_context(|| format!("cannot read the address of {addr}"))?;
        info!("Listening on {local}");
        Ok(Server {
            listener,
            local,
            config: Arc::new(config),
            shared: Arc::default(),
            inherited: OnceLock::new(),
        })
    }

    /// The address really bound (with the port the system picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle that can stop the server from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            local: self.local,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Accepts and serves until [`Handle::shutdown`]; returns how many connections it served.
    pub fn run(self) -> u64 {
        info!("Waiting for connection...");
        let mut backoff = Backoff::default();
        while self.wait_for_slot() {
            match self.listener.accept() {
                Ok(_) if self.shared.stopping() => break,
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    match self.configure(&stream) {
                        Ok(()) => self.dispatch(stream, peer),
                        Err(err) => warn!("Cannot set up {peer}, dropping it: {}", describe(&err)),
                    }
                }
                Err(_) if self.shared.stopping() => break,
                Err(err) => backoff.failed(&err),
            }
        }
        self.finish()
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

    /// Blocks while the server is at `max_connections`; false once shutdown has begun.
    fn wait_for_slot(&self) -> bool {
        let mut open = self.shared.lock();
        let mut told = false;
        while open.streams.len() >= self.config.max_connections && !self.shared.stopping() {
            if !told {
                info!(
                    "{} connections open (--max-connections): new clients wait until one closes",
                    open.streams.len()
                );
                told = true;
            }
            open = self.shared.wait_changed(open, None);
        }
        if told {
            info!("A connection closed, accepting again");
        }
        !self.shared.stopping()
    }

    /// Gives the connection to a waiting thread, or to a new one.
    fn dispatch(&self, stream: TcpStream, peer: SocketAddr) {
        let stream = Arc::new(stream);
        let id = self.shared.register(Arc::clone(&stream));
        self.shared.served.fetch_add(1, Ordering::Relaxed);
        let conn = Conn { id, stream, peer };
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
            .name("hello-conn".to_string())
            .stack_size(CONN_STACK)
            .spawn(move || connection_thread(conn, &shared, &config));
        if let Err(err) = spawned {
            warn!(
                "Cannot start a thread for {peer}, dropping it: {}",
                describe(&err)
            );
            self.shared.unregister(id);
            thread::sleep(ACCEPT_BACKOFF_MIN);
        }
    }

    /// After the accept loop: wait briefly for the connection threads, then report.
    fn finish(self) -> u64 {
        drop(self.listener);
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
        // The accept loop may be blocked in accept(): a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&wake_addr(self.local), Duration::from_millis(200));
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // A connection thread that panicked cannot leave the map half-updated.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(&self, stream: Arc<TcpStream>) -> u64 {
        let mut open = self.lock();
        let id = open.next_id;
        open.next_id += 1;
        open.streams.insert(id, stream);
        id
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

    /// Waits up to [`THREAD_KEEPALIVE`] for a connection to be handed over; `None` when the
    /// calling thread should exit instead.
    fn next_connection(&self) -> Option<Conn> {
        let mut pool = self.pool_lock();
        if pool.idle >= MAX_IDLE_THREADS {
            return None;
        }
        pool.idle += 1;
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

/// The body of a connection thread: serve, then serve whatever is handed over next.
fn connection_thread(first: Conn, shared: &Shared, config: &Config) {
    let mut next = Some(first);
    while let Some(conn) = next {
        serve_connection(&mut &*conn.stream, conn.peer, config);
        shared.unregister(conn.id);
        // Close the socket now, not when the next connection arrives.
        drop(conn);
        next = shared.next_connection();
    }
}

/// One client, from greeting to close. Every way it can end is logged, never propagated:
/// a client's trouble is not the server's.
fn serve_connection(stream: &mut (impl Read + Write), peer: SocketAddr, config: &Config) {
    info!("Accept new connection from {peer}...");
    match converse(stream, config) {
        Ok(Some(End::LineTooLong)) => warn!("Connection from {peer}: line too long, closing"),
        Ok(_) => {}
        Err(err) if net::is_timeout(&err) => info!("Connection from {peer} timed out"),
        Err(err) => debug!("Connection from {peer}: {}", describe(&err)),
    }
    info!("Connection from {peer} closed.");
}

/// The protocol loop: greeting, then a reply for every message, until `exit`, EOF, a line
/// that is too long, or an error. Returns why it ended (`None` for EOF).
fn converse(stream: &mut (impl Read + Write), config: &Config) -> io::Result<Option<End>> {
    stream.write_all(GREETING)?;
    let mut framer = Framer::new();
    let mut buf = [0u8; RECV_SIZE];
    // Grown on the first reply: a connection that never speaks costs no heap.
    let mut out = Vec::new();
    loop {
        let n = net::recv(stream, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        out.clear();
        let outcome = framer.push(&buf[..n], &mut out);
        if !config.delay.is_zero() && outcome.replies > 0 {
            thread::sleep(config.delay * outcome.replies as u32);
        }
        // One write per chunk: replies to several lines in one segment leave together.
        stream.write_all(&out)?;
        if outcome.end.is_some() {
            return Ok(outcome.end);
        }
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
/// own read timeout (which accept honours): nothing to wait out.
fn is_transient(err: &io::Error) -> bool {
    net::is_timeout(err)
        || matches!(
            err.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        )
}

/// The listening socket, with the options that accepted sockets inherit on Linux.
fn listen(addr: SocketAddr, config: &Config) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(config.idle_timeout)?;
    socket.set_write_timeout(config.idle_timeout)?;
    Ok(socket.into())
}

/// Whether `stream` already has the options [`Server::configure`] would give it.
fn has_options(stream: &TcpStream, config: &Config) -> io::Result<bool> {
    Ok(stream.nodelay()?
        && stream.read_timeout()? == config.idle_timeout
        && stream.write_timeout()? == config.idle_timeout)
}

fn listen_error(addr: SocketAddr, err: io::Error) -> anyhow::Error {
    let hint = match err.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        io::ErrorKind::AddrInUse => {
            " (another program listens there: --port 0 picks a free port, or choose another --port)"
        }
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr}: {}{hint}", describe(&err))
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

//! A scripted peer: a listener on a loopback port 0 that hands each connection, in the order
//! they arrive, to the next script ("write these bytes, pause, read that, close"), each on a
//! thread of its own. The stand-in servers of the client and bench tests and the HTTP
//! servers of the fetch tests (see `http_peer`) are all scripts for it.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::STEP;

/// What the peer does with one connection. The stream comes with read and write timeouts
/// of [`STEP`] and with Nagle's algorithm off, so that each write leaves as it is written.
pub type Script = Box<dyn FnOnce(TcpStream) + Send>;

/// A listening peer; dropping it stops accepting (scripts already running carry on).
pub struct Peer {
    pub addr: SocketAddr,
    scripts: usize,
    ended: Receiver<thread::Result<()>>,
    stop: Arc<AtomicBool>,
}

impl Peer {
    /// Listens on `bind` (`127.0.0.1:0` or `[::1]:0`) and runs one script per connection.
    pub fn start(bind: &str, scripts: Vec<Script>) -> io::Result<Peer> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let (ended_tx, ended) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let peer = Peer {
            addr,
            scripts: scripts.len(),
            ended,
            stop: Arc::clone(&stop),
        };
        thread::spawn(move || accept_all(&listener, scripts, &stop, &ended_tx));
        Ok(peer)
    }

    /// A peer on 127.0.0.1 running `scripts`, one per connection, in order.
    pub fn v4(scripts: Vec<Script>) -> Peer {
        Peer::start("127.0.0.1:0", scripts).expect("listen on 127.0.0.1")
    }

    /// A peer on 127.0.0.1 for a single connection.
    pub fn one(script: impl FnOnce(TcpStream) + Send + 'static) -> Peer {
        Peer::v4(vec![Box::new(script)])
    }

    /// A peer on 127.0.0.1 running the same `script` for each of `n` connections, which may
    /// be open at the same time.
    pub fn each(n: usize, script: fn(TcpStream)) -> Peer {
        Peer::v4((0..n).map(|_| Box::new(script) as Script).collect())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for every script to end (at most [`STEP`] each) and fails the test with the
    /// first script's panic, or when a script never ran.
    pub fn finish(self) {
        for _ in 0..self.scripts {
            match self.ended.recv_timeout(STEP) {
                Ok(Ok(())) => {}
                Ok(Err(panicked)) => panic::resume_unwind(panicked),
                Err(_) => panic!(
                    "a script of the peer at {} did not run to its end",
                    self.addr
                ),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept thread may be waiting for a connection that will never come: one of
        // ours wakes it (and is refused at once when it has already finished).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn accept_all(
    listener: &TcpListener,
    scripts: Vec<Script>,
    stop: &AtomicBool,
    ended: &Sender<thread::Result<()>>,
) {
    for script in scripts {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let ended = ended.clone();
        thread::spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                stream.set_read_timeout(Some(STEP)).expect("read timeout");
                stream.set_write_timeout(Some(STEP)).expect("write timeout");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                script(stream);
            }));
            let _ = ended.send(result);
        });
    }
}

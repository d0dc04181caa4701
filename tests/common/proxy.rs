//! A fault-injecting TCP proxy: it relays between clients and a server and, by a seeded
//! random plan, does to the bytes what a bad network does: splits every write into pieces
//! (down to one byte), delays and jitters them, stalls, and may cut, reset or half-close the
//! connection at a chosen byte.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sockdemo::testing::Rng;

/// What happens to the server's bytes on their way to the client, at a given byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Both directions closed (FIN) after this many bytes reached the client.
    Cut(u64),
    /// A TCP reset to the client after this many bytes.
    Reset(u64),
    /// The client's side is half-closed (FIN, nothing more) after this many bytes; the
    /// client's own bytes still reach the server.
    HalfClose(u64),
    /// Nothing more reaches the client after this many bytes, and nothing tells it so: the
    /// connection stays open and silent, as when a cable is pulled. Only a timeout ends it.
    Stall(u64),
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seed: u64,
    /// Largest piece a write is split into (1 means byte by byte).
    pub max_piece: usize,
    /// Split the client's bytes too, not only the server's.
    pub split_upstream: bool,
    /// Random delay before each piece, up to this.
    pub max_jitter: Duration,
    /// One piece in this many is held back for a stall of up to `max_stall` (0: never).
    pub stall_one_in: usize,
    pub max_stall: Duration,
    pub fault: Fault,
}

impl Plan {
    /// Pieces of 1 to 16 bytes, a little jitter, the odd stall, no fault.
    pub fn choppy(seed: u64) -> Plan {
        Plan {
            seed,
            max_piece: 16,
            split_upstream: true,
            max_jitter: Duration::from_micros(500),
            stall_one_in: 50,
            max_stall: Duration::from_millis(30),
            fault: Fault::None,
        }
    }

    /// For bulk transfers: pieces up to 4 KiB (often much smaller), rare stalls.
    pub fn bulk(seed: u64) -> Plan {
        Plan {
            seed,
            max_piece: 4096,
            split_upstream: true,
            max_jitter: Duration::ZERO,
            stall_one_in: 2000,
            max_stall: Duration::from_millis(20),
            fault: Fault::None,
        }
    }
}

/// A running proxy; it lives as long as the test process.
pub struct Proxy {
    pub addr: SocketAddr,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, plan: Plan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let n = connections.fetch_add(1, Ordering::Relaxed);
                thread::spawn(move || relay(client, upstream, plan, n));
            }
        });
        Proxy { addr }
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, plan: Plan, n: u64) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
    }
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let seed = plan.seed.wrapping_mul(1_000_003).wrapping_add(n);
    let mut up = Plan {
        fault: Fault::None,
        ..plan
    };
    if !plan.split_upstream {
        up.max_piece = usize::MAX;
    }
    let upward = thread::spawn(move || pump(c2, s2, up, Rng::new(seed ^ 0xa5a5)));
    pump(server, client, plan, Rng::new(seed));
    let _ = upward.join();
}

/// Copies `from` to `to` piece by piece until EOF, an error, or the plan's fault.
fn pump(mut from: TcpStream, mut to: TcpStream, plan: Plan, mut rng: Rng) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let piece_len = piece(&mut rng, plan.max_piece).min(rest.len());
            let (piece, tail) = rest.split_at(piece_len);
            rest = tail;
            if let Some(at) = fault_at(plan.fault) {
                if sent + piece.len() as u64 >= at {
                    let _ = to.write_all(&piece[..(at - sent) as usize]);
                    inject(plan.fault, &from, &to);
                    return;
                }
            }
            pause(&mut rng, &plan);
            if to.write_all(piece).is_err() {
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            sent += piece.len() as u64;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A piece length in `1..=max`, favouring the very small.
fn piece(rng: &mut Rng, max: usize) -> usize {
    if max == usize::MAX {
        return max;
    }
    let cap = [1, 2, 8, max][rng.below(4)].min(max);
    1 + rng.below(cap)
}

fn pause(rng: &mut Rng, plan: &Plan) {
    if !plan.max_jitter.is_zero() {
        let micros = plan.max_jitter.as_micros() as usize;
        thread::sleep(Duration::from_micros(rng.below(micros + 1) as u64));
    }
    if plan.stall_one_in > 0 && rng.below(plan.stall_one_in) == 0 {
        let millis = plan.max_stall.as_millis() as usize;
        thread::sleep(Duration::from_millis(rng.below(millis + 1) as u64));
    }
}

fn fault_at(fault: Fault) -> Option<u64> {
    match fault {
        Fault::None => None,
        Fault::Cut(at) | Fault::Reset(at) | Fault::HalfClose(at) | Fault::Stall(at) => Some(at),
    }
}

fn inject(fault: Fault, server: &TcpStream, client: &TcpStream) {
    match fault {
        Fault::None => {}
        Fault::Cut(_) => {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
        Fault::Reset(_) => {
            // With a zero linger, closing sends a reset instead of a FIN. Shutting down our
            // read side ends the other pump, so the last descriptor closes promptly.
            let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
            let _ = client.shutdown(Shutdown::Read);
            let _ = server.shutdown(Shutdown::Both);
        }
        Fault::HalfClose(_) => {
            let _ = client.shutdown(Shutdown::Write);
        }
        Fault::Stall(_) => {
            // Swallow the server's bytes until it is done (or the read timeout passes); the
            // client's socket is left as it is until then.
            let _ = std::io::copy(&mut &*server, &mut std::io::sink());
        }
    }
}

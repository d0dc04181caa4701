//! Helpers for the fetch tests: HTTP replies as scripts for the scripted peer (see
//! `peer`), `python3 -m http.server` as a peer nobody here wrote, and a seeded byte stream
//! for bodies too large to keep twice.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use super::peer::{self, Script};
use super::STEP;

pub use sockdemo::testing::TempDir;

/// What an HTTP peer does on one connection, after the request head has arrived.
pub enum Reply {
    /// Sends these bytes, then closes.
    Bytes(Vec<u8>),
    /// Sends these bytes, then resets the connection instead of closing it.
    ThenReset(Vec<u8>),
    /// Sends these bytes, then holds the connection open until the client closes it.
    ThenHang(Vec<u8>),
    /// Anything else.
    Custom(Box<dyn FnOnce(&mut TcpStream) + Send>),
}

pub fn bytes(text: &str) -> Reply {
    Reply::Bytes(text.as_bytes().to_vec())
}

/// `HTTP/1.1 200 OK` with a Content-Length and `body`.
pub fn ok(body: &str) -> Reply {
    bytes(&format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// A redirect with this status and Location.
pub fn redirect(status: u16, location: &str) -> Reply {
    bytes(&format!(
        "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 5\r\n\r\nmoved"
    ))
}

/// A scripted peer that answers one connection per reply, in order, and records the
/// request head each one brought.
pub struct Peer {
    pub addr: SocketAddr,
    requests: Receiver<Vec<u8>>,
    _peer: peer::Peer,
}

impl Peer {
    /// Listens on `bind` (`127.0.0.1:0` or `[::1]:0`).
    pub fn start(bind: &str, replies: Vec<Reply>) -> io::Result<Peer> {
        let (tx, requests) = mpsc::channel();
        let scripts = replies
            .into_iter()
            .map(|reply| answer(reply, tx.clone()))
            .collect();
        let peer = peer::Peer::start(bind, scripts)?;
        Ok(Peer {
            addr: peer.addr,
            requests,
            _peer: peer,
        })
    }

    pub fn v4(replies: Vec<Reply>) -> Peer {
        Peer::start("127.0.0.1:0", replies).expect("listen on 127.0.0.1")
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received, as text.
    pub fn request(&self) -> String {
        let bytes = self.requests.recv_timeout(STEP).expect("a request");
        String::from_utf8(bytes).expect("a UTF-8 request")
    }
}

/// The script for `reply`: read the request head and record it, then reply.
fn answer(reply: Reply, requests: Sender<Vec<u8>>) -> Script {
    Box::new(move |mut stream| {
        let Some(request) = request_head(&mut stream) else {
            return;
        };
        let _ = requests.send(request);
        match reply {
            Reply::Bytes(data) => {
                let _ = stream.write_all(&data);
            }
            Reply::ThenReset(data) => {
                let _ = stream.write_all(&data);
                // With a zero linger, closing sends a reset instead of a FIN.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
            Reply::ThenHang(data) => {
                let _ = stream.write_all(&data);
                let _ = stream.read_to_end(&mut Vec::new());
            }
            Reply::Custom(script) => script(&mut stream),
        }
    })
}

/// The request head (up to its blank line), or `None` when the client closes, stays silent
/// for [`STEP`] or sends more than 64 KiB without one.
fn request_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    while head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end + 4);
            return Some(head);
        }
    }
    None
}

/// A free loopback port: bound, read back, released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1, killed when dropped.
pub struct PythonServer {
    child: Child,
    pub port: u16,
}

impl PythonServer {
    /// `python3 -m http.server` on this machine, serving `dir`.
    pub fn start(dir: &Path) -> PythonServer {
        PythonServer::spawn(Command::new("python3"), dir)
    }

    /// `python3 -u -m http.server 0` serving `dir`, run by `python3` (which may be a command
    /// that runs it elsewhere, such as inside a network namespace). Ready once it has said
    /// where it listens (the line comes after the socket is bound and listening), which is
    /// read from its stdout for at most [`STEP`].
    pub fn spawn(mut python3: Command, dir: &Path) -> PythonServer {
        let mut child = python3
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server");
        let stdout = child.stdout.take().expect("stdout");
        let lines = super::forward_lines(stdout, |_| {});
        let mut server = PythonServer { child, port: 0 };
        let line = lines
            .recv_timeout(STEP)
            .expect("python3 says where it listens");
        // "Serving HTTP on 127.0.0.1 port 45678 (http://127.0.0.1:45678/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next());
        server.port = port.and_then(|p| p.parse().ok()).expect(&line);
        server
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A seeded stream of bytes (xorshift64*), so a large body can be made and checked
/// without holding it.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed.max(1))
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let word = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        Noise::new(seed).fill(&mut buf);
        buf
    }
}

/// Whether the file at `path` holds exactly `len` bytes of `Noise::new(seed)`, compared in
/// 64 KiB blocks (a large file is never held whole).
pub fn holds_noise(path: &Path, seed: u64, len: u64) -> bool {
    const BLOCK: u64 = 1 << 16;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut noise = Noise::new(seed);
    let (mut got, mut want) = (vec![0; BLOCK as usize], vec![0; BLOCK as usize]);
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK) as usize;
        if file.read_exact(&mut got[..n]).is_err() {
            return false;
        }
        noise.fill(&mut want[..n]);
        if got[..n] != want[..n] {
            return false;
        }
        left -= n as u64;
    }
    matches!(file.read(&mut got), Ok(0))
}

//! TLS servers for the https tests, on loopback port 0: python3's `ssl` module wrapping
//! `http.server` (a peer nobody here wrote, which tells what it saw: SNI, requests), and a
//! scripted rustls server for what no ordinary server does on purpose: end a response
//! without `close_notify`, close in the middle of a handshake, stall.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::peer::{self, Peer};
use super::pki::Identity;
use super::{LogLines, STEP};

/// `tests/peers/tls_server.py`: python3's http.server over its `ssl` module, killed when
/// dropped.
pub struct PythonTls {
    child: Child,
    pub port: u16,
    /// Its stdout: where it listens, and what it saw.
    log: LogLines,
}

impl PythonTls {
    /// Serves `www` on `bind` (`127.0.0.1` or `::1`) with the certificate and key files
    /// `cert` and `key`, plus `extra` arguments (`--tls12`, `--redirect PATH=URL`). Ready
    /// once it has said where it listens.
    pub fn start(bind: &str, www: &Path, cert: &Path, key: &Path, extra: &[&str]) -> PythonTls {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/tls_server.py");
        let mut child = Command::new("python3")
            .args(["-u", script, "--bind", bind])
            .arg("--directory")
            .arg(www)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 tls_server.py");
        let mut server = PythonTls {
            log: LogLines::follow("python TLS server", &mut child),
            child,
            port: 0,
        };
        // "Serving HTTPS on 127.0.0.1 port 45678"
        let line = server.wait_for("Serving HTTPS on ");
        let port = line.rsplit(' ').next().and_then(|p| p.parse().ok());
        server.port = port.unwrap_or_else(|| panic!("no port in {line:?}"));
        server
    }

    /// `https://HOST:PORT` followed by `path`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    /// Waits (at most [`STEP`]) for the next line that starts with `prefix` and returns it.
    pub fn wait_for(&mut self, prefix: &str) -> String {
        self.log.wait_for_start(prefix)
    }

    /// The next request's path and header lines (`Name: value`), once it has been read whole.
    pub fn request(&mut self) -> (String, Vec<String>) {
        let path = self.wait_for("REQUEST GET ")["REQUEST GET ".len()..].to_string();
        let mut headers = Vec::new();
        loop {
            let line = self.wait_for("");
            if line == "END" {
                return (path, headers);
            }
            if let Some(header) = line.strip_prefix("HEADER ") {
                headers.push(header.to_string());
            }
        }
    }
}

impl Drop for PythonTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a scripted TLS connection ends once its reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `close_notify`, then FIN: the clean end of a TLS stream.
    CloseNotify,
    /// FIN without `close_notify`: for a client, the stream may have been cut.
    BareFin,
    /// Neither: the connection stays open until the peer is dropped.
    Hold,
}

/// What the scripted server does with one connection.
pub enum Script {
    /// Completes the handshake, reads the request, sends these bytes and ends as said.
    Reply(Vec<u8>, End),
    /// Reads the client's first flight, then closes: the handshake ends half-way.
    CloseInHandshake,
    /// Reads the client's first flight and answers nothing until the peer is dropped.
    Stall,
    /// Runs a handshake with whatever arrives (a plain HTTP request: rustls answers with
    /// an alert), then closes.
    Handshake,
}

/// A rustls server on 127.0.0.1 that plays one [`Script`] per connection, in order: each
/// a script for the scripted peer (see `peer`).
pub struct TlsPeer {
    pub addr: SocketAddr,
    requests: Receiver<Vec<u8>>,
    /// Dropped first: lets a held or stalled connection go.
    _release: Vec<Sender<()>>,
    _peer: Peer,
}

impl TlsPeer {
    /// Presents `identity` on a free port of 127.0.0.1.
    pub fn start(identity: &Identity, scripts: Vec<Script>) -> TlsPeer {
        let config = server_config(identity);
        let (tx, requests) = mpsc::channel();
        let mut release = Vec::new();
        let scripts = scripts
            .into_iter()
            .map(|script| {
                let (hold, released) = mpsc::channel();
                release.push(hold);
                let (config, tx) = (Arc::clone(&config), tx.clone());
                Box::new(move |sock| play(sock, config, script, &tx, &released)) as peer::Script
            })
            .collect();
        let peer = Peer::v4(scripts);
        TlsPeer {
            addr: peer.addr,
            requests,
            _release: release,
            _peer: peer,
        }
    }

    /// `https://HOST:PORT` followed by `path`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }

    /// The next request received in full, as text.
    pub fn request(&self) -> String {
        let bytes = self.requests.recv_timeout(STEP).expect("a request");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn server_config(identity: &Identity) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain(), identity.key())
        .expect("a certificate and its key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn play(
    mut sock: TcpStream,
    config: Arc<ServerConfig>,
    script: Script,
    requests: &Sender<Vec<u8>>,
    released: &Receiver<()>,
) {
    let mut conn = ServerConnection::new(config).expect("a server connection");
    match script {
        Script::Reply(bytes, end) => {
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            let Some(request) = read_request(&mut tls) else {
                return;
            };
            let _ = requests.send(request);
            let _ = tls.write_all(&bytes).and_then(|()| tls.flush());
            match end {
                End::CloseNotify => {
                    conn.send_close_notify();
                    let _ = conn.complete_io(&mut sock);
                }
                End::BareFin => {}
                End::Hold => {
                    let _ = released.recv_timeout(STEP);
                }
            }
            finish(sock);
        }
        Script::CloseInHandshake => {
            let _ = read_record(&mut sock);
            finish(sock);
        }
        Script::Stall => {
            let _ = read_record(&mut sock);
            let _ = released.recv_timeout(STEP);
        }
        Script::Handshake => {
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    break;
                }
            }
            finish(sock);
        }
    }
}

/// The request head, read through TLS up to its blank line.
fn read_request(tls: &mut impl Read) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return None,
        }
    }
    Some(request)
}

/// One TLS record (the client's first flight is one ClientHello record).
fn read_record(sock: &mut TcpStream) -> io::Result<()> {
    let mut header = [0u8; 5];
    sock.read_exact(&mut header)?;
    let len = u64::from(u16::from_be_bytes([header[3], header[4]]));
    io::copy(&mut sock.take(len), &mut io::sink())?;
    Ok(())
}

/// FIN, then whatever the client still sends until it closes, so that nothing unread turns
/// the close into a reset.
fn finish(mut sock: TcpStream) {
    let _ = sock.shutdown(Shutdown::Write);
    let _ = io::copy(&mut sock, &mut io::sink());
}

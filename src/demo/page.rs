//! The web site of the fetch lesson: a few lines of HTTP/1.1 on a free loopback port that
//! answer every request with the same page of a few KiB, so that the tutorial's receive loop
//! takes several turns. It stands in for www.sina.com.cn, so that the demo needs no network.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::net::IoContext;

/// A request head larger than this is not read further (the answer is the same anyway).
const MAX_REQUEST: usize = 8 * 1024;
/// How long a connection may take to send its request or read the page.
const PATIENCE: Duration = Duration::from_secs(5);

/// The page: a short HTML document, padded with numbered lines to a few KiB.
pub fn page() -> Vec<u8> {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>sockdemo: the page of the fetch lesson</title></head>\n<body>\n\
         <h1>Hello from a raw socket</h1>\n\
         <p>This page came in pieces of at most 1024 bytes, one per recv(1024).</p>\n",
    );
    for i in 1..=64 {
        html.push_str(&format!(
            "<p>Line {i:02}: every byte of this line crossed the socket once.</p>\n"
        ));
    }
    html.push_str("</body>\n</html>\n");
    html.into_bytes()
}

/// A web server for one page on a free loopback port, until dropped.
pub struct Site {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    /// Listens on `127.0.0.1` (a free port) and answers every request with `body`.
    pub fn start(body: &[u8]) -> anyhow::Result<Site> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .io_context(|| "cannot listen on 127.0.0.1 for the demo's web site")?;
        let addr = listener
            .local_addr()
            .io_context(|| "cannot read the demo site's address")?;
        let response = response(body);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("demo-site".to_string())
            .spawn(move || serve(&listener, &response, &stopped))
            .io_context(|| "cannot start the demo's web site")?;
        Ok(Site {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop may be blocked in accept(): a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The whole response: status line, header fields, the blank line, the page.
fn response(body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: sockdemo-demo\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

fn serve(listener: &TcpListener, response: &[u8], stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => {
                let _ = answer(stream, response);
            }
            // A demo's server has nothing to wait out: the lesson will report the failure.
            Err(_) => return,
        }
    }
}

/// Reads the request head, sends the response, closes.
fn answer(mut stream: TcpStream, response: &[u8]) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        let n = crate::net::recv(&mut stream, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    stream.write_all(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_page_takes_several_receives_and_the_site_serves_it_whole() {
        let body = page();
        assert!((4096..8192).contains(&body.len()), "{}", body.len());
        let site = Site::start(&body).unwrap();
        let mut stream = TcpStream::connect(site.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        assert_eq!(got, response(&body));
        drop(site);
    }
}

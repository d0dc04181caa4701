//! The benchmark's anchor: the "spawn a thread per connection" Hello server a reader of the
//! tutorial would write first in Rust. Deliberately plain (default thread stack, a thread
//! per connection, println! per connection); it is a comparison point, not sockdemo's code.
//!
//! `cargo run --release --example plain_server -- [PORT]` (0, the default, picks a free port;
//! the bound address is printed to stderr as `Listening on 127.0.0.1:PORT`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("cannot bind");
    eprintln!(
        "Listening on {}",
        listener.local_addr().expect("local address")
    );
    println!("Waiting for connection...");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || handle(stream));
            }
            Err(err) => eprintln!("accept failed: {err}"),
        }
    }
}

fn handle(mut stream: TcpStream) {
    let peer = stream.peer_addr().expect("peer address");
    println!("Accept new connection from {peer}...");
    stream.write_all(b"Welcome!").ok();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let msg = String::from_utf8_lossy(&buf[..n]);
        if msg == "exit" {
            break;
        }
        if stream
            .write_all(format!("Hello, {msg}!").as_bytes())
            .is_err()
        {
            break;
        }
    }
    println!("Connection from {peer} closed.");
}

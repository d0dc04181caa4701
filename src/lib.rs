//! sockdemo: socket programming the way the classic Python tutorial teaches it, done with
//! care. A Hello server and its client, an HTTP/1.1 GET over a raw TCP socket, a load
//! generator, and a demo that runs the tutorial end to end on loopback.
//!
//! Everything is blocking `std::net` with one OS thread per connection: the point is to show
//! what the tutorial shows, and to make that simple design hold up in real use.
//!
//! The modules follow the tutorial. [`fetch`] is its first half (a client that speaks HTTP
//! over a raw socket), [`hello`] its second (the Hello server, its client and a load
//! generator), [`demo`] runs both on loopback. [`net`] is what both halves stand on:
//! resolving, connecting, the receive loop and the transport seam, where a connected stream
//! is any `Read + Write` value that a TLS layer or a tracer can wrap. [`cli`] is the only
//! module that knows the command line; [`exit`] decides the exit status of a failure.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod console;
pub mod demo;
pub mod exit;
pub mod fetch;
pub mod hello;
pub mod net;
pub mod signals;
#[doc(hidden)]
pub mod testing;

/// The test PKI of the integration tests, shared by the unit tests that run TLS servers.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/common/pki.rs"]
mod test_pki;

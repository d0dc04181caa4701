//! The second half of the tutorial: the Hello server and its client. [`protocol`] is the
//! conversation without sockets (the server's framer, the client's reply matcher, the bytes
//! both sides send); [`server`], [`client`] and [`bench`](mod@bench) put it on real connections.

pub mod bench;
pub mod client;
mod listen;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod threads;

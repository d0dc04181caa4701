//! What fetch's conversation speaks through, once a socket is connected: the socket under a
//! cap of `--recv-size` bytes per receive (and the tracer, with `--trace`), and TLS on top of
//! that for https.
//!
//! The cap sits below TLS because rustls asks its stream for 4 KiB or more whatever its
//! reader asks for: only there does every receive on the socket stay within `--recv-size`
//! (the tutorial's `recv(1024)`, now carrying ciphertext). The TLS configuration is built
//! once per run, and only when a URL is https: an http fetch never reads the trust store or
//! `--cacert`, as curl does not. Whatever goes wrong is said here in the words of the
//! contract: a handshake failure with its exit status and `host:port`, a TLS stream cut
//! without `close_notify` as a cut download, and a plain http URL that reached a server
//! speaking TLS with the hint to try https.

use std::io::{self, IoSlice, Read, Write};

use log::warn;

use crate::exit::{self, Kind, Tag};
use crate::fetch::url::{Scheme, Url};
use crate::net::tls::{self, Negotiated, TlsConfig, TlsOptions, TlsStream};

/// How many of the first bytes a plain connection keeps, to tell a TLS reply.
const START: usize = 3;

/// Makes the transport for each URL of a run, building the TLS configuration the first time
/// an https URL needs it.
#[derive(Debug)]
pub struct Connector {
    options: TlsOptions,
    config: Option<TlsConfig>,
}

impl Connector {
    /// A connector for these TLS options (`--cacert`, `-k`, the key log).
    pub fn new(options: TlsOptions) -> Connector {
        Connector {
            options,
            config: None,
        }
    }

    /// `stream` as it is for http; for https, inside TLS with the handshake done.
    pub fn secure<S: Read + Write>(
        &mut self,
        stream: S,
        url: &Url,
    ) -> anyhow::Result<Transport<S>> {
        if url.scheme == Scheme::Http {
            return Ok(Transport::Plain(Plain::new(stream)));
        }
        let config = self.config()?;
        if config.is_insecure() {
            warn!(
                "not verifying the certificate of {} (-k/--insecure): anyone on the way can \
                 read and change this connection",
                crate::net::host_port(&url.host, url.port)
            );
        }
        tagged(tls::handshake(stream, &url.host, url.port, config)).map(Transport::Tls)
    }

    /// The TLS configuration, built on first use (curl's 77 when `--cacert` is unusable).
    fn config(&mut self) -> anyhow::Result<&TlsConfig> {
        let config = match self.config.take() {
            Some(config) => config,
            None => tagged(TlsConfig::new(&self.options))?,
        };
        Ok(self.config.insert(config))
    }
}

/// A TLS failure tagged with the exit status it stands for.
fn tagged<T>(result: Result<T, tls::Error>) -> anyhow::Result<T> {
    result.or_else(|err| {
        let kind = Kind::from(err.exit_kind());
        Err(err).tag(kind)
    })
}

/// A connected stream as the conversation sees it: plain, or TLS over it.
// The TLS stream is much larger than a socket, but there is one transport per connection.
#[allow(clippy::large_enum_variant)]
pub enum Transport<S: Read + Write> {
    /// http: the stream itself.
    Plain(Plain<S>),
    /// https: TLS over the stream.
    Tls(TlsStream<S>),
}

impl<S: Read + Write> Transport<S> {
    /// What the TLS handshake settled on (`None` over plain http).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(tls) => Some(tls.negotiated()),
        }
    }

    /// The stream below TLS (the capped socket).
    pub fn get_ref(&self) -> &S {
        match self {
            Transport::Plain(plain) => &plain.inner,
            Transport::Tls(tls) => tls.get_ref(),
        }
    }

    /// `err`, a failure of the conversation over this transport, with a hint where a plain
    /// http URL may have reached a server that speaks only TLS: a reply that is not HTTP but
    /// begins like a TLS record, or no reply at all (a close, or a reset: such a server
    /// drops a request it cannot read). The exit status stays what the reply made it.
    pub fn explain(&self, err: anyhow::Error, url: &Url) -> anyhow::Error {
        let Transport::Plain(plain) = self else {
            return err;
        };
        let https = Url {
            scheme: Scheme::Https,
            ..url.clone()
        };
        let nothing = plain.start().is_empty();
        let hint = match exit::classify(&err) {
            Some(Kind::BadResponse) if looks_like_tls(plain.start()) => {
                format!("the server answered in TLS: try {https}")
            }
            Some(Kind::EmptyReply | Kind::Receive) if nothing => {
                format!("if the server speaks only TLS, try {https}")
            }
            _ => return err,
        };
        err.context(format!("cannot fetch {url} ({hint})"))
    }
}

impl<S: Read + Write> Read for Transport<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(plain) => plain.read(buf),
            Transport::Tls(tls) => tls.read(buf).map_err(worded),
        }
    }
}

impl<S: Read + Write> Write for Transport<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(plain) => plain.inner.write(buf),
            Transport::Tls(tls) => tls.write(buf).map_err(worded),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(plain) => plain.inner.write_vectored(bufs),
            Transport::Tls(tls) => tls.write_vectored(bufs).map_err(worded),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(plain) => plain.inner.flush(),
            Transport::Tls(tls) => tls.flush().map_err(worded),
        }
    }
}

/// An error from the TLS stream after its handshake, in words (rustls's own name types and
/// link to its manual). The kind is kept: a timeout stays a timeout, and a close without
/// `close_notify` stays `UnexpectedEof`, which is how the exit status knows it is a cut.
fn worded(err: io::Error) -> io::Error {
    if tls::is_truncation(&err) {
        let words = format!("{}, so the body may be incomplete", tls::describe(&err));
        return io::Error::new(err.kind(), words);
    }
    let is_tls = err
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls {
        return io::Error::new(err.kind(), tls::describe(&err));
    }
    err
}

/// A plain stream that keeps its first bytes, so that a reply in TLS can be told.
pub struct Plain<S> {
    inner: S,
    start: [u8; START],
    seen: usize,
}

impl<S> Plain<S> {
    fn new(inner: S) -> Plain<S> {
        Plain {
            inner,
            start: [0; START],
            seen: 0,
        }
    }

    /// The first bytes received (up to three).
    fn start(&self) -> &[u8] {
        self.start.get(..self.seen).unwrap_or_default()
    }
}

impl<S: Read> Read for Plain<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let (Some(room), Some(got)) = (self.start.get_mut(self.seen..), buf.get(..n)) {
            let take = room.len().min(got.len());
            room[..take].copy_from_slice(&got[..take]);
            self.seen += take;
        }
        Ok(n)
    }
}

/// Whether a reply begins like a TLS record: an alert (21) or a handshake message (22),
/// then major version 3. Servers that speak only TLS answer plain HTTP with an alert.
fn looks_like_tls(start: &[u8]) -> bool {
    matches!(start, [21 | 22, 3, ..])
}

#[cfg(test)]
mod tests;

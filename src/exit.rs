//! The one place that turns a failure into an exit status.
//!
//! Code that fails tags its error with a [`Kind`] where the kind is known (a connect, a
//! receive, a write to the file, ...), with [`Tag::tag`]; the tag is invisible in the message.
//! [`status`] reads the tags and the error chain and picks the number. `fetch` speaks curl's
//! numbers so that scripts written for curl read them alike; the other commands use 1.

use std::fmt;
use std::io;

use crate::net;

/// What kind of failure an error is, as far as an exit status cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A scheme fetch does not speak (curl 1).
    UnsupportedScheme,
    /// A TARGET or Location that cannot be parsed (curl 3).
    BadUrl,
    /// The host name did not resolve (curl 6).
    Resolve,
    /// No address accepted the connection (curl 7).
    Connect,
    /// The response is not HTTP/1.x or is malformed (curl 8).
    BadResponse,
    /// The body ended before its framing said (curl 18).
    Truncated,
    /// `--fail` and a status of 400 or more (curl 22).
    HttpError,
    /// The file or stdout could not be written (curl 23).
    Write,
    /// A connect, receive or transfer deadline passed (curl 28).
    Timeout,
    /// The TLS handshake failed (curl 35).
    Handshake,
    /// More redirects than `--max-redirs` (curl 47).
    TooManyRedirects,
    /// The server closed without a byte (curl 52).
    EmptyReply,
    /// The connection failed while receiving (curl 56).
    Receive,
    /// The server's certificate could not be verified (curl 60).
    Certificate,
    /// The `--cacert` file cannot be read (curl 77).
    CaFile,
}

/// An error tagged with its [`Kind`]. It displays as the error it wraps and hands on its
/// source, so the message and the chain read as if the tag were not there.
#[derive(Debug)]
pub struct Tagged {
    kind: Kind,
    error: anyhow::Error,
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Tagged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Tags the error of a result with a [`Kind`].
pub trait Tag<T> {
    /// The error, tagged; a tag already present further in keeps priority only if it is
    /// the outermost (see [`kind_of`]).
    fn tag(self, kind: Kind) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> Tag<T> for Result<T, E> {
    fn tag(self, kind: Kind) -> anyhow::Result<T> {
        self.map_err(|err| {
            anyhow::Error::new(Tagged {
                kind,
                error: err.into(),
            })
        })
    }
}

/// The outermost tag in `err`'s chain: the most specific decision about what failed.
pub fn kind_of(err: &anyhow::Error) -> Option<Kind> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Tagged>().map(|t| t.kind))
}

/// Which numbering a command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// `fetch`: curl's.
    Curl,
    /// Every other command: 1 for any runtime failure.
    Plain,
}

/// What a failed command should exit with, or `None` when it should end quietly with 0:
/// a reader of stdout that went away (`| head`) while stdout was all that was asked for.
pub fn status(err: &anyhow::Error, numbering: Numbering) -> Option<u8> {
    if net::io_kind(err) == Some(io::ErrorKind::BrokenPipe) {
        return None;
    }
    let _ = numbering;
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_changes_nothing_in_the_message() {
        let err: anyhow::Result<()> = Err(anyhow::anyhow!("refused"))
            .context("cannot connect to 127.0.0.1:1")
            .tag(Kind::Connect);
        let err = err.unwrap_err().context("cannot fetch x");
        assert_eq!(
            format!("{err:#}"),
            "cannot fetch x: cannot connect to 127.0.0.1:1: refused"
        );
        assert_eq!(kind_of(&err), Some(Kind::Connect));
    }

    #[test]
    fn the_outermost_tag_wins() {
        let inner: anyhow::Result<()> = Err(anyhow::anyhow!("x")).tag(Kind::Receive);
        let outer = inner.tag(Kind::Truncated).unwrap_err();
        assert_eq!(kind_of(&outer), Some(Kind::Truncated));
    }

    use anyhow::Context;
}

//! The one place that turns a failure into an exit status.
//!
//! Code that fails tags its error with a [`Kind`] where the kind is known (a connect, a
//! receive, a write to the file, ...), with [`Tag::tag`]; the tag is invisible in the message.
//! [`status`] reads the tags and the error chain and picks the number. `fetch` speaks curl's
//! numbers so that scripts written for curl read them alike; the other commands use 1.

use std::fmt;
use std::io;

use crate::fetch::response;
use crate::net::IoContext;
use crate::net::{self, tls};

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

impl From<tls::Kind> for Kind {
    fn from(kind: tls::Kind) -> Kind {
        match kind {
            tls::Kind::Handshake => Kind::Handshake,
            tls::Kind::Certificate => Kind::Certificate,
            tls::Kind::CaFile => Kind::CaFile,
            tls::Kind::Timeout => Kind::Timeout,
        }
    }
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

/// A command ended by a terminating signal it caught: exit status 128 + its number, as a
/// shell reports a process the signal killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signalled(pub i32);

impl fmt::Display for Signalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stopped by {}", crate::signals::name(self.0))
    }
}

impl std::error::Error for Signalled {}

/// Which numbering a command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// `fetch`: curl's.
    Curl,
    /// Every other command: 1 for any runtime failure.
    Plain,
}

/// A write to stdout (or to the file fetch writes), worded and tagged [`Kind::Write`]: the
/// one failure [`status`] may turn into a quiet end.
pub fn output_write<T>(result: io::Result<T>, name: &str) -> anyhow::Result<T> {
    result
        .io_context(|| format!("cannot write to {name}"))
        .tag(Kind::Write)
}

/// What a failed command should exit with, or `None` when it should end quietly with 0:
/// a reader of stdout that went away (`| head`) while stdout was all that was asked for.
/// Only a write tagged [`Kind::Write`] ends that way: a broken pipe anywhere else (a peer
/// that closed before a send, EPIPE on the socket) fails like any other network error.
pub fn status(err: &anyhow::Error, numbering: Numbering) -> Option<u8> {
    let broken_pipe = net::io_kind(err) == Some(io::ErrorKind::BrokenPipe);
    if broken_pipe && kind_of(err) == Some(Kind::Write) {
        return None;
    }
    if let Some(Signalled(signal)) = err.downcast_ref::<Signalled>() {
        return Some(u8::try_from(128 + signal).unwrap_or(u8::MAX));
    }
    Some(match numbering {
        Numbering::Plain => 1,
        Numbering::Curl => curl(classify(err)),
    })
}

/// The kind of a failure: its tag, refined by what the chain holds (a socket timeout is a
/// timeout wherever it happened, a TLS connection closed without `close_notify` is a cut
/// download, a response the reader refused says itself whether it was cut short or malformed).
pub fn classify(err: &anyhow::Error) -> Option<Kind> {
    let tagged = kind_of(err);
    if tagged == Some(Kind::Write) {
        return tagged;
    }
    if net::io_error(err).is_some_and(net::is_timeout) {
        return Some(Kind::Timeout);
    }
    if tagged == Some(Kind::Receive) && net::io_error(err).is_some_and(tls::is_truncation) {
        return Some(Kind::Truncated);
    }
    if let Some(refused) = err
        .chain()
        .find_map(|c| c.downcast_ref::<response::Error>())
    {
        return Some(match refused {
            response::Error::NoResponse => Kind::EmptyReply,
            response::Error::ShortBody { .. } | response::Error::IncompleteChunked => {
                Kind::Truncated
            }
            _ => Kind::BadResponse,
        });
    }
    tagged
}

/// curl's number for a kind of failure (1 for one it has no number for).
pub fn curl(kind: Option<Kind>) -> u8 {
    match kind {
        Some(Kind::UnsupportedScheme) | None => 1,
        Some(Kind::BadUrl) => 3,
        Some(Kind::Resolve) => 6,
        Some(Kind::Connect) => 7,
        Some(Kind::BadResponse) => 8,
        Some(Kind::Truncated) => 18,
        Some(Kind::HttpError) => 22,
        Some(Kind::Write) => 23,
        Some(Kind::Timeout) => 28,
        Some(Kind::Handshake) => 35,
        Some(Kind::TooManyRedirects) => 47,
        Some(Kind::EmptyReply) => 52,
        Some(Kind::Receive) => 56,
        Some(Kind::Certificate) => 60,
        Some(Kind::CaFile) => 77,
    }
}

/// The table `fetch --help` shows.
pub const CURL_TABLE: &str = "\
Exit status (curl's numbers, so scripts written for curl read them alike):
  0   success                          22  -f/--fail-with-body and a 400+ status
  1   unsupported scheme               23  cannot write the file or stdout
  2   usage                            28  timed out
  3   malformed TARGET or Location     35  TLS handshake failed
  6   cannot resolve the host          47  more than --max-redirs redirects
  7   cannot connect                   52  the server closed without a byte
  8   malformed or non-HTTP response   56  connection failed while receiving
  18  the body ended early             60  certificate not verified
  130/143 SIGINT/SIGTERM               77  cannot read the --cacert file";

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

    #[test]
    fn a_socket_timeout_is_28_wherever_it_happened() {
        let timed_out: anyhow::Result<()> = Err(net::timed_out(io::ErrorKind::WouldBlock.into()))
            .io_context(|| "cannot read from x")
            .tag(Kind::Receive);
        let err = timed_out.unwrap_err();
        assert_eq!(status(&err, Numbering::Curl), Some(28));
        assert_eq!(status(&err, Numbering::Plain), Some(1));
    }

    #[test]
    fn the_response_reader_says_whether_a_body_was_cut_or_malformed() {
        let cases = [
            (response::Error::NoResponse, 52),
            (
                response::Error::ShortBody {
                    expected: 2,
                    received: 1,
                },
                18,
            ),
            (response::Error::IncompleteChunked, 18),
            (response::Error::BadStatusLine, 8),
            (response::Error::HeadTooLarge, 8),
        ];
        for (refused, code) in cases {
            let err = anyhow::Error::new(refused).context("bad response from x");
            assert_eq!(status(&err, Numbering::Curl), Some(code), "{err:#}");
        }
    }

    #[test]
    fn a_tls_stream_cut_without_close_notify_is_18() {
        let cut: anyhow::Result<()> = Err(io::Error::from(io::ErrorKind::UnexpectedEof))
            .io_context(|| "cannot read from x")
            .tag(Kind::Receive);
        assert_eq!(status(&cut.unwrap_err(), Numbering::Curl), Some(18));
    }

    #[test]
    fn tls_failures_have_curls_numbers() {
        let table = [
            (tls::Kind::Handshake, 35),
            (tls::Kind::Certificate, 60),
            (tls::Kind::CaFile, 77),
            (tls::Kind::Timeout, 28),
        ];
        for (kind, code) in table {
            let err: anyhow::Result<()> = Err(anyhow::anyhow!("x")).tag(kind.into());
            assert_eq!(status(&err.unwrap_err(), Numbering::Curl), Some(code));
        }
    }

    #[test]
    fn a_closed_stdout_is_a_quiet_end() {
        let err = output_write::<()>(Err(io::ErrorKind::BrokenPipe.into()), "stdout");
        let err = err.unwrap_err();
        assert_eq!(format!("{err:#}"), "cannot write to stdout: broken pipe");
        assert_eq!(status(&err, Numbering::Curl), None);
        assert_eq!(status(&err, Numbering::Plain), None);
    }

    #[test]
    fn an_untagged_broken_pipe_is_a_failure_not_a_quiet_end() {
        // A client's send to a server that has gone away says nothing of stdout.
        let err: anyhow::Result<()> = Err(io::Error::from(io::ErrorKind::BrokenPipe))
            .io_context(|| "cannot send to 127.0.0.1:9999");
        assert_eq!(status(&err.unwrap_err(), Numbering::Plain), Some(1));
    }

    #[test]
    fn a_broken_pipe_on_a_socket_is_a_network_failure() {
        let err: anyhow::Result<()> = Err(io::Error::from(io::ErrorKind::BrokenPipe))
            .io_context(|| "cannot send the request to 127.0.0.1:1")
            .tag(Kind::Connect);
        let err = err.unwrap_err();
        assert_eq!(status(&err, Numbering::Curl), Some(7));
        assert_eq!(status(&err, Numbering::Plain), Some(1));
    }

    use anyhow::Context;
}

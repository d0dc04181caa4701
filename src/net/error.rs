//! How I/O errors read in our messages, and how callers find one in an error chain. Every
//! I/O error that reaches a message goes through [`IoContext`], so they all read alike:
//! lowercase, no "(os error N)".
//!
//! A socket timeout surfaces on Unix as `EAGAIN`, which std calls `WouldBlock`; but so does
//! a thread the system refuses to create, or a full pipe. Only the code that did the read or
//! write knows that a timeout was set, so the socket helpers ([`recv`](super::recv),
//! [`send`](super::send)) turn it into `TimedOut` at the source, and only `TimedOut` is worded
//! "timed out" here.

use std::fmt;
use std::io;

/// An `io::Error` worded like the rest of our messages (see [`describe`]).
#[derive(Debug)]
pub struct PlainIoError(pub io::Error);

impl fmt::Display for PlainIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for PlainIoError {}

/// The words for an I/O error in a one-line message.
pub fn describe(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::TimedOut {
        return "timed out".to_string();
    }
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A connect, read or write that ran into its timeout (see [`timed_out`] for how a socket
/// timeout gets this kind).
pub fn is_timeout(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::TimedOut
}

/// The error of a read or write on a blocking socket with a timeout set: `WouldBlock` there
/// can only be that timeout, and becomes `TimedOut`; anything else is kept as it is.
pub fn timed_out(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::WouldBlock {
        io::Error::from(io::ErrorKind::TimedOut)
    } else {
        err
    }
}

/// The kind of the first I/O error in `err`'s chain, worded or not.
pub fn io_kind(err: &anyhow::Error) -> Option<io::ErrorKind> {
    io_error(err).map(io::Error::kind)
}

/// The first I/O error in `err`'s chain, worded or not.
pub fn io_error(err: &anyhow::Error) -> Option<&io::Error> {
    err.chain().find_map(|cause| {
        cause
            .downcast_ref::<PlainIoError>()
            .map(|e| &e.0)
            .or_else(|| cause.downcast_ref::<io::Error>())
    })
}

/// `with_context` for I/O results, with the cause worded by [`describe`].
pub trait IoContext<T> {
    /// Wraps the error as a [`PlainIoError`] under `context`.
    fn io_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> anyhow::Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::new(PlainIoError(err)).context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_plain_lowercase_words() {
        let err = io::Error::from_raw_os_error(98);
        assert_eq!(describe(&err), "address already in use");
        let err = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&err), "connection refused");
    }

    #[test]
    fn socket_timeouts_read_as_timed_out() {
        let socket_timeout = timed_out(io::ErrorKind::WouldBlock.into());
        assert!(is_timeout(&socket_timeout));
        assert_eq!(describe(&socket_timeout), "timed out");
        assert_eq!(describe(&io::ErrorKind::TimedOut.into()), "timed out");
        let reset = timed_out(io::ErrorKind::ConnectionReset.into());
        assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn eagain_outside_a_socket_read_is_not_a_timeout() {
        // What a refused thread creation gives: EAGAIN from pthread_create.
        let refused = io::Error::from_raw_os_error(11);
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        assert!(!is_timeout(&refused));
        assert_eq!(describe(&refused), "resource temporarily unavailable");
    }

    #[test]
    fn the_io_error_is_found_under_any_context() {
        let worded: anyhow::Result<()> =
            Err(io::Error::from(io::ErrorKind::BrokenPipe)).io_context(|| "cannot write");
        let worded = worded.unwrap_err().context("outer");
        assert_eq!(io_kind(&worded), Some(io::ErrorKind::BrokenPipe));
        let bare = anyhow::Error::new(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(io_kind(&bare), Some(io::ErrorKind::ConnectionReset));
        assert_eq!(io_kind(&anyhow::anyhow!("no io here")), None);
    }
}

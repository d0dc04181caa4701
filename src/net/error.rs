//! How I/O errors read in our messages, and how callers find one in an error chain. Every
//! I/O error that reaches a message goes through [`IoContext`], so they all read alike:
//! lowercase, no "(os error N)", and a socket timeout called "timed out".

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
    if is_timeout(err) {
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

/// A read or write that ran into its socket timeout.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
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
        assert_eq!(describe(&io::ErrorKind::WouldBlock.into()), "timed out");
        assert_eq!(describe(&io::ErrorKind::TimedOut.into()), "timed out");
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

//! A stream whose every read asks the stream below for at most N bytes.
//!
//! The tutorial receives with `recv(1024)`, and fetch keeps that loop over TLS too. But rustls
//! asks its socket for 4 KiB or more at a time, whatever its reader asks rustls for, so the cap
//! has to sit below TLS, on the socket itself: TLS wraps a `Capped` stream, never the other way
//! round. Writes pass through untouched, `write_vectored` included: rustls sends a flight of
//! records as one vectored write, and without forwarding it each record would be a system call.

use std::io::{self, IoSlice, Read, Write};

/// `inner`, with every read limited to `cap` bytes.
#[derive(Debug)]
pub struct Capped<S> {
    inner: S,
    cap: usize,
}

impl<S> Capped<S> {
    /// Wraps `inner`; a `cap` of 0 is taken as 1, since a read of 0 bytes would read as EOF.
    pub fn new(inner: S, cap: usize) -> Capped<S> {
        Capped {
            inner,
            cap: cap.max(1),
        }
    }

    /// The largest read the stream below is asked for.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The stream below (to set its timeouts, or read its peer address).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream below, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The stream below, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Read> Read for Capped<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.cap);
        self.inner.read(&mut buf[..len])
    }
}

impl<S: Write> Write for Capped<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// What a [`Counting`] stream saw: reads, the largest read asked for, and writes by kind.
    #[derive(Debug, Default)]
    pub(crate) struct Counts {
        pub reads: AtomicUsize,
        pub largest_read: AtomicUsize,
        pub writes: AtomicUsize,
        pub vectored_writes: AtomicUsize,
    }

    /// A stream that counts what is asked of the stream it wraps.
    pub(crate) struct Counting<S> {
        inner: S,
        pub counts: Arc<Counts>,
    }

    impl<S> Counting<S> {
        pub(crate) fn new(inner: S) -> Counting<S> {
            Counting {
                inner,
                counts: Arc::default(),
            }
        }
    }

    impl<S: Read> Read for Counting<S> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
            self.counts
                .largest_read
                .fetch_max(buf.len(), Ordering::Relaxed);
            self.inner.read(buf)
        }
    }

    impl<S: Write> Write for Counting<S> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.counts.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write(buf)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.counts.vectored_writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write_vectored(bufs)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn no_read_asks_the_stream_below_for_more_than_the_cap() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut capped = Capped::new(Counting::new(Cursor::new(data.clone())), 1024);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = capped.read(&mut buf).expect("read from memory");
            if n == 0 {
                break;
            }
            assert!(n <= 1024, "a read returned {n} bytes");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
        let counts = &capped.get_ref().counts;
        assert_eq!(counts.largest_read.load(Ordering::Relaxed), 1024);
        assert_eq!(counts.reads.load(Ordering::Relaxed), 5 + 1);
    }

    #[test]
    fn smaller_buffers_are_passed_down_as_they_are() {
        let mut capped = Capped::new(Counting::new(Cursor::new(vec![7u8; 100])), 1024);
        let mut buf = [0u8; 10];
        assert_eq!(capped.read(&mut buf).expect("read"), 10);
        assert_eq!(
            capped.get_ref().counts.largest_read.load(Ordering::Relaxed),
            10
        );
    }

    #[test]
    fn a_zero_cap_still_makes_progress() {
        let mut capped = Capped::new(Cursor::new(vec![1u8, 2, 3]), 0);
        let mut buf = [0u8; 8];
        assert_eq!(capped.cap(), 1);
        assert_eq!(capped.read(&mut buf).expect("read"), 1);
    }

    #[test]
    fn vectored_writes_reach_the_stream_below_as_one_call() {
        let mut capped = Capped::new(Counting::new(Vec::new()), 1024);
        let bufs = [
            IoSlice::new(b"one "),
            IoSlice::new(b"two "),
            IoSlice::new(b"three"),
        ];
        let n = capped.write_vectored(&bufs).expect("write to memory");
        assert_eq!(n, 13);
        let counting = capped.into_inner();
        assert_eq!(counting.inner, b"one two three");
        assert_eq!(counting.counts.vectored_writes.load(Ordering::Relaxed), 1);
        assert_eq!(counting.counts.writes.load(Ordering::Relaxed), 0);
    }
}

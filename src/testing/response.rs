//! The response reader's test harness, one for the unit tables, the fuzz target and the
//! integration tests: a generator of chunked responses, and a driver that feeds the sans-IO
//! reader any pieces and checks, on every call, what must hold for every input (progress,
//! no body before a head nor a head after the body, never more body than Content-Length).

use super::Rng;
use crate::fetch::response::{Error, Event, ResponseReader};

/// `body` as a chunked `200 OK` response, the way servers differ in writing one: chunks of
/// 1 byte up to `max_chunk` (small ones favoured), sizes in lower case, in upper case with
/// leading zeros, or with extensions, and one or two trailer fields (a response without
/// any is in the reader's tables).
pub fn chunked_response(rng: &mut Rng, body: &[u8], max_chunk: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    while !rest.is_empty() {
        let cap = [1, 16, 1500, max_chunk][rng.below(4)].min(max_chunk).max(1);
        let len = 1 + rng.below(cap.min(rest.len()));
        let (chunk, tail) = rest.split_at(len);
        out.extend(chunk_size_line(rng, len));
        out.extend(chunk);
        out.extend(b"\r\n");
        rest = tail;
    }
    out.extend(b"0\r\n");
    for n in 0..1 + rng.below(2) {
        out.extend(format!("X-Trailer-{n}: {}\r\n", rng.next_u64()).as_bytes());
    }
    out.extend(b"\r\n");
    out
}

/// The line announcing a chunk of `len` bytes, in one of the forms the grammar allows.
fn chunk_size_line(rng: &mut Rng, len: usize) -> Vec<u8> {
    let size = match rng.below(3) {
        0 => format!("{len:x}"),
        1 => format!("{len:06X}"),
        _ => format!("{len:x};ext={};flag", rng.below(100)),
    };
    format!("{size}\r\n").into_bytes()
}

/// Everything a response produced: raw header blocks, the body, and how it ended.
#[derive(Debug, PartialEq)]
pub struct ReadOutcome {
    /// Every head, interim ones first, as received.
    pub heads: Vec<Vec<u8>>,
    /// The body bytes, decoded.
    pub body: Vec<u8>,
    /// The first error, or `Ok` when the pieces (and the EOF, if any) were all accepted.
    pub result: Result<(), Error>,
}

/// Feeds `pieces` in order (then EOF when `eof`), stopping at the first error, and fails the
/// test when the reader breaks a rule on the way: a call with no progress, a body before a
/// head, a head after the body, an empty body event, more body than the final head's
/// Content-Length, or a complete response with less.
pub fn read_response(pieces: &[impl AsRef<[u8]>], eof: bool) -> ReadOutcome {
    let mut driver = Driver::default();
    let result = driver.feed_all(pieces, eof);
    if let (Ok(()), true, Some(limit)) = (&result, eof, driver.limit) {
        assert_eq!(driver.body.len() as u64, limit, "complete but short");
    }
    ReadOutcome {
        heads: driver.heads,
        body: driver.body,
        result,
    }
}

/// `input` read whole, byte by byte and in `splits` random splits from `rng`: all must agree.
/// Returns what they agree on.
pub fn read_every_way(input: &[u8], eof: bool, rng: &mut Rng, splits: usize) -> ReadOutcome {
    let whole = read_response(&[input], eof);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(read_response(&bytes, eof), whole, "byte by byte: {input:?}");
    for _ in 0..splits {
        let pieces = rng.split(input);
        assert_eq!(
            read_response(&pieces, eof),
            whole,
            "random split: {input:?}"
        );
    }
    whole
}

/// The reader and what it has produced so far.
#[derive(Default)]
struct Driver {
    reader: ResponseReader,
    heads: Vec<Vec<u8>>,
    body: Vec<u8>,
    /// The final head's Content-Length (0 for 204 and 304), once there is one.
    limit: Option<u64>,
}

impl Driver {
    fn feed_all(&mut self, pieces: &[impl AsRef<[u8]>], eof: bool) -> Result<(), Error> {
        for piece in pieces {
            let mut rest = piece.as_ref();
            while !rest.is_empty() && !self.reader.is_done() {
                let used = self.feed(rest)?;
                rest = &rest[used..];
            }
        }
        if eof {
            self.reader.finish()?;
        }
        Ok(())
    }

    /// One call to the reader; how many bytes it used.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let (used, event) = self.reader.feed(bytes)?;
        assert!(used > 0 || event.is_some(), "no progress");
        assert!(used <= bytes.len(), "used more than it was given");
        match event {
            Some(Event::Head(head)) => {
                assert!(self.body.is_empty(), "a head after body bytes");
                // 204 and 304 have no body, whatever Content-Length says.
                let bodyless = matches!(head.status(), 204 | 304);
                self.limit = head
                    .field("Content-Length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|n| if bodyless { 0 } else { n });
                self.heads.push(head.raw().to_vec());
            }
            Some(Event::Body(bytes)) => {
                assert!(!bytes.is_empty(), "an empty body event");
                assert!(!self.heads.is_empty(), "body before a head");
                self.body.extend_from_slice(bytes);
            }
            None => {}
        }
        if let Some(limit) = self.limit {
            assert!(self.body.len() as u64 <= limit, "body over Content-Length");
        }
        Ok(used)
    }
}

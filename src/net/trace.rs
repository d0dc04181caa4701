//! `--trace`: every socket event a command causes, on stderr, in the spirit of curl's
//! `--trace`, so that a learner sees what the tutorial only describes: `== ` lines for
//! connect, accept, handshake and close, then `=> send N bytes` and `<= recv N bytes` for each
//! system call that moved data, each followed by a dump of exactly those bytes.
//!
//! Three layers, each usable alone: [`dump`] turns bytes into dump rows (pure, table-tested);
//! a [`Tracer`] turns one event into one block of lines with the connection's label in front
//! and hands it to a [`Sink`] (the process's one stderr writer, or a capture in tests) as a
//! single write, so that concurrent connections never mix within an event; [`Traced`] wraps
//! any `Read + Write` stream and reports every call that moved data; [`TracedSocket`] adds the
//! `== ` lines at a connection's two ends (made, closed). Without `--trace` the
//! wrapper is simply not there: callers pick `S` or `Traced<S>` by type, so the untraced path
//! has no branch, no allocation and no lock added.

use std::fmt::Write as _;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Peer;
use crate::console::{Capture, Console};

/// Bytes dumped per event unless told otherwise (`--trace-bytes`).
pub const DEFAULT_LIMIT: usize = 256;
/// Bytes per dump row, as in curl's `--trace` and `hexdump -C`.
const ROW: usize = 16;
/// Width of a full row's hex column: 16 two-digit bytes and 15 spaces between them.
const HEX_WIDTH: usize = ROW * 3 - 1;

/// The dump of `bytes`: one row per 16 bytes, `0000: 4d 69 ... 6c  Michael`, with the offset
/// in (at least) four hex digits, the bytes in hex, and a column showing printable ASCII as
/// itself and everything else (controls, UTF-8 sequences, bytes above 0x7e) as `.`. At most
/// `limit` bytes are shown (`0` shows everything); when some are left out, a last line says
/// how many. No line ends in a newline; empty `bytes` give no lines.
pub fn dump(bytes: &[u8], limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for_each_line(bytes, limit, &mut line, |line| lines.push(line.to_string()));
    lines
}

/// Builds each line of the dump of `bytes` in `line` (cleared before each) and passes it to
/// `each`: [`dump`] without a `Vec` for callers that write the lines straight on.
fn for_each_line(bytes: &[u8], limit: usize, line: &mut String, mut each: impl FnMut(&str)) {
    let shown = if limit == 0 {
        bytes
    } else {
        &bytes[..bytes.len().min(limit)]
    };
    for (i, chunk) in shown.chunks(ROW).enumerate() {
        line.clear();
        push_row(line, i * ROW, chunk);
        each(line);
    }
    let hidden = bytes.len() - shown.len();
    if hidden > 0 {
        line.clear();
        let _ = write!(
            line,
            "... {hidden} more bytes not shown (--trace-bytes 0 shows all)"
        );
        each(line);
    }
}

/// One dump row: offset, hex column padded to full width, printable column.
fn push_row(line: &mut String, offset: usize, chunk: &[u8]) {
    let _ = write!(line, "{offset:04x}: ");
    let start = line.len();
    for (i, byte) in chunk.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let _ = write!(line, "{byte:02x}");
    }
    let pad = HEX_WIDTH - (line.len() - start);
    line.extend(std::iter::repeat_n(' ', pad + 2));
    line.extend(chunk.iter().map(|&b| printable(b)));
}

fn printable(byte: u8) -> char {
    if byte.is_ascii_graphic() || byte == b' ' {
        char::from(byte)
    } else {
        '.'
    }
}

/// Where trace events go. Each call carries one whole event, complete lines each ending in
/// `\n`, which the sink must write as one piece (never interleaved with another event).
pub trait Sink: Send + Sync {
    /// Writes one event whole.
    fn write_event(&self, event: &[u8]);
}

/// The stderr writer: a trace event waits for room while stderr is being read, and is
/// dropped (and counted) only when nobody reads it (see [`Console::print`]).
impl Sink for Console {
    fn write_event(&self, event: &[u8]) {
        self.print(event);
    }
}

/// For tests: events collected in memory, in order.
impl Sink for Capture {
    fn write_event(&self, event: &[u8]) {
        self.append(event);
    }
}

/// How a traced layer's data lines are worded: the bytes on the socket, or the plaintext
/// inside TLS (which must never be taken for what travels on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// `=> send N bytes` / `<= recv N bytes`: what the system calls moved.
    Socket,
    /// `=> tls send N bytes of plaintext` / `<= tls recv N bytes of plaintext`: what the
    /// application handed to TLS or got out of it.
    Plaintext,
}

/// A cheap, clonable handle that writes trace events: the per-event cut-off, the sink, and
/// a label (`[127.0.0.1:50548] `) put in front of every line so that the lines of concurrent
/// connections read apart.
///
/// Clones share the label: [`set_label`](Tracer::set_label) on one (after a PROXY header has
/// named the real client, say) changes the lines of all. [`for_connection`](Tracer::for_connection)
/// makes a handle with a label of its own.
#[derive(Clone)]
pub struct Tracer {
    limit: usize,
    sink: Arc<dyn Sink>,
    label: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("limit", &self.limit)
            .field("label", &self.label())
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer writing to the process's stderr writer, dumping at most `limit` bytes per
    /// event (`0`: all), without a label.
    pub fn new(limit: usize) -> Tracer {
        Tracer::with_sink(limit, Arc::new(crate::console::global().clone()))
    }

    /// A tracer writing to `sink` (a [`Capture`] in tests).
    pub fn with_sink(limit: usize, sink: Arc<dyn Sink>) -> Tracer {
        Tracer {
            limit,
            sink,
            label: Arc::new(Mutex::new(None)),
        }
    }

    /// A handle with the same cut-off and sink and a label of its own, `label` shown in
    /// brackets in front of every line (`127.0.0.1:50548` gives `[127.0.0.1:50548] `).
    pub fn for_connection(&self, label: impl Into<String>) -> Tracer {
        Tracer {
            limit: self.limit,
            sink: Arc::clone(&self.sink),
            label: Arc::new(Mutex::new(Some(label.into()))),
        }
    }

    /// Replaces the label of this handle and of every clone of it.
    pub fn set_label(&self, label: impl Into<String>) {
        *self.lock_label() = Some(label.into());
    }

    /// The label, without brackets.
    pub fn label(&self) -> Option<String> {
        self.lock_label().clone()
    }

    /// The per-event cut-off (`0`: none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// `== text`: connect, accept, handshake, shutdown, close, in the caller's words
    /// (`connect 127.0.0.1:50548 -> 127.0.0.1:9999`).
    pub fn event(&self, text: &str) {
        self.write(&format!("== {text}"), &[]);
    }

    /// `=> send N bytes` and the dump of `bytes`: one send system call.
    pub fn sent(&self, bytes: &[u8]) {
        self.data(Layer::Socket, Direction::Out, bytes);
    }

    /// `<= recv N bytes` and the dump of `bytes`: one receive that returned data.
    pub fn received(&self, bytes: &[u8]) {
        self.data(Layer::Socket, Direction::In, bytes);
    }

    /// `=> tls send N bytes of plaintext` and the dump: what the application gave TLS to
    /// encrypt.
    pub fn sent_plaintext(&self, bytes: &[u8]) {
        self.data(Layer::Plaintext, Direction::Out, bytes);
    }

    /// `<= tls recv N bytes of plaintext` and the dump: what TLS decrypted for the
    /// application.
    pub fn received_plaintext(&self, bytes: &[u8]) {
        self.data(Layer::Plaintext, Direction::In, bytes);
    }

    fn data(&self, layer: Layer, direction: Direction, bytes: &[u8]) {
        let n = bytes.len();
        let head = match (layer, direction) {
            (Layer::Socket, Direction::Out) => format!("=> send {n} bytes"),
            (Layer::Socket, Direction::In) => format!("<= recv {n} bytes"),
            (Layer::Plaintext, Direction::Out) => format!("=> tls send {n} bytes of plaintext"),
            (Layer::Plaintext, Direction::In) => format!("<= tls recv {n} bytes of plaintext"),
        };
        self.write(&head, bytes);
    }

    /// The marker line and the dump rows, each with the label in front, as one write.
    fn write(&self, head: &str, bytes: &[u8]) {
        let label = self.label();
        let prefix = match &label {
            Some(label) => format!("[{label}] "),
            None => String::new(),
        };
        let rows = if bytes.is_empty() {
            0
        } else {
            bytes.len().div_ceil(ROW).min(self.limit_rows()) + 1
        };
        let mut event = String::with_capacity((rows + 1) * (prefix.len() + 72));
        event.push_str(&prefix);
        event.push_str(head);
        event.push('\n');
        let mut line = String::with_capacity(72);
        for_each_line(bytes, self.limit, &mut line, |line| {
            event.push_str(&prefix);
            event.push_str(line);
            event.push('\n');
        });
        self.sink.write_event(event.as_bytes());
    }

    fn limit_rows(&self) -> usize {
        match self.limit {
            0 => usize::MAX,
            limit => limit.div_ceil(ROW),
        }
    }

    fn lock_label(&self) -> MutexGuard<'_, Option<String>> {
        self.label.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

/// A stream that reports to a [`Tracer`] every call that moved data: a read that returned
/// `n > 0` bytes is one receive event of exactly those bytes, a write (plain or vectored)
/// that wrote `n > 0` bytes one send event of those `n` bytes. Reads of 0 (EOF) and errors
/// are not traced: what they mean is the caller's to say (with [`Tracer::event`]).
#[derive(Debug)]
pub struct Traced<S> {
    inner: S,
    tracer: Tracer,
    layer: Layer,
}

impl<S> Traced<S> {
    /// Traces `inner` as the socket: `=> send` / `<= recv`.
    pub fn new(inner: S, tracer: Tracer) -> Traced<S> {
        Traced::with_layer(inner, tracer, Layer::Socket)
    }

    /// Traces `inner` as the plaintext side of TLS (wrap the TLS stream, not the socket).
    pub fn plaintext(inner: S, tracer: Tracer) -> Traced<S> {
        Traced::with_layer(inner, tracer, Layer::Plaintext)
    }

    fn with_layer(inner: S, tracer: Tracer, layer: Layer) -> Traced<S> {
        Traced {
            inner,
            tracer,
            layer,
        }
    }

    /// The wrapped stream (for its addresses, say).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream: data moved through it directly is not traced.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped stream, untraced from now on.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The tracer, for `== ` lines about this connection (and [`Tracer::set_label`]).
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    fn moved(&self, direction: Direction, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.tracer.data(self.layer, direction, bytes);
        }
    }
}

impl<S: Read> Read for Traced<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.moved(Direction::In, &buf[..n]);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let n = self.inner.read_vectored(bufs)?;
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.moved(Direction::In, &gather(&slices, n));
        Ok(n)
    }
}

impl<S: Write> Write for Traced<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // A writer claiming more than it was given is broken; trace what it was given.
        self.moved(Direction::Out, &buf[..n.min(buf.len())]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.moved(Direction::Out, &gather(&slices, n));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Which end of a connection this program is, for the `== ` lines: they name our end first
/// and point the arrow from the side that connected to the side that accepted, so that the
/// two programs' traces of one connection show the same four numbers the same way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected: `local -> peer`.
    Client,
    /// We accepted: `local <- peer`.
    Server,
}

/// A connection's 4-tuple as trace lines write it: `127.0.0.1:50548 -> 127.0.0.1:9999` for
/// a client, `127.0.0.1:9999 <- 127.0.0.1:50548` for a server.
pub fn tuple(ends: &Peer, role: Role) -> String {
    match role {
        Role::Client => format!("{} -> {}", ends.local, ends.peer),
        Role::Server => format!("{} <- {}", ends.local, ends.peer),
    }
}

/// A connected socket traced from end to end: `== connect local -> peer` (or
/// `== accept local <- peer`) when it is made, every system call that moves data (as
/// [`Traced`]), and `== close ...` when it is dropped, whichever way the conversation ended.
/// A TLS layer goes around this one, so that what it shows is what crosses the socket.
#[derive(Debug)]
pub struct TracedSocket<S> {
    traced: Traced<S>,
    ends: Peer,
    role: Role,
    why: Option<String>,
}

impl<S> TracedSocket<S> {
    /// Traces `socket`, whose ends are `ends`, and writes the line that opens it.
    pub fn new(socket: S, ends: Peer, role: Role, tracer: Tracer) -> TracedSocket<S> {
        let verb = match role {
            Role::Client => "connect",
            Role::Server => "accept",
        };
        tracer.event(&format!("{verb} {}", tuple(&ends, role)));
        TracedSocket {
            traced: Traced::new(socket, tracer),
            ends,
            role,
            why: None,
        }
    }

    /// The connection's two ends.
    pub fn ends(&self) -> Peer {
        self.ends
    }

    /// The tracer, for more `== ` lines about this connection.
    pub fn tracer(&self) -> &Tracer {
        self.traced.tracer()
    }

    /// `== shutdown <tuple> (why)`: the socket was shut down (by us, for `why`).
    pub fn shutdown(&self, why: &str) {
        let tuple = tuple(&self.ends, self.role);
        self.tracer().event(&format!("shutdown {tuple} ({why})"));
    }

    /// Why the connection ends, said in parentheses on its `== close` line.
    pub fn closing_because(&mut self, why: impl Into<String>) {
        self.why = Some(why.into());
    }

    /// The socket underneath.
    pub fn get_ref(&self) -> &S {
        self.traced.get_ref()
    }
}

impl<S: Read> Read for TracedSocket<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.traced.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.traced.read_vectored(bufs)
    }
}

impl<S: Write> Write for TracedSocket<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.traced.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.traced.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.traced.flush()
    }
}

impl<S> Drop for TracedSocket<S> {
    fn drop(&mut self) {
        let tuple = tuple(&self.ends, self.role);
        let line = match &self.why {
            Some(why) => format!("close {tuple} ({why})"),
            None => format!("close {tuple}"),
        };
        self.tracer().event(&line);
    }
}

/// The first `n` bytes of `slices`, as one run.
fn gather(slices: &[&[u8]], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    for slice in slices {
        let take = slice.len().min(n - out.len());
        out.extend_from_slice(&slice[..take]);
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Rows as the dump should print them, built by hand.
    const MICHAEL: &str = "0000: 4d 69 63 68 61 65 6c                             Michael";

    #[test]
    fn dump_table() {
        let sixteen: Vec<u8> = (b'a'..=b'p').collect();
        let seventeen: Vec<u8> = (b'a'..=b'q').collect();
        let cases: &[(&str, &[u8], usize, &[&str])] = &[
            ("empty", b"", 256, &[]),
            (
                "one byte",
                b"A",
                256,
                &["0000: 41                                               A"],
            ),
            ("a word", b"Michael", 256, &[MICHAEL]),
            (
                "sixteen",
                &sixteen,
                256,
                &["0000: 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70  abcdefghijklmnop"],
            ),
            (
                "seventeen",
                &seventeen,
                256,
                &[
                    "0000: 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70  abcdefghijklmnop",
                    "0010: 71                                               q",
                ],
            ),
            (
                "not printable",
                b"\x00\x01\t\r\n \x7e\x7f\xff",
                256,
                &["0000: 00 01 09 0d 0a 20 7e 7f ff                       ..... ~.."],
            ),
            (
                "utf-8 is shown byte by byte",
                "né 好".as_bytes(),
                256,
                &["0000: 6e c3 a9 20 e5 a5 bd                             n.. ..."],
            ),
            (
                "cut off",
                &seventeen,
                3,
                &[
                    "0000: 61 62 63                                         abc",
                    "... 14 more bytes not shown (--trace-bytes 0 shows all)",
                ],
            ),
            (
                "cut off at a row's end",
                &seventeen,
                16,
                &[
                    "0000: 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70  abcdefghijklmnop",
                    "... 1 more bytes not shown (--trace-bytes 0 shows all)",
                ],
            ),
            (
                "a limit of exactly the size cuts nothing",
                b"Michael",
                7,
                &[MICHAEL],
            ),
        ];
        for (name, bytes, limit, want) in cases {
            assert_eq!(dump(bytes, *limit), *want, "case {name}");
        }
    }

    #[test]
    fn a_long_event_is_cut_at_the_limit_and_says_how_much_is_left() {
        let bytes = vec![b'x'; 1000];
        let lines = dump(&bytes, DEFAULT_LIMIT);
        assert_eq!(lines.len(), 16 + 1);
        assert!(lines[15].starts_with("00f0: 78 78"), "{}", lines[15]);
        assert_eq!(
            lines[16],
            "... 744 more bytes not shown (--trace-bytes 0 shows all)"
        );
    }

    #[test]
    fn a_limit_of_zero_dumps_everything_with_wider_offsets_past_64_kib() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let lines = dump(&bytes, 0);
        assert_eq!(lines.len(), 70_000usize.div_ceil(16));
        assert!(lines[1].starts_with("0010: 10 11 12"), "{}", lines[1]);
        assert!(lines[4096].starts_with("10000: 00 01"), "{}", lines[4096]);
        assert!(lines.iter().all(|l| !l.contains("not shown")));
    }

    #[test]
    fn every_row_puts_the_printable_column_at_the_same_place() {
        for len in 1..=16 {
            let lines = dump(&vec![b'z'; len], 0);
            assert_eq!(lines[0].find('z'), Some(6 + HEX_WIDTH + 2), "length {len}");
        }
    }

    fn tracer(limit: usize) -> (Tracer, Capture) {
        let capture = Capture::default();
        (Tracer::with_sink(limit, Arc::new(capture.clone())), capture)
    }

    #[test]
    fn events_are_worded_and_dumped() {
        let (tracer, capture) = tracer(256);
        tracer.event("connect 127.0.0.1:50548 -> 127.0.0.1:9999");
        tracer.sent(b"Michael");
        tracer.received(b"Hello, Michael!");
        tracer.sent_plaintext(b"GET");
        tracer.received_plaintext(b"");
        let want = [
            "== connect 127.0.0.1:50548 -> 127.0.0.1:9999",
            "=> send 7 bytes",
            MICHAEL,
            "<= recv 15 bytes",
            "0000: 48 65 6c 6c 6f 2c 20 4d 69 63 68 61 65 6c 21     Hello, Michael!",
            "=> tls send 3 bytes of plaintext",
            "0000: 47 45 54                                         GET",
            "<= tls recv 0 bytes of plaintext",
        ];
        assert_eq!(capture.text(), want.join("\n") + "\n");
    }

    #[test]
    fn each_event_is_one_write_and_every_line_carries_the_label() {
        let (tracer, capture) = tracer(20);
        let conn = tracer.for_connection("127.0.0.1:50548");
        conn.received(&[b'y'; 40]);
        let events = capture.events();
        assert_eq!(events.len(), 1);
        let text = String::from_utf8(events[0].clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 2 + 1, "{text}");
        assert!(lines.iter().all(|l| l.starts_with("[127.0.0.1:50548] ")));
        assert_eq!(lines[0], "[127.0.0.1:50548] <= recv 40 bytes");
        assert_eq!(
            lines[3],
            "[127.0.0.1:50548] ... 20 more bytes not shown (--trace-bytes 0 shows all)"
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_label_set_later_shows_on_every_clone_but_not_on_the_parent() {
        let (tracer, capture) = tracer(0);
        let conn = tracer.for_connection("10.0.0.1:1");
        let inside_the_stream = conn.clone();
        conn.set_label("203.0.113.7:4242");
        inside_the_stream.event("close");
        tracer.event("listening");
        assert_eq!(
            capture.text(),
            "[203.0.113.7:4242] == close\n== listening\n"
        );
        assert_eq!(
            inside_the_stream.label().as_deref(),
            Some("203.0.113.7:4242")
        );
    }

    /// An in-memory peer: reads come from `input` in pieces of at most `read_max` bytes,
    /// writes land in `output` at most `write_max` bytes per call.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
        read_max: usize,
        write_max: usize,
    }

    impl Duplex {
        fn new(input: &[u8], read_max: usize, write_max: usize) -> Duplex {
            Duplex {
                input: Cursor::new(input.to_vec()),
                output: Vec::new(),
                read_max,
                write_max,
            }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let max = buf.len().min(self.read_max);
            self.input.read(&mut buf[..max])
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.write_max);
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The `(marker, bytes)` of each captured data event, read back from the dump rows.
    fn data_events(capture: &Capture) -> Vec<(String, Vec<u8>)> {
        capture
            .events()
            .iter()
            .map(|event| {
                let text = String::from_utf8(event.clone()).unwrap();
                let mut lines = text.lines();
                let marker = lines.next().unwrap().to_string();
                let bytes = lines
                    .flat_map(|row| {
                        row[6..6 + HEX_WIDTH]
                            .split_whitespace()
                            .map(|h| u8::from_str_radix(h, 16).unwrap())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (marker, bytes)
            })
            .collect()
    }

    #[test]
    fn each_read_that_moved_data_is_one_recv_event_of_those_bytes() {
        let (tracer, capture) = tracer(0);
        let mut stream = Traced::new(Duplex::new(b"Welcome!Hello, Michael!", 5, 64), tracer);
        let mut all = Vec::new();
        let mut buf = [0; 64];
        loop {
            match stream.read(&mut buf).unwrap() {
                0 => break,
                n => all.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(all, b"Welcome!Hello, Michael!");
        let events = data_events(&capture);
        let sizes: Vec<usize> = events.iter().map(|(_, b)| b.len()).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 3], "EOF is not an event");
        for (marker, bytes) in &events {
            assert_eq!(*marker, format!("<= recv {} bytes", bytes.len()));
        }
        let joined: Vec<u8> = events.into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(joined, all);
    }

    #[test]
    fn each_write_is_one_send_event_of_the_bytes_actually_written() {
        let (tracer, capture) = tracer(0);
        let mut stream = Traced::new(Duplex::new(b"", 1, 3), tracer);
        stream.write_all(b"Michael").unwrap();
        stream.flush().unwrap();
        let events = data_events(&capture);
        let want = [
            ("=> send 3 bytes".to_string(), b"Mic".to_vec()),
            ("=> send 3 bytes".to_string(), b"hae".to_vec()),
            ("=> send 1 bytes".to_string(), b"l".to_vec()),
        ];
        assert_eq!(events, want);
        assert_eq!(stream.get_ref().output, b"Michael");
    }

    #[test]
    fn a_vectored_write_traces_the_written_prefix_across_slices() {
        let (tracer, capture) = tracer(0);
        let mut stream = Traced::plaintext(Duplex::new(b"", 1, 5), tracer);
        let n = stream
            .write_vectored(&[IoSlice::new(b"GE"), IoSlice::new(b"T / HTTP")])
            .unwrap();
        // Duplex keeps the default write_vectored: the first non-empty slice only.
        assert_eq!(n, 2);
        assert_eq!(
            data_events(&capture),
            [(
                "=> tls send 2 bytes of plaintext".to_string(),
                b"GE".to_vec()
            )]
        );
        assert_eq!(gather(&[b"GE", b"T / HTTP"], 5), b"GET /");
    }

    #[test]
    fn errors_and_end_of_file_are_not_traced() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (tracer, capture) = tracer(0);
        let mut failing = Traced::new(Failing, tracer.clone());
        assert!(failing.read(&mut [0; 8]).is_err());
        assert!(failing.write(b"x").is_err());
        let mut empty = Traced::new(Duplex::new(b"", 8, 8), tracer);
        assert_eq!(empty.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(empty.write(b"").unwrap(), 0);
        assert_eq!(capture.text(), "");
        assert_eq!(empty.into_inner().output, b"");
    }

    #[test]
    fn a_traced_socket_names_both_ends_when_made_and_when_dropped() {
        let ends = Peer {
            local: "127.0.0.1:50548".parse().unwrap(),
            peer: "127.0.0.1:9999".parse().unwrap(),
        };
        let (tracer, capture) = tracer(0);
        let mut socket =
            TracedSocket::new(Duplex::new(b"Welcome!", 64, 64), ends, Role::Client, tracer);
        let mut buf = [0; 64];
        assert_eq!(socket.read(&mut buf).unwrap(), 8);
        drop(socket);
        let server_side = Peer {
            local: ends.peer,
            peer: ends.local,
        };
        let (tracer, server) = self::tracer(0);
        let mut socket = TracedSocket::new(
            Duplex::new(b"", 64, 64),
            server_side,
            Role::Server,
            tracer.for_connection(ends.local.to_string()),
        );
        socket.write_all(b"Welcome!").unwrap();
        socket.shutdown("the server is stopping");
        socket.closing_because("peer sent exit");
        drop(socket);
        let text = capture.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== connect 127.0.0.1:50548 -> 127.0.0.1:9999");
        assert_eq!(lines[1], "<= recv 8 bytes");
        assert_eq!(lines[3], "== close 127.0.0.1:50548 -> 127.0.0.1:9999");
        let text = server.text();
        let lines: Vec<&str> = text.lines().collect();
        let p = "[127.0.0.1:50548] ";
        assert_eq!(
            lines[0],
            format!("{p}== accept 127.0.0.1:9999 <- 127.0.0.1:50548")
        );
        assert_eq!(lines[1], format!("{p}=> send 8 bytes"));
        assert_eq!(
            lines[3],
            format!("{p}== shutdown 127.0.0.1:9999 <- 127.0.0.1:50548 (the server is stopping)")
        );
        assert_eq!(
            lines[4],
            format!("{p}== close 127.0.0.1:9999 <- 127.0.0.1:50548 (peer sent exit)")
        );
    }
}

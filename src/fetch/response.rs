//! The response to fetch's GET, without a socket in sight: a sans-IO reader. It takes the
//! response in whatever pieces the network delivers and hands back the header block and the
//! body, de-chunked, as slices of the input it was given, so that it never holds more than one header block (at most [`MAX_HEAD`])
//! however large the body is. Every limit is a constant here with an [`Error`] of its own,
//! and no input, however hostile, makes it panic: that is what lets `fetch` trust a server
//! it knows nothing about.

use std::fmt;

/// A header block (status line, fields and the blank line) may not be longer than this.
pub const MAX_HEAD: usize = 64 * 1024;
/// Field lines in one header block or trailer section at most.
pub const MAX_FIELDS: usize = 1000;
/// A chunk-size line, extensions included, may not be longer than this.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Interim (1xx) responses before the final one at most.
pub const MAX_INTERIM: usize = 16;

/// Why a response was refused. Each names one limit or one rule of RFC 9112.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The connection closed before a single byte arrived.
    NoResponse,
    /// The connection closed inside the header block.
    IncompleteHead,
    /// The header block is longer than [`MAX_HEAD`].
    HeadTooLarge,
    /// More than [`MAX_FIELDS`] field lines.
    TooManyFields,
    /// The first line is not `HTTP/1.x NNN reason`.
    BadStatusLine,
    /// A field line without a `name:`, or a folded line before any field.
    BadField,
    /// More than [`MAX_INTERIM`] 1xx responses.
    TooManyInterim,
    /// A `101 Switching Protocols` nobody asked for.
    UnexpectedSwitch,
    /// A Content-Length that is not a decimal number that fits in 64 bits (an empty one,
    /// or an empty item in a list of them, included).
    BadContentLength,
    /// Content-Length given twice with different values.
    ConflictingLength,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 section 6.3: an error).
    LengthWithChunked,
    /// A transfer coding other than `chunked`.
    UnsupportedCoding(String),
    /// A chunk-size line that does not start with a hexadecimal number.
    BadChunkSize,
    /// A chunk size that does not fit in 64 bits.
    ChunkSizeOverflow,
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`].
    ChunkLineTooLong,
    /// Chunk data not followed by a line ending.
    BadChunkEnd,
    /// The trailer section is longer than [`MAX_HEAD`].
    TrailerTooLarge,
    /// The connection closed before the body reached its Content-Length.
    ShortBody {
        /// What Content-Length promised.
        expected: u64,
        /// What arrived.
        received: u64,
    },
    /// The connection closed before the last chunk.
    IncompleteChunked,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoResponse => write!(f, "the server closed the connection without a response"),
            Error::IncompleteHead => write!(f, "the connection closed inside the header"),
            Error::HeadTooLarge => write!(f, "header block longer than {MAX_HEAD} bytes"),
            Error::TooManyFields => write!(f, "more than {MAX_FIELDS} header fields"),
            Error::BadStatusLine => write!(f, "no HTTP/1.x status line"),
            Error::BadField => write!(f, "malformed header field"),
            Error::TooManyInterim => write!(f, "more than {MAX_INTERIM} 1xx responses"),
            Error::UnexpectedSwitch => write!(f, "unrequested 101 switching protocols"),
            Error::BadContentLength => write!(f, "invalid Content-Length"),
            Error::ConflictingLength => write!(f, "conflicting Content-Length values"),
            Error::LengthWithChunked => {
                write!(f, "both Content-Length and Transfer-Encoding")
            }
            Error::UnsupportedCoding(coding) => {
                write!(f, "unsupported Transfer-Encoding `{coding}`")
            }
            Error::BadChunkSize => write!(f, "bad chunk size"),
            Error::ChunkSizeOverflow => write!(f, "chunk size too large"),
            Error::ChunkLineTooLong => {
                write!(f, "chunk-size line longer than {MAX_CHUNK_LINE} bytes")
            }
            Error::BadChunkEnd => write!(f, "chunk data not followed by a line ending"),
            Error::TrailerTooLarge => write!(f, "trailer section longer than {MAX_HEAD} bytes"),
            Error::ShortBody { expected, received } => {
                write!(f, "the body ended after {received} of {expected} bytes")
            }
            Error::IncompleteChunked => write!(f, "the chunked body ended before its last chunk"),
        }
    }
}

impl std::error::Error for Error {}

/// One header block: the status line and the fields, kept byte for byte as received and
/// also parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    raw: Vec<u8>,
    status: u16,
    reason: String,
    fields: Vec<Field>,
}

/// One field line (with the lines folded into it), its value both as text and as the bytes
/// it arrived as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    /// The value as text for messages and decisions (see [`printable`]).
    text: String,
    /// The value's bytes without surrounding blanks, each fold replaced by one space.
    bytes: Vec<u8>,
}

impl Head {
    /// The block as received, line endings and the final blank line included.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase, control characters read as spaces.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// A 1xx response: another header block follows.
    pub fn is_interim(&self) -> bool {
        self.status < 200
    }

    /// The first value of field `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// The first value of field `name` as the bytes it arrived as (a fold read as one
    /// space), for a value whose every byte matters, such as a Location to follow.
    pub fn field_bytes(&self, name: &str) -> Option<&[u8]> {
        self.named(name).map(|f| f.bytes.as_slice()).next()
    }

    /// Every value of field `name`, each comma-separated list item on its own.
    fn list<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.values(name)
            .flat_map(|value| value.split(','))
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
    }

    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.named(name).map(|f| f.text.as_str())
    }

    fn named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Field> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    }
}

/// What a piece of input completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole header block (a 1xx one, or the final response's).
    Head(Head),
    /// The next bytes of the body, de-chunked.
    Body(&'a [u8]),
}

/// Where in the response the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Fixed { left: u64 },
    UntilEof,
    ChunkSize,
    ChunkData { left: u64 },
    ChunkEnd { seen_cr: bool },
    Trailer,
    Done,
}

/// Reads one response. Feed it bytes with [`feed`](Self::feed) until
/// [`is_done`](Self::is_done), or until the connection closes and [`finish`](Self::finish)
/// says whether the response was complete.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
    /// The header block, trailer section or chunk-size line read so far.
    buf: Vec<u8>,
    /// Where the current line starts in `buf`.
    line_start: usize,
    fields: usize,
    interim: usize,
    expected: u64,
    received: u64,
    seen_any: bool,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseReader {
    /// A reader waiting for the first byte of a response.
    pub fn new() -> Self {
        ResponseReader {
            state: State::Head,
            buf: Vec::new(),
            line_start: 0,
            fields: 0,
            interim: 0,
            expected: 0,
            received: 0,
            seen_any: false,
        }
    }

    /// The response is complete; bytes after it are not part of it.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes a prefix of `input`: how many bytes, and what they completed (`None` when
    /// they were all taken and more are needed). Call again with the rest of `input`.
    pub fn feed<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        self.seen_any |= !input.is_empty();
        match self.state {
            State::Head => self.feed_head(input),
            State::Fixed { left } => Ok(self.feed_fixed(input, left)),
            State::UntilEof => Ok(self.feed_until_eof(input)),
            State::ChunkSize => self.feed_chunk_size(input),
            State::ChunkData { left } => Ok(self.feed_chunk_data(input, left)),
            State::ChunkEnd { seen_cr } => self.feed_chunk_end(input, seen_cr),
            State::Trailer => self.feed_trailer(input),
            State::Done => Ok((input.len(), None)),
        }
    }

    /// The connection has closed: is the response complete? A body without a length ends
    /// here, which is how HTTP/1.0 servers (and the tutorial) mark its end.
    pub fn finish(&mut self) -> Result<(), Error> {
        let result = match self.state {
            State::Head if !self.seen_any => Err(Error::NoResponse),
            State::Head => Err(Error::IncompleteHead),
            State::Fixed { .. } => Err(Error::ShortBody {
                expected: self.expected,
                received: self.received,
            }),
            State::UntilEof | State::Done => Ok(()),
            State::ChunkSize | State::ChunkData { .. } | State::ChunkEnd { .. } => {
                Err(Error::IncompleteChunked)
            }
            State::Trailer => Err(Error::IncompleteChunked),
        };
        self.state = State::Done;
        result
    }

    fn feed_head<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        let (used, complete) = self.collect_lines(input, Error::HeadTooLarge)?;
        if !complete {
            return Ok((used, None));
        }
        let head = parse_head(std::mem::take(&mut self.buf))?;
        self.line_start = 0;
        self.fields = 0;
        self.state = self.framing(&head)?;
        Ok((used, Some(Event::Head(head))))
    }

    /// Takes bytes of `input` into `buf` up to the end of a blank line (returning true) or
    /// the end of `input`, counting field lines and checking the first line as it arrives.
    fn collect_lines(&mut self, input: &[u8], too_large: Error) -> Result<(usize, bool), Error> {
        let mut used = 0;
        while let Some(rest) = input.get(used..).filter(|rest| !rest.is_empty()) {
            let newline = rest.iter().position(|&b| b == b'\n');
            let take = newline.map_or(rest.len(), |at| at + 1);
            if self.buf.len().saturating_add(take) > MAX_HEAD {
                return Err(too_large);
            }
            self.buf
                .extend_from_slice(rest.get(..take).unwrap_or_default());
            used += take;
            if self.state == State::Head && self.line_start == 0 && !could_be_status(&self.buf) {
                return Err(Error::BadStatusLine);
            }
            if newline.is_some() && self.end_line()? {
                return Ok((used, true));
            }
        }
        Ok((used, false))
    }

    /// A line of `buf` has ended: true when it was the blank line that ends the block.
    fn end_line(&mut self) -> Result<bool, Error> {
        let line = trim_eol(self.buf.get(self.line_start..).unwrap_or_default());
        let first = self.line_start == 0 && self.state == State::Head;
        if line.is_empty() && !first {
            return Ok(true);
        }
        if first {
            parse_status_line(line)?;
        } else {
            self.fields += 1;
            if self.fields > MAX_FIELDS {
                return Err(Error::TooManyFields);
            }
        }
        self.line_start = self.buf.len();
        Ok(false)
    }

    /// How the body after `head` is framed (RFC 9112 section 6.3, for a response to GET).
    fn framing(&mut self, head: &Head) -> Result<State, Error> {
        if head.status == 101 {
            return Err(Error::UnexpectedSwitch);
        }
        if head.is_interim() {
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return Err(Error::TooManyInterim);
            }
            return Ok(State::Head);
        }
        if head.status == 204 || head.status == 304 {
            return Ok(State::Done);
        }
        let length = content_length(head)?;
        if is_chunked(head)? {
            if length.is_some() {
                return Err(Error::LengthWithChunked);
            }
            return Ok(State::ChunkSize);
        }
        self.expected = length.unwrap_or(0);
        Ok(match length {
            Some(0) => State::Done,
            Some(left) => State::Fixed { left },
            None => State::UntilEof,
        })
    }

    fn feed_fixed<'a>(&mut self, input: &'a [u8], left: u64) -> (usize, Option<Event<'a>>) {
        let (body, left) = take_body(input, left);
        self.received += body.len() as u64;
        self.state = if left == 0 {
            State::Done
        } else {
            State::Fixed { left }
        };
        (
            body.len(),
            Some(Event::Body(body)).filter(|_| !body.is_empty()),
        )
    }

    fn feed_until_eof<'a>(&mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        self.received += input.len() as u64;
        (
            input.len(),
            Some(Event::Body(input)).filter(|_| !input.is_empty()),
        )
    }

    fn feed_chunk_size<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        let newline = input.iter().position(|&b| b == b'\n');
        let take = newline.map_or(input.len(), |at| at + 1);
        if self.buf.len().saturating_add(take) > MAX_CHUNK_LINE {
            return Err(Error::ChunkLineTooLong);
        }
        self.buf
            .extend_from_slice(input.get(..take).unwrap_or_default());
        if newline.is_some() {
            let size = parse_chunk_size(&self.buf)?;
            self.buf.clear();
            self.state = match size {
                0 => State::Trailer,
                left => State::ChunkData { left },
            };
        }
        Ok((take, None))
    }

    fn feed_chunk_data<'a>(&mut self, input: &'a [u8], left: u64) -> (usize, Option<Event<'a>>) {
        let (body, left) = take_body(input, left);
        self.received += body.len() as u64;
        self.state = if left == 0 {
            State::ChunkEnd { seen_cr: false }
        } else {
            State::ChunkData { left }
        };
        (
            body.len(),
            Some(Event::Body(body)).filter(|_| !body.is_empty()),
        )
    }

    fn feed_chunk_end<'a>(
        &mut self,
        input: &'a [u8],
        seen_cr: bool,
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        self.state = match input.first() {
            None => return Ok((0, None)),
            Some(b'\r') if !seen_cr => State::ChunkEnd { seen_cr: true },
            Some(b'\n') => State::ChunkSize,
            Some(_) => return Err(Error::BadChunkEnd),
        };
        Ok((1, None))
    }

    fn feed_trailer<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        let (used, complete) = self.collect_lines(input, Error::TrailerTooLarge)?;
        if complete {
            self.buf = Vec::new();
            self.state = State::Done;
        }
        Ok((used, None))
    }
}

/// The first `left` bytes of `input` at most, and how many remain after them.
fn take_body(input: &[u8], left: u64) -> (&[u8], u64) {
    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
    let body = input.get(..n).unwrap_or_default();
    (body, left - n as u64)
}

/// `line` without its `\n` or `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether `start` (the first bytes of a response) could begin a status line, so that a
/// peer speaking another protocol is refused at once rather than after a timeout.
fn could_be_status(start: &[u8]) -> bool {
    let n = start.len().min(5);
    start.get(..n) == b"HTTP/".get(..n)
}

fn parse_head(raw: Vec<u8>) -> Result<Head, Error> {
    let mut lines = raw.split(|&b| b == b'\n').map(trim_eol);
    let (status, reason) = parse_status_line(lines.next().unwrap_or_default())?;
    let mut fields: Vec<Field> = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            unfold(fields.last_mut().ok_or(Error::BadField)?, line);
        } else {
            fields.push(parse_field(line)?);
        }
    }
    Ok(Head {
        raw,
        status,
        reason,
        fields,
    })
}

/// `HTTP/1.x SP 3DIGIT SP reason`, the reason possibly empty (its space too).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), Error> {
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(Error::BadStatusLine)?;
    let (minor, rest) = rest.split_first().ok_or(Error::BadStatusLine)?;
    let rest = rest.strip_prefix(b" ").ok_or(Error::BadStatusLine)?;
    let (code, reason) = rest.split_at_checked(3).ok_or(Error::BadStatusLine)?;
    if !minor.is_ascii_digit() || !code.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadStatusLine);
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(Error::BadStatusLine);
    }
    let reason = match reason {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(Error::BadStatusLine),
    };
    Ok((status, printable(reason)))
}

/// `name: value`, the name a token, the value without surrounding blanks.
fn parse_field(line: &[u8]) -> Result<Field, Error> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::BadField)?;
    let (name, value) = line.split_at(colon);
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return Err(Error::BadField);
    }
    let value = value.get(1..).unwrap_or_default().trim_ascii();
    Ok(Field {
        name: String::from_utf8_lossy(name).into_owned(),
        text: printable(value),
        bytes: value.to_vec(),
    })
}

/// A line that starts with a blank continues the field before it (obsolete line folding):
/// RFC 9112 section 5.2 has a user agent replace the fold with a space, as here, rather than
/// refuse the response.
fn unfold(field: &mut Field, line: &[u8]) {
    let more = line.trim_ascii();
    if !field.bytes.is_empty() && !more.is_empty() {
        field.bytes.push(b' ');
    }
    field.bytes.extend_from_slice(more);
    field.text = printable(&field.bytes);
}

/// Text for messages and decisions: control characters (a stray CR, NUL, an escape
/// sequence) become spaces, as RFC 9112 allows for CR, LF and NUL. The raw block keeps them.
fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The Content-Length, if any: every value given must be the same number. An empty value,
/// or an empty item in a list (`5,`), is no number (RFC 9110 section 8.6) and not the
/// absence of one.
fn content_length(head: &Head) -> Result<Option<u64>, Error> {
    let mut length = None;
    let items = head
        .named("Content-Length")
        .flat_map(|field| field.bytes.split(|&b| b == b','))
        .map(trim_ows);
    for item in items {
        let value = decimal(item).ok_or(Error::BadContentLength)?;
        if length.is_some_and(|known| known != value) {
            return Err(Error::ConflictingLength);
        }
        length = Some(value);
    }
    Ok(length)
}

/// `1*DIGIT` as a number, if it is one and fits in 64 bits.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = char::from(d).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `bytes` without the spaces and tabs around it (HTTP's optional whitespace).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => bytes.get(start..=end).unwrap_or_default(),
        _ => &[],
    }
}

/// Whether the body is chunked; `chunked` is the only transfer coding understood.
fn is_chunked(head: &Head) -> Result<bool, Error> {
    let mut chunked = false;
    for coding in head.list("Transfer-Encoding") {
        if !coding.eq_ignore_ascii_case("chunked") || chunked {
            return Err(Error::UnsupportedCoding(coding.to_string()));
        }
        chunked = true;
    }
    Ok(chunked)
}

/// `HEXDIG+ [BWS ; extensions] CRLF`: the size; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let line = trim_eol(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at(digits);
    if hex.is_empty() {
        return Err(Error::BadChunkSize);
    }
    let rest = rest.trim_ascii_start();
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(Error::BadChunkSize);
    }
    hex.iter().try_fold(0u64, |size, &digit| {
        let value = char::from(digit).to_digit(16).unwrap_or(0);
        size.checked_mul(16)
            .and_then(|size| size.checked_add(u64::from(value)))
            .ok_or(Error::ChunkSizeOverflow)
    })
}

#[cfg(test)]
mod tests;

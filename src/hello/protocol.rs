//! The Hello protocol, without sockets: what the server answers to the bytes it receives
//! ([`Framer`]), what a client sends and expects ([`Exchange`]), and how the client checks
//! what arrives against it ([`Replies`]).
//!
//! The tutorial's server treats every `recv(1024)` as one message. That is kept for clients
//! that never send a line ending (the tutorial's own client), but a person typing into
//! netcat sends lines, and TCP is free to split or merge them. So the first `\n` switches the
//! connection to line mode for good: from then on a message is a line, however it arrives.

/// Sent on accept, with no line ending.
pub const GREETING: &[u8] = b"Welcome!";
/// The message that ends a conversation without a reply.
pub const EXIT: &[u8] = b"exit";
/// The longest line accepted in line mode, line ending excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// The framer keeps a buffer for the start of a line up to this size between lines; one that
/// a long line grew is given back, so an idle connection holds no more than a short one.
const KEEP_PARTIAL: usize = 4 * 1024;

/// What the server says before it drops a client whose line is too long.
pub fn line_too_long() -> String {
    format!("error: line longer than {MAX_LINE} bytes\n")
}

/// Appends the reply to `message`: `Hello, <message>!` and the line ending it came with.
pub fn reply(message: &[u8], ending: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"Hello, ");
    out.extend_from_slice(message);
    out.push(b'!');
    out.extend_from_slice(ending);
}

/// How a client frames its messages on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The tutorial's: the message alone, one write, no line ending.
    Raw,
    /// The message and `\n`.
    Lines,
}

impl Mode {
    /// What follows each message (and each reply) in this mode.
    pub fn ending(self) -> &'static [u8] {
        match self {
            Mode::Raw => b"",
            Mode::Lines => b"\n",
        }
    }
}

/// The bytes a client sends for one name and the reply it must get back, built in one
/// place for the client and bench. The buffers are reused from name to name.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    message: Vec<u8>,
    reply: Vec<u8>,
    mode: Option<Mode>,
}

impl Exchange {
    /// The exchange for `name` in `mode`.
    pub fn new(name: &[u8], mode: Mode) -> Self {
        let mut exchange = Exchange::default();
        exchange.set(name, mode);
        exchange
    }

    /// Makes this the exchange for `name`, keeping the buffers.
    pub fn set(&mut self, name: &[u8], mode: Mode) {
        self.message.clear();
        self.message.extend_from_slice(name);
        self.message.extend_from_slice(mode.ending());
        self.reply.clear();
        reply(name, mode.ending(), &mut self.reply);
        self.mode = Some(mode);
    }

    /// What to send: the name and the mode's line ending.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// What must come back, line ending included.
    pub fn reply(&self) -> &[u8] {
        &self.reply
    }

    /// The reply as printed on a line of its own: without its line ending.
    pub fn reply_text(&self) -> &[u8] {
        let ending = self.mode.map_or(0, |m| m.ending().len());
        &self.reply[..self.reply.len() - ending]
    }
}

/// The message that ends a conversation, in `mode`.
pub fn exit_message(mode: Mode) -> &'static [u8] {
    match mode {
        Mode::Raw => EXIT,
        Mode::Lines => b"exit\n",
    }
}

/// The client side of a conversation: received bytes in, checked against the reply
/// expected next. A reply split across receives, or longer than one, is still matched whole;
/// a byte that differs is a mismatch at once, rather than a wait for a length that a wrong
/// reply may never reach. Bytes past one reply are kept for the next.
#[derive(Debug, Default)]
pub struct Replies {
    pending: Vec<u8>,
}

/// What arrived instead of the expected reply (as far as it had arrived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub Vec<u8>);

impl Replies {
    /// An empty matcher with room for one receive.
    pub fn new() -> Self {
        Replies {
            pending: Vec::with_capacity(1024),
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Whether `expected` has arrived whole (and is then consumed), has not yet, or cannot.
    pub fn take(&mut self, expected: &[u8]) -> Result<bool, Mismatch> {
        let have = self.pending.len().min(expected.len());
        if self.pending[..have] != expected[..have] {
            return Err(Mismatch(self.pending.clone()));
        }
        if have < expected.len() {
            return Ok(false);
        }
        self.pending.drain(..have);
        Ok(true)
    }

    /// Bytes received and not yet matched.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }
}

/// Why a conversation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client said `exit`.
    Exit,
    /// A line grew past [`MAX_LINE`]; the error line is in the output.
    LineTooLong,
}

/// What one chunk led to: how many replies were appended, and whether to hang up after
/// sending them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Replies appended.
    pub replies: usize,
    /// Why the conversation ends after them, if it does.
    pub end: Option<End>,
}

/// The server side of one connection: received chunks in, reply bytes out.
#[derive(Debug, Default)]
pub struct Framer {
    line_mode: bool,
    /// The start of a line whose `\n` has not arrived yet (line mode only).
    partial: Vec<u8>,
}

impl Framer {
    /// A connection's framer, in raw mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one received chunk and appends the replies it calls for to `out`. After an
    /// outcome with `end` set, the caller sends `out` and closes; later input is not read.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Outcome {
        if !self.line_mode {
            if !chunk.contains(&b'\n') {
                return raw_message(chunk, out);
            }
            self.line_mode = true;
        }
        self.push_lines(chunk, out)
    }

    fn push_lines(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Outcome {
        let mut outcome = Outcome::default();
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&rest[..at], &rest[at + 1..]);
            rest = tail;
            let line: &[u8] = if self.partial.is_empty() {
                head
            } else {
                self.partial.extend_from_slice(head);
                &self.partial
            };
            let (text, ending): (&[u8], &[u8]) = match line.strip_suffix(b"\r") {
                Some(text) => (text, b"\r\n"),
                None => (line, b"\n"),
            };
            if text.len() > MAX_LINE {
                outcome.end = Some(End::LineTooLong);
            } else if text == EXIT {
                outcome.end = Some(End::Exit);
            } else {
                reply(text, ending, out);
                outcome.replies += 1;
            }
            self.partial.clear();
            if self.partial.capacity() > KEEP_PARTIAL {
                self.partial = Vec::new();
            }
            if outcome.end.is_some() {
                return self.finish(outcome, out);
            }
        }
        // A pending `\r` may still turn out to be part of a `\r\n`, hence the one byte.
        if self.partial.len() + rest.len() > MAX_LINE + 1 {
            outcome.end = Some(End::LineTooLong);
            return self.finish(outcome, out);
        }
        self.partial.extend_from_slice(rest);
        outcome
    }

    /// Heap bytes the framer holds between chunks (for the start of a line).
    pub fn capacity(&self) -> usize {
        self.partial.capacity()
    }

    fn finish(&mut self, outcome: Outcome, out: &mut Vec<u8>) -> Outcome {
        if outcome.end == Some(End::LineTooLong) {
            out.extend_from_slice(line_too_long().as_bytes());
        }
        self.partial = Vec::new();
        outcome
    }
}

/// The tutorial's behaviour: the whole chunk is the message.
fn raw_message(chunk: &[u8], out: &mut Vec<u8>) -> Outcome {
    if chunk == EXIT {
        return Outcome {
            replies: 0,
            end: Some(End::Exit),
        };
    }
    if chunk.is_empty() {
        return Outcome::default();
    }
    reply(chunk, b"", out);
    Outcome {
        replies: 1,
        end: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    /// Feeds `chunks` one by one, returning every byte the server would send and how the
    /// conversation ended.
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Option<End>, usize) {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        let mut replies = 0;
        for chunk in chunks {
            let outcome = framer.push(chunk, &mut out);
            replies += outcome.replies;
            if outcome.end.is_some() {
                return (out, outcome.end, replies);
            }
        }
        (out, None, replies)
    }

    #[test]
    fn raw_chunks_are_one_message_each_as_in_the_tutorial() {
        let (out, end, replies) = run(&[b"Michael", b"Tracy", b"Sarah"]);
        assert_eq!(out, b"Hello, Michael!Hello, Tracy!Hello, Sarah!");
        assert_eq!((end, replies), (None, 3));
    }

    #[test]
    fn exit_closes_without_a_reply_in_either_mode() {
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[b"exit"], b""),
            (&[b"Bob", b"exit"], b"Hello, Bob!"),
            (&[b"exit\n"], b""),
            (&[b"a\n", b"exit\r\n", b"b\n"], b"Hello, a!\n"),
            (&[b"a\nexit\nb\n"], b"Hello, a!\n"),
        ];
        for (chunks, want) in cases {
            let (out, end, _) = run(chunks);
            assert_eq!(end, Some(End::Exit), "{chunks:?}");
            assert_eq!(out, *want, "{chunks:?}");
        }
    }

    #[test]
    fn exit_inside_a_longer_message_is_just_a_message() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"exit ", b"Hello, exit !"),
            (b"exits", b"Hello, exits!"),
            (b"EXIT", b"Hello, EXIT!"),
        ];
        for (chunk, want) in cases {
            assert_eq!(run(&[chunk]).0, *want);
        }
    }

    #[test]
    fn several_lines_in_one_segment_get_one_reply_each() {
        let (out, end, replies) = run(&[b"a\nb\nc\n"]);
        assert_eq!(out, b"Hello, a!\nHello, b!\nHello, c!\n");
        assert_eq!((end, replies), (None, 3));
    }

    #[test]
    fn line_split_across_segments_is_one_message() {
        let (out, _, replies) = run(&[b"hi\n", b"Mich", b"ael\nTr", b"acy", b"\n"]);
        assert_eq!(out, b"Hello, hi!\nHello, Michael!\nHello, Tracy!\n");
        assert_eq!(replies, 3);
    }

    #[test]
    fn crlf_is_kept_and_bare_lf_is_kept() {
        let (out, _, _) = run(&[b"a\r\nb\n", b"c\r", b"\n"]);
        assert_eq!(out, b"Hello, a!\r\nHello, b!\nHello, c!\r\n");
    }

    #[test]
    fn empty_lines_are_empty_messages() {
        let (out, _, replies) = run(&[b"\n\r\n"]);
        assert_eq!(out, b"Hello, !\nHello, !\r\n");
        assert_eq!(replies, 2);
    }

    #[test]
    fn raw_bytes_are_echoed_exactly() {
        let chunk: &[u8] = b"\xff\xfe\x00\x01\x1b[31m";
        let (out, end, _) = run(&[chunk]);
        assert_eq!(out, [b"Hello, ".as_slice(), chunk, b"!"].concat());
        assert_eq!(end, None);
        let (out, _, _) = run(&[b"\x00\xc3\x28\n"]);
        assert_eq!(out, b"Hello, \x00\xc3\x28!\n");
    }

    #[test]
    fn line_mode_sticks_after_the_first_newline() {
        let (out, _, _) = run(&[b"raw", b"line\n", b"no-newline-yet", b"\n"]);
        assert_eq!(out, b"Hello, raw!Hello, line!\nHello, no-newline-yet!\n");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let line = vec![b'x'; MAX_LINE];
        let mut framer = Framer::new();
        let mut out = Vec::new();
        framer.push(b"start\n", &mut out);
        for piece in line.chunks(1024) {
            assert_eq!(framer.push(piece, &mut out).end, None);
        }
        assert_eq!(framer.push(b"\r", &mut out).end, None);
        let outcome = framer.push(b"\n", &mut out);
        assert_eq!(
            outcome,
            Outcome {
                replies: 1,
                end: None
            }
        );
        assert_eq!(
            out.len(),
            "Hello, start!\n".len() + "Hello, !\r\n".len() + MAX_LINE
        );
    }

    #[test]
    fn a_long_line_gives_its_buffer_back_once_it_has_ended() {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        framer.push(b"start\n", &mut out);
        for piece in vec![b'x'; MAX_LINE].chunks(1024) {
            framer.push(piece, &mut out);
        }
        assert!(framer.capacity() >= MAX_LINE, "{}", framer.capacity());
        // The end of the long line and the start of a short one, in one chunk.
        let outcome = framer.push(b"\nsho", &mut out);
        assert_eq!(outcome.replies, 1);
        assert!(framer.capacity() <= KEEP_PARTIAL, "{}", framer.capacity());
        out.clear();
        framer.push(b"rt\n", &mut out);
        assert_eq!(out, b"Hello, short!\n");
    }

    #[test]
    fn a_line_over_the_limit_is_refused_before_its_end_arrives() {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        framer.push(b"ok\n", &mut out);
        let mut end = None;
        for _ in 0..=MAX_LINE / 1024 + 1 {
            end = framer.push(&[b'y'; 1024], &mut out).end;
            if end.is_some() {
                break;
            }
        }
        assert_eq!(end, Some(End::LineTooLong));
        assert_eq!(
            out,
            [b"Hello, ok!\n".as_slice(), line_too_long().as_bytes()].concat()
        );
    }

    #[test]
    fn a_too_long_line_in_one_chunk_keeps_the_replies_before_it() {
        let mut chunk = b"a\n".to_vec();
        chunk.extend(vec![b'z'; MAX_LINE + 1]);
        chunk.push(b'\n');
        let (out, end, replies) = run(&[&chunk]);
        assert_eq!(end, Some(End::LineTooLong));
        assert_eq!(replies, 1);
        assert_eq!(
            out,
            [b"Hello, a!\n".as_slice(), line_too_long().as_bytes()].concat()
        );
    }

    #[test]
    fn line_mode_output_does_not_depend_on_how_tcp_splits_it() {
        let mut rng = Rng::new(0x5eed);
        for _ in 0..200 {
            // Line mode begins with the first chunk that holds a `\n`; after that, the
            // pieces must not matter.
            let mut input = Vec::new();
            for _ in 0..rng.below(20) {
                let len = rng.below(300);
                input.extend((0..len).map(|_| match rng.below(10) {
                    0 => b'\r',
                    1 => 0,
                    _ => b'a' + rng.below(26) as u8,
                }));
                input.extend_from_slice(if rng.below(2) == 0 { b"\n" } else { b"\r\n" });
            }
            let start: &[u8] = b"first\n";
            let whole = run(&[start, &input]);
            let pieces = rng.split(&input);
            let refs: Vec<&[u8]> = std::iter::once(start)
                .chain(pieces.iter().map(Vec::as_slice))
                .collect();
            assert_eq!(run(&refs), whole);
            let bytes: Vec<&[u8]> = std::iter::once(start).chain(input.chunks(1)).collect();
            assert_eq!(run(&bytes), whole);
        }
    }

    #[test]
    fn exchanges_are_built_alike_for_client_and_bench() {
        let e = Exchange::new(b"bench-7", Mode::Raw);
        assert_eq!(e.message(), b"bench-7");
        assert_eq!(e.reply(), b"Hello, bench-7!");
        assert_eq!(e.reply_text(), b"Hello, bench-7!");
        assert_eq!(exit_message(Mode::Raw), b"exit");
        let e = Exchange::new(b"bench-7", Mode::Lines);
        assert_eq!(e.message(), b"bench-7\n");
        assert_eq!(e.reply(), b"Hello, bench-7!\n");
        assert_eq!(e.reply_text(), b"Hello, bench-7!");
        assert_eq!(exit_message(Mode::Lines), b"exit\n");
    }

    /// Feeds `pieces` and expects `replies` in turn; returns how many matched and the first
    /// mismatch.
    fn match_replies(pieces: &[Vec<u8>], replies: &[&[u8]]) -> (usize, Option<Mismatch>) {
        let mut matcher = Replies::new();
        let mut next = 0;
        for piece in pieces {
            matcher.push(piece);
            while next < replies.len() {
                match matcher.take(replies[next]) {
                    Ok(true) => next += 1,
                    Ok(false) => break,
                    Err(mismatch) => return (next, Some(mismatch)),
                }
            }
        }
        (next, None)
    }

    #[test]
    fn replies_match_however_they_are_split() {
        let stream = b"Welcome!Hello, Michael!Hello, Tracy!Hello, Sarah!";
        let replies: [&[u8]; 4] = [
            b"Welcome!",
            b"Hello, Michael!",
            b"Hello, Tracy!",
            b"Hello, Sarah!",
        ];
        let bytes: Vec<Vec<u8>> = stream.iter().map(|b| vec![*b]).collect();
        assert_eq!(match_replies(&bytes, &replies), (4, None));
        assert_eq!(match_replies(&[stream.to_vec()], &replies), (4, None));
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            assert_eq!(match_replies(&rng.split(stream), &replies), (4, None));
        }
    }

    #[test]
    fn a_wrong_byte_is_a_mismatch_before_the_length_arrives() {
        let pieces = [b"Welcome!Hello, X".to_vec()];
        let (matched, mismatch) = match_replies(&pieces, &[b"Welcome!", b"Hello, Michael!"]);
        assert_eq!(matched, 1);
        assert_eq!(mismatch, Some(Mismatch(b"Hello, X".to_vec())));
    }

    #[test]
    fn bytes_past_a_reply_wait_for_the_next() {
        let mut matcher = Replies::new();
        matcher.push(b"Hello, a!Hel");
        assert_eq!(matcher.take(b"Hello, a!"), Ok(true));
        assert_eq!(matcher.pending(), b"Hel");
        assert_eq!(matcher.take(b"Hello, b!"), Ok(false));
    }
}

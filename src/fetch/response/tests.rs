//! Tables of byte strings for the response reader: every case is read whole, byte by byte
//! and in random splits, and must come out the same every way.

use super::*;
use crate::testing::{chunked_response, read_response as read, ReadOutcome, Rng};

/// `input` read whole, byte by byte and in random splits: all must agree.
fn read_every_way(input: &[u8], eof: bool) -> ReadOutcome {
    let mut rng = Rng::new(input.len() as u64 + 7);
    crate::testing::read_every_way(input, eof, &mut rng, 8)
}

fn body_of(input: &[u8], eof: bool) -> Vec<u8> {
    let outcome = read_every_way(input, eof);
    assert_eq!(
        outcome.result,
        Ok(()),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    outcome.body
}

fn error_of(input: &[u8], eof: bool) -> Error {
    let outcome = read_every_way(input, eof);
    outcome.result.expect_err("the input must be refused")
}

#[test]
fn bodies_come_out_whole_every_way() {
    let cases: &[(&[u8], bool, &[u8])] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            false,
            b"hello",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
            true,
            b"hello",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nEXTRA",
            false,
            b"",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
            false,
            b"abc",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nto the end", true, b"to the end"),
        (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", true, b""),
        (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", false, b"ok"),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, b"ok"),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\nEXTRA",
            false,
            b"",
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false,
            b"",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value\r\nhello\r\n6 ; x=\"y\"\r\n world\r\n0\r\n\
              X-Checksum: 1\r\nX-More: 2\r\n\r\nEXTRA",
            false,
            b"hello world",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n",
            false,
            b"0123456789",
        ),
        (
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
            false,
            b"abc",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            true,
            b"",
        ),
    ];
    for (input, eof, body) in cases {
        assert_eq!(
            body_of(input, *eof),
            *body,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn header_block_is_kept_as_received() {
    let input = b"HTTP/1.1 200 OK\r\nX-A:  b \r\nx-c: d\r\n\r\nbody";
    let outcome = read_every_way(input, true);
    assert_eq!(outcome.heads, vec![input[..input.len() - 4].to_vec()]);
    let mut reader = ResponseReader::new();
    let Ok((_, Some(Event::Head(head)))) = reader.feed(input) else {
        panic!("a head")
    };
    assert_eq!((head.status(), head.reason()), (200, "OK"));
    assert_eq!(head.field("x-a"), Some("b"));
    assert_eq!(head.field("X-C"), Some("d"));
    assert_eq!(head.field("X-None"), None);
}

#[test]
fn control_characters_in_values_read_as_spaces() {
    let input = b"HTTP/1.1 200 O\x1bK\r\nLocation: /a\rb\x00c\td\r\n\r\n";
    let mut reader = ResponseReader::new();
    let Ok((_, Some(Event::Head(head)))) = reader.feed(input) else {
        panic!("a head")
    };
    assert_eq!(head.reason(), "O K");
    assert_eq!(head.field("Location"), Some("/a b c\td"));
    assert_eq!(head.raw(), input);
}

/// The final header block of `input`, read whole, byte by byte and in random splits: all
/// must agree.
fn final_head_every_way(input: &[u8]) -> Head {
    let read_head = |pieces: &[Vec<u8>]| -> Head {
        let mut reader = ResponseReader::new();
        let mut last = None;
        for piece in pieces {
            let mut rest = piece.as_slice();
            while !rest.is_empty() && !reader.is_done() {
                let (used, event) = reader.feed(rest).expect("a valid response");
                if let Some(Event::Head(head)) = event {
                    last = Some(head);
                }
                rest = &rest[used..];
            }
        }
        last.expect("a header block")
    };
    let whole = read_head(&[input.to_vec()]);
    let bytes: Vec<Vec<u8>> = input.iter().map(|&b| vec![b]).collect();
    assert_eq!(read_head(&bytes), whole, "byte by byte: {input:?}");
    let mut rng = Rng::new(input.len() as u64 + 11);
    for _ in 0..8 {
        assert_eq!(read_head(&rng.split(input)), whole, "random split");
    }
    whole
}

#[test]
fn an_obs_fold_reads_as_one_space() {
    // (field lines, field, its value as text, its value's bytes)
    let cases: &[(&[u8], &str, &str, &[u8])] = &[
        (
            b"X-A: a\r\n  continued",
            "X-A",
            "a continued",
            b"a continued",
        ),
        (b"X-A: a\r\n\tb\r\n c", "x-a", "a b c", b"a b c"),
        (b"X-A: a\n b", "X-A", "a b", b"a b"),
        (b"X-A:\r\n b", "X-A", "b", b"b"),
        (b"X-A: a\r\n \r\nX-B: c", "X-A", "a", b"a"),
        (b"X-A: a\r\n \r\nX-B: c", "X-B", "c", b"c"),
        (
            b"Location: /a\r\n b\xff",
            "Location",
            "/a b\u{fffd}",
            b"/a b\xff",
        ),
    ];
    for (fields, name, text, bytes) in cases {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend(*fields);
        input.extend(b"\r\nContent-Length: 0\r\n\r\n");
        let head = final_head_every_way(&input);
        let shown = String::from_utf8_lossy(fields);
        assert_eq!(head.field(name), Some(*text), "{shown}");
        assert_eq!(head.field_bytes(name), Some(*bytes), "{shown}");
        assert_eq!(head.raw(), input, "the block is kept as received");
    }
    let folded_length = b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 5\r\n\r\nhello";
    assert_eq!(body_of(folded_length, false), b"hello");
}

#[test]
fn field_bytes_are_the_bytes_received() {
    let input = b"HTTP/1.1 302 Found\r\nLocation:  /a\x01b\xffc\x7f \r\nContent-Length: 0\r\n\r\n";
    let head = final_head_every_way(input);
    assert_eq!(head.field_bytes("location"), Some(&b"/a\x01b\xffc\x7f"[..]));
    assert_eq!(head.field("Location"), Some("/a b\u{fffd}c "));
    assert_eq!(head.field_bytes("X-None"), None);
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let input = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                  HTTP/1.1 100 Continue\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    let outcome = read_every_way(input, false);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.heads.len(), 3);
    assert_eq!(outcome.body, b"hi");
}

#[test]
fn every_malformed_or_hostile_response_is_refused() {
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let head = |fields: &str| format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\n");
    let cases: Vec<(String, bool, Error)> = vec![
        (String::new(), true, Error::NoResponse),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n".into(),
            true,
            Error::IncompleteHead,
        ),
        (
            head("Content-Length: 5") + "hel",
            true,
            Error::ShortBody {
                expected: 5,
                received: 3,
            },
        ),
        ("Welcome!".into(), false, Error::BadStatusLine),
        (
            "\r\nHTTP/1.1 200 OK\r\n".into(),
            false,
            Error::BadStatusLine,
        ),
        ("HTTP/1.1 20 OK\r\n".into(), false, Error::BadStatusLine),
        ("HTTP/2 200 OK\r\n".into(), false, Error::BadStatusLine),
        ("HTTP/1.1 200OK\r\n".into(), false, Error::BadStatusLine),
        ("HTTP/1.1 099 Low\r\n".into(), false, Error::BadStatusLine),
        ("HTTP/1.1 600 High\r\n".into(), false, Error::BadStatusLine),
        ("HTTP/1.x 200 OK\r\n".into(), false, Error::BadStatusLine),
        (head("NoColon"), false, Error::BadField),
        (
            "HTTP/1.1 200 OK\r\n folded: before any field\r\n\r\n".into(),
            false,
            Error::BadField,
        ),
        (head("Bad Name: 1"), false, Error::BadField),
        (head(": empty name"), false, Error::BadField),
        (
            "HTTP/1.1 101 Switching Protocols\r\n\r\n".into(),
            false,
            Error::UnexpectedSwitch,
        ),
        (
            head("Content-Length: 5\r\nContent-Length: 6"),
            false,
            Error::ConflictingLength,
        ),
        (
            head("Content-Length: 5, 6"),
            false,
            Error::ConflictingLength,
        ),
        (head("Content-Length: -1"), false, Error::BadContentLength),
        (head("Content-Length:"), false, Error::BadContentLength),
        (head("Content-Length:   "), false, Error::BadContentLength),
        (head("Content-Length: ,"), false, Error::BadContentLength),
        (head("Content-Length: , ,"), false, Error::BadContentLength),
        (head("Content-Length: 5,"), false, Error::BadContentLength),
        (head("Content-Length: ,5"), false, Error::BadContentLength),
        (head("Content-Length: 5,,5"), false, Error::BadContentLength),
        (
            head("Content-Length: 5\r\nContent-Length:"),
            false,
            Error::BadContentLength,
        ),
        (
            head("Content-Length: 5\x00"),
            false,
            Error::BadContentLength,
        ),
        (head("Content-Length: 5 5"), false, Error::BadContentLength),
        (head("Content-Length: +5"), false, Error::BadContentLength),
        (head("Content-Length: 0x10"), false, Error::BadContentLength),
        (
            head("Content-Length: 99999999999999999999999"),
            false,
            Error::BadContentLength,
        ),
        (
            head("Content-Length: 5\r\nTransfer-Encoding: chunked"),
            false,
            Error::LengthWithChunked,
        ),
        (
            head("Transfer-Encoding: chunked\r\nContent-Length: 5"),
            false,
            Error::LengthWithChunked,
        ),
        (
            head("Transfer-Encoding: gzip, chunked"),
            false,
            Error::UnsupportedCoding("gzip".into()),
        ),
        (
            head("Transfer-Encoding: chunked, chunked"),
            false,
            Error::UnsupportedCoding("chunked".into()),
        ),
        (chunked.to_string() + "zz\r\n", false, Error::BadChunkSize),
        (chunked.to_string() + "\r\n", false, Error::BadChunkSize),
        (chunked.to_string() + "5x\r\n", false, Error::BadChunkSize),
        (chunked.to_string() + "-5\r\n", false, Error::BadChunkSize),
        (
            chunked.to_string() + "ffffffffffffffffff\r\n",
            false,
            Error::ChunkSizeOverflow,
        ),
        (
            chunked.to_string() + "10000000000000000\r\n",
            false,
            Error::ChunkSizeOverflow,
        ),
        (
            chunked.to_string() + "5\r\nhelloX",
            false,
            Error::BadChunkEnd,
        ),
        (
            chunked.to_string() + "5\r\nhello\r\r\n",
            false,
            Error::BadChunkEnd,
        ),
        (
            chunked.to_string() + "5\r\nhello\r\n",
            true,
            Error::IncompleteChunked,
        ),
        (
            chunked.to_string() + "5\r\nhel",
            true,
            Error::IncompleteChunked,
        ),
        (
            chunked.to_string() + "0\r\nX-Trailer: 1\r\n",
            true,
            Error::IncompleteChunked,
        ),
        (chunked.to_string() + "", true, Error::IncompleteChunked),
    ];
    for (input, eof, expected) in cases {
        assert_eq!(error_of(input.as_bytes(), eof), expected, "{input:?}");
    }
}

#[test]
fn a_chunk_size_line_over_its_limit_is_refused() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let line = |len: usize| {
        let mut input = chunked.clone();
        input.extend(b"1;".iter().chain(std::iter::repeat_n(&b'e', len - 4)));
        input.extend(b"\r\nx\r\n0\r\n\r\n");
        input
    };
    assert_eq!(body_of(&line(MAX_CHUNK_LINE), false), b"x");
    assert_eq!(
        error_of(&line(MAX_CHUNK_LINE + 1), false),
        Error::ChunkLineTooLong
    );
}

/// A header block of exactly `len` bytes, padded with one long field.
fn head_of_len(len: usize) -> Vec<u8> {
    let start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ";
    let mut head = start.to_vec();
    head.resize(len - 4, b'p');
    head.extend(b"\r\n\r\n");
    head
}

#[test]
fn the_header_block_is_bounded_at_64_kib() {
    assert_eq!(read_every_way(&head_of_len(MAX_HEAD), false).result, Ok(()));
    let too_large = head_of_len(MAX_HEAD + 1);
    assert_eq!(error_of(&too_large, false), Error::HeadTooLarge);
    let endless = vec![b'x'; 2 * MAX_HEAD];
    let mut input = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    input.extend(endless);
    assert_eq!(error_of(&input, true), Error::HeadTooLarge);
}

#[test]
fn header_fields_are_bounded_in_number() {
    let with_fields = |n: usize| {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend(b"X: 1\r\n".repeat(n));
        input.extend(b"\r\n");
        input
    };
    assert_eq!(
        read_every_way(&with_fields(MAX_FIELDS), true).result,
        Ok(())
    );
    assert_eq!(
        error_of(&with_fields(MAX_FIELDS + 1), true),
        Error::TooManyFields
    );
}

#[test]
fn trailers_are_bounded_in_size_and_number() {
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    let mut many = input.clone();
    many.extend(b"T: 1\r\n".repeat(MAX_FIELDS + 1));
    assert_eq!(error_of(&many, false), Error::TooManyFields);
    input.extend(b"T: ");
    input.extend(vec![b't'; MAX_HEAD]);
    assert_eq!(error_of(&input, false), Error::TrailerTooLarge);
}

#[test]
fn interim_responses_are_bounded_in_number() {
    let mut input = b"HTTP/1.1 103 Early Hints\r\n\r\n".repeat(MAX_INTERIM);
    let mut ok = input.clone();
    ok.extend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(read_every_way(&ok, false).result, Ok(()));
    input.extend(b"HTTP/1.1 103 Early Hints\r\n\r\n");
    assert_eq!(error_of(&input, false), Error::TooManyInterim);
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// `body` as a chunked response, in chunks of up to 700 bytes.
fn chunked(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    chunked_response(rng, body, 700)
}

#[test]
fn random_chunked_bodies_in_random_pieces_come_out_byte_exact() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..300 {
        let len = rng.below(5000);
        let body = random_bytes(&mut rng, len);
        let input = chunked(&mut rng, &body);
        let outcome = read(&rng.split(&input), false);
        assert_eq!(outcome.result, Ok(()));
        assert_eq!(outcome.body, body);
    }
}

#[test]
fn random_sized_bodies_in_random_pieces_come_out_byte_exact() {
    let mut rng = Rng::new(0xb0d7);
    for _ in 0..300 {
        let len = rng.below(5000);
        let body = random_bytes(&mut rng, len);
        let mut input = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
        input.extend(&body);
        input.extend(random_bytes(&mut rng, 10));
        let outcome = read(&rng.split(&input), false);
        assert_eq!((outcome.result, outcome.body), (Ok(()), body));
    }
}

#[test]
fn mangled_responses_never_panic_and_read_the_same_every_way() {
    let mut rng = Rng::new(0xbad);
    let seeds = [
        chunked(&mut rng, b"some body that is chunked"),
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody".to_vec(),
        b"HTTP/1.1 103 Early\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest".to_vec(),
    ];
    for _ in 0..2000 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(3) {
                0 if at < input.len() => input[at] = rng.next_u64() as u8,
                1 if at < input.len() => drop(input.remove(at)),
                _ => input.insert(at, b"\r\n:;0f 9"[rng.below(8)]),
            }
        }
        let whole = read(&[input.clone()], true);
        assert_eq!(read(&rng.split(&input), true), whole, "{input:?}");
    }
}

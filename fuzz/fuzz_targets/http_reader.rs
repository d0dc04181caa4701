//! The response reader on arbitrary bytes in arbitrary pieces: no panic, progress on every
//! call, the same outcome whole as split, and never more body than a Content-Length allows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockdemo::fetch::response::{Error, Event, ResponseReader};
use sockdemo::testing::Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    // The low bit: does the connection close after the input?
    let eof = seed & 1 == 1;
    let whole = read(&[input], eof);
    let pieces = Rng::new(u64::from(seed) + 1).split(input);
    let split: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    assert_eq!(read(&split, eof), whole);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(read(&bytes, eof), whole);
});

/// Everything a response produced: raw header blocks, the body, and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    heads: Vec<Vec<u8>>,
    body: Vec<u8>,
    result: Result<(), Error>,
}

/// Feeds `pieces` in order (then EOF when `eof`), stopping at the first error, and checks
/// the body against the final head's Content-Length.
fn read(pieces: &[&[u8]], eof: bool) -> Outcome {
    let mut reader = ResponseReader::new();
    let mut outcome = Outcome {
        heads: Vec::new(),
        body: Vec::new(),
        result: Ok(()),
    };
    let mut limit = None;
    outcome.result = (|| {
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() && !reader.is_done() {
                let (used, event) = reader.feed(rest)?;
                assert!(used > 0 || event.is_some(), "no progress");
                assert!(used <= rest.len());
                match event {
                    Some(Event::Head(head)) => {
                        assert!(outcome.body.is_empty(), "a head after body bytes");
                        // 204 and 304 have no body, whatever Content-Length says.
                        let bodyless = matches!(head.status(), 204 | 304);
                        limit = head
                            .field("Content-Length")
                            .and_then(|v| v.parse::<u64>().ok())
                            .map(|n| if bodyless { 0 } else { n });
                        outcome.heads.push(head.raw().to_vec());
                    }
                    Some(Event::Body(bytes)) => {
                        assert!(!bytes.is_empty(), "an empty body event");
                        assert!(!outcome.heads.is_empty(), "body before a head");
                        outcome.body.extend_from_slice(bytes);
                    }
                    None => {}
                }
                if let Some(limit) = limit {
                    assert!(
                        outcome.body.len() as u64 <= limit,
                        "body over Content-Length"
                    );
                }
                rest = &rest[used..];
            }
        }
        if eof {
            reader.finish()?;
        }
        Ok(())
    })();
    if let (Ok(()), true, Some(limit)) = (&outcome.result, eof, limit) {
        assert_eq!(outcome.body.len() as u64, limit, "complete but short");
    }
    outcome
}

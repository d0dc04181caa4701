//! The PROXY protocol parser on arbitrary bytes in arbitrary pieces: no panic, the same
//! outcome (header, where the header ends, or error) however the input is split, and never
//! undecided once the input is as long as the longest header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockdemo::hello::proxy::{Error, Header, Parser, Status, MAX_LEN};
use sockdemo::testing::Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let mut rng = Rng::new(u64::from(seed) + 1);
    let pieces = rng.split(input);

    let whole = feed(&[input]);
    let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    assert_eq!(feed(&refs), whole);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(&bytes), whole);

    if input.len() >= MAX_LEN {
        assert!(whole.is_some(), "undecided after {} bytes", input.len());
    }
    if let Some(Ok((_, end))) = whole {
        assert!(end > 0 && end <= input.len().min(MAX_LEN));
    }
});

/// The outcome and, when complete, where the header ends counted from the start; `None`
/// while undecided.
fn feed(pieces: &[&[u8]]) -> Option<Result<(Header, usize), Error>> {
    let mut parser = Parser::new();
    let mut offset = 0;
    for piece in pieces {
        match parser.feed(piece) {
            Ok(Status::Partial) => offset += piece.len(),
            Ok(Status::Complete { header, consumed }) => {
                assert!(consumed <= piece.len());
                return Some(Ok((header, offset + consumed)));
            }
            Err(err) => {
                let _ = err.to_string();
                return Some(Err(err));
            }
        }
    }
    None
}

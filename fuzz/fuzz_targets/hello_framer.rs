//! The Hello framer on arbitrary bytes in arbitrary pieces: no panic, replies bounded by
//! the input, and in line mode the same replies however the input is split.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockdemo::hello::protocol::{line_too_long, End, Framer};
use sockdemo::testing::Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let mut rng = Rng::new(u64::from(seed) + 1);
    let pieces = rng.split(input);

    // Line mode from the start, so that the pieces must not matter.
    let whole = feed(&[b"start\n".as_slice(), input]);
    let mut split: Vec<&[u8]> = vec![b"start\n"];
    split.extend(pieces.iter().map(Vec::as_slice));
    assert_eq!(feed(&split), whole);

    // Raw mode as the pieces come: no panic, and output bounded by what came in.
    let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let (out, _) = feed(&refs);
    assert!(out.len() <= 10 * input.len() + line_too_long().len() + 10 * refs.len());
});

/// Every reply byte and how the conversation ended.
fn feed(pieces: &[&[u8]]) -> (Vec<u8>, Option<End>) {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for piece in pieces {
        let outcome = framer.push(piece, &mut out);
        if outcome.end.is_some() {
            return (out, outcome.end);
        }
    }
    (out, None)
}

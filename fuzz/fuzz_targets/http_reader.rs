//! The response reader on arbitrary bytes in arbitrary pieces: no panic, progress on every
//! call, the same outcome whole as split, and never more body than a Content-Length allows
//! (the checks are the shared harness's, `sockdemo::testing::read_response`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockdemo::testing::{read_every_way, Rng};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    // The low bit: does the connection close after the input?
    let eof = seed & 1 == 1;
    read_every_way(input, eof, &mut Rng::new(u64::from(seed) + 1), 1);
});

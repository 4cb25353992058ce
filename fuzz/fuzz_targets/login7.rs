//! The emulator's LOGIN7 parser (FeatureExt and FEDAUTH included) on arbitrary bytes. The first byte's low
//! bit says whether the server sent a nonce; the rest is the payload. Errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mssql_entra_emulator::sql::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, payload)) = data.split_first() else {
        return;
    };
    let _ = fuzzing::login7(payload, flags & 1 == 1);
    // The seeds are whole messages without the flag byte: parse them as they are too.
    let _ = fuzzing::login7(data, false);
});

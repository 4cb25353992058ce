//! The emulator's parser of the 0x08 FEDAUTH token message on arbitrary bytes: no panic, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mssql_entra_emulator::sql::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::fedauth_token(data);
});

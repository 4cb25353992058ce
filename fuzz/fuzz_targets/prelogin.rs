//! The emulator's PRELOGIN parser on arbitrary bytes, and the TDS packet header / ALL_HEADERS reader on the
//! same bytes: errors are fine, panics and hangs are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mssql_entra_emulator::sql::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::prelogin(data);
    let _ = fuzzing::packet_header_and_all_headers(data);
});

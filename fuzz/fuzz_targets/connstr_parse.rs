//! `ConnectionString::parse` on arbitrary text: no panic, and whatever parses survives a round trip through
//! `to_odbc_string` with the same pairs (the escaping we write is the escaping we read). The accessors that
//! interpret values (`authentication`, `encrypt`, `trusted_connection`) must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mssql_entra_connstr::ConnectionString;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cs) = ConnectionString::parse(text) else {
        return;
    };
    let _ = cs.authentication();
    let _ = cs.encrypt();
    let _ = cs.trusted_connection();
    let _ = cs.to_string();
    let written = cs.to_odbc_string();
    let again = ConnectionString::parse(&written)
        .unwrap_or_else(|e| panic!("our own output does not parse again: {e}"));
    let pairs = |cs: &ConnectionString| {
        cs.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&cs), pairs(&again), "round trip changed the pairs");
});

//! Entry points for the fuzz targets in `fuzz/` (`cargo xtask fuzz`): the parsers of client bytes, which are
//! otherwise private to the SQL endpoint. Not API: hidden from the docs and free to change with the parsers.
//!
//! Each function feeds arbitrary bytes to one parser and returns whether they parsed; the fuzzers look for
//! panics, hangs and runaway allocations, never for a particular answer. Nothing here logs or returns what
//! was parsed (a LOGIN7 may hold a token).

/// A PRELOGIN payload (the client's option table).
pub fn prelogin(payload: &[u8]) -> bool {
    super::prelogin::parse(payload).is_ok()
}

/// A LOGIN7 payload; `server_sent_nonce` is whether the server's PRELOGIN carried a nonce.
pub fn login7(payload: &[u8], server_sent_nonce: bool) -> bool {
    super::login7::parse(payload, server_sent_nonce).is_ok()
}

/// The 0x08 FEDAUTH token message of the driver's own workflows.
pub fn fedauth_token(payload: &[u8]) -> bool {
    super::login7::parse_fedauth_token(payload).is_ok()
}

/// An 8-byte TDS packet header followed by the ALL_HEADERS block of a SQL batch.
pub fn packet_header_and_all_headers(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..8) else {
        return false;
    };
    let mut h = [0u8; 8];
    h.copy_from_slice(header);
    let header_ok = super::proto::PacketHeader::parse(&h).is_ok();
    let headers_ok = super::proto::skip_all_headers(&bytes[8..]).is_ok();
    header_ok && headers_ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_points_reject_empty_input() {
        assert!(!super::prelogin(&[]));
        assert!(!super::login7(&[], false));
        assert!(!super::fedauth_token(&[]));
        assert!(!super::packet_header_and_all_headers(&[]));
    }
}

//! Property tests: the parsers of client bytes never panic, whatever they are fed, and valid messages survive
//! arbitrary corruption without panics either.

use proptest::prelude::*;

use super::login7::tests::{build_login7, security_token_feature};
use super::{batch, login7, prelogin, proto};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn prelogin_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = prelogin::parse(&bytes);
    }

    #[test]
    fn login7_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), nonce in any::<bool>()) {
        let _ = login7::parse(&bytes, nonce);
    }

    #[test]
    fn fedauth_token_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = login7::parse_fedauth_token(&bytes);
    }

    /// A real-shaped LOGIN7 with bytes overwritten at random places: parse errors are fine, panics are not.
    #[test]
    fn corrupted_login7_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut msg = build_login7("appdb", &[(0x10, vec![1, 0, 2, 0]), security_token_feature("eyJhbGciOi.x.y", true)]);
        for (at, b) in edits {
            let i = at.index(msg.len());
            msg[i] = b;
        }
        let len = cut.index(msg.len() + 1);
        let _ = login7::parse(&msg[..len], false);
        let _ = login7::parse(&msg, true);
    }

    #[test]
    fn packet_header_and_all_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 8..64)) {
        let mut h = [0u8; 8];
        h.copy_from_slice(&bytes[..8]);
        let _ = proto::PacketHeader::parse(&h);
        let _ = proto::skip_all_headers(&bytes);
    }

    #[test]
    fn batch_parser_never_panics(text in "\\PC{0,80}") {
        let _ = batch::parse(&text);
    }

    #[test]
    fn batch_parser_never_panics_on_sql_like_text(
        text in "(SELECT|CREATE|USER|\\[|\\]|\\]\\]|'|N'|0x[0-9a-fA-F]{0,5}|--|/\\*|\\*/|;|,|\\(|\\)|=|@@|[a-z_]{1,6}|[0-9]{1,12}| |\n){0,24}"
    ) {
        let _ = batch::parse(&text);
    }
}

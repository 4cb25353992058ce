//! Property tests: round trips, no injection, no panics.

use mssql_entra_connstr::{escape_value, ConnectionString, ValidateOptions};
use proptest::prelude::*;

/// Keywords: the interesting known ones and synonyms, and arbitrary well-formed ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Server",
            "Address",
            "Addr",
            "UID",
            "User ID",
            "PWD",
            "Password",
            "Database",
            "Initial Catalog",
            "Trusted_Connection",
            "Integrated Security",
            "Driver",
            "Authentication",
            "Encrypt",
            "AccessToken",
            "KeyStoreSecret",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z_][A-Za-z0-9_ .-]{0,10}[A-Za-z0-9_]",
        "[A-Za-z]",
    ]
}

/// Values: arbitrary unicode (control characters and NUL included) and values made of the
/// characters that matter to the grammar.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{};= +\ta-zA-Z]{0,24}",
        prop::sample::select(vec![
            "x;Authentication=ActiveDirectoryPassword",
            "{weird",
            "{weird}",
            "p};Authentication=ActiveDirectoryMsi;X={",
            "}}}",
            "",
            " ",
        ])
        .prop_map(str::to_owned),
    ]
}

fn build(pairs: &[(String, String)]) -> ConnectionString {
    let mut cs = ConnectionString::new();
    for (k, v) in pairs {
        cs.set(k, v.clone());
    }
    cs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_then_parse_is_unchanged(pairs in prop::collection::vec((key(), value()), 0..8)) {
        let cs = build(&pairs);
        let text = cs.to_odbc_string();
        let back = ConnectionString::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&cs), "text: {:?}", text);
        let back = back.unwrap();
        prop_assert!(back.iter().eq(cs.iter()));
        // Every value set is the value read back, through any synonym.
        for (k, _) in &pairs {
            prop_assert_eq!(back.get(k), cs.get(k));
        }
    }

    #[test]
    fn no_value_changes_the_set_of_keys(pairs in prop::collection::vec((key(), value()), 1..8)) {
        let cs = build(&pairs);
        let keys: Vec<&str> = cs.iter().map(|(k, _)| k).collect();
        for text in [cs.to_odbc_string(), cs.to_string()] {
            let back = ConnectionString::parse(&text).unwrap();
            let back_keys: Vec<&str> = back.iter().map(|(k, _)| k).collect();
            prop_assert_eq!(&back_keys, &keys);
        }
    }

    #[test]
    fn escape_value_round_trips(v in value()) {
        let text = format!("K={};Next=1", escape_value(&v));
        let cs = ConnectionString::parse(&text).unwrap();
        prop_assert_eq!(cs.get("K"), Some(v.as_str()));
        prop_assert_eq!(cs.get("Next"), Some("1"));
        prop_assert_eq!(cs.len(), 2);
    }

    #[test]
    fn parse_never_panics_on_unicode(s in any::<String>()) {
        check_parse(&s)?;
    }

    #[test]
    fn parse_never_panics_on_grammar_soup(s in "[{};= \ta-cé日\u{0}]{0,40}") {
        check_parse(&s)?;
    }

    #[test]
    fn secrets_never_displayed(secret in "[A-Za-z0-9]{6,20}", key in prop::sample::select(vec!["PWD", "Password", "AccessToken", "ClientSecret", "KeyStoreSecret"])) {
        let mut cs = ConnectionString::parse("Server=s;UID=app").unwrap();
        cs.set(key, secret.clone());
        prop_assert!(!cs.to_string().contains(&secret));
        let debug = format!("{:?}", cs);
        prop_assert!(!debug.contains(&secret));
    }
}

/// Whatever parses, re-parses to itself from its own output, and validates without panicking.
fn check_parse(s: &str) -> Result<(), TestCaseError> {
    if let Ok(cs) = ConnectionString::parse(s) {
        let again = ConnectionString::parse(&cs.to_odbc_string());
        prop_assert_eq!(again, Ok(cs.clone()));
        for access_token in [false, true] {
            let _ = cs.validate(&ValidateOptions {
                access_token,
                ..Default::default()
            });
        }
        let _ = format!("{cs} {cs:?}");
    }
    Ok(())
}

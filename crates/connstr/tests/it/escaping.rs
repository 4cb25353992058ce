//! Escaping: every rule, the measured driver readings (driver-facts Q5), and injection.

use mssql_entra_connstr::{escape_value, ConnectionString};

fn written(key: &str, value: &str) -> String {
    let mut cs = ConnectionString::new();
    cs.set(key, value);
    cs.to_odbc_string()
}

#[test]
fn each_rule_braces_and_round_trips() {
    for (value, want) in [
        ("plain", "Database=plain"),
        ("with space inside", "Database=with space inside"),
        ("a;b", "Database={a;b}"),
        ("a}b", "Database={a}}b}"),
        ("a{b", "Database={a{b}"),
        ("{weird", "Database={{weird}"),
        ("{weird}", "Database={{weird}}}"),
        ("a=b", "Database={a=b}"),
        (" lead", "Database={ lead}"),
        ("trail ", "Database={trail }"),
        ("\ttab", "Database={\ttab}"),
        ("a+b", "Database={a+b}"),
        ("", "Database="),
        ("données-日本", "Database=données-日本"),
    ] {
        assert_eq!(written("Database", value), want, "{value:?}");
        let back = ConnectionString::parse(want).unwrap();
        assert_eq!(back.get("Database"), Some(value), "{want}");
    }
}

#[test]
fn pwd_is_always_braced() {
    assert_eq!(written("PWD", "plain"), "PWD={plain}");
    assert_eq!(written("Password", ""), "PWD={}");
    assert_eq!(written("PWD", "}}}"), "PWD={}}}}}}}");
    assert_eq!(written("PWD", "{"), "PWD={{}");
    assert_eq!(written("AccessToken", "eyJ"), "AccessToken={eyJ}");
}

#[test]
fn a_database_name_cannot_inject_a_keyword() {
    let evil = "x;Authentication=ActiveDirectoryPassword";
    let mut cs = ConnectionString::parse("Server=s").unwrap();
    cs.set("Database", evil);
    let text = cs.to_odbc_string();
    assert_eq!(
        text,
        "Server=s;Database={x;Authentication=ActiveDirectoryPassword}"
    );
    let back = ConnectionString::parse(&text).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back.get("Authentication"), None);
    assert_eq!(back.get("Database"), Some(evil));
}

#[test]
fn brace_closing_injection_is_neutralised() {
    // A value that tries to close the braces early and start a keyword.
    let evil = "p};Authentication=ActiveDirectoryMsi;X={";
    let text = written("PWD", evil);
    assert_eq!(text, "PWD={p}};Authentication=ActiveDirectoryMsi;X={}");
    let back = ConnectionString::parse(&text).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back.get("PWD"), Some(evil));
}

#[test]
fn where_odbc_api_differs() {
    // odbc-api 29 leaves these unbraced (no `;` or `+`), and the driver reads an unbraced
    // value that starts with `{` as a braced one (driver-facts Q5).
    for value in ["{weird", "{weird}", "{a}}b", "{"] {
        assert!(escape_value(value).starts_with('{'), "{value}");
        let text = format!("Database={};Server=s", escape_value(value));
        let back = ConnectionString::parse(&text).unwrap();
        assert_eq!(back.get("Database"), Some(value));
        assert_eq!(back.get("Server"), Some("s"));
    }
}

#[test]
fn text_the_driver_would_misread_is_refused() {
    use mssql_entra_connstr::Error;
    // Each of these was measured with driver 18.6: it silently dropped or swallowed a keyword.
    for (text, want) in [
        (
            "PWD={weird;Database=db",
            Error::UnterminatedBrace {
                key: "PWD".into(),
                position: 4,
            },
        ),
        (
            "PWD={abc} ;Database=db",
            Error::TextAfterBrace {
                key: "PWD".into(),
                position: 9,
            },
        ),
        (
            "PWD ={abc};Database=db",
            Error::SpaceBeforeEquals {
                key: "PWD".into(),
                position: 4,
            },
        ),
        (
            "Database=a;PWD={p};Database=b",
            Error::DuplicateKey {
                first: "Database".into(),
                second: "Database".into(),
                position: 19,
            },
        ),
    ] {
        assert_eq!(ConnectionString::parse(text), Err(want), "{text}");
    }
    // Leading white space before a keyword is trimmed by the driver, and by us.
    let cs = ConnectionString::parse("UID=u; PWD={abc};\tDatabase=db").unwrap();
    assert_eq!(cs.to_odbc_string(), "UID=u;PWD={abc};Database=db");
}

//! Public types are thread-safe and behave as ordinary values.

use mssql_entra_connstr::{
    Authentication, ConnectionString, ConnectionStringBuilder, DangerOptions, Encrypt, Error,
    TargetOs, ValidateOptions,
};

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<ConnectionString>();
    assert_send_sync::<ConnectionStringBuilder>();
    assert_send_sync::<Authentication>();
    assert_send_sync::<Encrypt>();
    assert_send_sync::<Error>();
    assert_send_sync::<ValidateOptions>();
    assert_send_sync::<DangerOptions>();
    assert_send_sync::<TargetOs>();
}

#[test]
fn keys_are_case_insensitive_and_synonyms_fold() {
    let cs = ConnectionString::parse(
        "Addr=tcp:h,1433;User ID=u;Password={p};Initial Catalog=db;Integrated Security=no",
    )
    .unwrap();
    for (key, want) in [
        ("server", "tcp:h,1433"),
        ("ADDRESS", "tcp:h,1433"),
        ("uid", "u"),
        ("user id", "u"),
        ("pwd", "p"),
        ("DATABASE", "db"),
        ("trusted_connection", "no"),
    ] {
        assert_eq!(cs.get(key), Some(want), "{key}");
    }
    assert_eq!(
        cs.to_odbc_string(),
        "Server=tcp:h,1433;UID=u;PWD={p};Database=db;Trusted_Connection=no"
    );
    let keys: Vec<_> = cs.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["Server", "UID", "PWD", "Database", "Trusted_Connection"]
    );
}

#[test]
fn unknown_keys_keep_their_spelling_and_order() {
    let mut cs: ConnectionString = "Zeta=1;alpha=2".parse().unwrap();
    cs.set("ALPHA", "3").set("Mid", "4");
    let pairs: Vec<_> = (&cs).into_iter().collect();
    assert_eq!(pairs, [("Zeta", "1"), ("alpha", "3"), ("Mid", "4")]);
    assert_eq!(cs.remove("zeta").as_deref(), Some("1"));
    assert_eq!(cs.to_odbc_string(), "alpha=3;Mid=4");
}

#[test]
fn empty_input_is_an_empty_string() {
    for text in ["", ";", " ; ;; "] {
        let cs = ConnectionString::parse(text).unwrap();
        assert!(cs.is_empty(), "{text:?}");
        assert_eq!(cs.to_odbc_string(), "");
    }
}

#[test]
fn try_set_reports_bad_keywords() {
    let mut cs = ConnectionString::new();
    assert_eq!(
        cs.try_set("", "x").unwrap_err(),
        Error::EmptyKey { position: 0 }
    );
    assert_eq!(
        cs.try_set("a=b", "x").unwrap_err(),
        Error::InvalidKeyChar {
            position: 1,
            character: '='
        }
    );
    assert_eq!(
        cs.try_set("Database;Authentication", "x").unwrap_err(),
        Error::InvalidKeyChar {
            position: 8,
            character: ';'
        }
    );
    assert!(cs.is_empty());
}

#[test]
fn accessors_read_typed_values() {
    let cs = ConnectionString::parse(
        "Authentication=activedirectorymsi;Encrypt=Strict;Trusted_Connection=SSPI",
    )
    .unwrap();
    assert_eq!(cs.authentication(), Ok(Some(Authentication::Msi)));
    assert_eq!(cs.encrypt(), Ok(Encrypt::Strict));
    assert_eq!(cs.trusted_connection(), Ok(true));
    let empty = ConnectionString::parse("Authentication=").unwrap();
    assert_eq!(empty.authentication(), Ok(None));
    let bad = ConnectionString::parse("Authentication=MSI;Trusted_Connection=maybe").unwrap();
    assert_eq!(
        bad.authentication(),
        Err(Error::UnknownAuthentication {
            value: "MSI".into()
        })
    );
    assert_eq!(
        bad.trusted_connection(),
        Err(Error::InvalidBoolean {
            key: "Trusted_Connection".into(),
            value: "maybe".into()
        })
    );
}

#[test]
fn error_messages_are_one_level_without_trailing_period() {
    let samples = [
        ConnectionString::parse("a").unwrap_err(),
        ConnectionString::parse("PWD={x").unwrap_err(),
        ConnectionStringBuilder::new("h")
            .extra_params("x")
            .build()
            .unwrap_err(),
        ConnectionString::parse("Encrypt=no;Authentication=ActiveDirectoryMsi")
            .unwrap()
            .validate(&ValidateOptions::default())
            .unwrap_err(),
    ];
    for e in samples {
        let text = e.to_string();
        assert!(!text.ends_with('.'), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

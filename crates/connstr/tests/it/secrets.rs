//! Secrets never appear in Display, Debug or any error.

use mssql_entra_connstr::{ConnectionString, ConnectionStringBuilder, TargetOs, ValidateOptions};

const SECRET: &str = "Sup3r$ecret-pw";

/// Display, Debug and the whole source chain of an error.
fn all_text(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e} {e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    text
}

#[test]
fn parse_errors_never_contain_the_password() {
    for input in [
        format!("UID=u;PWD={{{SECRET}"),
        format!("UID=u;PWD={{{SECRET}}}x"),
        format!("UID=u;{SECRET}"),
        format!("UID=u;PWD={SECRET};Password={SECRET}"),
        format!("PWD={SECRET};=x"),
        format!("PWD={SECRET};a{{b=c"),
        SECRET.to_owned(),
        format!("{SECRET}}}=1"),
    ] {
        let err = ConnectionString::parse(&input).unwrap_err();
        let text = all_text(&err);
        assert!(!text.contains(SECRET), "{input:?} -> {text}");
        assert!(!text.contains("Sup3r"), "{input:?} -> {text}");
    }
}

#[test]
fn validation_errors_never_contain_the_password() {
    let token = ValidateOptions {
        access_token: true,
        target_os: TargetOs::NotWindows,
        ..Default::default()
    };
    let plain = ValidateOptions {
        target_os: TargetOs::NotWindows,
        ..Default::default()
    };
    for (input, options) in [
        (format!("PWD={SECRET}"), token),
        (format!("UID={SECRET}"), token),
        (
            format!("Authentication=ActiveDirectoryMsi;PWD={SECRET}"),
            plain,
        ),
        (
            format!("Authentication=ActiveDirectoryIntegrated;UID=u;PWD={SECRET}"),
            plain,
        ),
        (
            format!("Authentication=ActiveDirectoryServicePrincipal;PWD={SECRET}"),
            plain,
        ),
        (
            format!("Authentication=ActiveDirectoryPassword;UID=u;PWD={SECRET};Encrypt=no"),
            plain,
        ),
        (
            format!("Authentication=ActiveDirectoryInteractive;UID=u;PWD={SECRET}"),
            plain,
        ),
        (
            format!("Authentication=ActiveDirectoryDefault;PWD={SECRET}"),
            plain,
        ),
        (format!("PWD={SECRET}\0;Server=s"), plain),
        (format!("AccessToken={SECRET};Encrypt=maybe"), plain),
        (
            format!("ClientSecret={SECRET};Trusted_Connection=perhaps"),
            plain,
        ),
    ] {
        let cs = ConnectionString::parse(&input).unwrap();
        let err = cs.validate(&options).unwrap_err();
        let text = all_text(&err);
        assert!(!text.contains(SECRET), "{input:?} -> {text}");
    }
}

#[test]
fn builder_errors_never_contain_the_password() {
    for builder in [
        ConnectionStringBuilder::new("h")
            .pwd(SECRET)
            .extra_params("PWD=other"),
        ConnectionStringBuilder::new("h")
            .pwd("other")
            .extra_params(format!("Password={SECRET}")),
        ConnectionStringBuilder::new("h").extra_params(format!("PWD={{{SECRET}")),
        ConnectionStringBuilder::new("").pwd(SECRET),
    ] {
        let err = builder.build().unwrap_err();
        let text = all_text(&err);
        assert!(!text.contains(SECRET), "{text}");
        assert!(!format!("{builder:?}").contains(SECRET));
    }
}

#[test]
fn display_and_debug_mask_secrets() {
    let mut cs = ConnectionString::parse("Server=s;UID=app").unwrap();
    cs.set("Password", SECRET)
        .set("AccessToken", SECRET)
        .set("KeyStoreSecret", SECRET)
        .set("ClientKey", format!("file:/k.pem,{SECRET}"));
    let shown = format!("{cs} | {cs:?} | {cs:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(
        cs.to_string(),
        "Server=s;UID=app;PWD=***;AccessToken=***;KeyStoreSecret=***;ClientKey=***"
    );
    assert_eq!(
        format!("{cs:?}"),
        "ConnectionString(\"Server=s;UID=app;PWD=***;AccessToken=***;KeyStoreSecret=***;ClientKey=***\")"
    );
    // The driver text does carry it.
    assert!(cs.to_odbc_string().contains(&format!("PWD={{{SECRET}}}")));
}

//! Impossible combinations: each is an error naming the key, with a fix.

use mssql_entra::lower::connstr::Error as CsError;
use mssql_entra::Error;

use crate::support::{invalid_key, jwt, opts, toml, toml_err};

#[test]
fn impossible_combinations_name_the_key_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        // TOKEN meets USER / PASSWORD / Authentication.
        ("HOST = \"h\"\nUSER = \"u\"\nTOKEN = \"t.t.t\"", "USER"),
        ("HOST = \"h\"\nPASSWORD = \"p\"\nTOKEN = \"t.t.t\"", "PASSWORD"),
        ("HOST = \"h\"\nPASSWORD_ENV = \"P\"\nTOKEN = { source = \"managed-identity\" }", "PASSWORD"),
        ("HOST = \"h\"\nUSER = \"u\"\nTOKEN_ENV = \"T\"", "USER"),
        ("HOST = \"h\"\nTOKEN = \"t.t.t\"\nTOKEN_ENV = \"T\"", "TOKEN_ENV"),
        ("HOST = \"h\"\nTOKEN = { source = \"default\" }\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryMsi\" }", "OPTIONS.extra_params"),
        ("HOST = \"h\"\nTOKEN = \"\"", "TOKEN"),
        // One secret given two ways.
        ("HOST = \"h\"\nUSER = \"u\"\nPASSWORD = \"p\"\nPASSWORD_ENV = \"P\"", "PASSWORD"),
        // Authentication= modes and USER / PASSWORD.
        ("HOST = \"h\"\nPASSWORD = \"p\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryServicePrincipal\" }", "USER"),
        ("HOST = \"h\"\nUSER = \"app\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryServicePrincipal\" }", "PASSWORD"),
        ("HOST = \"h\"\nUSER = \"u@x\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryPassword\" }", "PASSWORD"),
        ("HOST = \"h\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryInteractive\" }", "USER"),
        ("HOST = \"h\"\nUSER = \"u@x\"\nPASSWORD = \"p\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryInteractive\" }", "PASSWORD"),
        ("HOST = \"h\"\nUSER = \"u\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryIntegrated\" }", "USER"),
        ("HOST = \"h\"\nUSER = \"u\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryDefault\" }", "USER"),
        ("HOST = \"h\"\nPASSWORD = \"p\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryMsi\" }", "PASSWORD"),
        ("HOST = \"h\"\nPASSWORD = \"p\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryManagedIdentity\" }", "PASSWORD"),
        ("HOST = \"h\"\nUSER = \"sa\"\nOPTIONS = { extra_params = \"Authentication=SqlPassword\" }", "PASSWORD"),
        // Server named zero or two times.
        ("NAME = \"db\"", "HOST"),
        ("HOST = \"h\"\nOPTIONS = { dsn = \"prod\" }", "OPTIONS.dsn"),
        ("PORT = 1433\nOPTIONS = { dsn = \"prod\" }", "PORT"),
        ("OPTIONS = { dsn = \"prod\", driver = \"ODBC Driver 18 for SQL Server\" }", "OPTIONS.driver"),
        // TOKEN tables.
        ("HOST = \"h\"\nTOKEN = { source = \"client-secret\", client_id = \"c\", client_secret_env = \"S\" }", "TOKEN.tenant_id"),
        ("HOST = \"h\"\nTOKEN = { source = \"client-secret\", tenant_id = \"t\", client_secret_env = \"S\" }", "TOKEN.client_id"),
        ("HOST = \"h\"\nTOKEN = { source = \"client-secret\", tenant_id = \"t\", client_id = \"c\" }", "TOKEN.client_secret_env"),
        ("HOST = \"h\"\nTOKEN = { source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret = \"s\", client_secret_env = \"S\" }", "TOKEN.client_secret"),
        ("HOST = \"h\"\nTOKEN = { source = \"managed-identity\", client_id = \"a\", object_id = \"b\" }", "TOKEN.client_id"),
        ("HOST = \"h\"\nTOKEN = { source = \"managed-identity\", tenant_id = \"t\" }", "TOKEN.tenant_id"),
        ("HOST = \"h\"\nTOKEN = { source = \"managed-identity\", client_secret_env = \"S\" }", "TOKEN.client_secret_env"),
        ("HOST = \"h\"\nTOKEN = { source = \"client-certificate\", tenant_id = \"t\", client_id = \"c\" }", "TOKEN.certificate_file"),
        ("HOST = \"h\"\nTOKEN = { source = \"device-code\", tenant_id = \"t\" }", "TOKEN.client_id"),
        ("HOST = \"h\"\nTOKEN = { source = \"developer-tools\", authority_host = \"https://login.microsoftonline.com\" }", "TOKEN.authority_host"),
        ("HOST = \"h\"\nTOKEN = { source = \"default\", authority_host = \"http://login.example\" }", "TOKEN.authority_host"),
        ("HOST = \"h\"\nTOKEN = { source = \"default\", scope = \"a b\" }", "TOKEN.scope"),
        // Pool sizes.
        ("HOST = \"h\"\nOPTIONS = { pool = { max_size = 0 } }", "OPTIONS.pool.max_size"),
        ("HOST = \"h\"\nOPTIONS = { pool = { max_size = 2, min_idle = 3 } }", "OPTIONS.pool.min_idle"),
    ];
    for (text, key) in cases {
        let e = toml_err(text);
        assert_eq!(invalid_key(&e), *key, "{text}\n{e}");
        let message = e.to_string();
        assert!(
            ["remove", "add", "give", "set", "use", "lower", "must", "has no"]
                .iter()
                .any(|fix| message.contains(fix)),
            "no fix in: {message}"
        );
    }
}

/// Settings text, and the connection-string error it must produce.
type Case = (String, fn(&CsError) -> bool);

/// What only the connection string can tell: conflicts with extra_params, UID/PWD/Encrypt=no
/// beside a token. Checked by resolution, before any I/O.
#[test]
fn connection_string_conflicts_surface_at_resolution() {
    let token = jwt();
    #[allow(unused_mut)]
    let mut cases: Vec<Case> = vec![
        (
            "HOST = \"h\"\nNAME = \"a\"\nOPTIONS = { extra_params = \"Database=b\" }".to_owned(),
            |e| matches!(e, CsError::ConflictingKey { .. }),
        ),
        (
            format!("HOST = \"h\"\nTOKEN = \"{token}\"\nOPTIONS = {{ extra_params = \"UID=someone\" }}"),
            |e| matches!(e, CsError::AccessTokenWithUid),
        ),
        (
            format!("HOST = \"h\"\nTOKEN = \"{token}\"\nOPTIONS = {{ extra_params = \"PWD=x\" }}"),
            |e| matches!(e, CsError::AccessTokenWithPwd),
        ),
        (
            format!("HOST = \"h\"\nTOKEN = \"{token}\"\nOPTIONS = {{ extra_params = \"Encrypt=no\" }}"),
            |e| matches!(e, CsError::UnencryptedToken { .. }),
        ),
        (
            "HOST = \"h\"\nUSER = \"sa\"\nPASSWORD = \"p\"\nOPTIONS = { extra_params = \"Trusted_Connection=yes;Authentication=SqlPassword\" }".to_owned(),
            |e| matches!(e, CsError::AuthenticationWithTrustedConnection { .. }),
        ),
        (
            "HOST = \"bad host\"".to_owned(),
            |e| matches!(e, CsError::InvalidHost { .. }),
        ),
    ];
    #[cfg(feature = "managed-identity")]
    cases.push((
        "HOST = \"h\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryMsi;Encrypt=no\" }".to_owned(),
        |e| matches!(e, CsError::UnencryptedToken { .. }),
    ));
    #[cfg(not(feature = "access-token"))]
    cases.retain(|(text, _)| !text.contains("TOKEN"));
    for (text, expected) in cases {
        let settings = toml(&text);
        match settings.resolve_with(&opts(&[])) {
            Err(Error::ConnectionString(e)) => assert!(expected(&e), "{text}: {e:?}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // Unparsable extra_params are caught when the settings are read.
    match mssql_entra::Settings::from_toml_str(
        "HOST = \"h\"\nOPTIONS = { extra_params = \"novalue\" }",
    ) {
        Err(Error::ConnectionString(CsError::ExtraParams(_))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn danger_allow_unencrypted_token_lets_encrypt_no_through() {
    let token = jwt();
    let s = toml(&format!(
        "HOST = \"h\"\nTOKEN = \"{token}\"\nOPTIONS = {{ extra_params = \"Encrypt=no\", danger_allow_unencrypted_token = true }}"
    ));
    #[cfg(feature = "access-token")]
    {
        let plan = s.resolve_with(&opts(&[])).unwrap();
        assert!(plan.connection_string().to_string().contains("Encrypt=no"));
        assert!(plan.connector_options().danger.allow_unencrypted_token);
    }
    #[cfg(not(feature = "access-token"))]
    assert!(matches!(
        s.resolve_with(&opts(&[])),
        Err(Error::AuthModeNotEnabled {
            feature: "access-token",
            ..
        })
    ));
}

#[test]
fn missing_environment_variables_are_named() {
    let s = toml("HOST = \"h\"\nUSER = \"sa\"\nPASSWORD_ENV = \"NOT_SET_ANYWHERE\"");
    match s.resolve_with(&opts(&[])) {
        Err(Error::MissingEnv { key, var }) => {
            assert_eq!(key, "PASSWORD_ENV");
            assert_eq!(var, "NOT_SET_ANYWHERE");
        }
        other => panic!("{other:?}"),
    }
    let s = toml("HOST = \"h\"\nTOKEN_ENV = \"NO_TOKEN_HERE\"");
    assert!(matches!(
        s.resolve_with(&opts(&[("NO_TOKEN_HERE", " ")])),
        Err(Error::MissingEnv { .. })
    ));
}

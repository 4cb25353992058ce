//! Reading settings: TOML, the Django JSON dict as is, and environment variables.

use std::time::Duration;

use mssql_entra::{Error, Settings, SourceKind, TokenSetting};

use crate::support::{invalid_key, toml};

#[test]
fn toml_with_every_option() {
    let s = toml(
        r#"
        NAME = "app"
        HOST = "myserver.database.windows.net"
        PORT = 1433
        TOKEN = { source = "client-secret", tenant_id = "contoso.onmicrosoft.com", client_id = "11111111-1111-4111-8111-111111111111", client_secret_env = "APP_SECRET", authority_host = "https://login.microsoftonline.com", ca_file = "/etc/ca.pem", scope = "https://database.windows.net/.default" }

        [OPTIONS]
        driver = "ODBC Driver 18 for SQL Server"
        extra_params = "MultiSubnetFailover=yes"
        login_timeout = 7.5
        danger_allow_unencrypted_token = false
        danger_trust_server_certificate = true

        [OPTIONS.pool]
        max_size = 4
        min_idle = 1
        max_lifetime = 900
        idle_timeout = "60"
        connection_timeout = 5
        "#,
    );
    assert_eq!(s.name.as_deref(), Some("app"));
    assert_eq!(s.host.as_deref(), Some("myserver.database.windows.net"));
    assert_eq!(s.port, Some(1433));
    let o = &s.options;
    assert_eq!(o.driver.as_deref(), Some("ODBC Driver 18 for SQL Server"));
    assert_eq!(o.extra_params.as_deref(), Some("MultiSubnetFailover=yes"));
    assert_eq!(o.login_timeout, Some(Duration::from_millis(7500)));
    assert!(o.danger_trust_server_certificate);
    assert!(!o.danger_allow_unencrypted_token);
    assert_eq!(o.pool.max_size, Some(4));
    assert_eq!(o.pool.min_idle, Some(1));
    assert_eq!(o.pool.max_lifetime, Some(Duration::from_secs(900)));
    assert_eq!(o.pool.idle_timeout, Some(Duration::from_secs(60)));
    assert_eq!(o.pool.connection_timeout, Some(Duration::from_secs(5)));
    match &s.token {
        Some(TokenSetting::Source(t)) => {
            assert_eq!(t.source, SourceKind::ClientSecret);
            assert_eq!(t.tenant_id.as_deref(), Some("contoso.onmicrosoft.com"));
            assert_eq!(t.client_secret_env.as_deref(), Some("APP_SECRET"));
            assert_eq!(
                t.ca_file.as_deref(),
                Some(std::path::Path::new("/etc/ca.pem"))
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A Django `DATABASES["default"]` dict pasted as JSON, in the shapes mssql-django documents.
#[test]
fn django_json_dicts_as_is() {
    let cases: &[(&str, Option<u16>, Option<&str>)] = &[
        (
            r#"{"ENGINE": "mssql", "NAME": "mydb", "USER": "user@myserver", "PASSWORD": "password",
                "HOST": "myserver.database.windows.net", "PORT": "",
                "OPTIONS": {"driver": "ODBC Driver 18 for SQL Server"}}"#,
            None,
            Some("user@myserver"),
        ),
        (
            r#"{"ENGINE": "mssql", "NAME": "mydb", "USER": "", "PASSWORD": "",
                "HOST": "myserver.database.windows.net", "PORT": "1433",
                "OPTIONS": {"driver": "ODBC Driver 18 for SQL Server",
                            "extra_params": "Authentication=ActiveDirectoryMsi"}}"#,
            Some(1433),
            None,
        ),
        (
            r#"{"ENGINE": "mssql", "NAME": "mydb", "HOST": "myserver.database.windows.net",
                "PORT": 1433, "TOKEN": {"source": "managed-identity"}, "OPTIONS": {}}"#,
            Some(1433),
            None,
        ),
        (
            r#"{"ENGINE": "sql_server.pyodbc", "NAME": "mydb", "HOST": "10.0.0.4", "PORT": null,
                "USER": null, "OPTIONS": {"connection_timeout": 20}}"#,
            None,
            None,
        ),
    ];
    for (json, port, user) in cases {
        let s = Settings::from_json_str(json).unwrap_or_else(|e| panic!("{json}: {e:?}"));
        assert_eq!(s.name.as_deref(), Some("mydb"), "{json}");
        assert_eq!(s.port, *port, "{json}");
        assert_eq!(s.user.as_deref(), *user, "{json}");
    }
    let s = Settings::from_json_str(cases[3].0).unwrap();
    assert_eq!(s.options.login_timeout, Some(Duration::from_secs(20)));
    // Empty PASSWORD is "not set", so the SQL-login dict above has one and the MSI dict none.
    assert!(Settings::from_json_str(cases[0].0)
        .unwrap()
        .password
        .is_some());
    assert!(Settings::from_json_str(cases[1].0)
        .unwrap()
        .password
        .is_none());
}

#[test]
fn engine_of_another_backend_is_refused() {
    let e = Settings::from_json_str(
        r#"{"ENGINE": "django.db.backends.postgresql", "NAME": "x", "HOST": "h"}"#,
    )
    .unwrap_err();
    assert_eq!(invalid_key(&e), "ENGINE");
    assert!(e.to_string().contains("use `mssql`"), "{e}");
}

#[test]
fn literal_token_or_table() {
    let s = toml("HOST = \"h\"\nTOKEN = \"eyJhbGciOi.x.y\"");
    assert!(matches!(s.token, Some(TokenSetting::Literal(_))));
    let s = toml("HOST = \"h\"\nTOKEN = { source = \"workload-identity\" }");
    assert!(
        matches!(&s.token, Some(TokenSetting::Source(t)) if t.source == SourceKind::WorkloadIdentity)
    );
    for source in [
        "managed-identity",
        "client-secret",
        "client-certificate",
        "workload-identity",
        "developer-tools",
        "device-code",
        "default",
    ] {
        let text = format!("HOST = \"h\"\nTOKEN = {{ source = \"{source}\" }}");
        // Parses; some sources then need more keys, which validation reports by name.
        match Settings::from_toml_str(&text) {
            Ok(s) => assert!(matches!(s.token, Some(TokenSetting::Source(_)))),
            Err(e) => assert!(invalid_key(&e).starts_with("TOKEN."), "{source}: {e}"),
        }
    }
}

/// Unknown keys, bad values and bad types are errors that name the key.
#[test]
fn parse_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("HOTS = \"h\"", "HOTS"),
        ("HOST = \"h\"\nOPTIONS = { drvier = \"x\" }", "drvier"),
        (
            "HOST = \"h\"\nOPTIONS = { pool = { max_sise = 3 } }",
            "max_sise",
        ),
        (
            "HOST = \"h\"\nTOKEN = { source = \"managed-identity\", clientid = \"x\" }",
            "clientid",
        ),
        ("HOST = \"h\"\nTOKEN = { source = \"msi\" }", "msi"),
        ("HOST = \"h\"\nPORT = 0", "PORT"),
        ("HOST = \"h\"\nPORT = 70000", "PORT"),
        ("HOST = \"h\"\nPORT = \"abc\"", "PORT"),
        (
            "HOST = \"h\"\nOPTIONS = { login_timeout = -3 }",
            "login_timeout",
        ),
        (
            "HOST = \"h\"\nOPTIONS = { pool = { max_size = 1.5 } }",
            "max_size",
        ),
        (
            "HOST = \"h\"\nOPTIONS = { danger_trust_server_certificate = \"perhaps\" }",
            "danger_trust_server_certificate",
        ),
        ("HOST = 5", "HOST"),
    ];
    for (text, key) in cases {
        match Settings::from_toml_str(text) {
            Err(Error::Parse { format, message }) => {
                assert_eq!(format, "TOML");
                assert!(message.contains(key), "{text}: {message}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    // JSON reports the key path too.
    match Settings::from_json_str(r#"{"HOST": "h", "OPTIONS": {"pool": {"max_lifetime": "soon"}}}"#)
    {
        Err(Error::Parse { message, .. }) => {
            assert!(message.contains("OPTIONS.pool.max_lifetime"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match Settings::from_json_str(r#"{"HOST": "h", "EXTRA": 1}"#) {
        Err(Error::Parse { message, .. }) => assert!(message.contains("EXTRA"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Settings::from_json_str("{\"HOST\": \"h\"} trailing"),
        Err(Error::Parse { .. })
    ));
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn environment_variables() {
    let s = Settings::from_env_vars(
        "MSSQL_ENTRA",
        env(&[
            ("MSSQL_ENTRA_HOST", "myserver.database.windows.net"),
            ("MSSQL_ENTRA_PORT", "1433"),
            ("MSSQL_ENTRA_NAME", "app"),
            ("MSSQL_ENTRA_TOKEN_SOURCE", "managed-identity"),
            (
                "MSSQL_ENTRA_TOKEN_CLIENT_ID",
                "22222222-2222-4222-8222-222222222222",
            ),
            ("MSSQL_ENTRA_LOGIN_TIMEOUT", "12"),
            ("MSSQL_ENTRA_DANGER_TRUST_SERVER_CERTIFICATE", "yes"),
            ("MSSQL_ENTRA_POOL_MAX_SIZE", "3"),
            ("MSSQL_ENTRA_POOL_MAX_LIFETIME", "600"),
            ("UNRELATED", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(s.host.as_deref(), Some("myserver.database.windows.net"));
    assert_eq!(s.port, Some(1433));
    assert_eq!(s.options.login_timeout, Some(Duration::from_secs(12)));
    assert!(s.options.danger_trust_server_certificate);
    assert_eq!(s.options.pool.max_size, Some(3));
    assert_eq!(s.options.pool.max_lifetime, Some(Duration::from_secs(600)));
    match &s.token {
        Some(TokenSetting::Source(t)) => {
            assert_eq!(t.source, SourceKind::ManagedIdentity);
            assert_eq!(
                t.client_id.as_deref(),
                Some("22222222-2222-4222-8222-222222222222")
            );
        }
        other => panic!("{other:?}"),
    }

    // Another prefix; the variable named by PASSWORD_ENV may share the prefix.
    let s = Settings::from_env_vars(
        "APP_DB",
        env(&[
            ("APP_DB_HOST", "h"),
            ("APP_DB_USER", "sa"),
            ("APP_DB_PASSWORD_ENV", "APP_DB_SECRET"),
            ("APP_DB_SECRET", "pw"),
            ("APP_DB_EXTRA_PARAMS", "Authentication=SqlPassword"),
        ]),
    )
    .unwrap();
    assert_eq!(s.password_env.as_deref(), Some("APP_DB_SECRET"));
    assert_eq!(
        s.options.extra_params.as_deref(),
        Some("Authentication=SqlPassword")
    );
}

#[test]
fn environment_errors_name_the_variable() {
    let e = Settings::from_env_vars("MSSQL_ENTRA", env(&[("MSSQL_ENTRA_HOTS", "h")])).unwrap_err();
    assert_eq!(invalid_key(&e), "MSSQL_ENTRA_HOTS");
    let e = Settings::from_env_vars(
        "MSSQL_ENTRA",
        env(&[
            ("MSSQL_ENTRA_HOST", "h"),
            ("MSSQL_ENTRA_TOKEN_CLIENT_ID", "x"),
        ]),
    )
    .unwrap_err();
    assert_eq!(invalid_key(&e), "MSSQL_ENTRA_TOKEN_SOURCE");
    let e = Settings::from_env_vars(
        "MSSQL_ENTRA",
        env(&[
            ("MSSQL_ENTRA_HOST", "h"),
            ("MSSQL_ENTRA_TOKEN", "eyJ.x.y"),
            ("MSSQL_ENTRA_TOKEN_SOURCE", "default"),
        ]),
    )
    .unwrap_err();
    assert_eq!(invalid_key(&e), "MSSQL_ENTRA_TOKEN");
    match Settings::from_env_vars(
        "MSSQL_ENTRA",
        env(&[("MSSQL_ENTRA_HOST", "h"), ("MSSQL_ENTRA_PORT", "x1433")]),
    ) {
        Err(Error::Parse { format, message }) => {
            assert_eq!(format, "environment");
            assert!(message.contains("PORT"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn from_file_picks_the_format_by_extension() {
    let dir = std::env::temp_dir().join(format!("mssql-entra-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("db.toml");
    std::fs::write(&t, "HOST = \"h\"\nNAME = \"from-toml\"").unwrap();
    let j = dir.join("db.json");
    std::fs::write(&j, r#"{"HOST": "h", "NAME": "from-json"}"#).unwrap();
    let y = dir.join("db.yaml");
    std::fs::write(&y, "HOST: h").unwrap();
    assert_eq!(
        Settings::from_file(&t).unwrap().name.as_deref(),
        Some("from-toml")
    );
    assert_eq!(
        Settings::from_file(&j).unwrap().name.as_deref(),
        Some("from-json")
    );
    assert_eq!(
        invalid_key(&Settings::from_file(&y).unwrap_err()),
        "settings file"
    );
    assert!(matches!(
        Settings::from_file(dir.join("missing.toml")),
        Err(Error::ReadFile { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Resolution of each mode to its plan: connection string, auth, scope. Pure: no network.
#![allow(unused_imports)]

use std::time::Duration;

use mssql_entra::{Auth, AuthMode, Authentication, Error, SourceKind, TargetOs};

use crate::support::{jwt, opts, toml};

const AZURE: &str = "HOST = \"myserver.database.windows.net\"\nPORT = 1433\nNAME = \"app\"\n";
#[allow(dead_code)] // used by the feature-gated tests
const BASE: &str =
    "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;Database=app;Encrypt=yes";

#[allow(dead_code)] // used by the feature-gated tests
fn source_debug(plan: &mssql_entra::Plan) -> String {
    format!("{:?}", plan.token_source().expect("token mode"))
}

#[cfg(feature = "access-token")]
#[tokio::test]
async fn literal_token_is_token_mode_with_no_uid_pwd_or_authentication() {
    let token = jwt();
    for (text, env) in [
        (format!("{AZURE}TOKEN = \"{token}\""), vec![]),
        (
            format!("{AZURE}TOKEN_ENV = \"MY_TOKEN\""),
            vec![("MY_TOKEN", token.as_str())],
        ),
    ] {
        let plan = toml(&text).resolve_with(&opts(&env)).unwrap();
        assert_eq!(plan.mode(), AuthMode::AccessToken);
        assert_eq!(plan.connection_string().to_odbc_string(), BASE);
        assert_eq!(
            plan.scope().map(|s| s.as_str()),
            Some("https://database.windows.net/.default")
        );
        assert!(matches!(plan.auth(), Auth::Token(..)));
        let got = plan
            .token_source()
            .unwrap()
            .get_token(&["https://database.windows.net/.default"], None)
            .await
            .unwrap();
        assert_eq!(got.token.expose_secret(), token);
    }
    // A literal token without `exp` cannot tell its expiry: a clear token error.
    match toml(&format!("{AZURE}TOKEN = \"opaque\"")).resolve_with(&opts(&[])) {
        Err(Error::Token(e)) => assert!(e.to_string().contains("exp"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sql_login_and_dsn_use_the_connection_string_as_is() {
    let plan = toml(&format!("{AZURE}USER = \"sa\"\nPASSWORD = \"pw\""))
        .resolve_with(&opts(&[]))
        .unwrap();
    assert_eq!(plan.mode(), AuthMode::ConnectionString);
    assert!(matches!(plan.auth(), Auth::ConnectionString));
    assert_eq!(
        plan.connection_string().to_odbc_string(),
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;Database=app;UID=sa;PWD={pw};Encrypt=yes"
    );
    let plan = toml(
        "NAME = \"app\"\nUSER = \"sa\"\nPASSWORD_ENV = \"PW\"\nOPTIONS = { dsn = \"prod\", extra_params = \"ApplicationIntent=ReadOnly\", danger_trust_server_certificate = true }",
    )
    .resolve_with(&opts(&[("PW", "from-env")]))
    .unwrap();
    assert_eq!(
        plan.connection_string().to_odbc_string(),
        "DSN=prod;Database=app;UID=sa;PWD={from-env};TrustServerCertificate=yes;ApplicationIntent=ReadOnly"
    );
    assert!(plan.token_source().is_none() && plan.scope().is_none());
}

#[test]
fn connector_options_follow_the_settings() {
    let plan = toml(&format!(
        "{AZURE}USER = \"sa\"\nPASSWORD = \"pw\"\nOPTIONS = {{ login_timeout = 3, pool = {{ max_size = 2 }} }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(
        plan.connector_options().login_timeout,
        Some(Duration::from_secs(3))
    );
    assert_eq!(plan.connector_options().target_os, TargetOs::NotWindows);
    assert_eq!(plan.pool_settings().max_size, Some(2));
}

#[cfg(feature = "managed-identity")]
#[test]
fn managed_identity_token_mode_and_driver_mode() {
    // TOKEN table: token mode, cached.
    let plan = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"managed-identity\", client_id = \"33333333-3333-4333-8333-333333333333\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(
        plan.mode(),
        AuthMode::TokenSource(SourceKind::ManagedIdentity)
    );
    assert_eq!(plan.connection_string().to_odbc_string(), BASE);
    assert!(source_debug(&plan).contains("CachedTokenSource"));

    // Authentication=ActiveDirectoryManagedIdentity: the driver refuses it; served in token mode,
    // USER becomes the identity's client id and leaves the connection string.
    let plan = toml(&format!(
        "{AZURE}USER = \"33333333-3333-4333-8333-333333333333\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryManagedIdentity\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(
        plan.mode(),
        AuthMode::TokenSource(SourceKind::ManagedIdentity)
    );
    assert_eq!(plan.connection_string().to_odbc_string(), BASE);

    // Authentication=ActiveDirectoryMsi stays the driver's own mode, UID and all.
    let plan = toml(&format!(
        "{AZURE}USER = \"33333333-3333-4333-8333-333333333333\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryMsi\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::Driver(Authentication::Msi));
    assert!(matches!(plan.auth(), Auth::Driver(Authentication::Msi)));
    assert_eq!(
        plan.connection_string().to_odbc_string(),
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;Database=app;UID=33333333-3333-4333-8333-333333333333;Encrypt=yes;Authentication=ActiveDirectoryMsi"
    );

    // ca_file is read at resolution.
    match toml(&format!(
        "{AZURE}TOKEN = {{ source = \"managed-identity\", ca_file = \"/nonexistent/ca.pem\" }}"
    ))
    .resolve_with(&opts(&[]))
    {
        Err(Error::ReadFile { key, .. }) => assert_eq!(key, "TOKEN.ca_file"),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "service-principal")]
#[test]
fn service_principal_token_mode_and_driver_mode() {
    let plan = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"client-secret\", tenant_id = \"contoso.onmicrosoft.com\", client_id = \"44444444-4444-4444-8444-444444444444\", client_secret_env = \"APP_SECRET\" }}"
    ))
    .resolve_with(&opts(&[("APP_SECRET", "s3cret")]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::TokenSource(SourceKind::ClientSecret));
    assert_eq!(plan.connection_string().to_odbc_string(), BASE);
    assert!(source_debug(&plan).contains("CachedTokenSource"));

    // The secret's variable must be set.
    match toml(&format!(
        "{AZURE}TOKEN = {{ source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret_env = \"APP_SECRET\" }}"
    ))
    .resolve_with(&opts(&[]))
    {
        Err(Error::MissingEnv { key, var }) => {
            assert_eq!((key.as_str(), var.as_str()), ("TOKEN.client_secret_env", "APP_SECRET"))
        }
        other => panic!("{other:?}"),
    }

    let plan = toml(&format!(
        "{AZURE}USER = \"44444444-4444-4444-8444-444444444444\"\nPASSWORD_ENV = \"APP_SECRET\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryServicePrincipal\" }}"
    ))
    .resolve_with(&opts(&[("APP_SECRET", "s3cret")]))
    .unwrap();
    assert_eq!(
        plan.mode(),
        AuthMode::Driver(Authentication::ServicePrincipal)
    );
    assert_eq!(
        plan.connection_string().to_odbc_string(),
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;Database=app;UID=44444444-4444-4444-8444-444444444444;PWD={s3cret};Encrypt=yes;Authentication=ActiveDirectoryServicePrincipal"
    );
}

#[cfg(feature = "service-principal-certificate")]
#[test]
fn client_certificate_reads_its_files() {
    match toml(&format!(
        "{AZURE}TOKEN = {{ source = \"client-certificate\", tenant_id = \"t\", client_id = \"c\", certificate_file = \"/nonexistent/app.pem\" }}"
    ))
    .resolve_with(&opts(&[]))
    {
        Err(Error::ReadFile { key, .. }) => assert_eq!(key, "TOKEN.certificate_file"),
        other => panic!("{other:?}"),
    }
    let path = std::env::temp_dir().join(format!("mssql-entra-it-cert-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate").unwrap();
    let result = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"client-certificate\", tenant_id = \"t\", client_id = \"c\", certificate_file = \"{}\" }}",
        path.display()
    ))
    .resolve_with(&opts(&[]));
    let _ = std::fs::remove_file(&path);
    match result {
        Err(Error::Token(e)) => assert!(e.to_string().contains("certificate"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "workload-identity")]
#[test]
fn workload_identity_table_and_authentication() {
    let file = std::env::temp_dir().join(format!("mssql-entra-it-wi-{}", std::process::id()));
    std::fs::write(&file, "service-account-token").unwrap();
    let plan = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"workload-identity\", tenant_id = \"t\", client_id = \"c\", token_file = \"{}\" }}",
        file.display()
    ))
    .resolve_with(&opts(&[]));
    let _ = std::fs::remove_file(&file);
    let plan = plan.unwrap();
    assert_eq!(
        plan.mode(),
        AuthMode::TokenSource(SourceKind::WorkloadIdentity)
    );
    assert_eq!(plan.connection_string().to_odbc_string(), BASE);
}

#[cfg(feature = "default-chain")]
#[test]
fn active_directory_default_is_served_by_the_explicit_chain() {
    let plan = toml(&format!(
        "{AZURE}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryDefault;ApplicationIntent=ReadOnly\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::TokenSource(SourceKind::Default));
    assert_eq!(
        plan.connection_string().to_odbc_string(),
        format!("{BASE};ApplicationIntent=ReadOnly")
    );
    assert!(
        source_debug(&plan).contains("DefaultChain"),
        "{}",
        source_debug(&plan)
    );
    let plan = toml(&format!("{AZURE}TOKEN = {{ source = \"default\" }}"))
        .resolve_with(&opts(&[]))
        .unwrap();
    assert_eq!(plan.mode(), AuthMode::TokenSource(SourceKind::Default));
}

#[cfg(feature = "device-code")]
#[test]
fn device_code_table_and_authentication() {
    let plan = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"device-code\", tenant_id = \"organizations\", client_id = \"55555555-5555-4555-8555-555555555555\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::TokenSource(SourceKind::DeviceCode));
    let plan = toml(&format!(
        "{AZURE}USER = \"55555555-5555-4555-8555-555555555555\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryDeviceCode\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::TokenSource(SourceKind::DeviceCode));
    assert_eq!(plan.connection_string().to_odbc_string(), BASE);
    // Without a client id anywhere: an error that names USER and the TOKEN alternative.
    match toml(&format!(
        "{AZURE}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryDeviceCode\" }}"
    ))
    .resolve_with(&opts(&[]))
    {
        Err(Error::Invalid { key, reason }) => {
            assert_eq!(key, "USER");
            assert!(reason.contains("device-code"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "developer-tools")]
#[test]
fn developer_tools_table() {
    let plan = toml(&format!(
        "{AZURE}TOKEN = {{ source = \"developer-tools\", tool = \"azure-cli\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(
        plan.mode(),
        AuthMode::TokenSource(SourceKind::DeveloperTools)
    );
}

#[cfg(feature = "password")]
#[test]
fn password_stays_a_driver_mode() {
    let plan = toml(&format!(
        "{AZURE}USER = \"user@contoso.com\"\nPASSWORD = \"pw\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryPassword\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::Driver(Authentication::Password));
}

#[cfg(feature = "integrated")]
#[test]
fn integrated_stays_a_driver_mode() {
    let plan = toml(&format!(
        "{AZURE}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryIntegrated\" }}"
    ))
    .resolve_with(&opts(&[]))
    .unwrap();
    assert_eq!(plan.mode(), AuthMode::Driver(Authentication::Integrated));
}

#[cfg(feature = "interactive")]
#[test]
fn interactive_only_on_windows() {
    let text = format!(
        "{AZURE}USER = \"user@contoso.com\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryInteractive\" }}"
    );
    let e = toml(&text).resolve_with(&opts(&[])).unwrap_err();
    assert!(matches!(e, Error::InteractiveNotWindows), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("device-code") && message.contains("developer-tools"),
        "{message}"
    );
    let plan = toml(&text)
        .resolve_with(&opts(&[]).with_target_os(TargetOs::Windows))
        .unwrap();
    assert_eq!(plan.mode(), AuthMode::Driver(Authentication::Interactive));
}

#[cfg(feature = "managed-identity")]
#[test]
fn scope_follows_the_cloud_or_the_override() {
    let cases = [
        (
            "x.database.windows.net",
            None,
            "https://database.windows.net/.default",
        ),
        (
            "x.database.usgovcloudapi.net",
            None,
            "https://database.usgovcloudapi.net/.default",
        ),
        (
            "x.database.chinacloudapi.cn",
            None,
            "https://database.chinacloudapi.cn/.default",
        ),
        ("127.0.0.1", None, "https://database.windows.net/.default"),
        (
            "127.0.0.1",
            Some("api://emulator/.default"),
            "api://emulator/.default",
        ),
    ];
    for (host, scope, want) in cases {
        let scope = scope
            .map(|s| format!(", scope = \"{s}\""))
            .unwrap_or_default();
        let plan = toml(&format!(
            "HOST = \"{host}\"\nTOKEN = {{ source = \"managed-identity\"{scope} }}"
        ))
        .resolve_with(&opts(&[]))
        .unwrap();
        assert_eq!(plan.scope().unwrap().as_str(), want, "{host}");
    }
}

//! One real-driver check of the identity half: `Authentication=ActiveDirectoryMsi` through the whole emulator
//! (FEDAUTHINFO from the SQL endpoint → the driver's GET to our App Service endpoint → the token validated by our
//! `LoginAuthority` → the user seeded from the demo directory). Full driver login suites live in `tests/it`.

use std::path::PathBuf;

use azure_core::credentials::TokenCredential as _;
use azure_identity::UserAssignedId;
use mssql_entra_emulator::{Emulator, Endpoint, LoginAuthority as _};
use odbc_api::{ConnectionOptions, Cursor as _, Environment};

use crate::{DEMO_MI, DEMO_UAMI};

fn scalar(conn: &odbc_api::Connection<'_>, sql: &str) -> String {
    let mut cursor = conn.execute(sql, (), None).unwrap().expect("a result set");
    let mut row = cursor.next_row().unwrap().expect("a row");
    let mut buf = Vec::new();
    assert!(row.get_text(1, &mut buf).unwrap(), "not NULL");
    String::from_utf8(buf).unwrap()
}

fn native_error(e: &odbc_api::Error) -> i32 {
    match e {
        odbc_api::Error::Diagnostics { record, .. } => record.native_error,
        _ => 0,
    }
}

#[test]
fn driver_msi_login_fetches_one_token_per_connect_from_our_app_service_endpoint() {
    let emu = Emulator::start_blocking(Emulator::builder()).unwrap();
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/driver");
    let driver = driver.canonicalize().unwrap_or_else(|e| {
        panic!(
            "the ODBC driver is not provisioned at {} ({e}); run `cargo xtask setup`",
            driver.display()
        )
    });
    std::env::set_var("ODBCSYSINI", &driver);
    std::env::set_var("SSL_CERT_FILE", emu.ca_path());
    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("IDENTITY_ENDPOINT", emu.identity_endpoint());
    std::env::set_var("IDENTITY_HEADER", emu.identity_header().expose());
    let env = Environment::new().unwrap();
    let options = ConnectionOptions {
        login_timeout_sec: Some(5),
        packet_size: None,
    };
    let conn_str = |extra: &str| {
        format!(
            "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database=appdb;Authentication=ActiveDirectoryMsi;Encrypt=yes;{extra}",
            emu.sql_addr().port()
        )
    };
    for _ in 0..2 {
        let conn = env
            .connect_with_connection_string(&conn_str(""), options)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            scalar(&conn, "SELECT SUSER_SNAME()"),
            format!("{DEMO_MI}@{}", emu.tenant_id())
        );
        assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-mi");
    }
    assert_eq!(
        emu.http_stats().count(Endpoint::AppServiceToken),
        2,
        "the driver calls the endpoint on every connect"
    );

    // A user-assigned identity (UID = its client id) gets a valid token but has no user in appdb.
    let err = env
        .connect_with_connection_string(&conn_str(&format!("UID={DEMO_UAMI}")), options)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(native_error(&err), 18456, "{err}");
    assert_eq!(emu.http_stats().count(Endpoint::AppServiceToken), 3);

    // A second emulator: both CAs in one SSL_CERT_FILE bundle (each CA has its own subject name, so OpenSSL
    // picks the right issuer), and the driver follows IDENTITY_ENDPOINT to the second one.
    let other = Emulator::start_blocking(Emulator::builder()).unwrap();
    let bundle = other.output_dir().join("bundle.pem");
    std::fs::write(&bundle, format!("{}{}", emu.ca_pem(), other.ca_pem())).unwrap();
    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::set_var("IDENTITY_ENDPOINT", other.identity_endpoint());
    std::env::set_var("IDENTITY_HEADER", other.identity_header().expose());
    for target in [&other, &emu] {
        let conn_str = format!(
            "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database=appdb;Authentication=ActiveDirectoryMsi;Encrypt=yes",
            target.sql_addr().port()
        );
        // The token comes from `other`; both emulators share the demo directory and (per process) signing key.
        let conn = env
            .connect_with_connection_string(&conn_str, options)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-mi");
    }
    assert_eq!(other.http_stats().count(Endpoint::AppServiceToken), 2);
    assert_eq!(emu.http_stats().count(Endpoint::AppServiceToken), 3);

    // azure_identity's ManagedIdentityCredential reads the same environment (App Service form, 2019-08-01).
    // (azure_identity 1.0 refuses a resource id for App Service itself; the endpoint's mi_res_id is tested in msi.rs.)
    let ids = [
        (None, "demo-mi"),
        (
            Some(UserAssignedId::ClientId(DEMO_UAMI.to_owned())),
            "demo-uami",
        ),
        (
            Some(UserAssignedId::ObjectId(crate::DEMO_UAMI_OBJECT.to_owned())),
            "demo-uami",
        ),
    ];
    for (id, name) in ids {
        let mut options = azure_identity::ManagedIdentityCredentialOptions::default();
        options.client_options = crate::azure::client_options(&other);
        options.user_assigned_id = id;
        let credential = azure_identity::ManagedIdentityCredential::new(Some(options)).unwrap();
        let token = other
            .runtime()
            .block_on(credential.get_token(&["https://database.windows.net/.default"], None))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let principal = other.identity().validate(token.token.secret()).unwrap();
        assert_eq!(principal.display_name, name);
    }
    assert_eq!(other.http_stats().count(Endpoint::AppServiceToken), 5);
}

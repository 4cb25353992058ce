//! The acceptance tests again, against the whole [`Emulator`]: real RS256 JWTs from its token service and its
//! App Service managed-identity endpoint, validated by its `LoginAuthority`.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use mssql_entra_emulator::{Emulator, EmulatorHandle, MintOptions, SQL_RESOURCE};

use crate::support::*;

/// One emulator for the whole binary. Each emulator makes its own CA, all with the same subject name; with two
/// of them in one SSL_CERT_FILE, OpenSSL picked the wrong one ("certificate signature failure").
fn start() -> &'static EmulatorHandle {
    static EMU: OnceLock<EmulatorHandle> = OnceLock::new();
    EMU.get_or_init(|| {
        env();
        let emu = Emulator::start_blocking(Emulator::builder()).unwrap();
        trust_ca(emu.ca_pem());
        emu
    })
}

/// `Server=127.0.0.1`, with the certificate checked against `localhost` (see the note on IP SANs in
/// support.rs).
fn conn_str(emu: &Emulator, database: &str, extra: &str) -> String {
    format!(
        "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database={database};\
         HostNameInCertificate=localhost;{extra}",
        emu.sql_addr().port()
    )
}

#[test]
fn emulator_tokens_log_in_and_are_refused_like_azure_sql() {
    let emu = start();
    let app = emu.directory().resolve("demo-app").unwrap();
    let token = emu
        .issue_token("demo-app", SQL_RESOURCE, Duration::from_secs(600))
        .unwrap();
    for extra in ["Encrypt=yes", "Encrypt=strict"] {
        let conn = connect_token(&conn_str(emu, "appdb", extra), &token)
            .unwrap_or_else(|e| panic!("{extra}: {e}"));
        assert_eq!(
            scalar(&conn, "SELECT SUSER_SNAME()").unwrap().unwrap(),
            app.login_name()
        );
        assert_eq!(
            scalar(&conn, "SELECT IS_ROLEMEMBER('db_datareader')")
                .unwrap()
                .unwrap(),
            "1"
        );
    }

    // No user in master for the app.
    let e = connect_token(&conn_str(emu, "master", "Encrypt=yes"), &token)
        .map(|_| ())
        .unwrap_err();
    assert!(
        diag(&e)
            .2
            .ends_with("Login failed for user '<token-identified principal>'."),
        "{}",
        diag(&e).2
    );

    let expired = emu
        .mint_token(
            "demo-app",
            SQL_RESOURCE,
            MintOptions::default()
                .issued_at(SystemTime::now() - Duration::from_secs(3600))
                .lifetime(Duration::from_secs(600)),
        )
        .unwrap();
    let e = connect_token(&conn_str(emu, "appdb", "Encrypt=yes"), &expired)
        .map(|_| ())
        .unwrap_err();
    assert!(diag(&e).2.ends_with("Token is expired."), "{}", diag(&e).2);

    let wrong = emu
        .issue_token(
            "demo-app",
            "https://management.azure.com/",
            Duration::from_secs(600),
        )
        .unwrap();
    let e = connect_token(&conn_str(emu, "appdb", "Encrypt=yes"), &wrong)
        .map(|_| ())
        .unwrap_err();
    assert!(
        diag(&e)
            .2
            .ends_with("The server is not currently configured to accept this token."),
        "{}",
        diag(&e).2
    );
}

#[test]
fn emulator_managed_identity_through_the_app_service_endpoint() {
    let emu = start();
    let _env = identity_env_lock();
    std::env::set_var("IDENTITY_ENDPOINT", emu.identity_endpoint());
    std::env::set_var("IDENTITY_HEADER", emu.identity_header().expose());
    let conn = connect(&conn_str(
        emu,
        "appdb",
        "Authentication=ActiveDirectoryMsi;Encrypt=yes",
    ))
    .unwrap_or_else(|e| panic!("{}", diag(&e).2));
    let mi = emu.directory().resolve("demo-mi").unwrap();
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()").unwrap().unwrap(),
        mi.login_name()
    );
    assert_eq!(
        scalar(&conn, "SELECT USER_NAME()")
            .unwrap()
            .unwrap()
            .to_lowercase(),
        "demo-mi"
    );
}

//! The real driver, failing locally: unknown driver name, closed port, token source failure.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mssql_entra_connstr::{Authentication, ConnectionString};
use mssql_entra_odbc::{Auth, Connector, DiagnosisKind, Error};
use mssql_entra_token::sources::FnTokenSource;
use mssql_entra_token::{AccessToken, Scope, TokenError, TokenSource};

use crate::support::*;

fn closed(driver: &str) -> ConnectionString {
    ConnectionString::parse(&format!(
        "Driver={{{driver}}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes",
        closed_port()
    ))
    .expect("valid")
}

#[test]
fn an_unknown_driver_name_is_diagnosed_with_install_advice() {
    init();
    let (source, calls) = counting_source(app_token());
    let c = token_connector(closed("No Such Driver 99 for SQL Server"), source);
    assert_eq!(c.driver_version(), None);
    let e = c.connect().unwrap_err();
    let failure = e.odbc().unwrap_or_else(|| panic!("an ODBC failure: {e:?}"));
    // unixODBC 2.3.11 answers an unknown Driver= name with 01000 "Can't open lib", not IM002.
    assert_eq!(failure.sqlstate(), Some("01000"), "{e}");
    assert!(failure.records[0].message.contains("Can't open lib"), "{e}");
    assert_eq!(failure.function, "SQLDriverConnect");
    let d = e.diagnosis().expect("diagnosed");
    assert_eq!(d.kind, DiagnosisKind::DriverNotInstalled);
    assert!(d.fix.contains("cargo xtask setup"), "{}", d.fix);
    assert!(d.summary.contains("No Such Driver 99"), "{}", d.summary);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "token mode fetches before connecting"
    );
}

#[test]
fn an_unknown_dsn_is_im002() {
    init();
    let (source, _) = counting_source(app_token());
    let cs = ConnectionString::parse("DSN=no-such-dsn-mssql-entra;Encrypt=yes").expect("valid");
    let e = token_connector(cs, source).connect().unwrap_err();
    assert_eq!(e.odbc().and_then(|f| f.sqlstate()), Some("IM002"), "{e}");
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::DriverNotInstalled)
    );
}

#[test]
fn a_closed_port_is_diagnosed_without_a_retry() {
    init();
    let (source, calls) = counting_source(app_token());
    let c = token_connector(closed(DRIVER), source);
    let started = std::time::Instant::now();
    let e = c.connect().unwrap_err();
    let failure = e.odbc().unwrap_or_else(|| panic!("an ODBC failure: {e:?}"));
    eprintln!("closed port: {e}");
    assert_eq!(failure.attempts, 1, "not a transient error: {e}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let d = e.diagnosis().unwrap_or_else(|| panic!("diagnosed: {e}"));
    assert!(
        matches!(
            d.kind,
            DiagnosisKind::ServerUnreachable | DiagnosisKind::LoginTimeout
        ),
        "{d:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(!e.to_string().contains("eyJ"), "no token in errors: {e}");
}

#[test]
fn a_closed_port_in_a_driver_mode_fails_before_any_identity_call() {
    init();
    // ActiveDirectoryMsi fetches its token only after the server's FEDAUTHINFO (driver-facts Q3), so
    // a closed port fails before the driver would reach for 169.254.169.254.
    let c = Connector::new(
        closed(DRIVER),
        Auth::Driver(Authentication::Msi),
        test_options(),
    )
    .expect("valid");
    let e = c.connect().unwrap_err();
    assert!(e.odbc().is_some(), "{e:?}");
    assert!(e.diagnosis().is_some(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_connect_reports_the_same_failure() {
    init();
    let (source, calls) = counting_source(app_token());
    let c = token_connector(closed("No Such Driver 98"), source);
    let e = c.connect_async().await.unwrap_err();
    assert_eq!(e.odbc().and_then(|f| f.sqlstate()), Some("01000"), "{e}");
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::DriverNotInstalled)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failing_token_source_stops_before_the_driver() {
    init();
    let source: Arc<dyn TokenSource> =
        Arc::new(FnTokenSource::new("broken", |_scopes: Vec<String>| async {
            Err::<AccessToken, _>(TokenError::custom("vault sealed"))
        }));
    let c = Connector::new(
        closed(DRIVER),
        Auth::Token(source, Scope::azure_sql()),
        test_options(),
    )
    .expect("valid");
    let e = c.connect().unwrap_err();
    assert!(matches!(e, Error::Token(_)), "{e:?}");
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::TokenSourceFailed)
    );
}

#[test]
fn check_reads_every_record_of_a_failed_login() {
    init();
    let (source, _) = counting_source(app_token());
    let c = token_connector(closed(DRIVER), source);
    let e = c.check().unwrap_err();
    let failure = e.odbc().unwrap_or_else(|| panic!("an ODBC failure: {e:?}"));
    eprintln!("check, closed port: {e}");
    assert!(failure.records.len() > 1, "all records: {e}");
    assert_eq!(failure.sqlstate(), Some("HYT00"), "{e}");
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::ServerUnreachable),
        "{e}"
    );
}

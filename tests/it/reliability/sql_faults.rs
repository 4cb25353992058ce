//! The SQL endpoint misbehaves during login: it drops the connection at each stage, answers with bytes that
//! are not TDS, takes longer than the login timeout, or refuses with Azure SQL's transient 40613. Every
//! failure is a clear `Error::Odbc` (with a diagnosis, except the driver's own "Protocol error in TDS
//! stream"), returned within the login timeout (plus slack), and the next connect after the fault works.
//! Transient errors are retried up to the policy's limit.

use std::time::Duration;

use mssql_entra_emulator::sql::LoginStage;
use mssql_entra_odbc::{Connector, DiagnosisKind, Error, RetryPolicy};
use mssql_entra_tests::lab::{app_login, Lab, DEMO_APP, DEMO_MI, DRIVER_LOGIN_TIMEOUT};
use mssql_entra_tests::{isolate, isolated, modes, principal, test_options, Isolation};
use mssql_entra_token::CacheOptions;

use super::{chain, timed, SLACK};

/// How many connections a fault applies to: more than the driver or our connector would try in one
/// connect, so the connect under test meets it every time.
const ENOUGH: u32 = 10;

fn connector(lab: &Lab, retry: RetryPolicy) -> Connector {
    modes::client_secret_connector(
        lab,
        CacheOptions::default(),
        test_options().with_retry(retry),
    )
    .expect("a valid connector")
}

/// Connects, expecting an `Error::Odbc` within the login timeout (plus slack); returns it.
fn failing_connect(connector: &Connector, what: &str) -> Error {
    let (result, took) = timed(|| connector.connect());
    let err = match result {
        Ok(_) => panic!("{what}: the connect succeeded"),
        Err(e) => e,
    };
    assert!(
        matches!(err, Error::Odbc(_)),
        "{what}: expected Error::Odbc, got {}",
        chain(&err)
    );
    assert!(
        took < DRIVER_LOGIN_TIMEOUT + SLACK,
        "{what}: failed after {took:?}, login timeout {DRIVER_LOGIN_TIMEOUT:?}: {}",
        chain(&err)
    );
    println!("{what}: {took:?}: {err}");
    err
}

fn kind(err: &Error) -> DiagnosisKind {
    err.diagnosis()
        .map(|d| d.kind)
        .unwrap_or_else(|| panic!("no diagnosis for {}", chain(err)))
}

/// Bytes that are not TDS: the driver reports "Protocol error in TDS stream" (HY000, native 0), for which
/// the connector has no diagnosis of its own; the driver's text is the clear error.
fn garbled(err: &Error) {
    let failure = err.odbc().expect("an ODBC failure");
    assert!(
        failure
            .records
            .iter()
            .any(|r| r.message.contains("Protocol error in TDS stream")),
        "{}",
        chain(err)
    );
    assert!(!err.is_transient(), "{}", chain(err));
}

/// Clears the faults and checks that the endpoint works again for `connector`.
fn recovers(lab: &Lab, connector: &Connector) {
    lab.emulator().sql().faults().clear();
    let conn = connector
        .connect()
        .unwrap_or_else(|e| panic!("after the fault was cleared: {}", chain(&e)));
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
}

/// The connection broke, or the handshake did: the kinds a dropped or garbled login can show.
fn broken(kind: DiagnosisKind) -> bool {
    matches!(
        kind,
        DiagnosisKind::HandshakeFailed
            | DiagnosisKind::LinkFailure
            | DiagnosisKind::ServerUnreachable
            | DiagnosisKind::LoginTimeout
    )
}

#[test]
fn dropped_after_prelogin() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .drop_connection(LoginStage::AfterPrelogin, ENOUGH);
    let err = failing_connect(&connector, "dropped after PRELOGIN");
    assert!(broken(kind(&err)), "{}", chain(&err));
    assert!(
        !err.is_transient(),
        "a dropped connection is not Azure's transient error"
    );
    recovers(&lab, &connector);
}

#[test]
fn dropped_after_login7() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .drop_connection(LoginStage::AfterLogin7, ENOUGH);
    let err = failing_connect(&connector, "dropped after LOGIN7");
    assert!(broken(kind(&err)), "{}", chain(&err));
    recovers(&lab, &connector);
}

#[test]
fn garbage_after_prelogin() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .send_garbage(LoginStage::AfterPrelogin, ENOUGH);
    let err = failing_connect(&connector, "garbage after PRELOGIN");
    garbled(&err);
    recovers(&lab, &connector);
}

#[test]
fn garbage_after_login7() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .send_garbage(LoginStage::AfterLogin7, ENOUGH);
    let err = failing_connect(&connector, "garbage after LOGIN7");
    garbled(&err);
    recovers(&lab, &connector);
}

/// The 0x08 token message exists only in the driver's own workflows: `ActiveDirectoryMsi` against the App
/// Service endpoint (process-wide `IDENTITY_ENDPOINT`, hence a child process). Dropped and garbled.
#[test]
fn dropped_and_garbage_after_fedauth_token() {
    if !isolated(
        "reliability::sql_faults::dropped_and_garbage_after_fedauth_token",
        Isolation::Process,
    ) {
        return;
    }
    let lab = isolate::app_service_lab();
    let connector = modes::msi(None).connector(&lab).expect("a valid connector");
    let conn = connector.connect().expect("ActiveDirectoryMsi connects");
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
    drop(conn);
    let faults = lab.emulator().sql().faults();
    faults.drop_connection(LoginStage::AfterFedAuthToken, ENOUGH);
    let err = failing_connect(&connector, "dropped after the FEDAUTH token");
    assert!(broken(kind(&err)), "{}", chain(&err));
    faults.clear();
    faults.send_garbage(LoginStage::AfterFedAuthToken, ENOUGH);
    let err = failing_connect(&connector, "garbage after the FEDAUTH token");
    garbled(&err);
    faults.clear();
    let conn = connector
        .connect()
        .expect("ActiveDirectoryMsi connects again");
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
}

/// The server answers LOGIN7 later than the login timeout: the driver gives up at the timeout (HYT00).
#[test]
fn slow_login_times_out() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .slow_login(DRIVER_LOGIN_TIMEOUT + Duration::from_secs(5));
    let err = failing_connect(&connector, "slow login");
    assert_eq!(kind(&err), DiagnosisKind::LoginTimeout, "{}", chain(&err));
    assert_eq!(
        err.odbc().and_then(|f| f.sqlstate()),
        Some("HYT00"),
        "{err}"
    );
    recovers(&lab, &connector);
}

/// A login slower than usual but within the timeout just succeeds.
#[test]
fn slow_login_within_the_timeout_succeeds() {
    let lab = Lab::start();
    let connector = connector(&lab, RetryPolicy::none());
    lab.emulator()
        .sql()
        .faults()
        .slow_login(Duration::from_millis(800));
    let (conn, took) = timed(|| connector.connect());
    let conn = conn.unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert!(
        took >= Duration::from_millis(800),
        "the delay applied: {took:?}"
    );
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(10),
    }
}

/// 40613 for the next two logins; three attempts allowed: the third logs in.
#[test]
fn transient_40613_is_retried() {
    let lab = Lab::start();
    let connector = connector(&lab, quick_retries(3));
    lab.emulator().sql().faults().transient_errors(2);
    let conn = connector
        .connect()
        .unwrap_or_else(|e| panic!("retried past two 40613s: {}", chain(&e)));
    assert_eq!(conn.attempts(), 3);
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.logins(), (1, 2));
}

/// 40613 for more logins than the policy allows: a clear transient diagnosis, after exactly the allowed
/// attempts.
#[test]
fn transient_40613_past_the_retry_limit() {
    let lab = Lab::start();
    let connector = connector(&lab, quick_retries(3));
    lab.emulator().sql().faults().transient_errors(ENOUGH);
    let err = failing_connect(&connector, "40613 past the retry limit");
    assert!(err.is_transient(), "{}", chain(&err));
    assert_eq!(
        kind(&err),
        DiagnosisKind::TransientServerError,
        "{}",
        chain(&err)
    );
    assert_eq!(
        err.odbc().and_then(|f| f.native_error()),
        Some(40613),
        "{err}"
    );
    assert_eq!(lab.logins(), (0, 3), "three attempts, all refused");
    recovers(&lab, &connector);
}

//! Token-mode logins through the real driver against the emulated Azure SQL endpoint.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mssql_entra_emulator::sql::UserType;
use mssql_entra_odbc::{DiagnosisKind, Error};
use mssql_entra_token::{CachedTokenSource, TokenSource};

use crate::support::*;

#[test]
fn token_mode_logs_in_with_a_token_per_physical_connection() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    let (source, calls) = counting_source(app_token());
    let c = token_connector(s.conn_str("appdb"), source);
    let conn = c.connect().expect("token login");
    assert!(conn.uses_access_token());
    assert_eq!(conn.attempts(), 1);
    assert!(conn.token_expires_on().is_some());
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        format!("{APP_ID}@{TENANT}")
    );
    assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-app");
    let second = c.connect().expect("second login");
    assert_eq!(scalar(&second, "SELECT DB_NAME()"), "appdb");
    // Uncached source: one fetch per physical connection.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    drop(conn);
    // The surviving connection still works after the other one (and its token) was freed.
    assert_eq!(
        scalar(&second, "SELECT SUSER_SNAME()"),
        format!("{APP_ID}@{TENANT}")
    );
    assert_eq!(s.logins_ok(), 2);
}

#[test]
fn a_cached_source_fetches_once_for_many_connections() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    let (inner, calls) = counting_source(app_token());
    let cached: Arc<dyn TokenSource> = Arc::new(CachedTokenSource::new(inner));
    let c = token_connector(s.conn_str("appdb"), cached);
    let conns: Vec<_> = (0..3).map(|_| c.connect().expect("login")).collect();
    assert_eq!(conns.len(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_token_login() {
    let s = tokio::task::spawn_blocking(Server::start)
        .await
        .expect("server");
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    let (source, calls) = counting_source(app_token());
    let c = token_connector(s.conn_str("appdb"), source);
    let conn = c.connect_async().await.expect("async login");
    let who = tokio::task::spawn_blocking(move || scalar(&conn, "SELECT SUSER_SNAME()"))
        .await
        .expect("query");
    assert_eq!(who, format!("{APP_ID}@{TENANT}"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let report = c.check_async().await.expect("async check");
    assert!(report.used_access_token);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::task::spawn_blocking(move || drop(s))
        .await
        .expect("shutdown");
}

#[test]
fn login_failed_for_a_user_made_from_the_object_id_is_diagnosed_and_the_fix_works() {
    let s = Server::start();
    // The classic mistake: the database user's SID is the app's object id.
    s.databases()
        .add_user(
            "appdb",
            "demo-app",
            &APP_OID.to_bytes_le(),
            UserType::External,
        )
        .expect("user");
    let (source, _) = counting_source(app_token());
    let c = token_connector(s.conn_str("appdb"), source);
    let e = c.connect().unwrap_err();
    let failure = e.odbc().unwrap_or_else(|| panic!("ODBC failure: {e:?}"));
    assert_eq!(failure.native_error(), Some(18456), "{e}");
    assert_eq!(failure.sqlstate(), Some("28000"));
    assert_eq!(failure.attempts, 1, "18456 is not retried");
    let d = e.diagnosis().expect("diagnosed");
    assert_eq!(d.kind, DiagnosisKind::LoginFailedObjectId, "{d:?}");
    assert_eq!(d.anchor, "troubleshooting.md#login-failed-object-id");
    let statement = d
        .fix
        .split('`')
        .find(|part| part.starts_with("CREATE USER"))
        .unwrap_or_else(|| panic!("a CREATE USER statement in {}", d.fix))
        .to_owned();

    // Follow the advice as the Entra admin, then the app gets in.
    let (admin_source, _) = counting_source(admin_token());
    let admin = token_connector(s.conn_str("appdb"), admin_source)
        .connect()
        .expect("admin login");
    exec(&admin, "DROP USER [demo-app]");
    exec(&admin, &statement);
    let conn = c.connect().expect("the fix lets the app in");
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        format!("{APP_ID}@{TENANT}")
    );
}

#[test]
fn an_expired_token_is_diagnosed_as_expired() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    let expired = jwt(serde_json::json!({
        "aud": "https://database.windows.net/", "appid": APP_ID.to_string(),
        "oid": APP_OID.to_string(), "idtyp": "app", "exp": now_secs() - 600,
    }));
    let (source, _) = counting_source(expired.clone());
    let e = token_connector(s.conn_str("appdb"), source)
        .connect()
        .unwrap_err();
    assert_eq!(e.odbc().and_then(|f| f.native_error()), Some(18456), "{e}");
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::TokenExpired)
    );
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(&expired),
        "the token must not appear in errors"
    );
}

#[test]
fn transient_40613_is_retried_with_a_new_token_each_time() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    s.faults().transient_errors(2);
    let (source, calls) = counting_source(app_token());
    let c = token_connector(s.conn_str("appdb"), source);
    let conn = c.connect().expect("login after two transient failures");
    assert_eq!(conn.attempts(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-app");

    // More failures than attempts: the last error comes back, diagnosed, after exactly 4 attempts.
    s.faults().transient_errors(10);
    let e = c.connect().unwrap_err();
    let failure = e.odbc().unwrap_or_else(|| panic!("ODBC failure: {e:?}"));
    assert_eq!(failure.attempts, 4, "{e}");
    assert_eq!(failure.native_error(), Some(40613));
    assert!(e.is_transient());
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::TransientServerError)
    );
    assert!(matches!(e, Error::Odbc(_)));
}

#[test]
fn check_reports_the_driver_version_and_every_record() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    let (source, _) = counting_source(app_token());
    let report = token_connector(s.conn_str("appdb"), source)
        .check()
        .expect("check logs in");
    eprintln!("check: {report}");
    assert!(report.used_access_token);
    let version = report.driver_version.expect("SQL_DRIVER_VER");
    assert!(version.starts_with("18.06"), "{version}");
    assert_eq!(report.dbms_name.as_deref(), Some("Microsoft SQL Server"));

    let (source, _) = counting_source(app_token());
    let e = token_connector(s.conn_str("nosuchdb"), source)
        .check()
        .unwrap_err();
    eprintln!("check, no database: {e}");
    let failure = e.odbc().unwrap_or_else(|| panic!("ODBC failure: {e:?}"));
    assert_eq!(failure.native_error(), Some(4060), "{e}");
    // Every record, not just the first: Azure SQL's 4060 is followed by 18456.
    assert!(
        failure.records.iter().any(|r| r.native_error == 18456),
        "{e}"
    );
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::CannotOpenDatabase)
    );
}

/// Collects everything written to it.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_at_trace_level_never_contain_the_token() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-app", &app_principal())
        .expect("user");
    s.faults().transient_errors(1);
    let token = app_token();
    let (source, _) = counting_source(token.clone());
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let c = token_connector(s.conn_str("appdb"), source);
        let conn = c.connect().expect("login after one retry");
        tracing::info!(connection = ?conn, connector = ?c, "connected");
        let e = token_connector(s.conn_str("nosuchdb"), counting_source(token.clone()).0)
            .connect()
            .unwrap_err();
        tracing::info!(error = %e, debug = ?e, "failed as expected");
    });
    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains("retrying"), "the capture works: {logs}");
    assert!(logs.contains("Cannot open database"), "{logs}");
    let signature = token.rsplit('.').next().expect("three parts");
    assert!(
        !logs.contains(&token) && !logs.contains(signature),
        "{logs}"
    );
}

#[test]
fn wrong_audience_and_missing_user_are_told_apart() {
    let s = Server::start();
    let graph = jwt(serde_json::json!({
        "aud": "https://graph.microsoft.com", "appid": APP_ID.to_string(),
        "oid": APP_OID.to_string(), "idtyp": "app", "exp": now_secs() + 3600,
    }));
    let (source, _) = counting_source(graph);
    let e = token_connector(s.conn_str("appdb"), source)
        .connect()
        .unwrap_err();
    let d = e.diagnosis().unwrap_or_else(|| panic!("diagnosed: {e}"));
    assert_eq!(d.kind, DiagnosisKind::WrongAudience, "{e}");
    assert!(
        d.summary.contains("https://graph.microsoft.com"),
        "{}",
        d.summary
    );

    let bob = jwt(serde_json::json!({
        "aud": "https://database.windows.net/", "oid": "0b0b0b0b-0000-4000-8000-000000000b0b",
        "upn": "bob@emulator.test", "idtyp": "user", "exp": now_secs() + 3600,
    }));
    let (source, _) = counting_source(bob);
    let e = token_connector(s.conn_str("appdb"), source)
        .connect()
        .unwrap_err();
    let d = e.diagnosis().unwrap_or_else(|| panic!("diagnosed: {e}"));
    assert_eq!(d.kind, DiagnosisKind::LoginFailedNoUser, "{e}");
    assert!(
        d.fix
            .contains("CREATE USER [bob@emulator.test] FROM EXTERNAL PROVIDER;"),
        "{}",
        d.fix
    );
}

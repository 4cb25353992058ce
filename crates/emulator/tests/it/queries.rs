//! Queries after login, unsupported statements, and the other request types the driver may send.

use crate::support::*;

#[test]
fn the_supported_selects() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
    assert_eq!(scalar(&conn, "  select   -42 ;").unwrap().unwrap(), "-42");
    let version = scalar(&conn, "SELECT @@VERSION").unwrap().unwrap();
    assert!(
        version.starts_with("Microsoft SQL Server") && version.contains("emulator"),
        "{version}"
    );
    let spid: u16 = scalar(&conn, "SELECT @@SPID")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(spid >= 51);
    let both = row(
        &conn,
        "SELECT SUSER_SNAME() AS login, USER_NAME() AS [user]",
        2,
    )
    .unwrap();
    assert_eq!(
        both,
        vec![Some(app().login_name()), Some("demo-app".into())]
    );
    assert_eq!(
        scalar(&conn, "SELECT IS_ROLEMEMBER('public')")
            .unwrap()
            .unwrap(),
        "1"
    );
}

#[test]
fn unsupported_statements_get_a_clear_error_and_the_session_survives() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    let e = conn
        .execute("SELECT name FROM sys.tables", (), None)
        .map(|_| ())
        .unwrap_err();
    let (state, native, text) = diag(&e);
    assert_eq!(native, 40517, "{state}");
    assert!(
        text.contains("'SELECT name FROM sys.tables' is not supported by the emulator"),
        "{text}"
    );
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn parameterised_statements_are_refused_with_an_error() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    let e = conn
        .execute("SELECT ?", &42i32, None)
        .map(|_| ())
        .unwrap_err();
    let text = diag(&e).2;
    assert!(text.contains("not supported by the emulator"), "{text}");
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn manual_commit_mode_works() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    conn.set_autocommit(false).unwrap();
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
    conn.commit().unwrap();
    conn.rollback().unwrap();
    conn.set_autocommit(true).unwrap();
    assert_eq!(scalar(&conn, "SELECT 2").unwrap().unwrap(), "2");
}

#[test]
fn set_statements_are_accepted() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert!(conn
        .execute("SET NOCOUNT ON; SET TEXTSIZE 2147483647", (), None)
        .unwrap()
        .is_none());
}

#[test]
fn many_sessions_at_once() {
    let s = Server::start();
    let conns: Vec<_> = (0..8)
        .map(|_| s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap())
        .collect();
    let mut spids: Vec<String> = conns
        .iter()
        .map(|c| scalar(c, "SELECT @@SPID").unwrap().unwrap())
        .collect();
    spids.sort();
    spids.dedup();
    assert_eq!(spids.len(), 8, "every session has its own SPID");
    assert_eq!(s.stats().open_sessions(), 8);
}

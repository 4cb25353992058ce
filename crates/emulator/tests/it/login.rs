//! Acceptance (a): access-token logins (attribute 1256) and Azure SQL's refusals.

use crate::support::*;

#[test]
fn access_token_logs_in_and_suser_sname_is_the_principal() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()").unwrap().unwrap(),
        app().login_name()
    );
    assert_eq!(
        scalar(&conn, "select user_name();").unwrap().unwrap(),
        "demo-app"
    );
    assert_eq!(scalar(&conn, "SELECT DB_NAME()").unwrap().unwrap(), "appdb");
    drop(conn);
    let conn = s
        .connect_token(ALICE_TOKEN, "APPDB", "Encrypt=yes")
        .unwrap();
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()").unwrap().unwrap(),
        "alice@emulator.test"
    );
    assert_eq!(s.stats().logins_ok(), 2);
}

#[test]
fn same_token_without_a_database_user_gets_18456() {
    let s = Server::start();
    let e = s
        .connect_token(APP_TOKEN, "otherdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, native, text) = diag(&e);
    assert_eq!((state.as_str(), native), ("28000", 18456), "{text}");
    assert!(
        text.ends_with("Login failed for user '<token-identified principal>'."),
        "{text}"
    );
    assert_eq!(s.stats().logins_failed(), 1);
}

#[test]
fn master_needs_a_user_too_but_the_entra_admin_enters_everywhere_as_dbo() {
    let s = Server::start();
    let e = s
        .connect_token(APP_TOKEN, "", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 18456);
    for db in ["", "master", "appdb", "otherdb"] {
        let conn = s.connect_token(ADMIN_TOKEN, db, "Encrypt=yes").unwrap();
        assert_eq!(
            scalar(&conn, "SELECT USER_NAME()").unwrap().unwrap(),
            "dbo",
            "database {db:?}"
        );
        let expected = if db.is_empty() { "master" } else { db };
        assert_eq!(
            scalar(&conn, "SELECT DB_NAME()").unwrap().unwrap(),
            expected
        );
    }
}

#[test]
fn expired_token_gets_its_own_message() {
    let s = Server::start();
    let e = s
        .connect_token(EXPIRED_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, native, text) = diag(&e);
    assert_eq!((state.as_str(), native), ("28000", 18456), "{text}");
    assert!(
        text.ends_with("Login failed for user '<token-identified principal>'. Token is expired."),
        "{text}"
    );
}

#[test]
fn wrong_audience_token_gets_its_own_message() {
    let s = Server::start();
    let e = s
        .connect_token(WRONG_AUDIENCE_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (_, native, text) = diag(&e);
    assert_eq!(native, 18456);
    assert!(
        text.ends_with(
            "Login failed for user '<token-identified principal>'. The server is not currently configured to accept this token."
        ),
        "{text}"
    );
}

#[test]
fn garbage_token_is_refused_as_malformed() {
    let s = Server::start();
    let e = s
        .connect_token("not-a-token", "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (_, native, text) = diag(&e);
    assert_eq!(native, 18456);
    assert!(
        text.contains("The token is not a well-formed JWT."),
        "{text}"
    );
}

#[test]
fn unknown_database_gets_4060() {
    let s = Server::start();
    let e = s
        .connect_token(APP_TOKEN, "nosuchdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (_, native, text) = diag(&e);
    assert_eq!(native, 4060, "{text}");
    assert!(
        text.contains(
            "Cannot open database \"nosuchdb\" requested by the login. The login failed."
        ),
        "{text}"
    );
}

#[test]
fn large_token_spanning_several_packets_is_reassembled() {
    // Real JWTs are 1.5-3 KB, twice that in UTF-16: LOGIN7 spans packets. Use 6000 characters.
    let s = Server::start();
    let big = format!("big-{}", "x".repeat(6000));
    let e = s
        .connect_token(&big, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    // The authority does not know it, so it is refused as malformed - after the whole LOGIN7 was read.
    assert!(diag(&e).2.contains("well-formed"), "{}", diag(&e).2);
}

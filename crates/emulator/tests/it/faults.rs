//! The SQL fault knobs, as the driver reports them.

use std::time::{Duration, Instant};

use mssql_entra_emulator::sql::LoginStage;

use crate::support::*;

#[test]
fn transient_40613_for_the_next_n_logins() {
    let s = Server::start();
    s.faults().transient_errors(2);
    for _ in 0..2 {
        let e = s
            .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
            .map(|_| ())
            .unwrap_err();
        let (state, native, text) = diag(&e);
        assert_eq!(native, 40613, "{state} {text}");
        assert!(
            text.contains("Database 'appdb' on server 'emulator' is not currently available."),
            "{text}"
        );
    }
    s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!((s.stats().logins_failed(), s.stats().logins_ok()), (2, 1));
}

#[test]
fn drop_after_prelogin() {
    let s = Server::start();
    s.faults().drop_connection(LoginStage::AfterPrelogin, 1);
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, _native, text) = diag(&e);
    assert_eq!(state, "08001", "{text}");
    s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
}

#[test]
fn drop_after_login7() {
    let s = Server::start();
    s.faults().drop_connection(LoginStage::AfterLogin7, 1);
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, native, text) = diag(&e);
    assert!(state.starts_with("08"), "{state} {native} {text}");
    s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
}

#[test]
fn garbage_after_login7() {
    let s = Server::start();
    s.faults().send_garbage(LoginStage::AfterLogin7, 1);
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, _, text) = diag(&e);
    assert_eq!(state, "HY000", "{text}");
    assert!(text.contains("Protocol error in TDS stream"), "{text}");
}

#[test]
fn slow_login_past_the_login_timeout() {
    let s = Server::start();
    s.faults().slow_login(Duration::from_secs(8));
    let started = Instant::now();
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    let (state, _, text) = diag(&e);
    assert_eq!(state, "HYT00", "{text}");
    assert!(started.elapsed() < Duration::from_secs(8));
    s.faults().slow_login(Duration::from_millis(300));
    let started = Instant::now();
    s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

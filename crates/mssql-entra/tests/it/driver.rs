//! `connect`, `connect_async` and the pool, wired through the real driver to a closed port on
//! 127.0.0.1: the failure must come back as the connector's diagnosed error (and, from the
//! pool, as the source of its timeout). Logins that succeed are the end-to-end suite's (tests/).

use std::time::{Duration, Instant};

use mssql_entra::{Error, Pool, Settings};

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

fn settings(extra: &str) -> Settings {
    crate::support::init_driver();
    Settings::from_toml_str(&format!(
        "HOST = \"127.0.0.1\"\nPORT = {}\nNAME = \"app\"\nUSER = \"sa\"\nPASSWORD = \"pw\"\n\
         OPTIONS = {{ login_timeout = 1{extra} }}",
        closed_port()
    ))
    .unwrap()
}

fn assert_connect_failure(e: &Error) {
    match e {
        Error::Odbc(inner) => {
            let source = std::error::Error::source(e).expect("source");
            assert_eq!(source.to_string(), inner.to_string());
        }
        other => panic!("expected Error::Odbc, got {other:?}"),
    }
}

#[test]
fn connect_failure_is_the_connectors_error() {
    let started = Instant::now();
    let e = mssql_entra::connect(&settings("")).unwrap_err();
    assert_connect_failure(&e);
    eprintln!(
        "connect to a closed port failed after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn connect_async_failure_is_the_connectors_error() {
    let e = mssql_entra::connect_async(&settings("")).await.unwrap_err();
    assert_connect_failure(&e);
}

#[test]
fn pool_timeout_carries_the_last_connect_error() {
    let pool = Pool::new(&settings(
        ", pool = { max_size = 2, connection_timeout = 3 }",
    ))
    .unwrap();
    assert_eq!(pool.state(), (0, 0));
    let started = Instant::now();
    match pool.get() {
        Err(Error::PoolTimeout {
            timeout,
            last_error,
        }) => {
            assert_eq!(timeout, Duration::from_secs(3));
            let last = last_error.expect("the connect error is kept");
            assert_connect_failure(&last);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn pool_async_wrapper() {
    let pool = Pool::new_async(&settings(", pool = { connection_timeout = 4 }"))
        .await
        .unwrap();
    let got = pool.get_async().await;
    assert!(
        matches!(
            got,
            Err(Error::PoolTimeout {
                last_error: Some(_),
                ..
            })
        ),
        "{got:?}"
    );
}

#[test]
fn pool_with_min_idle_fails_fast_at_build() {
    match Pool::new(&settings(
        ", pool = { min_idle = 1, connection_timeout = 4 }",
    )) {
        Err(Error::PoolTimeout { last_error, .. }) => assert!(last_error.is_some()),
        other => panic!("{other:?}"),
    }
}

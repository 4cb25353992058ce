//! Logins per second through the real ODBC Driver 18: connect with an access token, `SELECT 1`, disconnect.
//! One iteration is one whole login; logins per second = 1 / the reported time.
//!
//! Run: `cargo bench -p mssql-entra-emulator --bench logins`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mssql_entra_emulator::sql::Encryption;

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use support::*;

fn login_once(s: &Server, extra: &str) {
    let conn = s.connect_token(APP_TOKEN, "appdb", extra).expect("login");
    assert_eq!(
        scalar(&conn, "SELECT 1").expect("query").as_deref(),
        Some("1")
    );
}

fn logins(c: &mut Criterion) {
    let mut group = c.benchmark_group("login");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));

    let tls = Server::start();
    group.bench_function("encrypt_yes_tls12", |b| {
        b.iter(|| login_once(&tls, "Encrypt=yes"))
    });
    group.bench_function("encrypt_strict_tls13", |b| {
        b.iter(|| login_once(&tls, "Encrypt=strict"))
    });
    drop(tls);

    let clear = Server::start_with(|c| c.encryption = Encryption::NotSupported);
    group.bench_function("clear_text", |b| {
        b.iter(|| login_once(&clear, "Encrypt=no"))
    });
    group.finish();
}

criterion_group!(benches, logins);
criterion_main!(benches);

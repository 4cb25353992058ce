//! In-process figures for `cargo xtask bench`: the cached `get_token` hot path against a bare `Arc::clone` of a
//! token, and building a connection string. `cargo xtask bench` reads criterion's `estimates.json` medians.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mssql_entra_connstr::{ConnectionStringBuilder, Encrypt};
use mssql_entra_token::{
    AccessToken, CachedTokenSource, TokenError, TokenRequestOptions, TokenSource, AZURE_SQL_SCOPE,
};

/// An upstream that answers at once with a token valid for an hour (only the first call reaches it).
#[derive(Debug)]
struct Upstream;

#[async_trait::async_trait]
impl TokenSource for Upstream {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        Ok(AccessToken::new(
            "x".repeat(1500),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn inproc(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cache = CachedTokenSource::new(Arc::new(Upstream));
    rt.block_on(cache.get_token(&[AZURE_SQL_SCOPE], None))
        .expect("warm-up token");

    let mut group = c.benchmark_group("inproc");
    group.bench_function("cached_get_token", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                cache
                    .get_token(black_box(&[AZURE_SQL_SCOPE]), None)
                    .await
                    .expect("a cached token"),
            )
        })
    });

    let token = Arc::new(AccessToken::new(
        "x".repeat(1500),
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    ));
    group.bench_function("arc_clone", |b| {
        b.iter(|| black_box(Arc::clone(black_box(&token))))
    });

    group.bench_function("connstr_build", |b| {
        b.iter(|| {
            let cs = ConnectionStringBuilder::new(black_box("myserver.database.windows.net"))
                .port(1433)
                .database("appdb")
                .driver("ODBC Driver 18 for SQL Server")
                .encrypt(Encrypt::Mandatory)
                .extra_params("ApplicationIntent=ReadOnly;MultiSubnetFailover=yes")
                .build()
                .expect("a valid connection string");
            black_box(cs.to_odbc_string())
        })
    });
    group.finish();
}

criterion_group!(benches, inproc);
criterion_main!(benches);

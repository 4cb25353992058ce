//! Criterion bench of the token cache: the hot path against a bare `Arc::clone`, and the number of upstream
//! calls 64 concurrent cold callers cause.

use criterion::{criterion_group, criterion_main, Criterion};
use mssql_entra_token::{
    AccessToken, CachedTokenSource, TokenError, TokenRequestOptions, TokenSource, AZURE_SQL_SCOPE,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
struct Upstream {
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl TokenSource for Upstream {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // An identity endpoint answers in milliseconds; keep the cold path realistic.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(AccessToken::new(
            "x".repeat(1500),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let cache = CachedTokenSource::new(Arc::new(Upstream::default()));
    rt.block_on(cache.get_token(&[AZURE_SQL_SCOPE], None))
        .expect("warm-up token");
    c.bench_function("cached get_token (hot)", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                cache
                    .get_token(black_box(&[AZURE_SQL_SCOPE]), None)
                    .await
                    .expect("token"),
            )
        })
    });

    let arc = Arc::new(AccessToken::new(
        "x".repeat(1500),
        time::OffsetDateTime::now_utc(),
    ));
    c.bench_function("Arc::clone of a token (baseline)", |b| {
        b.iter(|| black_box(Arc::clone(black_box(&arc))))
    });

    let max_calls = Arc::new(AtomicU32::new(0));
    let runs = Arc::new(AtomicU32::new(0));
    c.bench_function("64 concurrent cold callers", |b| {
        b.to_async(&rt).iter(|| async {
            let upstream = Arc::new(Upstream::default());
            let cache = CachedTokenSource::new(upstream.clone());
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..64 {
                let cache = cache.clone();
                set.spawn(
                    async move { cache.get_token(&[AZURE_SQL_SCOPE], None).await.map(|_| ()) },
                );
            }
            while let Some(r) = set.join_next().await {
                r.expect("task").expect("token");
            }
            let calls = upstream.calls.load(Ordering::SeqCst);
            max_calls.fetch_max(calls, Ordering::SeqCst);
            runs.fetch_add(1, Ordering::SeqCst);
            calls
        })
    });
    println!(
        "upstream calls per 64 concurrent cold callers: at most {} over {} runs",
        max_calls.load(Ordering::SeqCst),
        runs.load(Ordering::SeqCst)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

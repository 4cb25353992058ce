//! The blocking adapter.

use mssql_entra_token::{
    sources::FnTokenSource, AccessToken, BlockingTokenSource, TokenError, TokenSource,
    AZURE_SQL_SCOPE,
};
use std::sync::Arc;

fn source() -> Arc<dyn TokenSource> {
    Arc::new(FnTokenSource::new("fixed", |_| {
        std::future::ready(Ok(AccessToken::new(
            "blocking-token",
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )))
    }))
}

#[test]
fn works_without_a_runtime_from_many_threads() {
    let b = Arc::new(BlockingTokenSource::new(source()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                b.get_token(&[AZURE_SQL_SCOPE], None)
                    .unwrap()
                    .token
                    .expose_secret()
                    .to_owned()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "blocking-token");
    }
}

#[tokio::test]
async fn refuses_inside_a_runtime_instead_of_panicking() {
    let b = BlockingTokenSource::new(source()).unwrap();
    let e = b.get_token(&[AZURE_SQL_SCOPE], None).unwrap_err();
    assert_eq!(e, TokenError::BlockingInAsyncContext);
    // Dropping it here, inside the runtime, must not panic either.
    drop(b);
}

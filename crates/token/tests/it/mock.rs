//! MockTokenSource drives the cache like any source.

use mssql_entra_token::{
    mock::MockTokenSource, AccessToken, CachedTokenSource, TokenError, TokenSource, AZURE_SQL_SCOPE,
};
use std::sync::Arc;

#[tokio::test]
async fn mock_behind_the_cache_is_called_once_for_64_callers() {
    let mut mock = MockTokenSource::new();
    mock.expect_token()
        .withf(|scopes, options| *scopes == [AZURE_SQL_SCOPE] && options.is_none())
        .times(1)
        .returning(|_, _| {
            Ok(AccessToken::new(
                "mocked",
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        });
    let cache = CachedTokenSource::new(Arc::new(mock));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let c = cache.clone();
        set.spawn(async move { c.get_token(&[AZURE_SQL_SCOPE], None).await });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap().token.expose_secret(), "mocked");
    }
}

#[tokio::test]
async fn mock_errors_pass_through() {
    let mut mock = MockTokenSource::new();
    mock.expect_token()
        .returning(|_, _| Err(TokenError::custom("nope")));
    assert_eq!(
        mock.get_token(&[AZURE_SQL_SCOPE], None).await.unwrap_err(),
        TokenError::custom("nope")
    );
}

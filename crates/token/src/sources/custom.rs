//! [`FnTokenSource`]: a source from an async closure.

use crate::{AccessToken, TokenError, TokenRequestOptions, TokenSource};
use std::fmt;
use std::future::Future;

/// A [`TokenSource`] backed by an async closure that receives the requested scopes.
///
/// Return [`TokenError::transient`] from the closure for failures worth retrying, [`TokenError::custom`]
/// for the others. Wrap it in [`CachedTokenSource`](crate::CachedTokenSource): the closure is then called
/// once per refresh, not once per connection.
///
/// ```
/// # use mssql_entra_token::{AccessToken, sources::FnTokenSource};
/// let source = FnTokenSource::new("vault", |scopes: Vec<String>| async move {
///     let _ = scopes;
///     Ok(AccessToken::new("eyJ...", time::OffsetDateTime::now_utc() + time::Duration::hours(1)))
/// });
/// # let _ = source;
/// ```
pub struct FnTokenSource<F> {
    name: &'static str,
    f: F,
}

impl<F, Fut> FnTokenSource<F>
where
    F: Fn(Vec<String>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<AccessToken, TokenError>> + Send,
{
    /// `name` appears in `Debug` and logs.
    pub fn new(name: &'static str, f: F) -> Self {
        Self { name, f }
    }
}

#[async_trait::async_trait]
impl<F, Fut> TokenSource for FnTokenSource<F>
where
    F: Fn(Vec<String>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<AccessToken, TokenError>> + Send,
{
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        (self.f)(scopes).await
    }
}

impl<F> fmt::Debug for FnTokenSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTokenSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closure_receives_scopes() {
        let s = FnTokenSource::new("t", |scopes: Vec<String>| async move {
            assert_eq!(scopes, [crate::AZURE_SQL_SCOPE]);
            Ok(AccessToken::new("tok", time::OffsetDateTime::now_utc()))
        });
        let t = s.get_token(&[crate::AZURE_SQL_SCOPE], None).await.unwrap();
        assert_eq!(t.token.expose_secret(), "tok");
        assert!(s.get_token(&[], None).await.is_err());
        assert_eq!(format!("{s:?}"), "FnTokenSource { name: \"t\", .. }");
    }
}

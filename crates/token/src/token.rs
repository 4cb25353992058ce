//! [`TokenSource`], [`AccessToken`] and [`TokenRequestOptions`].

use crate::{Secret, TokenError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// A bearer access token and the moment it stops being valid.
///
/// `Debug` shows `token: Secret`; the raw value is reachable only through
/// `token.expose_secret()`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token. Hand `token.expose_secret()` to the driver; never log it.
    pub token: Secret,
    /// When the token expires.
    pub expires_on: OffsetDateTime,
}

impl AccessToken {
    /// A token that expires at `expires_on`.
    pub fn new(token: impl Into<Secret>, expires_on: OffsetDateTime) -> Self {
        Self {
            token: token.into(),
            expires_on,
        }
    }

    /// Time left before expiry at `now` (zero once expired).
    pub fn remaining(&self, now: OffsetDateTime) -> Duration {
        let left = self.expires_on - now;
        if left.is_negative() {
            Duration::ZERO
        } else {
            left.unsigned_abs()
        }
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_on <= now
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

/// Per-request options for [`TokenSource::get_token`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequestOptions {
    /// Ignore cached tokens and ask upstream (still single-flight). Use it after the server rejected a token
    /// that looked valid, e.g. after a permission change.
    pub force_refresh: bool,
}

impl TokenRequestOptions {
    /// Sets [`force_refresh`](Self::force_refresh).
    pub fn with_force_refresh(mut self, force_refresh: bool) -> Self {
        self.force_refresh = force_refresh;
        self
    }
}

/// Something that produces access tokens, modelled on azure_core's `TokenCredential`.
///
/// Implementations are shared as `Arc<dyn TokenSource>`. A source may or may not cache; wrap it in
/// [`CachedTokenSource`](crate::CachedTokenSource) to get refresh-ahead and single-flight behaviour.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token for `scopes` (for Azure SQL one scope, see [`Scope`](crate::Scope)).
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError>;
}

#[async_trait::async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        (**self).get_token(scopes, options).await
    }
}

#[async_trait::async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Box<T> {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        (**self).get_token(scopes, options).await
    }
}

/// Checks the scopes argument common to all sources.
pub(crate) fn check_scopes(scopes: &[&str]) -> Result<(), TokenError> {
    if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty()) {
        return Err(TokenError::Config {
            field: "scopes",
            reason: format!(
                "at least one non-empty scope is required, e.g. `{}`",
                crate::AZURE_SQL_SCOPE
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn debug_hides_token() {
        let t = AccessToken::new("eyJsecretvalue", datetime!(2030-01-01 0:00 UTC));
        let d = format!("{t:?}");
        assert!(!d.contains("eyJsecretvalue"), "{d}");
        assert!(d.contains("Secret") && d.contains("2030"), "{d}");
    }

    #[test]
    fn remaining_and_expiry() {
        let now = datetime!(2030-01-01 0:00 UTC);
        let t = AccessToken::new("t", now + time::Duration::minutes(5));
        assert_eq!(t.remaining(now), Duration::from_secs(300));
        assert!(!t.is_expired_at(now));
        assert!(t.is_expired_at(now + time::Duration::minutes(5)));
        assert_eq!(t.remaining(now + time::Duration::hours(1)), Duration::ZERO);
    }

    #[test]
    fn scopes_are_checked() {
        assert!(check_scopes(&[]).is_err());
        assert!(check_scopes(&[" "]).is_err());
        assert!(check_scopes(&[crate::AZURE_SQL_SCOPE]).is_ok());
    }
}

//! [`StaticTokenSource`]: a token acquired elsewhere (the settings' `TOKEN`).

use crate::cache::{Clock, SystemClock};
use crate::{AccessToken, Secret, TokenError, TokenRequestOptions, TokenSource, UnverifiedClaims};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;

/// Serves one fixed token until it expires, then fails with [`TokenError::Expired`].
///
/// The expiry comes from the JWT's `exp` claim ([`new`](Self::new)) or is given
/// ([`with_expires_on`](Self::with_expires_on)). It cannot renew anything: prefer a refreshing source for
/// processes that live longer than a token (60–90 minutes).
#[derive(Clone)]
pub struct StaticTokenSource {
    token: AccessToken,
    clock: Arc<dyn Clock>,
}

impl StaticTokenSource {
    /// A source for a JWT access token, expiring at its `exp` claim.
    ///
    /// Fails with [`TokenError::Config`] (field `token`) when the token is empty or has no readable `exp`;
    /// use [`with_expires_on`](Self::with_expires_on) for opaque tokens.
    pub fn new(token: impl Into<Secret>) -> Result<Self, TokenError> {
        let token = token.into();
        check_not_empty(&token)?;
        let exp = UnverifiedClaims::from_jwt(token.expose_secret())
            .ok()
            .and_then(|c| c.exp)
            .ok_or_else(|| TokenError::Config {
                field: "token",
                reason: "the token is not a JWT with an `exp` claim, so its expiry is unknown; \
                         pass the expiry with StaticTokenSource::with_expires_on"
                    .to_owned(),
            })?;
        Self::with_expires_on(token, exp)
    }

    /// A source for any token with a known expiry.
    pub fn with_expires_on(
        token: impl Into<Secret>,
        expires_on: OffsetDateTime,
    ) -> Result<Self, TokenError> {
        let token = token.into();
        check_not_empty(&token)?;
        Ok(Self {
            token: AccessToken::new(token, expires_on),
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock used to decide expiry (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// When the token expires.
    pub fn expires_on(&self) -> OffsetDateTime {
        self.token.expires_on
    }
}

fn check_not_empty(token: &Secret) -> Result<(), TokenError> {
    if token.expose_secret().trim().is_empty() {
        return Err(TokenError::Config {
            field: "token",
            reason: "the access token is empty; supply the token string".to_owned(),
        });
    }
    Ok(())
}

#[async_trait::async_trait]
impl TokenSource for StaticTokenSource {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        if self.token.is_expired_at(self.clock.now()) {
            tracing::warn!(expires_on = %self.token.expires_on, "static access token has expired");
            return Err(TokenError::Expired {
                expires_on: self.token.expires_on,
            });
        }
        Ok(self.token.clone())
    }
}

impl fmt::Debug for StaticTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenSource")
            .field("expires_on", &self.token.expires_on)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn jwt(exp: i64) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"none"}"#),
            e.encode(format!(r#"{{"exp":{exp}}}"#))
        )
    }

    #[derive(Debug)]
    struct At(OffsetDateTime);
    impl Clock for At {
        fn now(&self) -> OffsetDateTime {
            self.0
        }
    }

    #[tokio::test]
    async fn reads_exp_and_expires() {
        let s = StaticTokenSource::new(jwt(2_000_000_000)).unwrap();
        assert_eq!(s.expires_on().unix_timestamp(), 2_000_000_000);
        let before = s
            .clone()
            .with_clock(Arc::new(At(OffsetDateTime::from_unix_timestamp(
                1_999_999_000,
            )
            .unwrap())));
        let t = before
            .get_token(&[crate::AZURE_SQL_SCOPE], None)
            .await
            .unwrap();
        assert_eq!(t.token.expose_secret(), jwt(2_000_000_000));
        let after = s.with_clock(Arc::new(At(OffsetDateTime::from_unix_timestamp(
            2_000_000_001,
        )
        .unwrap())));
        let e = after
            .get_token(&[crate::AZURE_SQL_SCOPE], None)
            .await
            .unwrap_err();
        assert!(matches!(e, TokenError::Expired { .. }), "{e:?}");
    }

    #[test]
    fn opaque_or_empty_tokens_need_an_expiry() {
        assert!(matches!(
            StaticTokenSource::new("opaque"),
            Err(TokenError::Config { field: "token", .. })
        ));
        assert!(matches!(
            StaticTokenSource::new(" "),
            Err(TokenError::Config { field: "token", .. })
        ));
        assert!(StaticTokenSource::with_expires_on("opaque", OffsetDateTime::now_utc()).is_ok());
        let d = format!("{:?}", StaticTokenSource::new(jwt(2_000_000_000)).unwrap());
        assert!(!d.contains(&jwt(2_000_000_000)), "{d}");
    }
}

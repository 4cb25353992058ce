//! [`MockTokenSource`]: a mockall mock of [`TokenSource`] for downstream unit tests (feature `mock`).
//!
//! mockall cannot mock `get_token` directly (its `&[&str]` argument has two lifetimes behind
//! `async_trait`), so the mock has one synchronous method, `token`, taking the scopes as owned strings;
//! [`TokenSource::get_token`] forwards to it. Set expectations with `expect_token()`:
//!
//! ```
//! use mssql_entra_token::{mock::MockTokenSource, AccessToken, TokenSource};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut mock = MockTokenSource::new();
//! mock.expect_token()
//!     .withf(|scopes, _| *scopes == ["https://database.windows.net/.default"])
//!     .times(1)
//!     .returning(|_, _| Ok(AccessToken::new("t", time::OffsetDateTime::now_utc() + time::Duration::hours(1))));
//! let token = mock.get_token(&["https://database.windows.net/.default"], None).await.unwrap();
//! assert_eq!(token.token.expose_secret(), "t");
//! # }
//! ```

use crate::{AccessToken, TokenError, TokenRequestOptions, TokenSource};

mockall::mock! {
    /// A mock [`TokenSource`]: set expectations on `token` with `expect_token()`.
    pub TokenSource {
        /// What [`TokenSource::get_token`] returns for these scopes and options.
        pub fn token(&self, scopes: Vec<String>, options: Option<TokenRequestOptions>) -> Result<AccessToken, TokenError>;
    }
}

#[async_trait::async_trait]
impl TokenSource for MockTokenSource {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        self.token(scopes.iter().map(|s| (*s).to_owned()).collect(), options)
    }
}

impl std::fmt::Debug for MockTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockTokenSource")
    }
}

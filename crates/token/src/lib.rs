//! Access tokens for Azure SQL, Fabric SQL and SQL Server with Microsoft Entra ID.
//!
//! This crate answers one question for the layers above it: "give me a valid access token for this
//! database, now". It defines the [`TokenSource`] trait and [`AccessToken`] (whose [`Secret`] never prints
//! itself), the [`CachedTokenSource`] that renews tokens ahead of expiry with one upstream call for any
//! number of concurrent callers, the Azure SQL [`Scope`] per cloud, a [`BlockingTokenSource`] for code
//! without a runtime, [`UnverifiedClaims`] and [`SqlSid`] for diagnosing "Login failed for user
//! '\<token-identified principal>'", and [`sources`] built on `azure_identity`.
//!
//! It deliberately knows nothing about ODBC, connection strings or TDS (that is `mssql-entra-odbc`), does
//! no OAuth of its own beyond the device code flow that `azure_identity` lacks, never verifies token
//! signatures (the server does), and never persists tokens: everything lives in process memory.
//!
//! ```no_run
//! # #[cfg(feature = "managed-identity")]
//! # async fn demo() -> Result<(), mssql_entra_token::TokenError> {
//! use mssql_entra_token::{sources::ManagedIdentitySource, CachedTokenSource, Scope, TokenSource};
//! use std::sync::Arc;
//!
//! let scope = Scope::for_server("tcp:myserver.database.windows.net,1433")?;
//! let source: Arc<dyn TokenSource> =
//!     Arc::new(CachedTokenSource::new(Arc::new(ManagedIdentitySource::new(None)?)));
//! // Every connection asks; the identity endpoint is called once per token lifetime.
//! let token = source.get_token(&[scope.as_str()], None).await?;
//! let _for_the_driver: &str = token.token.expose_secret();
//! # Ok(()) }
//! ```
//!
//! # Secrets
//!
//! Tokens, client secrets and refresh tokens live in [`Secret`]: `Debug` prints `Secret`, there is no
//! `Display`, equality runs in constant time and the memory is zeroed when the last clone drops. No `Debug`,
//! `Display`, error or log line of this crate contains a token or a secret; provider messages pass through
//! a filter that removes anything shaped like a JWT; a test captures all tracing output at TRACE level while
//! every source and the cache run, failures included, and scans it. (`azure_identity` keeps its own copy
//! of a token in its internal cache, in memory that is not zeroed.)
//!
//! # Errors
//!
//! One matchable [`TokenError`]. [`TokenError::is_transient`] decides what the cache retries.
//!
//! # Feature flags
//!
//! Each source has its own feature; `default` holds only the two without dependencies.
//!
//! | feature | adds |
//! |---|---|
//! | `static-token` (default) | [`sources::StaticTokenSource`] |
//! | `custom` (default) | [`sources::FnTokenSource`] |
//! | `managed-identity` | `sources::ManagedIdentitySource` |
//! | `client-secret` | `sources::ClientSecretSource` |
//! | `client-certificate` | `sources::ClientCertificateSource` (PEM; *ring*, no OpenSSL) |
//! | `workload-identity` | `sources::WorkloadIdentitySource` |
//! | `developer-tools` | `sources::DeveloperToolsSource` (Azure CLI, azd) |
//! | `device-code` | `sources::DeviceCodeSource` |
//! | `default-chain` | `sources::DefaultChainSource` (enables the four sources it chains) |
//! | `mock` | `mock::MockTokenSource` (mockall) |
//! | `full` | all of the above |
//!
//! The HTTP-based features pull in `azure_core`/`azure_identity` with a reqwest transport on rustls
//! (*ring* provider); nothing links OpenSSL.
//!
//! # Stability
//!
//! Error message texts, log lines and the exact refresh timing are not API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod blocking;
mod cache;
mod claims;
mod error;
#[cfg(feature = "mock")]
pub mod mock;
pub mod scope;
mod secret;
pub mod sources;
mod token;

pub use blocking::BlockingTokenSource;
pub use cache::{CacheOptions, CachedTokenSource, Clock, SystemClock, TokioClock};
pub use claims::{PrincipalKind, SqlSid, UnverifiedClaims};
pub use error::TokenError;
pub use scope::{
    Cloud, Scope, AZURE_SQL_CHINA_SCOPE, AZURE_SQL_SCOPE, AZURE_SQL_US_GOVERNMENT_SCOPE,
};
pub use secret::Secret;
pub use token::{AccessToken, TokenRequestOptions, TokenSource};

/// Compile-time proof that the public types can cross threads.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<AccessToken>();
    is::<Secret>();
    is::<TokenError>();
    is::<CachedTokenSource>();
    is::<BlockingTokenSource>();
    is::<std::sync::Arc<dyn TokenSource>>();
}

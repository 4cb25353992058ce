//! Connect to SQL Server, Azure SQL and Fabric SQL through the Microsoft ODBC Driver 18 with
//! Microsoft Entra ID, configured like mssql-django.
//!
//! This facade reads [`Settings`] in the shape of mssql-django's `DATABASES` entry (from TOML, a
//! Django dict pasted as JSON, or environment variables), resolves them into a [`Plan`] (the
//! connection string and how to authenticate: an access token from a cached, refreshing token
//! source, or one of the driver's own `Authentication=` modes), and opens connections with
//! [`connect`], [`connect_async`] or a [`Pool`]. It deliberately re-exports rather than
//! re-implements: connection strings are `mssql-entra-connstr`'s, tokens `mssql-entra-token`'s,
//! the ODBC connection and its diagnosed errors `mssql-entra-odbc`'s. It does not run queries for
//! you (use the `odbc_api::Connection` inside [`EntraConnection`]) and writes no settings files.
//!
//! ```no_run
//! # fn demo() -> Result<(), mssql_entra::Error> {
//! let settings = mssql_entra::Settings::from_json_str(r#"{
//!     "ENGINE": "mssql",
//!     "NAME": "app",
//!     "HOST": "myserver.database.windows.net",
//!     "PORT": "1433",
//!     "OPTIONS": { "driver": "ODBC Driver 18 for SQL Server",
//!                  "extra_params": "Authentication=ActiveDirectoryDefault" }
//! }"#)?;
//! let conn = mssql_entra::connect(&settings)?;
//! conn.connection().execute("SELECT SUSER_SNAME()", (), None).ok();
//! # Ok(()) }
//! ```
//!
//! # Which mode
//!
//! Token mode is preferred: [`Settings::token`] as a table (`TOKEN = { source = "managed-identity" }`)
//! gets tokens through `mssql-entra-token`, cached and renewed ahead of expiry, one upstream
//! call for many connections. The driver refuses `ActiveDirectoryDefault`,
//! `…ManagedIdentity`, `…WorkloadIdentity` and `…DeviceCode`; written in `extra_params` they are
//! served in token mode by the matching source (logged at `info`). `ActiveDirectoryMsi` stays
//! the driver's own mode, but the driver calls the identity endpoint on every connect:
//! `TOKEN = { source = "managed-identity" }` caches instead. `ActiveDirectoryPassword` logs a
//! deprecation warning; `ActiveDirectoryInteractive` off Windows fails before any I/O. See
//! `docs/auth-modes.md` for every mode's settings and grants.
//!
//! # Feature flags
//!
//! One feature per auth mode. A mode that was not compiled in is refused at run time with
//! [`Error::AuthModeNotEnabled`], naming the feature; features only add modes.
//!
//! | feature | enables |
//! |---|---|
//! | `access-token` (default) | `TOKEN = "<token>"` / `TOKEN_ENV`: a literal access token; in code, any credential through `lower::token::sources::FnTokenSource` |
//! | `managed-identity` (default) | `TOKEN = { source = "managed-identity" }`, `Authentication=ActiveDirectoryManagedIdentity` (token mode), the driver's `ActiveDirectoryMsi` |
//! | `service-principal` (default) | `TOKEN = { source = "client-secret" }`, the driver's `ActiveDirectoryServicePrincipal` |
//! | `service-principal-certificate` | `TOKEN = { source = "client-certificate" }` |
//! | `workload-identity` | `TOKEN = { source = "workload-identity" }`, `Authentication=ActiveDirectoryWorkloadIdentity` |
//! | `integrated` | the driver's `ActiveDirectoryIntegrated` (Kerberos) |
//! | `interactive` | the driver's `ActiveDirectoryInteractive` (Windows only) |
//! | `default-chain` | `TOKEN = { source = "default" }`, `Authentication=ActiveDirectoryDefault` (the explicit chain) |
//! | `password` | the driver's `ActiveDirectoryPassword` (deprecated) |
//! | `developer-tools` | `TOKEN = { source = "developer-tools" }` (Azure CLI, azd) |
//! | `device-code` | `TOKEN = { source = "device-code" }`, `Authentication=ActiveDirectoryDeviceCode` |
//! | `full` | all of the above |
//!
//! The `default` chain's feature is called `default-chain` because Cargo reserves `default`.
//! SQL logins (`USER`/`PASSWORD` without `Authentication`) and DSNs need no feature.
//!
//! # Secrets
//!
//! Passwords, client secrets and tokens never appear in `Debug`, `Display`, errors or logs of
//! this crate: [`Settings`] and [`Plan`] have hand-written `Debug`s, connection strings print
//! masked, and settings errors name keys, never values. Secrets can stay out of settings files
//! altogether (`PASSWORD_ENV`, `TOKEN_ENV`, `TOKEN.client_secret_env`).
//!
//! # Stability
//!
//! Error message texts and log lines are not API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod plan;
mod pool;
mod settings;

pub use error::Error;
pub use plan::{AuthMode, Plan, ResolveOptions};
pub use pool::{
    ConnectionManager, Pool, PoolConnection, PooledConnection, DEFAULT_MAX_LIFETIME,
    TOKEN_EXPIRY_MARGIN,
};
pub use settings::{
    DeveloperToolSetting, Options, PoolSettings, Settings, SourceKind, TokenSetting,
    TokenSourceSettings, ENV_KEYS,
};

pub use mssql_entra_connstr::{Authentication, ConnectionString, TargetOs};
pub use mssql_entra_odbc::{Auth, Connector, ConnectorOptions, EntraConnection};
pub use mssql_entra_token::{Scope, Secret, TokenSource};

/// The crates below the facade, for what it does not re-export by name.
pub mod lower {
    pub use mssql_entra_connstr as connstr;
    pub use mssql_entra_odbc as odbc;
    pub use mssql_entra_token as token;
}

/// Resolves `settings` and opens one connection, blocking. For more than one connection build the
/// [`Plan`] (or its [`Connector`]) once and reuse it, or use a [`Pool`]: the token cache lives in
/// the plan.
pub fn connect(settings: &Settings) -> Result<EntraConnection, Error> {
    Ok(settings.resolve()?.connector()?.connect()?)
}

/// [`connect`] on tokio: the token fetch is awaited and the ODBC calls run in `spawn_blocking`.
pub async fn connect_async(settings: &Settings) -> Result<EntraConnection, Error> {
    let connector = settings.resolve()?.connector()?;
    Ok(connector.connect_async().await?)
}

impl Plan {
    /// Opens one connection with this plan, blocking.
    pub fn connect(&self) -> Result<EntraConnection, Error> {
        Ok(self.connector()?.connect()?)
    }

    /// Opens one connection with this plan on tokio.
    pub async fn connect_async(&self) -> Result<EntraConnection, Error> {
        Ok(self.connector()?.connect_async().await?)
    }
}

/// Compile-time proof that the public types can cross threads.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Settings>();
    is::<Plan>();
    is::<Error>();
    is::<Pool>();
    is::<ConnectionManager>();
}

//! The connector between `mssql-entra-token` and the Microsoft ODBC Driver 18, through `odbc-api`.
//!
//! A [`Connector`] opens [`EntraConnection`]s (an `odbc_api::Connection` inside) in one of three
//! ways ([`Auth`]): with an access token from a `TokenSource` for every physical connection
//! (`SQL_COPT_SS_ACCESS_TOKEN`, the token buffer owned together with the connection so that the
//! driver can never read a freed token), with one of the driver's own `Authentication=` modes, or
//! as the connection string says. Before any I/O it validates the connection string for the mode
//! (mssql-entra-connstr), refuses the modes the driver does not implement
//! (`ActiveDirectoryDefault`, `…ManagedIdentity`, `…WorkloadIdentity`, `…DeviceCode`: the facade
//! provides them in token mode), refuses `ActiveDirectoryInteractive` off Windows, and checks the
//! installed driver's version against the mode's minimum. It applies a login timeout, retries Azure
//! SQL's transient login errors with bounded exponential backoff (a new token each attempt), and
//! turns the driver's diagnostics into one matchable [`Error`] with a [`Diagnosis`]: cause, fix and
//! an anchor into `docs/troubleshooting.md`. A blocking API and an async one on tokio (token fetch
//! awaited, ODBC calls in `spawn_blocking`) are offered.
//!
//! odbc-api keeps only the first diagnostic record of a failed connect, and the driver often puts
//! the telling one second (`HYT00`, then `FA004` and `CE269`…). [`Connector::check`] therefore logs
//! in once on an ODBC handle of its own and reports every record, plus the driver's
//! `SQL_DRIVER_VER`: use it to explain a failure (the `mssql-entra check` command).
//!
//! It deliberately does not acquire tokens (that is `mssql-entra-token`; wrap sources in
//! `CachedTokenSource`), parse settings files, pool connections or pick a mode for the user (that is
//! the `mssql-entra` facade), and it never enables driver-manager pooling, which ignores the token
//! attribute and would hand one identity's connection to another.
//!
//! # Secrets
//!
//! No `Debug`, `Display`, error or log line of this crate contains a token, password or client
//! secret. Driver messages are redacted before they are stored ([`DiagRecord`]): the driver echoes
//! identity-provider responses in some records. Connection strings are shown only through their
//! masking `Display`. Note that odbc-api itself logs every diagnostic record of a failed call at
//! `warn` level through the `log` crate, unredacted; applications that route `log` output somewhere
//! should filter the `odbc_api` target.
//!
//! # Unsafe code
//!
//! This is the one crate of the workspace that uses `unsafe`, each use with a SAFETY comment: the
//! call to odbc-api's `connect_with_connection_string_and_driver_specific_options`, the raw-handle
//! login of [`Connector::check`] (`SQLSetConnectAttr` with the token, `SQLGetInfo`), the driver-list
//! walk (`SQLDrivers`, done here because odbc-api 29.3's `Environment::drivers` writes one byte past
//! its buffer with unixODBC 2.3.11, found with valgrind), and the code `self_cell` generates for the
//! token/connection pair.
#![warn(missing_docs)]

mod check;
mod connection;
mod connector;
mod diagnosis;
mod drivers;
mod error;
mod redact;
mod retry;
mod version;

pub use check::CheckReport;
pub use connection::EntraConnection;
pub use connector::{Auth, Connector, ConnectorOptions};
pub use diagnosis::{Diagnosis, DiagnosisKind};
pub use drivers::driver_library;
pub use error::{DiagRecord, Error, ModeName, OdbcFailure};
pub use retry::{is_transient_native_error, RetryPolicy, TRANSIENT_LOGIN_ERRORS};
pub use version::{minimum_access_token_version, minimum_driver_version, DriverVersion};

/// Compile-time proof that the public types can cross threads.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<EntraConnection>();
    send_sync::<Connector>();
    send_sync::<Error>();
}

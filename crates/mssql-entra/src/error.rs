//! [`Error`]: the one error type of the facade.

use std::path::PathBuf;

/// Everything that can go wrong between a settings file and an open connection.
///
/// Match on the variants; the message text is not API. `Display` shows one level; the cause of a
/// wrapped error is in [`source`](std::error::Error::source). No variant carries a password, a
/// client secret or a token: settings errors name keys and environment variables, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings text is not valid TOML or JSON, has an unknown key or a value of the wrong
    /// type. `message` comes from the parser, with the key and position; the offending line is
    /// never quoted (it might hold a secret).
    #[error("cannot read the {format} settings: {message}")]
    Parse {
        /// `TOML`, `JSON` or `environment`.
        format: &'static str,
        /// What the parser says, with the key and position.
        message: String,
    },

    /// A setting is missing, malformed or impossible together with another one.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// The key at fault, as written in the settings (`TOKEN.client_id`, `OPTIONS.extra_params`).
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A `*_env` key names an environment variable that is not set (or is empty).
    #[error("`{key}` names the environment variable `{var}`, which is not set or empty; set it or give the value another way")]
    MissingEnv {
        /// The settings key (`PASSWORD_ENV`, `TOKEN.client_secret_env`, ...).
        key: String,
        /// The variable it names.
        var: String,
    },

    /// A file named in the settings cannot be read.
    #[error("cannot read `{}` named by `{key}`", path.display())]
    ReadFile {
        /// The settings key (`TOKEN.ca_file`, ...).
        key: String,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The settings ask for an auth mode whose cargo feature was not compiled in.
    #[error("auth mode {mode} needs cargo feature `{feature}` of mssql-entra; enable it (or `full`) in Cargo.toml")]
    AuthModeNotEnabled {
        /// The mode as the settings name it.
        mode: &'static str,
        /// The feature of `mssql-entra` that provides it.
        feature: &'static str,
    },

    /// `ActiveDirectoryInteractive` off Windows: refused before any I/O, because the driver would
    /// take its Kerberos path and report a misleading `ActiveDirectoryIntegrated` error.
    #[error("`Authentication=ActiveDirectoryInteractive` works only on Windows; here use `TOKEN = {{ source = \"device-code\", tenant_id = \"...\", client_id = \"...\" }}` (sign in on any device) or `TOKEN = {{ source = \"developer-tools\" }}` (after `az login`)")]
    InteractiveNotWindows,

    /// The connection string built from the settings breaks a rule of the driver.
    #[error("the connection string built from the settings is invalid")]
    ConnectionString(#[source] mssql_entra_connstr::Error),

    /// A token source could not be built, or could not produce a token.
    #[error("could not get an access token")]
    Token(#[source] mssql_entra_token::TokenError),

    /// The connector refused the settings or the connection failed.
    #[error("could not connect")]
    Odbc(#[source] mssql_entra_odbc::Error),

    /// The pool could not hand out a connection within its `connection_timeout`. The last error
    /// of opening a connection, if there was one, is the [`source`](std::error::Error::source).
    #[error("the connection pool had no connection within {timeout:?}")]
    PoolTimeout {
        /// `OPTIONS.pool.connection_timeout`.
        timeout: std::time::Duration,
        /// The last error of opening a connection.
        #[source]
        last_error: Option<std::sync::Arc<Error>>,
    },

    /// A pooled connection was retired: older than the pool's `max_lifetime`, or its token is
    /// about to expire. The pool replaces it; callers see this only from a manager used directly.
    #[error("connection retired: {reason}")]
    Retired {
        /// Why.
        reason: &'static str,
    },

    /// A blocking task did not finish (the runtime shut down or it panicked).
    #[error("runtime: {reason}")]
    Runtime {
        /// What happened.
        reason: String,
    },
}

impl From<mssql_entra_connstr::Error> for Error {
    fn from(e: mssql_entra_connstr::Error) -> Self {
        Error::ConnectionString(e)
    }
}

impl From<mssql_entra_token::TokenError> for Error {
    fn from(e: mssql_entra_token::TokenError) -> Self {
        Error::Token(e)
    }
}

impl From<mssql_entra_odbc::Error> for Error {
    fn from(e: mssql_entra_odbc::Error) -> Self {
        Error::Odbc(e)
    }
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

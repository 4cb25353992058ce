//! [`Error`], the one error type of this crate, and the driver's diagnostic records.

use std::fmt;

use mssql_entra_connstr::Authentication;
use mssql_entra_token::TokenError;

use crate::diagnosis::Diagnosis;
use crate::redact::redact;
use crate::version::DriverVersion;

/// One diagnostic record of the driver or the driver manager: SQLSTATE, native error and message.
///
/// The message has already been through redaction: anything that looks like a token or a secret
/// (the driver echoes identity-provider responses in some records) is replaced by `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagRecord {
    /// The five-character SQLSTATE, e.g. `28000`, `HYT00`, `FA004`, `CE276`.
    pub sqlstate: String,
    /// The native error: the SQL Server error number for server errors (18456, 40613), a TCP or
    /// TLS provider code otherwise, 0 for most driver-side errors.
    pub native_error: i32,
    /// The message text, redacted.
    pub message: String,
}

impl DiagRecord {
    /// A record; `message` is redacted here.
    pub fn new(sqlstate: impl Into<String>, native_error: i32, message: &str) -> Self {
        Self {
            sqlstate: sqlstate.into(),
            native_error,
            message: redact(message),
        }
    }
}

impl fmt::Display for DiagRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] native={} {}",
            self.sqlstate, self.native_error, self.message
        )
    }
}

/// A failed ODBC call: which function, every diagnostic record it left, and what we make of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdbcFailure {
    /// The ODBC function that failed, e.g. `SQLDriverConnect`.
    pub function: &'static str,
    /// The diagnostic records, in the driver's order (possibly empty: the driver sometimes fails
    /// without any, measured for a malformed FEDAUTHINFO).
    ///
    /// odbc-api 29 reports only the first record of a failed connect and frees the handle before
    /// the others can be read, so today this holds at most one record; the diagnosis rules
    /// nevertheless consider every record given to them.
    pub records: Vec<DiagRecord>,
    /// The cause, when we recognise it.
    pub diagnosis: Option<Diagnosis>,
    /// How many connection attempts were made (more than one after transient-error retries).
    pub attempts: u32,
}

impl OdbcFailure {
    /// The first record's SQLSTATE.
    pub fn sqlstate(&self) -> Option<&str> {
        self.records.first().map(|r| r.sqlstate.as_str())
    }

    /// The first non-zero native error (the SQL Server error number for server errors).
    pub fn native_error(&self) -> Option<i32> {
        self.records
            .iter()
            .map(|r| r.native_error)
            .find(|n| *n != 0)
    }

    /// Whether any record carries `sqlstate`.
    pub fn has_sqlstate(&self, sqlstate: &str) -> bool {
        self.records.iter().any(|r| r.sqlstate == sqlstate)
    }
}

impl fmt::Display for OdbcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.function)?;
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        match self.records.first() {
            Some(first) => write!(f, ": {first}")?,
            None => f.write_str(": the driver left no diagnostic record")?,
        }
        for more in self.records.iter().skip(1) {
            write!(f, "; {more}")?;
        }
        if let Some(d) = &self.diagnosis {
            write!(f, " — {}: {} (see {})", d.summary, d.fix, d.anchor)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong while opening a connection.
///
/// Match on the variants; the message text is not API and may change. No variant contains a token,
/// a password or a client secret: driver messages are redacted ([`DiagRecord`]), connection strings
/// are never included, and token errors come from `mssql-entra-token`, which redacts its own.
/// [`Error::diagnosis`] gives the cause and the fix where we know them, with an anchor into
/// `docs/troubleshooting.md`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string breaks a rule of the driver (checked before the driver sees it).
    #[error("the connection string is not valid for this connection")]
    ConnectionString(#[source] mssql_entra_connstr::Error),

    /// The mode is one the driver refuses (`ActiveDirectoryDefault`, `…ManagedIdentity`,
    /// `…WorkloadIdentity`, `…DeviceCode`); mssql-entra provides it in token mode.
    #[error("`Authentication={mode}` is not implemented by the ODBC driver; the mssql-entra facade provides it in token mode (configure `TOKEN` with a token source), or use Auth::Token with a mssql-entra-token source here")]
    ProvidedInTokenMode {
        /// The mode.
        mode: Authentication,
    },

    /// `ActiveDirectoryInteractive` off Windows: refused before any I/O (the driver would take a
    /// Kerberos path and report a misleading `ActiveDirectoryIntegrated` error).
    #[error("`Authentication={mode}` works only on Windows; here sign in with the device code flow (token mode, `device-code`) or the Azure CLI (`developer-tools`) instead")]
    InteractiveNotWindows {
        /// The mode.
        mode: Authentication,
    },

    /// The installed driver is older than the first version that implements the mode.
    #[error("`Authentication={mode}` needs Microsoft ODBC Driver {minimum} or later, but `{driver}` is version {installed}; install ODBC Driver 18 (`cargo xtask setup` provisions it for this project)")]
    DriverTooOld {
        /// The mode, or `None` for the access-token attribute.
        mode: ModeName,
        /// The driver name from the connection string.
        driver: String,
        /// The installed version.
        installed: DriverVersion,
        /// The first version with the mode.
        minimum: DriverVersion,
    },

    /// Token mode with a driver that is not the Microsoft ODBC Driver for SQL Server: the access
    /// token attribute (1256) means nothing, or something else, to other drivers.
    #[error("`Driver={{{driver}}}` loads `{library}`, which is not the Microsoft ODBC Driver for SQL Server; access tokens work only with it (if it is a renamed Microsoft driver, give its version with ConnectorOptions::driver_version)")]
    NotMicrosoftDriver {
        /// The driver name from the connection string.
        driver: String,
        /// The library the driver manager loads for it.
        library: String,
    },

    /// The token source failed; nothing was sent to the driver.
    #[error("could not get an access token for the connection")]
    Token(#[source] TokenError),

    /// The ODBC driver manager could not be initialised (unixODBC missing or unusable).
    #[error("could not set up the ODBC environment: {message}; install unixODBC (`apt-get install unixodbc`, or `cargo xtask setup`)")]
    Environment {
        /// What odbc-api reported.
        message: String,
    },

    /// An ODBC call failed; the records and the diagnosis are in the failure.
    #[error("{0}")]
    Odbc(Box<OdbcFailure>),

    /// A blocking connect was called on a thread that runs an async runtime, or the blocking task
    /// of an async connect was lost.
    #[error("{reason}")]
    Runtime {
        /// What happened and what to use instead.
        reason: String,
    },
}

/// The name of what [`Error::DriverTooOld`] needed: an `Authentication=` mode or the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeName {
    /// An `Authentication=` mode.
    Authentication(Authentication),
    /// The access-token attribute (`SQL_COPT_SS_ACCESS_TOKEN`).
    AccessToken,
}

impl fmt::Display for ModeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeName::Authentication(mode) => f.write_str(mode.as_str()),
            ModeName::AccessToken => f.write_str("(access token)"),
        }
    }
}

impl Error {
    /// The cause and the fix, where we know them.
    pub fn diagnosis(&self) -> Option<Diagnosis> {
        match self {
            Error::Odbc(failure) => failure.diagnosis.clone(),
            Error::ProvidedInTokenMode { mode } => Some(Diagnosis::provided_in_token_mode(*mode)),
            Error::InteractiveNotWindows { .. } => Some(Diagnosis::interactive_not_windows()),
            Error::DriverTooOld {
                mode,
                installed,
                minimum,
                ..
            } => Some(Diagnosis::driver_too_old(*mode, *installed, *minimum)),
            Error::Token(e) => Some(Diagnosis::token_source_failed(e)),
            _ => None,
        }
    }

    /// The ODBC failure, if this is one.
    pub fn odbc(&self) -> Option<&OdbcFailure> {
        match self {
            Error::Odbc(f) => Some(f),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: Azure SQL's transient login errors (after the
    /// connector's own retries were used up) and transient token-source errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Odbc(f) => f
                .records
                .iter()
                .any(|r| crate::retry::is_transient_native_error(r.native_error)),
            Error::Token(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Converts an odbc-api error into our records, redacting the message.
pub(crate) fn records_of(error: &odbc_api::Error) -> (&'static str, Vec<DiagRecord>) {
    match error {
        odbc_api::Error::Diagnostics { record, function } => {
            let message = odbc_api::handles::slice_to_cow_utf8(&record.message);
            (
                function,
                vec![DiagRecord::new(
                    record.state.as_str().to_owned(),
                    record.native_error,
                    &message,
                )],
            )
        }
        odbc_api::Error::NoDiagnostics { function } => (function, Vec::new()),
        other => (
            "odbc-api",
            vec![DiagRecord::new("HY000", 0, &other.to_string())],
        ),
    }
}

//! [`Connector`]: validated settings that open [`EntraConnection`]s, blocking or async.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mssql_entra_connstr::{
    Authentication, ConnectionString, DangerOptions, TargetOs, ValidateOptions,
};
use mssql_entra_token::{AccessToken, Scope, TokenSource, UnverifiedClaims};
use odbc_api::sys::SsAccessToken;
use odbc_api::{ConnectionOptions, Environment, MicrosoftConnectionOptions};
use time::OffsetDateTime;

use crate::check::CheckReport;
use crate::connection::EntraConnection;
use crate::diagnosis::{diagnose, Context, LoginMode};
use crate::drivers::driver_library;
use crate::error::{records_of, DiagRecord, Error, ModeName, OdbcFailure};
use crate::retry::{is_transient_native_error, RetryPolicy};
use crate::version::{minimum_access_token_version, minimum_driver_version, DriverVersion};

/// How connections authenticate.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// Token mode: every physical connection gets a token from the source (wrap it in
    /// `CachedTokenSource`, as the facade does, so that this costs one upstream call per token
    /// lifetime, not per connection) for the scope, handed to the driver with
    /// `SQL_COPT_SS_ACCESS_TOKEN`. Only for the Microsoft driver.
    Token(Arc<dyn TokenSource>, Scope),
    /// One of the driver's own `Authentication=` modes. It is written into the connection string
    /// (which must not name another one).
    Driver(Authentication),
    /// Whatever the connection string says: its `Authentication=` mode if it has one (treated like
    /// [`Auth::Driver`]), otherwise SQL authentication or a DSN.
    ConnectionString,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(source, scope) => {
                f.debug_tuple("Token").field(source).field(scope).finish()
            }
            Auth::Driver(mode) => f.debug_tuple("Driver").field(mode).finish(),
            Auth::ConnectionString => f.write_str("ConnectionString"),
        }
    }
}

/// Optional settings of a [`Connector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectorOptions {
    /// `SQL_ATTR_LOGIN_TIMEOUT`, rounded up to whole seconds; `None` keeps the driver's default
    /// (15 s). Default: 30 s. Keep it short in tests: after a failed token fetch in a driver mode,
    /// the driver reports the failure only when this expires (measured).
    pub login_timeout: Option<Duration>,
    /// Retries of Azure SQL's transient login errors.
    pub retry: RetryPolicy,
    /// The driver version, when it cannot be read from the driver's library name (a DSN, a
    /// renamed library). Overrides what is read.
    pub driver_version: Option<DriverVersion>,
    /// Where the connection is made; only "Windows or not" matters (Interactive).
    pub target_os: TargetOs,
    /// Checks to weaken, e.g. allowing `Encrypt=no` with a token against a local test server.
    pub danger: DangerOptions,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        Self {
            login_timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
            driver_version: None,
            target_os: TargetOs::current(),
            danger: DangerOptions::default(),
        }
    }
}

impl ConnectorOptions {
    /// Sets [`login_timeout`](Self::login_timeout).
    pub fn with_login_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.login_timeout = timeout;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`driver_version`](Self::driver_version).
    pub fn with_driver_version(mut self, version: DriverVersion) -> Self {
        self.driver_version = Some(version);
        self
    }

    /// Sets [`target_os`](Self::target_os).
    pub fn with_target_os(mut self, os: TargetOs) -> Self {
        self.target_os = os;
        self
    }

    /// Sets [`danger`](Self::danger).
    pub fn with_danger(mut self, danger: DangerOptions) -> Self {
        self.danger = danger;
        self
    }
}

/// Opens connections through the Microsoft ODBC Driver 18 with Entra ID.
///
/// Everything that can be checked without I/O is checked by [`Connector::new`]: the connection
/// string against the driver's rules for the chosen mode, the modes the driver refuses, Interactive
/// off Windows, and the installed driver's version against the mode's minimum. Cloning is cheap
/// (an `Arc`), and a connector can be shared between threads.
///
/// # Driver-manager pooling
///
/// Connections are opened on odbc-api's process-wide environment, which this crate never puts into
/// driver-manager pooling mode. Do not enable pooling (`Environment::set_connection_pooling`, or
/// `Pooling=Yes` in odbcinst.ini) in a process that uses token mode: the driver manager ignores the
/// token attribute when it matches pooled connections and would hand one identity's connection to
/// another. Pool [`EntraConnection`]s instead (the facade does, with r2d2). This cannot be checked at
/// run time: unixODBC answers `SQLGetEnvAttr(SQL_ATTR_CONNECTION_POOLING)` with 0 even when pooling
/// was switched on process-wide or in odbcinst.ini (measured, unixODBC 2.3.11).
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) connection_string: ConnectionString,
    auth: Auth,
    mode: LoginMode,
    options: ConnectorOptions,
    driver: Option<String>,
    driver_version: Option<DriverVersion>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection string's Display masks PWD and other secrets.
        f.debug_struct("Connector")
            .field(
                "connection_string",
                &self.inner.connection_string.to_string(),
            )
            .field("auth", &self.inner.auth)
            .field("driver_version", &self.inner.driver_version)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// odbc-api's process-wide environment (never in pooling mode).
fn environment() -> Result<&'static Environment, Error> {
    odbc_api::environment().map_err(|e| Error::Environment {
        message: e.to_string(),
    })
}

/// A runtime for the token fetch of blocking connects; never dropped, so dropping a `Connector`
/// inside an async context cannot panic.
fn blocking_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mssql-entra-odbc-token")
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime {
            reason: format!("could not start the token runtime for blocking connects: {e}"),
        })?;
    Ok(RUNTIME.get_or_init(|| rt))
}

impl Connector {
    /// Validates `connection_string` for `auth` and prepares to connect. No network I/O; it reads
    /// the driver manager's driver list to learn the driver's version.
    pub fn new(
        connection_string: ConnectionString,
        auth: Auth,
        options: ConnectorOptions,
    ) -> Result<Self, Error> {
        let mut cs = connection_string;
        let mode = match &auth {
            Auth::Token(..) => LoginMode::Token,
            Auth::Driver(mode) => {
                match cs.authentication().map_err(Error::ConnectionString)? {
                    Some(existing) if existing != *mode => {
                        return Err(Error::ConnectionString(
                            mssql_entra_connstr::Error::ConflictingKey {
                                existing: format!("Authentication={existing}"),
                                incoming: format!("Authentication={mode}"),
                            },
                        ))
                    }
                    Some(_) => {}
                    None => {
                        cs.set("Authentication", mode.as_str());
                    }
                }
                LoginMode::Driver(*mode)
            }
            Auth::ConnectionString => match cs.authentication().map_err(Error::ConnectionString)? {
                Some(mode) => LoginMode::Driver(mode),
                None => LoginMode::Plain,
            },
        };
        if let LoginMode::Driver(mode) = mode {
            if !mode.driver_implements() {
                return Err(Error::ProvidedInTokenMode { mode });
            }
            if mode.windows_only() && options.target_os != TargetOs::Windows {
                return Err(Error::InteractiveNotWindows { mode });
            }
        }
        cs.validate(&ValidateOptions {
            access_token: mode == LoginMode::Token,
            token_modes_provided: false,
            target_os: options.target_os,
            danger: options.danger,
        })
        .map_err(Error::ConnectionString)?;

        let driver = cs.get("Driver").map(str::to_owned);
        let library = match (&driver, options.driver_version) {
            (Some(name), None) => driver_library(name)?,
            _ => None,
        };
        let read_version = options.driver_version.or_else(|| {
            library
                .as_deref()
                .and_then(DriverVersion::from_library_path)
        });
        if let (LoginMode::Token, Some(name), Some(library), None) =
            (mode, &driver, &library, read_version)
        {
            return Err(Error::NotMicrosoftDriver {
                driver: name.clone(),
                library: library.clone(),
            });
        }
        if let (Some(installed), Some(name)) = (read_version, &driver) {
            let needed = match mode {
                LoginMode::Token => Some((
                    ModeName::AccessToken,
                    minimum_access_token_version(options.target_os),
                )),
                LoginMode::Driver(m) => minimum_driver_version(m, options.target_os)
                    .map(|v| (ModeName::Authentication(m), v)),
                LoginMode::Plain => None,
            };
            if let Some((what, minimum)) = needed {
                if installed < minimum {
                    return Err(Error::DriverTooOld {
                        mode: what,
                        driver: name.clone(),
                        installed,
                        minimum,
                    });
                }
            }
        }
        if mode == LoginMode::Driver(Authentication::Password) {
            tracing::warn!("ActiveDirectoryPassword is deprecated by Microsoft and cannot do MFA; prefer a service principal, managed identity or token mode");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                connection_string: cs,
                auth,
                mode,
                options,
                driver,
                driver_version: read_version,
            }),
        })
    }

    /// The installed driver's version, when it was known at [`Connector::new`].
    pub fn driver_version(&self) -> Option<DriverVersion> {
        self.inner.driver_version
    }

    /// The connection string as the driver will get it, with secrets masked (its `Display`).
    pub fn connection_string(&self) -> &ConnectionString {
        &self.inner.connection_string
    }

    /// Opens a connection, blocking the thread (token fetch included). Retries transient login
    /// errors per [`ConnectorOptions::retry`], with a new token from the source for each attempt.
    ///
    /// Fails with [`Error::Runtime`] on a thread that runs an async runtime: use
    /// [`connect_async`](Self::connect_async) there.
    pub fn connect(&self) -> Result<EntraConnection, Error> {
        self.refuse_inside_runtime("connect")?;
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let token = self.token_blocking()?;
            match self.inner.open(token, attempts) {
                Ok(conn) => return Ok(conn),
                Err(failure) => {
                    let delay = self.inner.options.retry.delay(attempts);
                    if !self.inner.retryable(&failure, attempts, started, delay) {
                        return Err(Error::Odbc(failure));
                    }
                    tracing::info!(
                        attempt = attempts,
                        native_error = failure.native_error(),
                        delay_ms = delay.as_millis() as u64,
                        "transient login error; retrying"
                    );
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// Opens a connection on tokio: the token fetch is awaited and the ODBC calls run in
    /// `spawn_blocking`. Retries like [`connect`](Self::connect), sleeping with `tokio::time`.
    pub async fn connect_async(&self) -> Result<EntraConnection, Error> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let token = self.token_async().await?;
            let inner = Arc::clone(&self.inner);
            let opened = tokio::task::spawn_blocking(move || inner.open(token, attempts))
                .await
                .map_err(|e| Error::Runtime {
                    reason: format!("the blocking connect task did not finish: {e}"),
                })?;
            match opened {
                Ok(conn) => return Ok(conn),
                Err(failure) => {
                    let delay = self.inner.options.retry.delay(attempts);
                    if !self.inner.retryable(&failure, attempts, started, delay) {
                        return Err(Error::Odbc(failure));
                    }
                    tracing::info!(
                        attempt = attempts,
                        native_error = failure.native_error(),
                        delay_ms = delay.as_millis() as u64,
                        "transient login error; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    /// Logs in once on a connection handle of its own and reports what the driver said, with every
    /// diagnostic record on failure (a normal connect keeps only the first one, see
    /// [`OdbcFailure::records`]) and the driver's `SQL_DRIVER_VER` on success. No retries. For
    /// `mssql-entra check` and for explaining a failed connect; blocking.
    pub fn check(&self) -> Result<CheckReport, Error> {
        self.refuse_inside_runtime("check")?;
        let token = self.token_blocking()?;
        self.inner.check_once(token)
    }

    /// [`check`](Self::check) on tokio: the token fetch is awaited, the ODBC calls run in
    /// `spawn_blocking`.
    pub async fn check_async(&self) -> Result<CheckReport, Error> {
        let token = self.token_async().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.check_once(token))
            .await
            .map_err(|e| Error::Runtime {
                reason: format!("the blocking check task did not finish: {e}"),
            })?
    }

    fn refuse_inside_runtime(&self, what: &str) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime {
                reason: format!("Connector::{what} blocks the thread and was called inside an async runtime; use Connector::{what}_async there"),
            });
        }
        Ok(())
    }

    fn token_blocking(&self) -> Result<Option<AccessToken>, Error> {
        match &self.inner.auth {
            Auth::Token(source, scope) => {
                let rt = blocking_runtime()?;
                let fetched = rt.block_on(source.get_token(&[scope.as_str()], None));
                Ok(Some(fetched.map_err(Error::Token)?))
            }
            _ => Ok(None),
        }
    }

    async fn token_async(&self) -> Result<Option<AccessToken>, Error> {
        match &self.inner.auth {
            Auth::Token(source, scope) => Ok(Some(
                source
                    .get_token(&[scope.as_str()], None)
                    .await
                    .map_err(Error::Token)?,
            )),
            _ => Ok(None),
        }
    }
}

impl Inner {
    pub(crate) fn login_timeout_sec(&self) -> Option<u32> {
        self.options.login_timeout.map(|t| {
            let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }

    /// A failure with its diagnosis.
    pub(crate) fn failure(
        &self,
        function: &'static str,
        records: Vec<DiagRecord>,
        token: Option<&AccessToken>,
        attempts: u32,
    ) -> Box<OdbcFailure> {
        let ctx = Context {
            mode: self.mode,
            claims: token.and_then(|t| UnverifiedClaims::from_jwt(t.token.expose_secret()).ok()),
            expected_resource: match &self.auth {
                Auth::Token(_, scope) => Some(scope.resource()),
                _ => None,
            },
            now: OffsetDateTime::now_utc(),
            driver: self.driver.clone(),
        };
        let diagnosis = diagnose(&records, &ctx);
        Box::new(OdbcFailure {
            function,
            records,
            diagnosis,
            attempts,
        })
    }

    fn retryable(
        &self,
        failure: &OdbcFailure,
        attempts: u32,
        started: Instant,
        delay: Duration,
    ) -> bool {
        failure
            .records
            .iter()
            .any(|r| is_transient_native_error(r.native_error))
            && self
                .options
                .retry
                .should_retry(attempts, started.elapsed(), delay)
    }

    /// One physical connect. Blocking.
    fn open(
        &self,
        token: Option<AccessToken>,
        attempts: u32,
    ) -> Result<EntraConnection, Box<OdbcFailure>> {
        let env = environment().map_err(|e| {
            Box::new(OdbcFailure {
                function: "SQLAllocHandle",
                records: vec![DiagRecord::new("HY000", 0, &e.to_string())],
                diagnosis: None,
                attempts,
            })
        })?;
        let options = ConnectionOptions {
            login_timeout_sec: self.login_timeout_sec(),
            packet_size: None,
        };
        let buffer = token
            .as_ref()
            .map(|t| SsAccessToken::from_text(t.token.expose_secret()));
        let text = self.connection_string.to_odbc_string();
        let result = EntraConnection::open(
            buffer,
            token.as_ref().map(|t| t.expires_on),
            attempts,
            |access_token| {
                let microsoft = MicrosoftConnectionOptions { access_token };
                // SAFETY: the only driver-specific attribute is SQL_COPT_SS_ACCESS_TOKEN, and only in
                // token mode, which is documented as Microsoft-driver-only (`Auth::Token`). The
                // token buffer is borrowed for the connection's lifetime `'a`, and
                // `EntraConnection` keeps the buffer alive until after the connection is dropped.
                #[allow(unsafe_code)]
                unsafe {
                    env.connect_with_connection_string_and_driver_specific_options(
                        &text, options, microsoft,
                    )
                }
            },
        );
        result.map_err(|e| {
            let (function, records) = records_of(&e);
            self.failure(function, records, token.as_ref(), attempts)
        })
    }
}

//! [`Pool`]: r2d2 over the connector, with connections retired before their lifetime or token ends.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mssql_entra_odbc::{Connector, EntraConnection};
use time::OffsetDateTime;

use crate::error::Error;
use crate::plan::Plan;
use crate::settings::{PoolSettings, Settings};

/// Default `OPTIONS.pool.max_lifetime`.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// A pooled token-mode connection is retired this long before its token expires, or after four
/// fifths of the token's remaining life at connect time when that is shorter (short-lived tokens).
pub const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A connection owned by the pool: the [`EntraConnection`] and when it was opened.
/// Dereferences to the `EntraConnection`.
pub struct PoolConnection {
    conn: EntraConnection,
    opened: Instant,
    /// How long the token had left when the connection was opened; scales the expiry margin.
    token_life_at_open: Option<Duration>,
}

impl PoolConnection {
    /// How long ago the connection was opened.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// The connection.
    pub fn entra_connection(&self) -> &EntraConnection {
        &self.conn
    }
}

impl Deref for PoolConnection {
    type Target = EntraConnection;
    fn deref(&self) -> &EntraConnection {
        &self.conn
    }
}

impl fmt::Debug for PoolConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConnection")
            .field("conn", &self.conn)
            .field("age", &self.age())
            .finish()
    }
}

/// The r2d2 [`ManageConnection`](r2d2::ManageConnection) of [`Pool`]: every new connection
/// comes from the [`Connector`], so in token mode it gets a valid token from the plan's shared
/// cached source. A connection is reported broken (and replaced) when it is older than
/// `max_lifetime`, when its token expires within [`TOKEN_EXPIRY_MARGIN`], or when the driver
/// marks it dead.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    connector: Connector,
    max_lifetime: Duration,
    last_error: Arc<Mutex<Option<Arc<Error>>>>,
}

impl ConnectionManager {
    /// A manager over `connector`, retiring connections at `max_lifetime`.
    pub fn new(connector: Connector, max_lifetime: Duration) -> Self {
        Self {
            connector,
            max_lifetime,
            last_error: Arc::default(),
        }
    }

    /// Why `conn` must be retired now, if it must.
    pub fn retire_reason(&self, conn: &PoolConnection) -> Option<&'static str> {
        retire_reason(
            conn.age(),
            conn.token_expires_on(),
            conn.token_life_at_open,
            self.max_lifetime,
            OffsetDateTime::now_utc(),
        )
    }
}

/// The rule behind [`ConnectionManager::retire_reason`], pure for tests.
pub(crate) fn retire_reason(
    age: Duration,
    token_expires_on: Option<OffsetDateTime>,
    token_life_at_open: Option<Duration>,
    max_lifetime: Duration,
    now: OffsetDateTime,
) -> Option<&'static str> {
    if age >= max_lifetime {
        return Some("older than the pool's max_lifetime");
    }
    if let Some(expires) = token_expires_on {
        if expires - now <= expiry_margin(token_life_at_open) {
            return Some("its access token is about to expire");
        }
    }
    None
}

/// How long before its token expires a connection is retired: [`TOKEN_EXPIRY_MARGIN`], or a fifth
/// of the token's life at connect time when that is shorter, so that a pool fed short-lived tokens
/// still uses each connection for most of its token's life instead of retiring it at check-out.
fn expiry_margin(token_life_at_open: Option<Duration>) -> Duration {
    match token_life_at_open {
        Some(life) => TOKEN_EXPIRY_MARGIN.min(life / 5),
        None => TOKEN_EXPIRY_MARGIN,
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PoolConnection;
    type Error = Error;

    fn connect(&self) -> Result<PoolConnection, Error> {
        match self.connector.connect() {
            Ok(conn) => {
                let token_life_at_open = conn.token_expires_on().map(|expires| {
                    let left = expires - OffsetDateTime::now_utc();
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                });
                Ok(PoolConnection {
                    conn,
                    opened: Instant::now(),
                    token_life_at_open,
                })
            }
            Err(e) => {
                // Kept so that a timed-out `get` can say why; r2d2 keeps only a string.
                let shared = Arc::new(Error::Odbc(e.clone()));
                tracing::warn!(error = %ErrorChain(&shared), "pool could not open a connection");
                if let Ok(mut slot) = self.last_error.lock() {
                    *slot = Some(shared);
                }
                Err(Error::Odbc(e))
            }
        }
    }

    fn is_valid(&self, conn: &mut PoolConnection) -> Result<(), Error> {
        if let Some(reason) = self.retire_reason(conn) {
            return Err(Error::Retired { reason });
        }
        match conn.is_dead() {
            Ok(false) => Ok(()),
            _ => Err(Error::Retired {
                reason: "the driver reports the connection dead",
            }),
        }
    }

    fn has_broken(&self, conn: &mut PoolConnection) -> bool {
        self.retire_reason(conn).is_some() || conn.is_dead().unwrap_or(true)
    }
}

/// Every level of an error, `: `-separated (our messages are redacted at every level).
struct ErrorChain<'a>(&'a Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A pooled connection; dereferences to [`PoolConnection`] and so to [`EntraConnection`].
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// A connection pool (r2d2) whose new connections always get a valid token from the plan's
/// shared cached source, and whose connections are retired before `OPTIONS.pool.max_lifetime`
/// (default 30 min) and before their token expires (a minute before, or a fifth of the token's life
/// for short-lived tokens).
///
/// Cloning is cheap and shares the pool. [`get`](Self::get) blocks;
/// [`get_async`](Self::get_async) runs it in `spawn_blocking`.
///
/// ```no_run
/// # fn demo() -> Result<(), mssql_entra::Error> {
/// let settings = mssql_entra::Settings::from_toml_str(r#"
///     HOST = "myserver.database.windows.net"
///     NAME = "app"
///     TOKEN = { source = "managed-identity" }
///     OPTIONS = { pool = { max_size = 8, max_lifetime = 900 } }
/// "#)?;
/// let pool = mssql_entra::Pool::new(&settings)?;
/// let conn = pool.get()?;
/// conn.connection().execute("SELECT 1", (), None).ok();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    last_error: Arc<Mutex<Option<Arc<Error>>>>,
    timeout: Duration,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state();
        f.debug_struct("Pool")
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .field("max_size", &self.inner.max_size())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Resolves `settings` and builds a pool. Blocks while it opens `OPTIONS.pool.min_idle`
    /// connections (default 0): in async code use [`new_async`](Self::new_async).
    pub fn new(settings: &Settings) -> Result<Self, Error> {
        Self::from_plan(&settings.resolve()?)
    }

    /// [`new`](Self::new) in `spawn_blocking`.
    pub async fn new_async(settings: &Settings) -> Result<Self, Error> {
        let plan = settings.resolve()?;
        tokio::task::spawn_blocking(move || Self::from_plan(&plan))
            .await
            .map_err(|e| Error::Runtime {
                reason: format!("the pool builder task did not finish: {e}"),
            })?
    }

    /// A pool for a resolved plan.
    pub fn from_plan(plan: &Plan) -> Result<Self, Error> {
        Self::from_connector(plan.connector()?, plan.pool_settings())
    }

    /// A pool over any connector, e.g. one built in code with your own `TokenSource`
    /// (wrap it in `CachedTokenSource` so that the pool's connections share one token).
    pub fn from_connector(connector: Connector, s: &PoolSettings) -> Result<Self, Error> {
        let max_lifetime = s.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
        let manager = ConnectionManager::new(connector, max_lifetime);
        let last_error = Arc::clone(&manager.last_error);
        let timeout = s.connection_timeout.unwrap_or(Duration::from_secs(30));
        let builder = r2d2::Pool::builder()
            .max_size(s.max_size.unwrap_or(10))
            .min_idle(Some(s.min_idle.unwrap_or(0)))
            .max_lifetime(Some(max_lifetime))
            .idle_timeout(Some(s.idle_timeout.unwrap_or(Duration::from_secs(600))))
            .connection_timeout(timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler));
        let inner = builder.build(manager).map_err(|_| Error::PoolTimeout {
            timeout,
            last_error: last_error.lock().ok().and_then(|e| e.clone()),
        })?;
        Ok(Self {
            inner,
            last_error,
            timeout,
        })
    }

    /// A connection, waiting up to `OPTIONS.pool.connection_timeout` (default 30 s). Blocks.
    pub fn get(&self) -> Result<PooledConnection, Error> {
        self.inner.get().map_err(|_| Error::PoolTimeout {
            timeout: self.timeout,
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        })
    }

    /// [`get`](Self::get) in `spawn_blocking`, for async code.
    pub async fn get_async(&self) -> Result<PooledConnection, Error> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || pool.get())
            .await
            .map_err(|e| Error::Runtime {
                reason: format!("the pool get task did not finish: {e}"),
            })?
    }

    /// Open connections and idle ones.
    pub fn state(&self) -> (u32, u32) {
        let s = self.inner.state();
        (s.connections, s.idle_connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retires_on_age_and_token_expiry() {
        let now = OffsetDateTime::now_utc();
        let life = Duration::from_secs(600);
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            retire_reason(Duration::from_secs(10), None, None, life, now),
            None
        );
        assert!(retire_reason(life, None, None, life, now).is_some());
        let later = now + time::Duration::minutes(10);
        assert_eq!(
            retire_reason(Duration::from_secs(10), Some(later), hour, life, now),
            None
        );
        let soon = now + time::Duration::seconds(30);
        assert_eq!(
            retire_reason(Duration::from_secs(10), Some(soon), hour, life, now),
            Some("its access token is about to expire")
        );
        let past = now - time::Duration::seconds(1);
        assert!(retire_reason(Duration::ZERO, Some(past), hour, life, now).is_some());
    }

    #[test]
    fn the_expiry_margin_scales_down_for_short_lived_tokens() {
        let now = OffsetDateTime::now_utc();
        let life = Duration::from_secs(600);
        let five_seconds = Some(Duration::from_secs(5));
        // A 5-second token opened just now: usable for four of its five seconds, not retired at once.
        let in_4500ms = now + time::Duration::milliseconds(4500);
        assert_eq!(
            retire_reason(Duration::ZERO, Some(in_4500ms), five_seconds, life, now),
            None
        );
        let in_900ms = now + time::Duration::milliseconds(900);
        assert!(retire_reason(Duration::ZERO, Some(in_900ms), five_seconds, life, now).is_some());
        assert_eq!(expiry_margin(five_seconds), Duration::from_secs(1));
        assert_eq!(
            expiry_margin(Some(Duration::from_secs(3600))),
            TOKEN_EXPIRY_MARGIN
        );
        assert_eq!(expiry_margin(None), TOKEN_EXPIRY_MARGIN);
    }
}

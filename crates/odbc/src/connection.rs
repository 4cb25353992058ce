//! [`EntraConnection`]: an `odbc_api::Connection` owned together with the token buffer it uses.

use std::fmt;

use odbc_api::sys::SsAccessToken;
use odbc_api::Connection;
use time::OffsetDateTime;

/// The dependent half of the cell: a connection that borrows the token (and the `'static`
/// environment).
type BorrowingConnection<'a> = Connection<'a>;

// The token buffer is the owner; the connection borrows it for its whole life. self_cell drops the
// dependent (the connection: SQLDisconnect + SQLFreeHandle) before the owner (the token), and no
// safe code can move the token out while the connection lives: the driver keeps the pointer given
// with SQL_COPT_SS_ACCESS_TOKEN and may read it again, e.g. when it silently reconnects.
self_cell::self_cell!(
    struct TokenAndConnection {
        owner: Option<Box<SsAccessToken>>,

        #[covariant]
        dependent: BorrowingConnection,
    }
);

/// An open connection, and in token mode the access-token buffer the driver keeps a pointer to.
///
/// The two are owned together: the buffer is allocated before the connection, borrowed by it for
/// its whole life, and freed only after the connection is closed, so the driver can never read a
/// freed token (the Architecture Invariant of this crate, enforced by the borrow checker through
/// odbc-api's lifetimes, not by convention).
///
/// Use [`connection`](Self::connection) for queries:
///
/// ```no_run
/// # fn f(conn: &mssql_entra_odbc::EntraConnection) -> Result<(), odbc_api::Error> {
/// conn.connection().execute("SELECT 1", (), None)?;
/// # Ok(()) }
/// ```
///
/// The borrow checker refuses any use of the connection after its owner (and so the token) is gone:
///
/// ```compile_fail,E0505
/// # fn f(entra: mssql_entra_odbc::EntraConnection) {
/// let conn = entra.connection();
/// drop(entra); // frees the connection, then the token buffer
/// let _ = conn.is_dead(); // error[E0505]: cannot move out of `entra` because it is borrowed
/// # }
/// ```
pub struct EntraConnection {
    cell: TokenAndConnection,
    token_expires_on: Option<OffsetDateTime>,
    attempts: u32,
}

impl EntraConnection {
    pub(crate) fn open(
        token: Option<Box<SsAccessToken>>,
        token_expires_on: Option<OffsetDateTime>,
        attempts: u32,
        connect: impl for<'a> FnOnce(
            Option<&'a SsAccessToken>,
        ) -> Result<Connection<'a>, odbc_api::Error>,
    ) -> Result<Self, odbc_api::Error> {
        let cell = TokenAndConnection::try_new(token, |owner| connect(owner.as_deref()))?;
        Ok(Self {
            cell,
            token_expires_on,
            attempts,
        })
    }

    /// The odbc-api connection, for queries, transactions and metadata.
    pub fn connection(&self) -> &Connection<'_> {
        self.cell.borrow_dependent()
    }

    /// Whether the connection authenticated with an access token (attribute 1256).
    pub fn uses_access_token(&self) -> bool {
        self.cell.borrow_owner().is_some()
    }

    /// When the token the connection logged in with expires (token mode only). A pool should
    /// retire the connection before then: Azure SQL does not re-check an open session's token, but
    /// the driver re-sends the same buffer when it silently reconnects a broken idle connection.
    pub fn token_expires_on(&self) -> Option<OffsetDateTime> {
        self.token_expires_on
    }

    /// How many login attempts it took (more than 1 after transient-error retries).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the driver considers the connection dead (`SQL_ATTR_CONNECTION_DEAD`; no round trip).
    pub fn is_dead(&self) -> Result<bool, odbc_api::Error> {
        self.connection().is_dead()
    }
}

impl fmt::Debug for EntraConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraConnection")
            .field("uses_access_token", &self.uses_access_token())
            .field("token_expires_on", &self.token_expires_on)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

//! Building a connection string from settings shaped like mssql-django's.

use std::fmt;

use crate::auth::Authentication;
use crate::connection_string::ConnectionString;
use crate::error::Error;
use crate::keyword;
use crate::validate::Encrypt;

/// The driver name used when none is given.
pub const DEFAULT_DRIVER: &str = "ODBC Driver 18 for SQL Server";

/// Builds a [`ConnectionString`] from settings shaped like mssql-django's `DATABASES` entry:
/// `HOST`, `PORT`, `NAME`, `USER`, `PASSWORD`, `OPTIONS.driver` and `OPTIONS.extra_params`.
///
/// The attributes come out in this order, each only when it applies:
/// `Driver` (default [`DEFAULT_DRIVER`]), `Server=tcp:host[\instance][,port]`, `Database`,
/// `UID`, `PWD`, `Authentication`, `Encrypt` (default `yes`, the driver 18 default, written
/// out), `TrustServerCertificate=yes` (only when asked for), then `extra_params`.
///
/// `extra_params` is parsed, not pasted: a keyword that was already set from the other
/// settings is refused with [`Error::ConflictingKey`] when its value differs, and dropped when
/// it is the same. The two defaults (`Driver` and `Encrypt`) yield to `extra_params` instead
/// of conflicting with it.
///
/// Building does not validate the per-mode rules, because those depend on how the
/// connection is made: call [`ConnectionString::validate`] on the result.
///
/// ```
/// use mssql_entra_connstr::{Authentication, ConnectionStringBuilder, Error};
///
/// let cs = ConnectionStringBuilder::new("myserver.database.windows.net")
///     .port(1433)
///     .database("app")
///     .uid("3f1c…-client-id")
///     .pwd("client;secret")
///     .extra_params("Authentication=ActiveDirectoryServicePrincipal")
///     .build()
///     .unwrap();
/// assert_eq!(
///     cs.to_odbc_string(),
///     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;\
///      Database=app;UID=3f1c…-client-id;PWD={client;secret};Encrypt=yes;\
///      Authentication=ActiveDirectoryServicePrincipal"
/// );
///
/// let clash = ConnectionStringBuilder::new("h").database("app").extra_params("Initial Catalog=other").build();
/// assert_eq!(clash, Err(Error::ConflictingKey { existing: "Database".into(), incoming: "Initial Catalog".into() }));
/// ```
#[derive(Clone, Default)]
pub struct ConnectionStringBuilder {
    host: String,
    port: Option<u16>,
    instance: Option<String>,
    database: Option<String>,
    driver: Option<String>,
    uid: Option<String>,
    pwd: Option<String>,
    authentication: Option<Authentication>,
    encrypt: Option<Encrypt>,
    trust_server_certificate: bool,
    extra_params: Option<String>,
}

impl fmt::Debug for ConnectionStringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionStringBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("instance", &self.instance)
            .field("database", &self.database)
            .field("driver", &self.driver)
            .field("uid", &self.uid)
            .field("pwd", &self.pwd.as_ref().map(|_| "***"))
            .field("authentication", &self.authentication)
            .field("encrypt", &self.encrypt)
            .field("trust_server_certificate", &self.trust_server_certificate)
            .field(
                "extra_params",
                &self
                    .extra_params
                    .as_ref()
                    .map(|_| "<not shown: may hold secrets>"),
            )
            .finish()
    }
}

impl ConnectionStringBuilder {
    /// Starts from the host: a name or address, optionally `name\instance` for a named instance.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            ..Self::default()
        }
    }

    /// The TCP port (mssql-django `PORT`). Without it the driver uses 1433, or the SQL Browser
    /// for a named instance.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A named instance, written `tcp:host\instance`. Same as giving `host\instance` as host.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The database (mssql-django `NAME`).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The ODBC driver name (mssql-django `OPTIONS.driver`); default [`DEFAULT_DRIVER`].
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.driver = Some(driver.into());
        self
    }

    /// `UID` (mssql-django `USER`): a login, user principal name, client id or identity id,
    /// depending on the mode.
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// `PWD` (mssql-django `PASSWORD`): a password or client secret. Masked in `Debug`.
    pub fn pwd(mut self, pwd: impl Into<String>) -> Self {
        self.pwd = Some(pwd.into());
        self
    }

    /// `Authentication=`.
    pub fn authentication(mut self, mode: Authentication) -> Self {
        self.authentication = Some(mode);
        self
    }

    /// `Encrypt=`; default [`Encrypt::Mandatory`], written out as `Encrypt=yes`.
    pub fn encrypt(mut self, encrypt: Encrypt) -> Self {
        self.encrypt = Some(encrypt);
        self
    }

    /// Adds `TrustServerCertificate=yes`: the server certificate is not checked, so anyone on
    /// the path can pose as the server and receive the token. Ignored by the driver with
    /// `Encrypt=strict`. For local test servers only.
    pub fn danger_trust_server_certificate(mut self, trust: bool) -> Self {
        self.trust_server_certificate = trust;
        self
    }

    /// mssql-django's `OPTIONS.extra_params`: a `;`-separated `keyword=value` string appended
    /// after everything else, parsed and checked for conflicts by [`build`](Self::build).
    pub fn extra_params(mut self, extra_params: impl Into<String>) -> Self {
        self.extra_params = Some(extra_params.into());
        self
    }

    /// The `Server=` value: `tcp:host[\instance][,port]`.
    fn server(&self) -> Result<String, Error> {
        let host = self.host.trim();
        if host.is_empty() {
            return Err(Error::EmptyHost);
        }
        if let Some(c) = host.chars().find(|&c| {
            matches!(c, ',' | ';' | '=' | '{' | '}') || c.is_whitespace() || c.is_control()
        }) {
            return Err(Error::InvalidHost { character: c });
        }
        let mut server = format!("tcp:{host}");
        if let Some(instance) = &self.instance {
            let instance = instance.trim();
            if host.contains('\\') {
                return Err(Error::InvalidHost { character: '\\' });
            }
            if let Some(c) = instance.chars().find(|&c| {
                matches!(c, ',' | ';' | '=' | '{' | '}' | '\\')
                    || c.is_whitespace()
                    || c.is_control()
            }) {
                return Err(Error::InvalidHost { character: c });
            }
            if !instance.is_empty() {
                server.push('\\');
                server.push_str(instance);
            }
        }
        match self.port {
            Some(0) => return Err(Error::InvalidPort),
            Some(port) => {
                server.push(',');
                server.push_str(&port.to_string());
            }
            None => {}
        }
        Ok(server)
    }

    /// Builds the connection string.
    ///
    /// Errors: [`Error::EmptyHost`], [`Error::InvalidHost`], [`Error::InvalidPort`],
    /// [`Error::ExtraParams`] (with the parse error as its source) and
    /// [`Error::ConflictingKey`].
    pub fn build(&self) -> Result<ConnectionString, Error> {
        let server = self.server()?;
        let extra = match &self.extra_params {
            Some(text) => {
                ConnectionString::parse(text).map_err(|e| Error::ExtraParams(Box::new(e)))?
            }
            None => ConnectionString::new(),
        };
        // Every `cs.set` below uses one of our keyword constants, all valid keywords, so `set`
        // cannot panic here (it panics only on keywords that are blank or contain `;={}`).
        let mut cs = ConnectionString::new();
        match &self.driver {
            Some(driver) => {
                cs.set(keyword::DRIVER, driver.clone());
            }
            None if !extra.contains_key(keyword::DRIVER) => {
                cs.set(keyword::DRIVER, DEFAULT_DRIVER);
            }
            None => {}
        }
        cs.set(keyword::SERVER, server);
        if let Some(database) = &self.database {
            cs.set(keyword::DATABASE, database.clone());
        }
        if let Some(uid) = &self.uid {
            cs.set(keyword::UID, uid.clone());
        }
        if let Some(pwd) = &self.pwd {
            cs.set(keyword::PWD, pwd.clone());
        }
        if let Some(mode) = self.authentication {
            cs.set(keyword::AUTHENTICATION, mode.as_str());
        }
        match self.encrypt {
            Some(encrypt) => {
                cs.set(keyword::ENCRYPT, encrypt.as_str());
            }
            None if !extra.contains_key(keyword::ENCRYPT) => {
                cs.set(keyword::ENCRYPT, Encrypt::default().as_str());
            }
            None => {}
        }
        if self.trust_server_certificate {
            cs.set(keyword::TRUST_SERVER_CERTIFICATE, "yes");
        }
        cs.merge(&extra)?;
        Ok(cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        let server =
            |b: ConnectionStringBuilder| b.build().map(|cs| cs.get("Server").map(str::to_owned));
        assert_eq!(
            server(ConnectionStringBuilder::new("h")),
            Ok(Some("tcp:h".into()))
        );
        assert_eq!(
            server(ConnectionStringBuilder::new("h").port(14330)),
            Ok(Some("tcp:h,14330".into()))
        );
        assert_eq!(
            server(ConnectionStringBuilder::new(r"h\SQLEXPRESS")),
            Ok(Some(r"tcp:h\SQLEXPRESS".into()))
        );
        assert_eq!(
            server(
                ConnectionStringBuilder::new("h")
                    .instance("inst")
                    .port(1500)
            ),
            Ok(Some(r"tcp:h\inst,1500".into()))
        );
        assert_eq!(
            server(ConnectionStringBuilder::new(" ")),
            Err(Error::EmptyHost)
        );
        assert_eq!(
            server(ConnectionStringBuilder::new("h,1433")),
            Err(Error::InvalidHost { character: ',' })
        );
        assert_eq!(
            server(ConnectionStringBuilder::new("h;x=y")),
            Err(Error::InvalidHost { character: ';' })
        );
        assert_eq!(
            server(ConnectionStringBuilder::new("h").port(0)),
            Err(Error::InvalidPort)
        );
        assert_eq!(
            server(ConnectionStringBuilder::new(r"h\a").instance("b")),
            Err(Error::InvalidHost { character: '\\' })
        );
    }

    #[test]
    fn defaults_yield_to_extra_params() {
        let cs = ConnectionStringBuilder::new("h")
            .extra_params("Encrypt=strict;Driver={ODBC Driver 17 for SQL Server}")
            .build()
            .unwrap();
        assert_eq!(
            cs.to_odbc_string(),
            "Server=tcp:h;Encrypt=strict;Driver={ODBC Driver 17 for SQL Server}"
        );
        let cs = ConnectionStringBuilder::new("h").build().unwrap();
        assert_eq!(
            cs.to_odbc_string(),
            "Driver={ODBC Driver 18 for SQL Server};Server=tcp:h;Encrypt=yes"
        );
    }

    #[test]
    fn explicit_settings_conflict_with_extra_params() {
        let err = ConnectionStringBuilder::new("h")
            .encrypt(Encrypt::Strict)
            .extra_params("encrypt=no")
            .build();
        assert_eq!(
            err,
            Err(Error::ConflictingKey {
                existing: "Encrypt".into(),
                incoming: "encrypt".into()
            })
        );
        let err = ConnectionStringBuilder::new("h")
            .pwd("p1")
            .extra_params("Password=p2")
            .build();
        assert_eq!(
            err,
            Err(Error::ConflictingKey {
                existing: "PWD".into(),
                incoming: "Password".into()
            })
        );
        let same = ConnectionStringBuilder::new("h")
            .uid("u")
            .extra_params("User ID=u")
            .build()
            .unwrap();
        assert_eq!(same.iter().filter(|(k, _)| *k == "UID").count(), 1);
    }

    #[test]
    fn trust_server_certificate_only_when_asked() {
        let cs = ConnectionStringBuilder::new("h").build().unwrap();
        assert!(!cs.contains_key("TrustServerCertificate"));
        let cs = ConnectionStringBuilder::new("h")
            .danger_trust_server_certificate(true)
            .build()
            .unwrap();
        assert_eq!(cs.get("TrustServerCertificate"), Some("yes"));
    }

    #[test]
    fn extra_params_parse_errors_are_wrapped() {
        let err = ConnectionStringBuilder::new("h")
            .extra_params("Authentication")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            Error::ExtraParams(Box::new(Error::MissingEquals { position: 0 }))
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("missing `=`")));
    }

    #[test]
    fn debug_hides_password_and_extra_params() {
        let b = ConnectionStringBuilder::new("h")
            .pwd("hunter2")
            .extra_params("KeyStoreSecret=s3cr3t");
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}

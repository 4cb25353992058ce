//! Test scaffolding: a table-driven login authority, a throw-away PKI, an endpoint on its own runtime, and
//! helpers around odbc-api.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use mssql_entra_emulator::model::{LoginAuthority, Principal, PrincipalKind, TokenRejection};
use mssql_entra_emulator::sql::{Databases, SqlEndpoint, SqlEndpointConfig, SqlFaults, SqlStats};
use odbc_api::sys::SsAccessToken;
use odbc_api::{Connection, ConnectionOptions, Cursor, Environment, MicrosoftConnectionOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

pub const TENANT: Uuid = Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_0001);

/// Tokens the test authority knows. Each maps to a principal or a rejection.
pub const APP_TOKEN: &str = "token-demo-app";
pub const ADMIN_TOKEN: &str = "token-admin";
pub const ALICE_TOKEN: &str = "token-alice";
pub const MI_TOKEN: &str = "token-demo-mi";
pub const EXPIRED_TOKEN: &str = "token-expired";
pub const WRONG_AUDIENCE_TOKEN: &str = "token-wrong-audience";

pub fn app() -> Principal {
    Principal {
        kind: PrincipalKind::ServicePrincipal,
        tenant_id: TENANT,
        object_id: Uuid::from_u128(0xA0),
        app_id: Some(Uuid::from_u128(0xA1)),
        upn: None,
        display_name: "demo-app".into(),
    }
}

pub fn admin() -> Principal {
    Principal {
        kind: PrincipalKind::User,
        tenant_id: TENANT,
        object_id: Uuid::from_u128(0xAD),
        app_id: None,
        upn: Some("admin@emulator.test".into()),
        display_name: "Admin".into(),
    }
}

pub fn alice() -> Principal {
    Principal {
        kind: PrincipalKind::User,
        tenant_id: TENANT,
        object_id: Uuid::from_u128(0xA11CE),
        app_id: None,
        upn: Some("alice@emulator.test".into()),
        display_name: "Alice".into(),
    }
}

pub fn managed_identity() -> Principal {
    Principal {
        kind: PrincipalKind::ManagedIdentity,
        tenant_id: TENANT,
        object_id: Uuid::from_u128(0x111),
        app_id: Some(Uuid::from_u128(0x112)),
        upn: None,
        display_name: "demo-mi".into(),
    }
}

/// A [`LoginAuthority`] driven by a table: the seam the identity half's JWT validator plugs into.
#[derive(Debug)]
pub struct TableAuthority {
    tokens: Mutex<HashMap<String, Result<Principal, TokenRejection>>>,
    directory: Vec<Principal>,
    pub graph: AtomicBool,
}

impl TableAuthority {
    pub fn new() -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(APP_TOKEN.to_string(), Ok(app()));
        tokens.insert(ADMIN_TOKEN.to_string(), Ok(admin()));
        tokens.insert(ALICE_TOKEN.to_string(), Ok(alice()));
        tokens.insert(MI_TOKEN.to_string(), Ok(managed_identity()));
        tokens.insert(
            EXPIRED_TOKEN.to_string(),
            Err(TokenRejection::Expired {
                expired_at: SystemTime::now() - Duration::from_secs(600),
            }),
        );
        tokens.insert(
            WRONG_AUDIENCE_TOKEN.to_string(),
            Err(TokenRejection::WrongAudience {
                found: "https://management.azure.com/".into(),
            }),
        );
        Self {
            tokens: Mutex::new(tokens),
            directory: vec![app(), admin(), alice(), managed_identity()],
            graph: AtomicBool::new(true),
        }
    }
}

impl LoginAuthority for TableAuthority {
    fn validate(&self, token: &str) -> Result<Principal, TokenRejection> {
        self.tokens
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .unwrap_or(Err(TokenRejection::Malformed))
    }

    fn resolve_name(&self, name: &str) -> Option<Principal> {
        self.directory
            .iter()
            .find(|p| {
                p.display_name.eq_ignore_ascii_case(name)
                    || p.upn
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(name))
                    || p.app_id
                        .is_some_and(|a| a.to_string() == name.to_lowercase())
            })
            .cloned()
    }

    fn graph_available(&self) -> bool {
        self.graph.load(Ordering::SeqCst)
    }

    fn sts_url(&self) -> String {
        format!("https://login.microsoftonline.com/{TENANT}/")
    }

    fn spn(&self) -> String {
        "https://database.windows.net/".into()
    }
}

/// The test PKI: a CA (written as PEM for SSL_CERT_FILE) and a server certificate for localhost/127.0.0.1.
pub struct Pki {
    pub ca_path: PathBuf,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mssql-entra sql tests CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        // ODBC 18 matches an IP-literal Server= against DNS-type SANs only: IP:127.0.0.1 alone fails with
        // "subject name does not match host name", so the literal is also carried as a DNS name.
        leaf.subject_alt_names
            .push(rcgen::SanType::DnsName("127.0.0.1".try_into().unwrap()));
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let dir = std::env::temp_dir().join(format!("mssql-entra-sql-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        Pki {
            ca_path,
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                leaf_key.serialize_der(),
            ))),
        }
    })
}

/// The ODBC environment, created once, after pointing unixODBC at the provisioned driver and OpenSSL at the
/// test CA.
pub fn env() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/driver");
        let driver = driver.canonicalize().unwrap_or_else(|e| {
            panic!(
                "the ODBC driver is not provisioned at {} ({e}); run `cargo xtask setup`",
                driver.display()
            )
        });
        std::env::set_var("ODBCSYSINI", &driver);
        trust_ca(&std::fs::read_to_string(&pki().ca_path).unwrap());
        std::env::set_var("SSL_CERT_FILE", bundle_path());
        std::env::remove_var("SSL_CERT_DIR");
        Environment::new().unwrap()
    })
}

fn bundle_path() -> PathBuf {
    pki().ca_path.with_file_name("bundle.pem")
}

/// Adds a CA to the bundle SSL_CERT_FILE names. OpenSSL reads the file on each new TLS context, so CAs
/// generated later (each emulator makes its own) are trusted from then on. The file is replaced atomically.
pub fn trust_ca(pem: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap();
    let path = bundle_path();
    let mut bundle = std::fs::read_to_string(&path).unwrap_or_default();
    bundle.push_str(pem);
    bundle.push('\n');
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bundle).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Serialises tests that set the process-wide IDENTITY_ENDPOINT/IDENTITY_HEADER variables.
pub fn identity_env_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A SQL endpoint running on its own runtime thread (the ODBC calls in tests block).
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub endpoint: Option<SqlEndpoint>,
    pub addr: SocketAddr,
    pub authority: Arc<TableAuthority>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(configure: impl FnOnce(&mut SqlEndpointConfig)) -> Self {
        let pki = pki();
        let mut config = SqlEndpointConfig::new(pki.chain.clone(), pki.key.clone());
        config.databases = vec!["appdb".into(), "otherdb".into()];
        config.login_timeout = Duration::from_secs(10);
        configure(&mut config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let authority = Arc::new(TableAuthority::new());
        let endpoint = rt
            .block_on(SqlEndpoint::start(config, authority.clone()))
            .unwrap();
        let addr = endpoint.local_addr();
        let dbs = endpoint.databases();
        dbs.set_entra_admin(Some(admin()));
        dbs.add_principal_user("appdb", "demo-app", &app()).unwrap();
        dbs.add_principal_user("appdb", "alice@emulator.test", &alice())
            .unwrap();
        Server {
            rt,
            endpoint: Some(endpoint),
            addr,
            authority,
        }
    }

    pub fn endpoint(&self) -> &SqlEndpoint {
        self.endpoint.as_ref().unwrap()
    }

    pub fn databases(&self) -> Databases {
        self.endpoint().databases()
    }

    pub fn faults(&self) -> SqlFaults {
        self.endpoint().faults()
    }

    pub fn stats(&self) -> SqlStats {
        self.endpoint().stats()
    }

    /// A connection string for this server.
    pub fn conn_str(&self, database: &str, extra: &str) -> String {
        format!(
            "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database={database};{extra}",
            self.addr.port()
        )
    }

    /// Connects with an access token (attribute 1256).
    pub fn connect_token(
        &self,
        token: &str,
        database: &str,
        extra: &str,
    ) -> Result<Connection<'static>, odbc_api::Error> {
        connect_token(&self.conn_str(database, extra), token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(e) = self.endpoint.take() {
            self.rt.block_on(e.shutdown());
        }
    }
}

const LOGIN_TIMEOUT: u32 = 5;

/// Connects with an access token. The token must outlive the connection, since the driver keeps a pointer to
/// it; tests leak it, which is a few bytes per connection.
pub fn connect_token(conn_str: &str, token: &str) -> Result<Connection<'static>, odbc_api::Error> {
    let token: &'static SsAccessToken = Box::leak(SsAccessToken::from_text(token));
    let options = MicrosoftConnectionOptions {
        access_token: Some(token),
    };
    // SAFETY: the attribute (1256, SQL_COPT_SS_ACCESS_TOKEN) is understood by the Microsoft driver this string
    // names, and the token is 'static.
    #[allow(unsafe_code)]
    unsafe {
        env().connect_with_connection_string_and_driver_specific_options(
            conn_str,
            ConnectionOptions {
                login_timeout_sec: Some(LOGIN_TIMEOUT),
                packet_size: None,
            },
            options,
        )
    }
}

/// Connects with a plain connection string (the driver's own Authentication= modes).
pub fn connect(conn_str: &str) -> Result<Connection<'static>, odbc_api::Error> {
    env().connect_with_connection_string(
        conn_str,
        ConnectionOptions {
            login_timeout_sec: Some(LOGIN_TIMEOUT),
            packet_size: None,
        },
    )
}

/// Runs a query and returns the first column of the first row as text (`None` for NULL).
pub fn scalar(conn: &Connection<'_>, sql: &str) -> Result<Option<String>, odbc_api::Error> {
    let mut cursor = conn
        .execute(sql, (), None)?
        .expect("the query returns a result set");
    let mut row = cursor.next_row()?.expect("the result set has a row");
    let mut buf = Vec::new();
    let not_null = row.get_text(1, &mut buf)?;
    Ok(not_null.then(|| String::from_utf8(buf).unwrap()))
}

/// Runs a query and returns every column of the first row as text.
pub fn row(
    conn: &Connection<'_>,
    sql: &str,
    columns: u16,
) -> Result<Vec<Option<String>>, odbc_api::Error> {
    let mut cursor = conn
        .execute(sql, (), None)?
        .expect("the query returns a result set");
    let mut row = cursor.next_row()?.expect("the result set has a row");
    let mut out = Vec::new();
    for c in 1..=columns {
        let mut buf = Vec::new();
        let not_null = row.get_text(c, &mut buf)?;
        out.push(not_null.then(|| String::from_utf8(buf).unwrap()));
    }
    Ok(out)
}

/// The state, native error and message of an ODBC error.
pub fn diag(e: &odbc_api::Error) -> (String, i32, String) {
    match e {
        odbc_api::Error::Diagnostics { record, .. } => (
            std::str::from_utf8(&record.state.0)
                .unwrap_or("?????")
                .to_string(),
            record.native_error,
            record.to_string(),
        ),
        other => (String::new(), 0, other.to_string()),
    }
}

/// `0x…` for a SID in T-SQL.
pub fn sid_literal(p: &Principal) -> String {
    let hex: String = p.sid().iter().map(|b| format!("{b:02X}")).collect();
    format!("0x{hex}")
}

//! Scaffolding: the provisioned driver, a shared test CA, unsigned test JWTs, an authority that reads
//! them, and an emulated Azure SQL endpoint on its own runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use mssql_entra_connstr::ConnectionString;
use mssql_entra_emulator::pki::TestPki;
use mssql_entra_emulator::sql::{Databases, SqlEndpoint, SqlEndpointConfig, SqlFaults, SqlStats};
use mssql_entra_emulator::{LoginAuthority, Principal, PrincipalKind, TokenRejection};
use mssql_entra_odbc::{Auth, Connector, ConnectorOptions, EntraConnection, RetryPolicy};
use mssql_entra_token::sources::FnTokenSource;
use mssql_entra_token::{AccessToken, Scope, TokenSource};
use odbc_api::Cursor;
use uuid::Uuid;

pub const DRIVER: &str = "ODBC Driver 18 for SQL Server";
pub const TENANT: Uuid = Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_00aa);
pub const APP_ID: Uuid = Uuid::from_u128(0x619a_4449_b4aa_4383_a2a9_7c36_5106_c5e7);
pub const APP_OID: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);
pub const ADMIN_OID: Uuid = Uuid::from_u128(0xAD);

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(&[]).expect("test PKI"))
}

/// Points unixODBC at the provisioned driver and OpenSSL (the driver's TDS TLS) at the test CA.
/// Runs once, before the first connector creates odbc-api's environment.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        // `cargo xtask test` exports ODBCSYSINI; a plain `cargo test` finds the provisioned driver.
        let dir = std::env::var_os("ODBCSYSINI")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/driver")
            });
        let dir = dir.canonicalize().unwrap_or_else(|e| {
            panic!(
                "the ODBC driver is not provisioned at {} ({e}); run `cargo xtask setup`",
                dir.display()
            )
        });
        assert!(
            dir.join("odbcinst.ini").exists(),
            "no odbcinst.ini in {}; run `cargo xtask setup`",
            dir.display()
        );
        let ca =
            std::env::temp_dir().join(format!("mssql-entra-odbc-it-{}.pem", std::process::id()));
        std::fs::write(&ca, pki().ca_pem()).expect("write the test CA");
        // Set before any thread of ours reads the environment (the tests only start ODBC after this).
        std::env::set_var("ODBCSYSINI", &dir);
        std::env::set_var("SSL_CERT_FILE", &ca);
        std::env::remove_var("SSL_CERT_DIR");
    });
}

/// An unsigned JWT (the emulator authority below reads claims without a signature check).
pub fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"test-signature")
    )
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// An application token for [`APP_ID`] / [`APP_OID`], valid for an hour.
pub fn app_token() -> String {
    jwt(serde_json::json!({
        "aud": "https://database.windows.net/",
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "tid": TENANT.to_string(),
        "appid": APP_ID.to_string(),
        "oid": APP_OID.to_string(),
        "idtyp": "app",
        "exp": now_secs() + 3600,
    }))
}

/// The Entra admin (a user), valid for an hour.
pub fn admin_token() -> String {
    jwt(serde_json::json!({
        "aud": "https://database.windows.net/",
        "tid": TENANT.to_string(),
        "oid": ADMIN_OID.to_string(),
        "upn": "admin@emulator.test",
        "idtyp": "user",
        "scp": "user_impersonation",
        "exp": now_secs() + 3600,
    }))
}

pub fn app_principal() -> Principal {
    Principal {
        kind: PrincipalKind::ServicePrincipal,
        tenant_id: TENANT,
        object_id: APP_OID,
        app_id: Some(APP_ID),
        upn: None,
        display_name: "demo-app".into(),
    }
}

/// Validates our unsigned JWTs by their claims, as Azure SQL would after the signature check.
#[derive(Debug)]
pub struct ClaimsAuthority;

impl LoginAuthority for ClaimsAuthority {
    fn validate(&self, token: &str) -> Result<Principal, TokenRejection> {
        let payload = token.split('.').nth(1).ok_or(TokenRejection::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Malformed)?;
        let c: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| TokenRejection::Malformed)?;
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let exp = c
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if exp <= now_secs() {
            return Err(TokenRejection::Expired {
                expired_at: SystemTime::UNIX_EPOCH + Duration::from_secs(exp.max(0) as u64),
            });
        }
        let aud = s("aud").unwrap_or_default();
        if aud.trim_end_matches('/') != "https://database.windows.net" {
            return Err(TokenRejection::WrongAudience { found: aud });
        }
        let uuid = |k: &str| s(k).and_then(|v| Uuid::parse_str(&v).ok());
        let object_id = uuid("oid").ok_or(TokenRejection::Malformed)?;
        Ok(match s("idtyp").as_deref() {
            Some("app") => Principal {
                kind: PrincipalKind::ServicePrincipal,
                tenant_id: TENANT,
                object_id,
                app_id: uuid("appid"),
                upn: None,
                display_name: "demo-app".into(),
            },
            _ => Principal {
                kind: PrincipalKind::User,
                tenant_id: TENANT,
                object_id,
                app_id: None,
                upn: s("upn"),
                display_name: s("upn").unwrap_or_default(),
            },
        })
    }

    fn resolve_name(&self, name: &str) -> Option<Principal> {
        let p = app_principal();
        (name.eq_ignore_ascii_case(&p.display_name) || name == APP_ID.to_string()).then_some(p)
    }

    fn sts_url(&self) -> String {
        format!("https://login.microsoftonline.com/{TENANT}/")
    }

    fn spn(&self) -> String {
        "https://database.windows.net/".into()
    }
}

/// An emulated Azure SQL endpoint on its own runtime (the ODBC calls in tests block).
pub struct Server {
    rt: tokio::runtime::Runtime,
    endpoint: Option<SqlEndpoint>,
    pub addr: SocketAddr,
}

impl Server {
    /// `appdb` exists; the admin user is the Entra admin; no database user for the app yet.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// As [`Server::start`], with `configure` applied to the endpoint's configuration last.
    pub fn start_with(configure: impl FnOnce(&mut SqlEndpointConfig)) -> Self {
        init();
        let pki = pki();
        let mut config = SqlEndpointConfig::new(pki.server_chain().to_vec(), pki.server_key());
        config.databases = vec!["appdb".into()];
        config.login_timeout = Duration::from_secs(10);
        configure(&mut config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = rt
            .block_on(SqlEndpoint::start(config, Arc::new(ClaimsAuthority)))
            .expect("SQL endpoint");
        let addr = endpoint.local_addr();
        endpoint.databases().set_entra_admin(Some(Principal {
            kind: PrincipalKind::User,
            tenant_id: TENANT,
            object_id: ADMIN_OID,
            app_id: None,
            upn: Some("admin@emulator.test".into()),
            display_name: "Admin".into(),
        }));
        Server {
            rt,
            endpoint: Some(endpoint),
            addr,
        }
    }

    fn endpoint(&self) -> &SqlEndpoint {
        self.endpoint.as_ref().expect("running")
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

    pub fn logins_ok(&self) -> u64 {
        self.endpoint().stats().logins_ok()
    }

    pub fn conn_str(&self, database: &str) -> ConnectionString {
        ConnectionString::parse(&format!(
            "Driver={{{DRIVER}}};Server=tcp:127.0.0.1,{};Database={database};Encrypt=yes",
            self.addr.port()
        ))
        .expect("valid connection string")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(e) = self.endpoint.take() {
            self.rt.block_on(e.shutdown());
        }
    }
}

/// A token source serving `token` that counts its calls.
pub fn counting_source(token: String) -> (Arc<dyn TokenSource>, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let source = FnTokenSource::new("test", move |_scopes: Vec<String>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let token = token.clone();
        async move {
            Ok(AccessToken::new(
                token,
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }
    });
    (Arc::new(source), calls)
}

pub fn test_options() -> ConnectorOptions {
    ConnectorOptions::default()
        .with_login_timeout(Some(Duration::from_secs(5)))
        .with_retry(RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(20),
        })
}

pub fn token_connector(cs: ConnectionString, source: Arc<dyn TokenSource>) -> Connector {
    Connector::new(cs, Auth::Token(source, Scope::azure_sql()), test_options())
        .expect("valid connector")
}

/// The first column of the first row, as text.
pub fn scalar(conn: &EntraConnection, sql: &str) -> String {
    let mut cursor = conn
        .connection()
        .execute(sql, (), None)
        .expect("query runs")
        .expect("a result set");
    let mut row = cursor.next_row().expect("fetch").expect("a row");
    let mut buf = Vec::new();
    row.get_text(1, &mut buf).expect("text");
    String::from_utf8(buf).expect("utf-8")
}

/// Runs a statement without a result set.
pub fn exec(conn: &EntraConnection, sql: &str) {
    conn.connection()
        .execute(sql, (), None)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

//! Logins that succeed: `connect`, `connect_async` and the pool through the real driver against
//! the emulated Azure SQL endpoint on 127.0.0.1 (token validation by claims; the signature check
//! is the emulator's identity half, exercised by the end-to-end suite).

// Every login here is token mode, which needs feature `access-token`.
#![cfg_attr(not(feature = "access-token"), allow(dead_code))]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use mssql_entra::{EntraConnection, Settings};
use mssql_entra_emulator::pki::TestPki;
use mssql_entra_emulator::sql::{Databases, SqlEndpoint, SqlEndpointConfig};
use mssql_entra_emulator::{LoginAuthority, Principal, PrincipalKind, TokenRejection};
use odbc_api::Cursor;
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_00bb);
const APP_ID: Uuid = Uuid::from_u128(0x5a5a_0000_0000_4000_8000_0000_0000_0001);
const APP_OID: Uuid = Uuid::from_u128(0x5a5a_0000_0000_4000_8000_0000_0000_0002);

pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(&[]).expect("test PKI"))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An unsigned app token for APP_ID, valid for `secs`.
fn app_token(secs: i64) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let claims = serde_json::json!({
        "aud": "https://database.windows.net/",
        "tid": TENANT.to_string(),
        "appid": APP_ID.to_string(),
        "oid": APP_OID.to_string(),
        "idtyp": "app",
        "exp": now_secs() + secs,
    });
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"sig")
    )
}

fn app() -> Principal {
    Principal {
        kind: PrincipalKind::ServicePrincipal,
        tenant_id: TENANT,
        object_id: APP_OID,
        app_id: Some(APP_ID),
        upn: None,
        display_name: "facade-app".into(),
    }
}

/// Accepts our unsigned app tokens by their claims.
#[derive(Debug)]
struct Claims;

impl LoginAuthority for Claims {
    fn validate(&self, token: &str) -> Result<Principal, TokenRejection> {
        let payload = token.split('.').nth(1).ok_or(TokenRejection::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Malformed)?;
        let c: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| TokenRejection::Malformed)?;
        let exp = c["exp"].as_i64().unwrap_or(0);
        if exp <= now_secs() {
            return Err(TokenRejection::Expired {
                expired_at: SystemTime::UNIX_EPOCH + Duration::from_secs(exp.max(0) as u64),
            });
        }
        if c["appid"].as_str() != Some(&APP_ID.to_string()) {
            return Err(TokenRejection::Malformed);
        }
        Ok(app())
    }

    fn resolve_name(&self, name: &str) -> Option<Principal> {
        (name == app().display_name).then(app)
    }

    fn sts_url(&self) -> String {
        format!("https://login.microsoftonline.com/{TENANT}/")
    }

    fn spn(&self) -> String {
        "https://database.windows.net/".into()
    }
}

/// The emulated SQL endpoint with database `appdb` and a user for the app, on its own runtime.
struct Server {
    rt: tokio::runtime::Runtime,
    endpoint: Option<SqlEndpoint>,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Self {
        crate::support::init_driver();
        let mut config = SqlEndpointConfig::new(pki().server_chain().to_vec(), pki().server_key());
        config.databases = vec!["appdb".into()];
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let endpoint = rt
            .block_on(SqlEndpoint::start(config, Arc::new(Claims)))
            .expect("SQL endpoint");
        let addr = endpoint.local_addr();
        let dbs: Databases = endpoint.databases();
        dbs.add_principal_user("appdb", "facade-app", &app())
            .expect("user");
        Server {
            rt,
            endpoint: Some(endpoint),
            addr,
        }
    }

    fn logins_ok(&self) -> u64 {
        self.endpoint.as_ref().unwrap().stats().logins_ok()
    }

    fn settings(&self, token: &str) -> Settings {
        Settings::from_toml_str(&format!(
            "HOST = \"127.0.0.1\"\nPORT = {}\nNAME = \"appdb\"\nTOKEN = \"{token}\"\nOPTIONS = {{ login_timeout = 5 }}",
            self.addr.port()
        ))
        .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(e) = self.endpoint.take() {
            self.rt.block_on(e.shutdown());
        }
    }
}

fn scalar(conn: &EntraConnection, sql: &str) -> String {
    let mut cursor = conn
        .connection()
        .execute(sql, (), None)
        .expect("query")
        .expect("result set");
    let mut row = cursor.next_row().expect("fetch").expect("row");
    let mut buf = Vec::new();
    row.get_text(1, &mut buf).expect("text");
    String::from_utf8(buf).unwrap()
}

#[cfg(feature = "access-token")]
#[test]
fn connect_with_a_literal_token_logs_in_as_the_app() {
    let s = Server::start();
    let conn = mssql_entra::connect(&s.settings(&app_token(3600))).expect("login");
    assert!(conn.uses_access_token());
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        format!("{APP_ID}@{TENANT}")
    );
    assert_eq!(scalar(&conn, "SELECT DB_NAME()"), "appdb");
    assert_eq!(s.logins_ok(), 1);
}

#[cfg(feature = "access-token")]
#[test]
fn connect_async_with_a_literal_token() {
    let s = Server::start();
    let settings = s.settings(&app_token(3600));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conn = rt
        .block_on(mssql_entra::connect_async(&settings))
        .expect("login");
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        format!("{APP_ID}@{TENANT}")
    );
}

#[cfg(feature = "access-token")]
/// Pool over a counting source behind the cache: connections are reused while young, retired
/// at max_lifetime and replaced by new logins, and every login shares the one cached token.
#[test]
fn pool_retires_connections_at_max_lifetime_and_shares_one_token() {
    use mssql_entra::lower::odbc::{Auth, Connector, ConnectorOptions};
    use mssql_entra::lower::token::sources::FnTokenSource;
    use mssql_entra::lower::token::{AccessToken, CachedTokenSource, Scope, TokenSource};
    use mssql_entra::{Pool, PoolSettings};
    use std::sync::atomic::{AtomicU32, Ordering};

    let s = Server::start();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let upstream = FnTokenSource::new("counting", move |_scopes: Vec<String>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(AccessToken::new(
                app_token(3600),
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }
    });
    let source: Arc<dyn TokenSource> = Arc::new(CachedTokenSource::new(Arc::new(upstream)));
    let cs = mssql_entra::ConnectionString::parse(&format!(
        "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes",
        s.addr.port()
    ))
    .unwrap();
    let connector = Connector::new(
        cs,
        Auth::Token(source, Scope::azure_sql()),
        ConnectorOptions::default().with_login_timeout(Some(Duration::from_secs(5))),
    )
    .unwrap();
    let mut settings = PoolSettings::default();
    settings.max_size = Some(2);
    settings.max_lifetime = Some(Duration::from_millis(1500));
    let pool = Pool::from_connector(connector, &settings).unwrap();

    for _ in 0..3 {
        let conn = pool.get().expect("pooled connection");
        assert_eq!(
            scalar(&conn, "SELECT SUSER_SNAME()"),
            format!("{APP_ID}@{TENANT}")
        );
    }
    // Three checkouts, one after the other: one physical login.
    assert_eq!(s.logins_ok(), 1);
    std::thread::sleep(Duration::from_millis(1700));
    let conn = pool.get().expect("a new connection after max_lifetime");
    assert!(conn.age() < Duration::from_millis(1500));
    assert_eq!(scalar(&conn, "SELECT DB_NAME()"), "appdb");
    assert_eq!(s.logins_ok(), 2);
    // Both logins used the one cached token.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

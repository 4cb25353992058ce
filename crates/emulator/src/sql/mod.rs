//! The emulated Azure SQL endpoint: TDS over TCP with TLS, federated (Entra) logins, a few queries.
//!
//! What it does, following what the real ODBC Driver 18 was measured to send and accept (`driver-facts.md`):
//! - PRELOGIN with FEDAUTHREQUIRED=1; TDS 7.x TLS with the handshake inside 0x12 packets (capped at TLS 1.2);
//!   TDS 8 strict (TLS first, ALPN `tds/8.0`); login-only and clear-text sessions only when configured.
//! - LOGIN7 with the FEDAUTH feature: the access-token form (token inline) and the driver's own ADAL/MSAL
//!   workflows (FEDAUTHINFO, then the 0x08 token message).
//! - Token validation through the [`LoginAuthority`](crate::model::LoginAuthority), then the Azure SQL mapping
//!   of the principal to a contained database user by SID ([`Databases`]); Azure SQL's 18456 and 4060 texts.
//! - After login: `SELECT SUSER_SNAME()`, `USER_NAME()`, `DB_NAME()`, `@@VERSION`, `@@SPID`, integers,
//!   `IS_ROLEMEMBER('role')`, and the grant workflow (`CREATE USER … FROM EXTERNAL PROVIDER` / `WITH SID`,
//!   `ALTER ROLE … ADD MEMBER`, the two column-key `GRANT`s, `DROP USER`). Anything else is answered with
//!   error 40517 "… is not supported by the emulator" and the session stays open.
//!
//! What it deliberately does not do: run SQL, store tables, SQL authentication, SSPI/Kerberos, MARS, RPC
//! (answered with an error), session state beyond the login (SESSIONRECOVERY is acknowledged with an empty
//! initial state and a reconnect logs in afresh: SET options are not restored).
//!
//! Tokens received from clients are never logged or shown in `Debug` output.

mod batch;
mod db;
mod faults;
#[doc(hidden)]
pub mod fuzzing;
mod login7;
mod prelogin;
mod proto;
mod session;
mod wire;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU16;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::model::LoginAuthority;

pub use db::{DatabaseUser, Databases, DbError, Grant, UserType, FIXED_ROLES};
pub use faults::{LoginStage, SqlFaults, SqlStats};

/// What the server answers to the client's PRELOGIN ENCRYPTION value (TDS 7.x only; strict is always TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encryption {
    /// Azure SQL's behaviour: every session fully encrypted (OFF is answered with REQ, ON with ON).
    #[default]
    On,
    /// A server with encryption "off": a client sending OFF gets login-only encryption (only the first LOGIN7
    /// packet in TLS; everything else, the bearer token included, in clear). For tests of that path.
    Off,
    /// No TLS at all (ENCRYPT_NOT_SUP): clients with `Encrypt=no` log in in clear text. For tests only.
    NotSupported,
}

/// When the server insists on LOGIN7's fFedAuthEcho bit (MS-TDS says always; ODBC 18 sets it only on fully
/// encrypted sessions, so that is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EchoPolicy {
    /// Check it on fully encrypted sessions (full TLS and strict) only.
    #[default]
    WhenFullyEncrypted,
    /// Check it on every session (what the spec says; the real driver fails this in clear or login-only mode).
    Always,
    /// Never check it.
    Never,
}

/// Configuration of the SQL endpoint.
#[derive(Clone)]
pub struct SqlEndpointConfig {
    /// Where to listen; `127.0.0.1:0` by default.
    pub bind: SocketAddr,
    /// The server certificate chain, leaf first (used by both TDS 7.x TLS and TDS 8 strict).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The server certificate's private key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The server name ERROR and INFO tokens carry, e.g. "emulator".
    pub server_name: String,
    /// Databases that exist besides `master`.
    pub databases: Vec<String>,
    /// The PRELOGIN encryption policy; [`Encryption::On`] by default.
    pub encryption: Encryption,
    /// When the fFedAuthEcho bit is enforced.
    pub fedauth_echo: EchoPolicy,
    /// Send a NONCEOPT in the PRELOGIN answer (the driver then appends it to the access token); off by default.
    pub send_nonce: bool,
    /// Acknowledge the SESSIONRECOVERY feature (connection resiliency) when LOGIN7 asks for it, as Azure SQL
    /// does; on by default. The real driver then reconnects a broken idle session silently, logging in again
    /// with the same access token; off, it reports the broken link (08S01) instead.
    pub session_recovery: bool,
    /// Longest time from accepting a connection to the end of its login (30 s by default).
    pub login_timeout: Duration,
    /// A logged-in session idle this long is closed (30 minutes by default).
    pub idle_timeout: Duration,
    /// The largest client message accepted, in bytes (1 MiB by default); larger ones end the session.
    pub max_message_size: usize,
    /// Allow TLS 1.3 on the TDS 7.x (wrapped) path; off by default, as for Azure SQL. With it the driver sends
    /// its final handshake flight unwrapped, which the emulator follows by the first byte: a test of that net.
    pub tds7_allow_tls13: bool,
}

impl SqlEndpointConfig {
    /// A configuration with the given certificate chain and key, and defaults for the rest.
    pub fn new(cert_chain: Vec<CertificateDer<'static>>, key: Arc<PrivateKeyDer<'static>>) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            cert_chain,
            key,
            server_name: "emulator".to_string(),
            databases: Vec::new(),
            encryption: Encryption::default(),
            fedauth_echo: EchoPolicy::default(),
            send_nonce: false,
            session_recovery: true,
            login_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30 * 60),
            max_message_size: 1 << 20,
            tds7_allow_tls13: false,
        }
    }
}

impl fmt::Debug for SqlEndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlEndpointConfig")
            .field("bind", &self.bind)
            .field(
                "cert_chain",
                &format_args!("{} certificate(s)", self.cert_chain.len()),
            )
            .field("server_name", &self.server_name)
            .field("databases", &self.databases)
            .field("encryption", &self.encryption)
            .field("fedauth_echo", &self.fedauth_echo)
            .field("send_nonce", &self.send_nonce)
            .field("session_recovery", &self.session_recovery)
            .field("login_timeout", &self.login_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("tds7_allow_tls13", &self.tds7_allow_tls13)
            .finish_non_exhaustive()
    }
}

/// A running SQL endpoint. Dropping it stops it; [`SqlEndpoint::shutdown`] also waits for that.
pub struct SqlEndpoint {
    local_addr: SocketAddr,
    faults: SqlFaults,
    databases: Databases,
    stats: SqlStats,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SqlEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlEndpoint")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

fn tls_config(
    config: &SqlEndpointConfig,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: Vec<Vec<u8>>,
) -> std::io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| std::io::Error::other(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(config.cert_chain.clone(), config.key.clone_key())
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "SqlEndpointConfig.cert_chain/key: the certificate and key are not usable: {e}"
                ),
            )
        })?;
    c.alpn_protocols = alpn;
    c.send_tls13_tickets = 0;
    Ok(Arc::new(c))
}

impl SqlEndpoint {
    /// Binds the listener and starts accepting connections on the current tokio runtime.
    pub async fn start(
        config: SqlEndpointConfig,
        authority: Arc<dyn LoginAuthority>,
    ) -> std::io::Result<SqlEndpoint> {
        // TDS 7.x wraps the handshake in 0x12 packets; TLS 1.3 makes ODBC send its final flight unwrapped and
        // needs post-handshake tickets, so that path is capped at 1.2 (the first-byte check stays as a net).
        let tds7_versions: &[&'static rustls::SupportedProtocolVersion] = if config.tds7_allow_tls13
        {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12]
        };
        let tls_7x = tls_config(&config, tds7_versions, Vec::new())?;
        let tls_strict = tls_config(
            &config,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            vec![b"tds/8.0".to_vec()],
        )?;
        let listener = TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        let databases = Databases::new();
        for name in &config.databases {
            databases.create_database(name);
        }
        let faults = SqlFaults::default();
        let stats = SqlStats::default();
        let shared = Arc::new(session::Shared {
            server_name: config.server_name.clone(),
            encryption: config.encryption,
            echo: config.fedauth_echo,
            send_nonce: config.send_nonce,
            session_recovery: config.session_recovery,
            login_timeout: config.login_timeout,
            idle_timeout: config.idle_timeout,
            max_message_size: config.max_message_size,
            tls_7x,
            tls_strict,
            authority,
            databases: databases.clone(),
            faults: faults.clone(),
            stats: stats.clone(),
            next_spid: AtomicU16::new(51),
        });
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            tracing::debug!(%peer, "SQL connection accepted");
                            sessions.spawn(session::run(shared.clone(), stream));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
            sessions.shutdown().await;
        });
        tracing::info!(%local_addr, "SQL endpoint listening");
        Ok(SqlEndpoint {
            local_addr,
            faults,
            databases,
            stats,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The fault knobs.
    pub fn faults(&self) -> SqlFaults {
        self.faults.clone()
    }

    /// The databases, their users and roles.
    pub fn databases(&self) -> Databases {
        self.databases.clone()
    }

    /// The counters.
    pub fn stats(&self) -> SqlStats {
        self.stats.clone()
    }

    /// Stops accepting, ends every session and waits for that.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SqlEndpoint {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Aborting the accept task drops its JoinSet, which aborts every session.
            task.abort();
        }
    }
}

#[cfg(test)]
mod fuzz;

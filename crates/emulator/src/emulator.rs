//! [`Emulator`]: starts the token service, the managed-identity endpoints and the SQL endpoint together.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

use crate::directory::{Directory, DirectoryError, Subject};
use crate::http::{self, AppState, HttpFaults, HttpService, HttpStats};
use crate::identity::{Identity, IdentityError, MintOptions};
use crate::keys::{pooled_rsa_key, KeyError};
use crate::model::LoginAuthority;
use crate::msi::{APP_SERVICE_PATH, IMDS_PATH};
use crate::pki::{PkiError, TestPki};
use crate::secret::Secret;
use crate::sql::{SqlEndpoint, SqlEndpointConfig};

/// Why the emulator could not start (or do what was asked).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The directory is invalid.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The test PKI could not be generated.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A signing key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Minting a token or approving a device code failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The TLS configuration was refused by rustls.
    #[error("the emulator's TLS configuration is unusable: {0}")]
    Tls(String),
    /// A listener could not bind (in use, or an address this host does not have).
    #[error("cannot listen for the {what} on {addr}: {source}; choose another address or port (0 picks a free one)")]
    Bind {
        /// Which service.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The SQL endpoint failed to start.
    #[error("the SQL endpoint did not start: {0}")]
    Sql(#[source] Arc<std::io::Error>),
    /// A database user of the directory could not be created in the SQL endpoint.
    #[error("cannot seed database '{database}' with user '{user}': {reason}")]
    Seed {
        /// The database.
        database: String,
        /// The user.
        user: String,
        /// What the SQL half answered.
        reason: String,
    },
    /// Writing a file (the CA, a token, a certificate) failed.
    #[error("cannot write {what} to '{}': {source}", path.display())]
    Write {
        /// What was written.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The runtime for [`Emulator::start_blocking`] could not be built.
    #[error("cannot build the emulator's tokio runtime: {0}")]
    Runtime(#[source] Arc<std::io::Error>),
}

type SqlConfigure = Box<dyn FnOnce(&mut SqlEndpointConfig) + Send>;

/// Configures and starts an [`Emulator`]. Everything binds to 127.0.0.1 on free ports unless told otherwise.
pub struct EmulatorBuilder {
    directory: Option<Directory>,
    token_lifetime: Option<Duration>,
    leeway: Option<Duration>,
    bind_ip: IpAddr,
    sts_host: Option<String>,
    sts_port: u16,
    app_service_port: u16,
    sql_port: u16,
    imds_bind: Option<SocketAddr>,
    identity_header: Option<Secret>,
    output_dir: Option<PathBuf>,
    spn: Option<String>,
    accepted_audiences: Vec<String>,
    extra_cert_names: Vec<String>,
    configure_sql: Option<SqlConfigure>,
    fresh_signing_key: bool,
}

impl std::fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("bind_ip", &self.bind_ip)
            .field("sts_host", &self.sts_host)
            .field("sts_port", &self.sts_port)
            .field("sql_port", &self.sql_port)
            .field("imds_bind", &self.imds_bind)
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            directory: None,
            token_lifetime: None,
            leeway: None,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sts_host: None,
            sts_port: 0,
            app_service_port: 0,
            sql_port: 0,
            imds_bind: None,
            identity_header: None,
            output_dir: None,
            spn: None,
            accepted_audiences: Vec::new(),
            extra_cert_names: Vec::new(),
            configure_sql: None,
            fresh_signing_key: false,
        }
    }
}

impl EmulatorBuilder {
    /// The directory (default: [`Directory::demo`]).
    pub fn directory(mut self, directory: Directory) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The lifetime of issued tokens (default 75 minutes).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// The clock skew allowed when the SQL endpoint validates `nbf`/`exp` (default 30 s).
    pub fn validation_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// The IP every listener binds to (default 127.0.0.1).
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }

    /// The host name in the token service's URLs (default: the bind IP). Must be one of the certificate's names
    /// (see [`crate::pki::SERVER_CERT_NAMES`]) or added with [`EmulatorBuilder::extra_cert_name`].
    pub fn sts_host(mut self, host: impl Into<String>) -> Self {
        self.sts_host = Some(host.into());
        self
    }

    /// The token service's port (default 0: a free one).
    pub fn sts_port(mut self, port: u16) -> Self {
        self.sts_port = port;
        self
    }

    /// The App Service managed-identity endpoint's port (default 0).
    pub fn app_service_port(mut self, port: u16) -> Self {
        self.app_service_port = port;
        self
    }

    /// The SQL endpoint's port (default 0).
    pub fn sql_port(mut self, port: u16) -> Self {
        self.sql_port = port;
        self
    }

    /// Where the instance-metadata endpoint listens (default `<bind ip>:0`); `169.254.169.254:80` inside a
    /// private network namespace, where the driver looks for it.
    pub fn imds_bind(mut self, addr: SocketAddr) -> Self {
        self.imds_bind = Some(addr);
        self
    }

    /// The `IDENTITY_HEADER` secret of the App Service endpoint (default: random).
    pub fn identity_header(mut self, value: impl Into<String>) -> Self {
        self.identity_header = Some(Secret::new(value));
        self
    }

    /// The directory where the CA (and tokens, certificates asked for) are written (default: a fresh directory
    /// under the system temp dir, removed when the emulator stops). A given directory is kept.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    /// The SPN announced in FEDAUTHINFO (default `https://database.windows.net/`); also accepted as audience.
    pub fn spn(mut self, spn: impl Into<String>) -> Self {
        self.spn = Some(spn.into());
        self
    }

    /// One more audience the SQL endpoint accepts (e.g. a sovereign cloud's).
    pub fn accept_audience(mut self, audience: impl Into<String>) -> Self {
        self.accepted_audiences.push(audience.into());
        self
    }

    /// One more name (host or IP) in the server certificate.
    pub fn extra_cert_name(mut self, name: impl Into<String>) -> Self {
        self.extra_cert_names.push(name.into());
        self
    }

    /// Adjusts the SQL endpoint's configuration (encryption policy, server name …) before it starts.
    /// `bind`, `cert_chain`, `key` and `databases` are set by the emulator first.
    pub fn configure_sql(
        mut self,
        f: impl FnOnce(&mut SqlEndpointConfig) + Send + 'static,
    ) -> Self {
        self.configure_sql = Some(Box::new(f));
        self
    }

    /// Signs with a key of its own instead of the per-process shared one (which costs an RSA key generation,
    /// a fraction of a second). By default every emulator in a process signs with the same key, so one
    /// emulator accepts another's tokens when their tenants match.
    pub fn fresh_signing_key(mut self) -> Self {
        self.fresh_signing_key = true;
        self
    }

    /// Starts everything on the current tokio runtime.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        Emulator::start_with(self).await
    }
}

/// Removes the emulator's temporary directory when the emulator goes away.
#[derive(Debug)]
struct OutputDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A running emulator: token service (HTTPS), managed-identity endpoints (HTTP), SQL endpoint (TDS).
/// Dropping it stops everything; [`Emulator::shutdown`] also waits for that.
pub struct Emulator {
    identity: Identity,
    faults: HttpFaults,
    stats: HttpStats,
    pki: Arc<TestPki>,
    sts_addr: SocketAddr,
    sts_host: String,
    imds_addr: SocketAddr,
    app_service_addr: SocketAddr,
    identity_header: Secret,
    ca_path: PathBuf,
    output: OutputDir,
    sql: SqlEndpoint,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("sts", &self.sts_base_url())
            .field("imds", &self.imds_addr)
            .field("app_service", &self.app_service_addr)
            .field("sql", &self.sql.local_addr())
            .field("tenant", &self.tenant_id())
            .finish_non_exhaustive()
    }
}

fn write_file(
    path: &Path,
    contents: &[u8],
    what: &'static str,
    private: bool,
) -> Result<(), EmulatorError> {
    let err = |source| EmulatorError::Write {
        what,
        path: path.to_owned(),
        source: Arc::new(source),
    };
    std::fs::write(path, contents).map_err(err)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

impl Emulator {
    /// A builder with the defaults.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts the emulator on its own runtime, for plain `#[test]`s. The handle derefs to the [`Emulator`];
    /// dropping it stops everything.
    pub fn start_blocking(builder: EmulatorBuilder) -> Result<EmulatorHandle, EmulatorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mssql-entra-emulator")
            .enable_all()
            .build()
            .map_err(|e| EmulatorError::Runtime(Arc::new(e)))?;
        let emulator = runtime.block_on(builder.start())?;
        Ok(EmulatorHandle {
            emulator: Some(emulator),
            runtime: Some(runtime),
        })
    }

    async fn start_with(b: EmulatorBuilder) -> Result<Emulator, EmulatorError> {
        let directory = match b.directory {
            Some(d) => {
                d.check()?;
                d
            }
            None => Directory::demo()?,
        };
        let key = if b.fresh_signing_key {
            Arc::new(crate::keys::RsaKey::generate()?)
        } else {
            pooled_rsa_key(0)?
        };
        let identity = Identity::new(directory, key);
        if let Some(lifetime) = b.token_lifetime {
            identity.set_token_lifetime(lifetime);
        }
        if let Some(leeway) = b.leeway {
            identity.set_validation_leeway(leeway);
        }
        if let Some(spn) = &b.spn {
            identity.set_spn(spn);
        }
        for audience in &b.accepted_audiences {
            identity.add_accepted_audience(audience);
        }

        let sts_host = b.sts_host.clone().unwrap_or_else(|| b.bind_ip.to_string());
        let mut cert_names = b.extra_cert_names.clone();
        cert_names.push(sts_host.clone());
        cert_names.push(b.bind_ip.to_string());
        let pki = Arc::new(TestPki::generate(&cert_names)?);

        let output = match &b.output_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| EmulatorError::Write {
                    what: "the output directory",
                    path: dir.clone(),
                    source: Arc::new(e),
                })?;
                OutputDir {
                    path: dir.clone(),
                    remove: false,
                }
            }
            None => {
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "mssql-entra-emulator-{}-{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).map_err(|e| EmulatorError::Write {
                    what: "the output directory",
                    path: dir.clone(),
                    source: Arc::new(e),
                })?;
                OutputDir {
                    path: dir,
                    remove: true,
                }
            }
        };
        let ca_path = output.path.join("ca.pem");
        write_file(
            &ca_path,
            pki.ca_pem().as_bytes(),
            "the CA certificate",
            false,
        )?;

        let identity_header = b
            .identity_header
            .clone()
            .unwrap_or_else(|| Secret::new(Uuid::new_v4().simple().to_string()));
        let faults = HttpFaults::default();
        let stats = HttpStats::default();
        let state = AppState {
            identity: identity.clone(),
            faults: faults.clone(),
            stats: stats.clone(),
            identity_header: identity_header.clone(),
        };

        let sts_listener =
            http::bind(SocketAddr::new(b.bind_ip, b.sts_port), "token service").await?;
        let sts_addr = local_addr(&sts_listener, "token service")?;
        identity.set_sts_base_url(format!(
            "https://{}:{}",
            url_host(&sts_host),
            sts_addr.port()
        ));
        let app_listener = http::bind(
            SocketAddr::new(b.bind_ip, b.app_service_port),
            "App Service endpoint",
        )
        .await?;
        let app_service_addr = local_addr(&app_listener, "App Service endpoint")?;
        let imds_listener = http::bind(
            b.imds_bind.unwrap_or(SocketAddr::new(b.bind_ip, 0)),
            "instance-metadata endpoint",
        )
        .await?;
        let imds_addr = local_addr(&imds_listener, "instance-metadata endpoint")?;

        let tls = pki
            .https_server_config()
            .map_err(|e| EmulatorError::Tls(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            http::spawn_server(
                sts_listener,
                Some(TlsAcceptor::from(Arc::new(tls))),
                HttpService::TokenService,
                state.clone(),
                stopped.clone(),
            ),
            http::spawn_server(
                app_listener,
                None,
                HttpService::AppService,
                state.clone(),
                stopped.clone(),
            ),
            http::spawn_server(imds_listener, None, HttpService::Imds, state, stopped),
        ];

        // The SQL endpoint, seeded with the directory's databases and users.
        let dir = identity.directory();
        let mut config = SqlEndpointConfig::new(pki.server_chain().to_vec(), pki.server_key());
        config.bind = SocketAddr::new(b.bind_ip, b.sql_port);
        config.databases = dir.databases.iter().map(|d| d.name.clone()).collect();
        if let Some(configure) = b.configure_sql {
            configure(&mut config);
        }
        let authority: Arc<dyn LoginAuthority> = Arc::new(identity.clone());
        let sql = SqlEndpoint::start(config, authority)
            .await
            .map_err(|e| EmulatorError::Sql(Arc::new(e)))?;
        let databases = sql.databases();
        if let Some(admin) = &dir.sql_admin {
            let principal = dir.resolve(admin).ok_or_else(|| EmulatorError::Seed {
                database: "(server)".to_owned(),
                user: admin.clone(),
                reason: "the sql_admin names no principal of the directory".to_owned(),
            })?;
            databases.set_entra_admin(Some(principal));
        }
        for db in &dir.databases {
            databases.create_database(&db.name);
            for seed in &db.users {
                let seed_err = |reason: String| EmulatorError::Seed {
                    database: db.name.clone(),
                    user: seed.principal.clone(),
                    reason,
                };
                let principal = dir
                    .resolve(&seed.principal)
                    .ok_or_else(|| seed_err("no such principal".to_owned()))?;
                let name = principal
                    .upn
                    .clone()
                    .unwrap_or_else(|| principal.display_name.clone());
                databases
                    .add_principal_user(&db.name, &name, &principal)
                    .map_err(|e| seed_err(e.to_string()))?;
                for role in &seed.roles {
                    databases
                        .add_role_member(&db.name, role, &name)
                        .map_err(|e| seed_err(e.to_string()))?;
                }
            }
        }
        tracing::info!(sts = %identity.sts_base_url(), %imds_addr, %app_service_addr, sql = %sql.local_addr(), "emulator started");
        Ok(Emulator {
            identity,
            faults,
            stats,
            pki,
            sts_addr,
            sts_host,
            imds_addr,
            app_service_addr,
            identity_header,
            ca_path,
            output,
            sql,
            stop,
            tasks,
        })
    }

    /// Stops every service and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.sql.shutdown().await;
    }

    // ---- endpoints ----

    /// The SQL endpoint's address.
    pub fn sql_addr(&self) -> SocketAddr {
        self.sql.local_addr()
    }

    /// The SQL endpoint (its databases, faults and counters).
    pub fn sql(&self) -> &SqlEndpoint {
        &self.sql
    }

    /// The token service's base URL, `https://<host>:<port>` (no trailing slash).
    pub fn sts_base_url(&self) -> String {
        self.identity.sts_base_url()
    }

    /// The token service's socket address.
    pub fn sts_addr(&self) -> SocketAddr {
        self.sts_addr
    }

    /// The host name used in the token service's URLs.
    pub fn sts_host(&self) -> &str {
        &self.sts_host
    }

    /// The authority host for azure_identity's `AZURE_AUTHORITY_HOST` (`https://<host>:<port>/`).
    pub fn authority_host(&self) -> String {
        format!("{}/", self.sts_base_url())
    }

    /// The STS URL the SQL endpoint announces (`https://<host>:<port>/<tenant id>`).
    pub fn sts_url(&self) -> String {
        self.identity.sts_url()
    }

    /// The v1 token endpoint for `tenant` (the driver's form; it appends `?api-version=2015-06-01`).
    pub fn token_url_v1(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/token", self.sts_base_url())
    }

    /// The v2.0 token endpoint for `tenant` (azure_identity's).
    pub fn token_url_v2(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.sts_base_url())
    }

    /// The instance-metadata token URL (`http://<addr>/metadata/identity/oauth2/token`).
    pub fn imds_url(&self) -> String {
        format!("http://{}{IMDS_PATH}", self.imds_addr)
    }

    /// The instance-metadata endpoint's address.
    pub fn imds_addr(&self) -> SocketAddr {
        self.imds_addr
    }

    /// `IDENTITY_ENDPOINT` for the App Service form.
    pub fn identity_endpoint(&self) -> String {
        format!("http://{}{APP_SERVICE_PATH}", self.app_service_addr)
    }

    /// `IDENTITY_HEADER` for the App Service form (a secret: shown only to the client under test).
    pub fn identity_header(&self) -> &Secret {
        &self.identity_header
    }

    /// The test CA, PEM.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The file holding the test CA (point `SSL_CERT_FILE` at it).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The PKI (CA and server certificate), e.g. for a test client's rustls configuration.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The directory where the emulator writes files.
    pub fn output_dir(&self) -> &Path {
        &self.output.path
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Uuid {
        self.identity.tenant_id()
    }

    /// A snapshot of the directory.
    pub fn directory(&self) -> Directory {
        self.identity.directory()
    }

    /// The identity core: knobs on lifetimes and clocks, device codes, token minting, the [`LoginAuthority`].
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The HTTP fault knobs.
    pub fn http_faults(&self) -> HttpFaults {
        self.faults.clone()
    }

    /// The HTTP request counters.
    pub fn http_stats(&self) -> HttpStats {
        self.stats.clone()
    }

    /// Switches the emulated Microsoft Graph on or off.
    pub fn set_graph_available(&self, available: bool) {
        self.identity.set_graph_available(available);
    }

    /// Mints an access token for `who` (name, UPN, client id or object id) with `audience`, valid for `lifetime`.
    pub fn issue_token(
        &self,
        who: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        Ok(self.identity.issue_token(who, audience, lifetime)?)
    }

    /// Mints an access token with full control (expired, not yet valid, foreign issuer or key).
    pub fn mint_token(
        &self,
        who: &str,
        audience: &str,
        options: MintOptions,
    ) -> Result<String, EmulatorError> {
        Ok(self.identity.mint_token(who, audience, options)?)
    }

    /// Approves a pending device code as `user`.
    pub fn approve_device_code(&self, user_code: &str, user: &str) -> Result<(), EmulatorError> {
        Ok(self.identity.approve_device_code(user_code, user)?)
    }

    /// Writes a federated token for `subject` to `<output dir>/federated-token` (for `AZURE_FEDERATED_TOKEN_FILE`).
    pub fn write_federated_token(
        &self,
        subject: &str,
        lifetime: Duration,
    ) -> Result<PathBuf, EmulatorError> {
        let token = self.identity.issue_federated_token(subject, lifetime)?;
        let path = self.output.path.join("federated-token");
        write_file(&path, token.as_bytes(), "the federated token", true)?;
        Ok(path)
    }

    /// Writes the first certificate of app `app` (key + certificate PEM) to `<output dir>/<app>.pem`
    /// (for `AZURE_CLIENT_CERTIFICATE_PATH`). `None` when the app has no certificate.
    pub fn write_app_certificate(&self, app: &str) -> Result<Option<PathBuf>, EmulatorError> {
        let cert = match self.identity.with_directory(|d| d.find_subject(app)) {
            Some(Subject::App(a)) => a.certificates.first().cloned(),
            _ => None,
        };
        let Some(cert) = cert else { return Ok(None) };
        let safe: String = app
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.output.path.join(format!("{safe}.pem"));
        write_file(
            &path,
            cert.combined_pem().expose().as_bytes(),
            "the app certificate",
            true,
        )?;
        Ok(Some(path))
    }

    /// The environment a client process needs, for the app `client` (its client id becomes `AZURE_CLIENT_ID`).
    /// Values are secrets where marked: `IDENTITY_HEADER` is one, so print this only to a terminal you own.
    pub fn client_env(&self, client: Option<&str>) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("IDENTITY_ENDPOINT", self.identity_endpoint()),
            ("IDENTITY_HEADER", self.identity_header.expose().to_owned()),
            ("SSL_CERT_FILE", self.ca_path.display().to_string()),
            ("AZURE_AUTHORITY_HOST", self.authority_host()),
            ("AZURE_TENANT_ID", self.tenant_id().to_string()),
        ];
        let client_id = self.identity.with_directory(|d| match client {
            Some(name) => match d.find_subject(name) {
                Some(Subject::App(a)) => Some(a.client_id),
                Some(Subject::ManagedIdentity(m)) => Some(m.client_id),
                _ => None,
            },
            None => d.apps.first().map(|a| a.client_id),
        });
        if let Some(id) = client_id {
            env.push(("AZURE_CLIENT_ID", id.to_string()));
        }
        env
    }
}

fn local_addr(
    listener: &tokio::net::TcpListener,
    what: &'static str,
) -> Result<SocketAddr, EmulatorError> {
    listener.local_addr().map_err(|e| EmulatorError::Bind {
        what,
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        source: Arc::new(e),
    })
}

fn url_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

/// An [`Emulator`] running on its own tokio runtime, for plain `#[test]`s. Derefs to the emulator; dropping it
/// stops the emulator and the runtime.
pub struct EmulatorHandle {
    emulator: Option<Emulator>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("emulator", &self.emulator)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The runtime the emulator runs on (to `block_on` async client code in a test).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        // Both fields are `Some` from construction until `drop`, which is the only place that takes them.
        self.runtime
            .as_ref()
            .expect("the runtime lives until the handle is dropped")
    }
}

impl std::ops::Deref for EmulatorHandle {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        // Both fields are `Some` from construction until `drop`, which is the only place that takes them.
        self.emulator
            .as_ref()
            .expect("the emulator lives until the handle is dropped")
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let (Some(emulator), Some(runtime)) = (self.emulator.take(), self.runtime.take()) {
            runtime.block_on(emulator.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

//! Resolution: [`Settings`] → [`Plan`] (the connection string and how to authenticate).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use mssql_entra_connstr::{
    Authentication, ConnectionString, ConnectionStringBuilder, DangerOptions, TargetOs,
    ValidateOptions,
};
use mssql_entra_odbc::{Auth, Connector, ConnectorOptions};
use mssql_entra_token::{Cloud, Scope, Secret, TokenSource};

use crate::error::{invalid, Error};
use crate::settings::{PoolSettings, Settings, SourceKind, TokenSetting, TokenSourceSettings};

/// How a [`Plan`] authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMode {
    /// A literal access token (`TOKEN = "..."` or `TOKEN_ENV`), handed to the driver as is.
    AccessToken,
    /// Token mode: tokens from this source, cached and renewed ahead of expiry, handed to the driver
    /// for every physical connection (`TOKEN = { source = ... }`, or an `Authentication=` value
    /// the driver refuses, served by the matching source).
    TokenSource(SourceKind),
    /// One of the driver's own `Authentication=` modes, written in the connection string.
    Driver(Authentication),
    /// No Entra auth: a SQL login (`USER`/`PASSWORD`), or whatever the DSN or `extra_params` say.
    ConnectionString,
}

/// Options of [`Settings::resolve_with`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// Read `*_env` variables (and, for the default chain and device code, `AZURE_*`) from this
    /// map instead of the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Where the connection will be made (only "Windows or not" matters). Default: this OS.
    pub target_os: Option<TargetOs>,
}

impl ResolveOptions {
    /// Sets [`env`](Self::env).
    pub fn with_env(mut self, env: HashMap<String, String>) -> Self {
        self.env = Some(env);
        self
    }

    /// Sets [`target_os`](Self::target_os).
    pub fn with_target_os(mut self, os: TargetOs) -> Self {
        self.target_os = Some(os);
        self
    }

    fn var(&self, name: &str) -> Option<String> {
        let v = match &self.env {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        v.filter(|v| !v.trim().is_empty())
    }
}

impl fmt::Debug for ResolveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the variable names: the values may be secrets.
        f.debug_struct("ResolveOptions")
            .field(
                "env",
                &self
                    .env
                    .as_ref()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            )
            .field("target_os", &self.target_os)
            .finish()
    }
}

/// What [`Settings`] resolve to: the connection string, how to authenticate, and the connector's
/// and pool's options. Build it once and reuse it (or its [`connector`](Plan::connector)): the
/// token cache lives in the plan, so every connection made from it shares one cached source.
#[derive(Clone)]
pub struct Plan {
    connection_string: ConnectionString,
    auth: Auth,
    mode: AuthMode,
    scope: Option<Scope>,
    connector_options: ConnectorOptions,
    pool: PoolSettings,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection string's Display masks PWD and other secrets.
        f.debug_struct("Plan")
            .field("connection_string", &self.connection_string.to_string())
            .field("mode", &self.mode)
            .field("scope", &self.scope)
            .field("connector_options", &self.connector_options)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// The connection string the driver will get (its `Display` masks secrets).
    pub fn connection_string(&self) -> &ConnectionString {
        &self.connection_string
    }

    /// How the plan authenticates.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The connector's auth: token source and scope, driver mode, or the connection string's own.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The token source of token mode (already wrapped in `CachedTokenSource`), shared by every
    /// connection made from this plan.
    pub fn token_source(&self) -> Option<&Arc<dyn TokenSource>> {
        match &self.auth {
            Auth::Token(source, _) => Some(source),
            _ => None,
        }
    }

    /// The token scope of token mode.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// Login timeout, retries, target OS and danger options for the connector.
    pub fn connector_options(&self) -> &ConnectorOptions {
        &self.connector_options
    }

    /// The pool settings (`OPTIONS.pool`).
    pub fn pool_settings(&self) -> &PoolSettings {
        &self.pool
    }

    /// A connector for this plan. No network I/O: it reads the driver manager's driver list to
    /// check the installed driver's version against the mode.
    pub fn connector(&self) -> Result<Connector, Error> {
        Ok(Connector::new(
            self.connection_string.clone(),
            self.auth.clone(),
            self.connector_options,
        )?)
    }
}

/// How one `TOKEN` form or `Authentication=` mode is served.
enum Choice {
    Token(Arc<dyn TokenSource>, AuthMode),
    Driver(Authentication),
    Plain,
}

impl Settings {
    /// Resolves the settings against the process environment: see [`resolve_with`](Self::resolve_with).
    pub fn resolve(&self) -> Result<Plan, Error> {
        self.resolve_with(&ResolveOptions::default())
    }

    /// Turns the settings into a [`Plan`]: validates them, reads the secrets named by `*_env`
    /// keys, builds the token source of token mode (wrapped in `CachedTokenSource`), builds and
    /// validates the connection string. Reads `ca_file`/`certificate_file` when given; no network
    /// I/O (token sources fetch on first use).
    ///
    /// * `TOKEN = "..."` or `TOKEN_ENV`: the literal token (feature `access-token`).
    /// * `TOKEN = { source = ... }`: that source (its feature, see [`SourceKind::feature`]).
    /// * `Authentication=` in `OPTIONS.extra_params`:
    ///   - `ActiveDirectoryDefault`, `…ManagedIdentity`, `…WorkloadIdentity`, `…DeviceCode`, which
    ///     the driver refuses, are served in token mode by the matching source (Default through
    ///     the explicit chain; `USER`, when given, is the client id), logged at `info`;
    ///   - `ActiveDirectoryMsi`, `…ServicePrincipal`, `…Password`, `…Integrated`, `…Interactive`
    ///     stay the driver's own modes (Password logs a deprecation warning; Interactive off
    ///     Windows is [`Error::InteractiveNotWindows`]);
    ///   - `SqlPassword`, or no `Authentication` at all: the connection string as it is.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use mssql_entra::{AuthMode, ResolveOptions, Settings};
    ///
    /// let settings = Settings::from_toml_str(r#"
    ///     HOST = "sql.internal"
    ///     NAME = "app"
    ///     USER = "reporting"
    ///     PASSWORD_ENV = "REPORTING_PASSWORD"
    /// "#)?;
    /// let env = HashMap::from([("REPORTING_PASSWORD".to_owned(), "s3cret".to_owned())]);
    /// let plan = settings.resolve_with(&ResolveOptions::default().with_env(env))?;
    /// assert_eq!(plan.mode(), AuthMode::ConnectionString); // a SQL login
    /// // Display masks the password; only to_odbc_string() holds it, for the driver.
    /// assert!(!plan.connection_string().to_string().contains("s3cret"));
    /// assert!(plan.connection_string().to_odbc_string().contains("PWD={s3cret}"));
    /// # Ok::<(), mssql_entra::Error>(())
    /// ```
    pub fn resolve_with(&self, options: &ResolveOptions) -> Result<Plan, Error> {
        self.validate()?;
        let target_os = options.target_os.unwrap_or_else(TargetOs::current);
        let mode = self.extra_params_authentication()?;
        let scope = || -> Result<Scope, Error> {
            let explicit = match &self.token {
                Some(TokenSetting::Source(s)) => s.scope.clone(),
                _ => None,
            };
            match explicit {
                Some(s) => Ok(Scope::new(s)?),
                None => Ok(self
                    .host
                    .as_deref()
                    .and_then(Cloud::from_host)
                    .map_or_else(Scope::azure_sql, Cloud::scope)),
            }
        };
        let choice = match (&self.token, &self.token_env) {
            (Some(TokenSetting::Literal(token)), _) => literal(token.clone())?,
            (_, Some(var)) => literal(secret_from_env(options, "TOKEN_ENV", var)?)?,
            (Some(TokenSetting::Source(source)), _) => {
                let built = build_source(source, self, options)?;
                Choice::Token(built, AuthMode::TokenSource(source.source))
            }
            (None, None) => match mode {
                None | Some(Authentication::SqlPassword) => Choice::Plain,
                Some(m) => self.serve_authentication(m, options, target_os)?,
            },
        };
        let password = match (&self.password, &self.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(secret_from_env(options, "PASSWORD_ENV", var)?),
            (None, None) => None,
        };
        let token_mode = matches!(choice, Choice::Token(..));
        let connection_string = self.connection_string(token_mode, password.as_ref())?;
        connection_string.validate(&ValidateOptions {
            access_token: token_mode,
            token_modes_provided: false,
            target_os,
            danger: DangerOptions {
                allow_unencrypted_token: self.options.danger_allow_unencrypted_token,
            },
        })?;
        let (auth, mode, scope) = match choice {
            Choice::Token(source, mode) => {
                let scope = scope()?;
                (Auth::Token(source, scope.clone()), mode, Some(scope))
            }
            Choice::Driver(m) => (Auth::Driver(m), AuthMode::Driver(m), None),
            Choice::Plain => (Auth::ConnectionString, AuthMode::ConnectionString, None),
        };
        let mut connector_options = ConnectorOptions::default()
            .with_target_os(target_os)
            .with_danger(DangerOptions {
                allow_unencrypted_token: self.options.danger_allow_unencrypted_token,
            });
        if let Some(timeout) = self.options.login_timeout {
            connector_options = connector_options.with_login_timeout(Some(timeout));
        }
        Ok(Plan {
            connection_string,
            auth,
            mode,
            scope,
            connector_options,
            pool: self.options.pool.clone(),
        })
    }

    /// An `Authentication=` mode from `extra_params`, without `TOKEN`.
    fn serve_authentication(
        &self,
        mode: Authentication,
        options: &ResolveOptions,
        target_os: TargetOs,
    ) -> Result<Choice, Error> {
        let token_mode = |kind: SourceKind| -> Result<Choice, Error> {
            let mut table = TokenSourceSettings::new(kind);
            table.client_id = self.user.clone();
            if kind == SourceKind::DeviceCode {
                table.tenant_id = options.var("AZURE_TENANT_ID");
                if table.client_id.is_none() {
                    table.client_id = options.var("AZURE_CLIENT_ID");
                }
                if table.client_id.is_none() {
                    return Err(invalid(
                        "USER",
                        "`Authentication=ActiveDirectoryDeviceCode` needs the client id of a public client app registration: set USER (or AZURE_CLIENT_ID), or use TOKEN = { source = \"device-code\", tenant_id = \"...\", client_id = \"...\" }",
                    ));
                }
            }
            tracing::info!(
                authentication = mode.as_str(),
                source = kind.as_str(),
                "the ODBC driver refuses this Authentication mode; serving it in token mode with mssql-entra's own token source"
            );
            let source = build_source(&table, self, options)?;
            Ok(Choice::Token(source, AuthMode::TokenSource(kind)))
        };
        let enabled = |feature: &'static str, on: bool| -> Result<(), Error> {
            if on {
                Ok(())
            } else {
                Err(Error::AuthModeNotEnabled {
                    mode: mode_label(mode),
                    feature,
                })
            }
        };
        match mode {
            Authentication::Default => token_mode(SourceKind::Default),
            Authentication::ManagedIdentity => token_mode(SourceKind::ManagedIdentity),
            Authentication::WorkloadIdentity => token_mode(SourceKind::WorkloadIdentity),
            Authentication::DeviceCode => token_mode(SourceKind::DeviceCode),
            Authentication::Msi => {
                enabled("managed-identity", cfg!(feature = "managed-identity"))?;
                tracing::info!("Authentication=ActiveDirectoryMsi: the driver calls the identity endpoint on every connect; TOKEN = {{ source = \"managed-identity\" }} caches the token instead");
                Ok(Choice::Driver(mode))
            }
            Authentication::ServicePrincipal => {
                enabled("service-principal", cfg!(feature = "service-principal"))?;
                Ok(Choice::Driver(mode))
            }
            Authentication::Password => {
                enabled("password", cfg!(feature = "password"))?;
                tracing::warn!("Authentication=ActiveDirectoryPassword is deprecated by Microsoft and fails for accounts with MFA; use a service principal (TOKEN = {{ source = \"client-secret\" }} or \"client-certificate\"), a managed identity (TOKEN = {{ source = \"managed-identity\" }}), or device code / developer tools for people");
                Ok(Choice::Driver(mode))
            }
            Authentication::Integrated => {
                enabled("integrated", cfg!(feature = "integrated"))?;
                Ok(Choice::Driver(mode))
            }
            Authentication::Interactive => {
                enabled("interactive", cfg!(feature = "interactive"))?;
                if target_os != TargetOs::Windows {
                    return Err(Error::InteractiveNotWindows);
                }
                Ok(Choice::Driver(mode))
            }
            // SqlPassword and modes added later: the connector judges them.
            _ => Ok(Choice::Driver(mode)),
        }
    }

    /// The connection string: from `OPTIONS.dsn`, or built from `HOST`, `PORT`, `NAME`, ...
    /// In token mode it carries no `UID`, `PWD` or `Authentication`.
    fn connection_string(
        &self,
        token_mode: bool,
        password: Option<&Secret>,
    ) -> Result<ConnectionString, Error> {
        let opts = &self.options;
        let extra = match &opts.extra_params {
            Some(text) => {
                let mut cs = ConnectionString::parse(text).map_err(|e| {
                    Error::ConnectionString(mssql_entra_connstr::Error::ExtraParams(Box::new(e)))
                })?;
                if token_mode {
                    // A token-mode `Authentication=` value was served by our own source.
                    cs.remove("Authentication");
                }
                Some(cs)
            }
            None => None,
        };
        let (uid, pwd) = if token_mode {
            (None, None)
        } else {
            (
                self.user.clone(),
                password.map(|p| p.expose_secret().to_owned()),
            )
        };
        if let Some(dsn) = &opts.dsn {
            let mut cs = ConnectionString::new();
            cs.set("DSN", dsn.clone());
            if let Some(name) = &self.name {
                cs.set("Database", name.clone());
            }
            if let Some(uid) = uid {
                cs.set("UID", uid);
            }
            if let Some(pwd) = pwd {
                cs.set("PWD", pwd);
            }
            if opts.danger_trust_server_certificate {
                cs.set("TrustServerCertificate", "yes");
            }
            if let Some(extra) = &extra {
                cs.merge(extra)?;
            }
            return Ok(cs);
        }
        // validate() made sure that HOST is set when there is no DSN.
        let host = self.host.clone().unwrap_or_default();
        let mut builder = ConnectionStringBuilder::new(host)
            .danger_trust_server_certificate(opts.danger_trust_server_certificate);
        if let Some(port) = self.port {
            builder = builder.port(port);
        }
        if let Some(name) = &self.name {
            builder = builder.database(name.clone());
        }
        if let Some(driver) = &opts.driver {
            builder = builder.driver(driver.clone());
        }
        if let Some(uid) = uid {
            builder = builder.uid(uid);
        }
        if let Some(pwd) = pwd {
            builder = builder.pwd(pwd);
        }
        if let Some(extra) = &extra {
            builder = builder.extra_params(extra.to_odbc_string());
        }
        Ok(builder.build()?)
    }
}

/// The mode's name for [`Error::AuthModeNotEnabled`].
fn mode_label(mode: Authentication) -> &'static str {
    match mode {
        Authentication::Msi => "Authentication=ActiveDirectoryMsi",
        Authentication::ServicePrincipal => "Authentication=ActiveDirectoryServicePrincipal",
        Authentication::Password => "Authentication=ActiveDirectoryPassword",
        Authentication::Integrated => "Authentication=ActiveDirectoryIntegrated",
        Authentication::Interactive => "Authentication=ActiveDirectoryInteractive",
        Authentication::Default => "Authentication=ActiveDirectoryDefault",
        Authentication::ManagedIdentity => "Authentication=ActiveDirectoryManagedIdentity",
        Authentication::WorkloadIdentity => "Authentication=ActiveDirectoryWorkloadIdentity",
        Authentication::DeviceCode => "Authentication=ActiveDirectoryDeviceCode",
        _ => "Authentication",
    }
}

fn source_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::ManagedIdentity => "TOKEN source `managed-identity`",
        SourceKind::ClientSecret => "TOKEN source `client-secret`",
        SourceKind::ClientCertificate => "TOKEN source `client-certificate`",
        SourceKind::WorkloadIdentity => "TOKEN source `workload-identity`",
        SourceKind::DeveloperTools => "TOKEN source `developer-tools`",
        SourceKind::DeviceCode => "TOKEN source `device-code`",
        SourceKind::Default => "TOKEN source `default`",
    }
}

fn secret_from_env(options: &ResolveOptions, key: &str, var: &str) -> Result<Secret, Error> {
    options
        .var(var)
        .map(Secret::new)
        .ok_or_else(|| Error::MissingEnv {
            key: key.to_owned(),
            var: var.to_owned(),
        })
}

/// A literal access token (feature `access-token`).
fn literal(token: Secret) -> Result<Choice, Error> {
    #[cfg(feature = "access-token")]
    {
        let source = mssql_entra_token::sources::StaticTokenSource::new(token)?;
        Ok(Choice::Token(Arc::new(source), AuthMode::AccessToken))
    }
    #[cfg(not(feature = "access-token"))]
    {
        drop(token);
        Err(Error::AuthModeNotEnabled {
            mode: "TOKEN (a literal access token)",
            feature: "access-token",
        })
    }
}

/// Builds the source of a `TOKEN` table, wrapped in `CachedTokenSource`.
fn build_source(
    table: &TokenSourceSettings,
    settings: &Settings,
    options: &ResolveOptions,
) -> Result<Arc<dyn TokenSource>, Error> {
    let not_enabled = || Error::AuthModeNotEnabled {
        mode: source_label(table.source),
        feature: table.source.feature(),
    };
    // Each arm exists only when its feature is compiled in; the others fall through.
    #[allow(unused_variables)]
    let ctx = Ctx {
        table,
        settings,
        options,
    };
    let built: Option<Arc<dyn TokenSource>> = match table.source {
        #[cfg(feature = "managed-identity")]
        SourceKind::ManagedIdentity => Some(ctx.managed_identity()?),
        #[cfg(feature = "service-principal")]
        SourceKind::ClientSecret => Some(ctx.client_secret()?),
        #[cfg(feature = "service-principal-certificate")]
        SourceKind::ClientCertificate => Some(ctx.client_certificate()?),
        #[cfg(feature = "workload-identity")]
        SourceKind::WorkloadIdentity => Some(ctx.workload_identity()?),
        #[cfg(feature = "developer-tools")]
        SourceKind::DeveloperTools => Some(ctx.developer_tools()?),
        #[cfg(feature = "device-code")]
        SourceKind::DeviceCode => Some(ctx.device_code()?),
        #[cfg(feature = "default-chain")]
        SourceKind::Default => Some(ctx.default_chain()?),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    built.ok_or_else(not_enabled)
}

#[allow(dead_code)]
struct Ctx<'a> {
    table: &'a TokenSourceSettings,
    settings: &'a Settings,
    options: &'a ResolveOptions,
}

#[cfg(any(
    feature = "managed-identity",
    feature = "service-principal",
    feature = "service-principal-certificate",
    feature = "workload-identity",
    feature = "developer-tools",
    feature = "device-code",
    feature = "default-chain"
))]
mod sources {
    use super::*;
    use mssql_entra_token::sources::HttpOptions;
    use mssql_entra_token::CachedTokenSource;

    fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
        std::fs::read(path).map_err(|source| Error::ReadFile {
            key: key.to_owned(),
            path: path.to_owned(),
            source,
        })
    }

    #[allow(dead_code)] // device code builds its own cache
    pub(super) fn cached(source: impl TokenSource + 'static) -> Arc<dyn TokenSource> {
        Arc::new(CachedTokenSource::new(Arc::new(source)))
    }

    #[allow(dead_code)]
    impl Ctx<'_> {
        fn require(&self, key: &str, value: &Option<String>) -> Result<String, Error> {
            value.clone().ok_or_else(|| {
                invalid(
                    format!("TOKEN.{key}"),
                    format!("source `{}` needs `{key}`; add it", self.table.source),
                )
            })
        }

        /// Authority host (the table's, else the host's sovereign cloud's) and extra CA.
        pub(super) fn http(&self) -> Result<HttpOptions, Error> {
            let mut http = HttpOptions::default();
            let cloud = self.settings.host.as_deref().and_then(Cloud::from_host);
            match (&self.table.authority_host, cloud) {
                (Some(host), _) => http = http.with_authority_host(host.clone()),
                (None, Some(c @ (Cloud::AzureUsGovernment | Cloud::AzureChina))) => {
                    http = http.with_authority_host(c.authority_host())
                }
                _ => {}
            }
            if let Some(path) = &self.table.ca_file {
                http = http.with_extra_root_ca_pem(read("TOKEN.ca_file", path)?);
            }
            Ok(http)
        }

        #[cfg(feature = "managed-identity")]
        pub(super) fn managed_identity(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{
                ManagedIdentitySource, ManagedIdentitySourceOptions, UserAssignedId,
            };
            let t = self.table;
            let mut o = ManagedIdentitySourceOptions::default().with_http(self.http()?);
            if let Some(id) = &t.client_id {
                o = o.with_user_assigned_id(UserAssignedId::ClientId(id.clone()));
            } else if let Some(id) = &t.object_id {
                o = o.with_user_assigned_id(UserAssignedId::ObjectId(id.clone()));
            } else if let Some(id) = &t.resource_id {
                o = o.with_user_assigned_id(UserAssignedId::ResourceId(id.clone()));
            }
            Ok(cached(ManagedIdentitySource::new(Some(o))?))
        }

        #[cfg(feature = "service-principal")]
        pub(super) fn client_secret(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{ClientSecretSource, ClientSecretSourceOptions};
            let t = self.table;
            let secret = match (&t.client_secret, &t.client_secret_env) {
                (Some(s), _) => s.clone(),
                (None, Some(var)) => secret_from_env(self.options, "TOKEN.client_secret_env", var)?,
                (None, None) => return Err(invalid(
                    "TOKEN.client_secret_env",
                    "source `client-secret` needs the secret; add `client_secret_env = \"VAR\"`",
                )),
            };
            let o = ClientSecretSourceOptions::default().with_http(self.http()?);
            Ok(cached(ClientSecretSource::new(
                &self.require("tenant_id", &t.tenant_id)?,
                &self.require("client_id", &t.client_id)?,
                secret,
                Some(o),
            )?))
        }

        #[cfg(feature = "service-principal-certificate")]
        pub(super) fn client_certificate(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{
                ClientCertificateSource, ClientCertificateSourceOptions,
            };
            let t = self.table;
            let path = t.certificate_file.as_ref().ok_or_else(|| {
                invalid(
                    "TOKEN.certificate_file",
                    "source `client-certificate` needs `certificate_file`; add it",
                )
            })?;
            let pem = read("TOKEN.certificate_file", path)?;
            let key = match &t.private_key_file {
                Some(p) => {
                    let bytes = read("TOKEN.private_key_file", p)?;
                    let text = String::from_utf8(bytes).map_err(|_| {
                        invalid(
                            "TOKEN.private_key_file",
                            "is not a PEM text file; convert the key with `openssl pkey -in key.der -out key.pem`",
                        )
                    })?;
                    Some(Secret::new(text))
                }
                None => None,
            };
            let o = ClientCertificateSourceOptions::default()
                .with_send_certificate_chain(t.send_certificate_chain)
                .with_http(self.http()?);
            let source = ClientCertificateSource::new(
                &self.require("tenant_id", &t.tenant_id)?,
                &self.require("client_id", &t.client_id)?,
                &pem,
                key,
                Some(o),
            );
            // The PEM may hold the private key: overwrite it before it is freed.
            let mut pem = pem;
            pem.iter_mut().for_each(|b| *b = 0);
            std::hint::black_box(&pem);
            Ok(cached(source?))
        }

        #[cfg(feature = "workload-identity")]
        pub(super) fn workload_identity(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{
                WorkloadIdentitySource, WorkloadIdentitySourceOptions,
            };
            let t = self.table;
            let mut o = WorkloadIdentitySourceOptions::default().with_http(self.http()?);
            o.tenant_id = t.tenant_id.clone();
            o.client_id = t.client_id.clone();
            o.token_file_path = t.token_file.clone();
            Ok(cached(WorkloadIdentitySource::new(Some(o))?))
        }

        #[cfg(feature = "developer-tools")]
        pub(super) fn developer_tools(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use crate::settings::DeveloperToolSetting;
            use mssql_entra_token::sources::{
                DeveloperTool, DeveloperToolsSource, DeveloperToolsSourceOptions,
            };
            let t = self.table;
            let tool = match t.tool.unwrap_or_default() {
                DeveloperToolSetting::Any => DeveloperTool::Any,
                DeveloperToolSetting::AzureCli => DeveloperTool::AzureCli,
                DeveloperToolSetting::AzureDeveloperCli => DeveloperTool::AzureDeveloperCli,
            };
            let mut o = DeveloperToolsSourceOptions::default().with_tool(tool);
            if let Some(tenant) = &t.tenant_id {
                o = o.with_tenant_id(tenant.clone());
            }
            Ok(cached(DeveloperToolsSource::new(Some(o))?))
        }

        #[cfg(feature = "device-code")]
        pub(super) fn device_code(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{DeviceCodeSource, DeviceCodeSourceOptions};
            use mssql_entra_token::{CacheOptions, CachedTokenSource};
            let t = self.table;
            let tenant = t
                .tenant_id
                .clone()
                .unwrap_or_else(|| "organizations".to_owned());
            let o = DeviceCodeSourceOptions::default().with_http(self.http()?);
            let source = DeviceCodeSource::new(
                &tenant,
                &self.require("client_id", &t.client_id)?,
                // The prompt is for the person at the terminal; it is not logged.
                |prompt| eprintln!("{}", prompt.message),
                Some(o),
            )?;
            Ok(Arc::new(CachedTokenSource::with_options(
                Arc::new(source),
                CacheOptions::for_interactive(),
            )))
        }

        #[cfg(feature = "default-chain")]
        pub(super) fn default_chain(&self) -> Result<Arc<dyn TokenSource>, Error> {
            use mssql_entra_token::sources::{
                DefaultChainSource, DefaultChainSourceOptions, UserAssignedId,
            };
            let t = self.table;
            let mut o = DefaultChainSourceOptions::default().with_http(self.http()?);
            if let Some(id) = &t.client_id {
                o = o.with_managed_identity(UserAssignedId::ClientId(id.clone()));
            }
            if let Some(env) = &self.options.env {
                o = o.with_env(env.clone());
            }
            Ok(cached(DefaultChainSource::new(Some(o))?))
        }
    }
}

//! [`Settings`]: mssql-django's `DATABASES` entry, read from TOML, JSON or the environment.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mssql_entra_connstr::{Authentication, ConnectionString};
use mssql_entra_token::Secret;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::{invalid, Error};

/// Connection settings in the shape of mssql-django's `DATABASES["default"]` entry.
///
/// The keys are Django's: `NAME`, `HOST`, `PORT`, `USER`, `PASSWORD`, `TOKEN` and `OPTIONS` (with
/// `driver`, `extra_params`, `dsn` and our own additions, see [`Options`]). `ENGINE` is accepted
/// and ignored when it names the mssql backend, so a Django dict pasted as JSON works as is.
/// Empty strings (Django's `'PORT': ''`) mean "not set". `PORT` may be a number or a string.
///
/// Secrets may stay out of the file: instead of `PASSWORD` give `PASSWORD_ENV = "VAR"`, instead of
/// a literal `TOKEN` give `TOKEN_ENV = "VAR"`, and inside a `TOKEN` table `client_secret_env`
/// instead of `client_secret`. The variable is read when the settings are
/// [resolved](Settings::resolve), not when they are loaded. Giving both forms of one secret is an
/// error.
///
/// Unknown keys are errors that name the key, and so are impossible combinations (see
/// [`Settings::validate`]). `Debug` never shows `PASSWORD`, a literal `TOKEN`, a client secret
/// or `extra_params` values that are secret.
///
/// ```
/// use mssql_entra::Settings;
///
/// let settings = Settings::from_toml_str(r#"
///     NAME = "app"
///     HOST = "myserver.database.windows.net"
///     TOKEN = { source = "managed-identity", client_id = "6d2a3b4c-0000-4000-8000-000000000001" }
/// "#)?;
/// assert_eq!(settings.host.as_deref(), Some("myserver.database.windows.net"));
/// # Ok::<(), mssql_entra::Error>(())
/// ```
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// `ENGINE`: accepted for Django compatibility (`mssql`, `sql_server.pyodbc`) and ignored.
    #[serde(rename = "ENGINE", default, deserialize_with = "opt_string")]
    pub engine: Option<String>,
    /// `NAME`: the database.
    #[serde(rename = "NAME", default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// `HOST`: the server name or address, optionally `host\instance`.
    #[serde(rename = "HOST", default, deserialize_with = "opt_string")]
    pub host: Option<String>,
    /// `PORT`: the TCP port, a number or a string.
    #[serde(rename = "PORT", default, deserialize_with = "opt_port")]
    pub port: Option<u16>,
    /// `USER`: SQL login, user principal name, client id or identity id, depending on the mode.
    #[serde(rename = "USER", default, deserialize_with = "opt_string")]
    pub user: Option<String>,
    /// `PASSWORD`: a password or client secret.
    #[serde(rename = "PASSWORD", default, deserialize_with = "opt_secret")]
    pub password: Option<Secret>,
    /// `PASSWORD_ENV`: the environment variable holding `PASSWORD`.
    #[serde(rename = "PASSWORD_ENV", default, deserialize_with = "opt_string")]
    pub password_env: Option<String>,
    /// `TOKEN`: a literal access token, or a token-source table.
    #[serde(rename = "TOKEN", default)]
    pub token: Option<TokenSetting>,
    /// `TOKEN_ENV`: the environment variable holding a literal access token.
    #[serde(rename = "TOKEN_ENV", default, deserialize_with = "opt_string")]
    pub token_env: Option<String>,
    /// `OPTIONS`.
    #[serde(rename = "OPTIONS", default)]
    pub options: Options,
}

/// `OPTIONS`: mssql-django's `driver`, `extra_params` and `dsn`, plus mssql-entra's own keys.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Options {
    /// `driver`: the ODBC driver name; default `ODBC Driver 18 for SQL Server`.
    #[serde(default, deserialize_with = "opt_string")]
    pub driver: Option<String>,
    /// `extra_params`: `keyword=value;...` appended to the connection string, e.g.
    /// `Authentication=ActiveDirectoryMsi`. Checked for conflicts with the other settings.
    #[serde(default, deserialize_with = "opt_string")]
    pub extra_params: Option<String>,
    /// `dsn`: an ODBC data source name instead of `HOST`/`PORT`/`driver`.
    #[serde(default, deserialize_with = "opt_string")]
    pub dsn: Option<String>,
    /// `login_timeout` (seconds; mssql-django's `connection_timeout` is accepted as an alias):
    /// the driver's login timeout. Default 30 s.
    #[serde(
        default,
        alias = "connection_timeout",
        deserialize_with = "opt_seconds"
    )]
    pub login_timeout: Option<Duration>,
    /// `danger_allow_unencrypted_token`: accept `Encrypt=no` with Entra auth. The driver then sends
    /// the bearer token in clear text to a server that does not require encryption. Local test
    /// servers only.
    #[serde(default, deserialize_with = "boolean")]
    pub danger_allow_unencrypted_token: bool,
    /// `danger_trust_server_certificate`: add `TrustServerCertificate=yes`; the server certificate
    /// is not checked, so anyone on the path can pose as the server and receive the token. Local
    /// test servers only.
    #[serde(default, deserialize_with = "boolean")]
    pub danger_trust_server_certificate: bool,
    /// `pool`: settings of [`Pool`](crate::Pool).
    #[serde(default)]
    pub pool: PoolSettings,
}

/// `OPTIONS.pool`: the r2d2 pool of [`Pool`](crate::Pool). Durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolSettings {
    /// `max_size`: most connections open at once. Default 10.
    #[serde(default, deserialize_with = "opt_u32")]
    pub max_size: Option<u32>,
    /// `min_idle`: idle connections kept open. Default 0: connections are opened on demand.
    #[serde(default, deserialize_with = "opt_u32")]
    pub min_idle: Option<u32>,
    /// `max_lifetime`: a connection is retired once it is this old. Default 1800 s (30 min).
    /// Connections are also retired before their access token expires (a minute before, or a fifth of
    /// the token's life for short-lived tokens).
    #[serde(default, deserialize_with = "opt_seconds")]
    pub max_lifetime: Option<Duration>,
    /// `idle_timeout`: an idle connection is closed after this long. Default 600 s.
    #[serde(default, deserialize_with = "opt_seconds")]
    pub idle_timeout: Option<Duration>,
    /// `connection_timeout`: how long `get` waits for a connection. Default 30 s.
    #[serde(default, deserialize_with = "opt_seconds")]
    pub connection_timeout: Option<Duration>,
}

/// `TOKEN`: a literal access token or a token-source table.
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSetting {
    /// `TOKEN = "eyJ..."`: a token acquired elsewhere; it cannot be renewed.
    Literal(Secret),
    /// `TOKEN = { source = "...", ... }`: tokens fetched and renewed ahead of expiry.
    Source(Box<TokenSourceSettings>),
}

impl fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSetting::Literal(_) => f.write_str("Literal(<redacted>)"),
            TokenSetting::Source(s) => f.debug_tuple("Source").field(s).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for TokenSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TokenSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an access token string or a table with `source`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TokenSetting::Literal(Secret::new(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TokenSetting::Literal(Secret::new(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                TokenSourceSettings::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| TokenSetting::Source(Box::new(t)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(not_shown("TOKEN"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(not_shown("TOKEN"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(not_shown("TOKEN"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(not_shown("TOKEN"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The `source` of a `TOKEN` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourceKind {
    /// `managed-identity`: the Azure resource's managed identity (feature `managed-identity`).
    ManagedIdentity,
    /// `client-secret`: a service principal with a secret (feature `service-principal`).
    ClientSecret,
    /// `client-certificate`: a service principal with a certificate (feature
    /// `service-principal-certificate`).
    ClientCertificate,
    /// `workload-identity`: Kubernetes workload identity federation (feature `workload-identity`).
    WorkloadIdentity,
    /// `developer-tools`: Azure CLI / azd sign-in (feature `developer-tools`).
    DeveloperTools,
    /// `device-code`: sign in on another device (feature `device-code`).
    DeviceCode,
    /// `default`: the explicit default chain (feature `default-chain`).
    Default,
}

impl SourceKind {
    /// The value as written after `source =`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::ManagedIdentity => "managed-identity",
            SourceKind::ClientSecret => "client-secret",
            SourceKind::ClientCertificate => "client-certificate",
            SourceKind::WorkloadIdentity => "workload-identity",
            SourceKind::DeveloperTools => "developer-tools",
            SourceKind::DeviceCode => "device-code",
            SourceKind::Default => "default",
        }
    }

    /// The cargo feature of `mssql-entra` that provides this source.
    pub const fn feature(self) -> &'static str {
        match self {
            SourceKind::ManagedIdentity => "managed-identity",
            SourceKind::ClientSecret => "service-principal",
            SourceKind::ClientCertificate => "service-principal-certificate",
            SourceKind::WorkloadIdentity => "workload-identity",
            SourceKind::DeveloperTools => "developer-tools",
            SourceKind::DeviceCode => "device-code",
            SourceKind::Default => "default-chain",
        }
    }

    /// The keys of a `TOKEN` table this source uses (besides `source`).
    const fn keys(self) -> &'static [&'static str] {
        match self {
            SourceKind::ManagedIdentity => {
                &["client_id", "object_id", "resource_id", "ca_file", "scope"]
            }
            SourceKind::ClientSecret => &[
                "tenant_id",
                "client_id",
                "client_secret",
                "client_secret_env",
                "authority_host",
                "ca_file",
                "scope",
            ],
            SourceKind::ClientCertificate => &[
                "tenant_id",
                "client_id",
                "certificate_file",
                "private_key_file",
                "send_certificate_chain",
                "authority_host",
                "ca_file",
                "scope",
            ],
            SourceKind::WorkloadIdentity => &[
                "tenant_id",
                "client_id",
                "token_file",
                "authority_host",
                "ca_file",
                "scope",
            ],
            SourceKind::DeveloperTools => &["tool", "tenant_id", "scope"],
            SourceKind::DeviceCode => &[
                "tenant_id",
                "client_id",
                "authority_host",
                "ca_file",
                "scope",
            ],
            SourceKind::Default => &["client_id", "authority_host", "ca_file", "scope"],
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `TOKEN.tool` of the `developer-tools` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeveloperToolSetting {
    /// `any` (default): the Azure CLI, then the Azure Developer CLI.
    #[default]
    Any,
    /// `azure-cli`.
    AzureCli,
    /// `azd` (or `azure-developer-cli`).
    #[serde(alias = "azd")]
    AzureDeveloperCli,
}

/// A `TOKEN` table: which source, and its keys. Which keys each source takes is listed in
/// `docs/auth-modes.md`; a key the source does not use is an error.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenSourceSettings {
    /// `source`.
    pub source: SourceKind,
    /// `tenant_id`: the directory (tenant) id or domain.
    #[serde(default, deserialize_with = "opt_string")]
    pub tenant_id: Option<String>,
    /// `client_id`: the application (client) id; for managed identity, a user-assigned identity's
    /// client id.
    #[serde(default, deserialize_with = "opt_string")]
    pub client_id: Option<String>,
    /// `object_id`: a user-assigned managed identity's object (principal) id.
    #[serde(default, deserialize_with = "opt_string")]
    pub object_id: Option<String>,
    /// `resource_id`: a user-assigned managed identity's Azure resource id.
    #[serde(default, deserialize_with = "opt_string")]
    pub resource_id: Option<String>,
    /// `client_secret`: prefer `client_secret_env`.
    #[serde(default, deserialize_with = "opt_secret")]
    pub client_secret: Option<Secret>,
    /// `client_secret_env`: the environment variable holding the client secret.
    #[serde(default, deserialize_with = "opt_string")]
    pub client_secret_env: Option<String>,
    /// `certificate_file`: PEM with the certificate (and the key, unless `private_key_file`).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// `private_key_file`: PEM with the unencrypted private key.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `send_certificate_chain`: send `x5c` (subject name/issuer authentication).
    #[serde(default, deserialize_with = "boolean")]
    pub send_certificate_chain: bool,
    /// `token_file`: the federated token file; default `AZURE_FEDERATED_TOKEN_FILE`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `tool`: which developer tool.
    #[serde(default)]
    pub tool: Option<DeveloperToolSetting>,
    /// `authority_host`: the Entra ID authority, e.g. `https://login.microsoftonline.us`.
    #[serde(default, deserialize_with = "opt_string")]
    pub authority_host: Option<String>,
    /// `ca_file`: PEM certificates trusted in addition to the system roots (an emulator's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `scope`: the token scope; default from the host's cloud.
    #[serde(default, deserialize_with = "opt_string")]
    pub scope: Option<String>,
}

impl TokenSourceSettings {
    /// A table with only `source` set.
    pub fn new(source: SourceKind) -> Self {
        Self {
            source,
            tenant_id: None,
            client_id: None,
            object_id: None,
            resource_id: None,
            client_secret: None,
            client_secret_env: None,
            certificate_file: None,
            private_key_file: None,
            send_certificate_chain: false,
            token_file: None,
            tool: None,
            authority_host: None,
            ca_file: None,
            scope: None,
        }
    }

    /// The keys that are set, by name.
    fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |name: &'static str, set: bool| {
            if set {
                keys.push(name);
            }
        };
        add("tenant_id", self.tenant_id.is_some());
        add("client_id", self.client_id.is_some());
        add("object_id", self.object_id.is_some());
        add("resource_id", self.resource_id.is_some());
        add("client_secret", self.client_secret.is_some());
        add("client_secret_env", self.client_secret_env.is_some());
        add("certificate_file", self.certificate_file.is_some());
        add("private_key_file", self.private_key_file.is_some());
        add("send_certificate_chain", self.send_certificate_chain);
        add("token_file", self.token_file.is_some());
        add("tool", self.tool.is_some());
        add("authority_host", self.authority_host.is_some());
        add("ca_file", self.ca_file.is_some());
        add("scope", self.scope.is_some());
        keys
    }

    fn validate(&self) -> Result<(), Error> {
        let kind = self.source;
        for key in self.set_keys() {
            if !kind.keys().contains(&key) {
                return Err(invalid(
                    format!("TOKEN.{key}"),
                    format!(
                        "source `{kind}` does not use `{key}`; remove it (it takes: {})",
                        kind.keys().join(", ")
                    ),
                ));
            }
        }
        let need = |key: &str, value: &Option<String>, what: &str| match value {
            Some(_) => Ok(()),
            None => Err(invalid(
                format!("TOKEN.{key}"),
                format!("source `{kind}` needs `{key}` ({what}); add it"),
            )),
        };
        match kind {
            SourceKind::ManagedIdentity => {
                let ids = [&self.client_id, &self.object_id, &self.resource_id]
                    .iter()
                    .filter(|v| v.is_some())
                    .count();
                if ids > 1 {
                    return Err(invalid(
                        "TOKEN.client_id",
                        "give at most one of `client_id`, `object_id`, `resource_id` to name a user-assigned identity, or none for the system-assigned one",
                    ));
                }
            }
            SourceKind::ClientSecret => {
                need("tenant_id", &self.tenant_id, "the directory (tenant) id")?;
                need("client_id", &self.client_id, "the application (client) id")?;
                match (&self.client_secret, &self.client_secret_env) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "TOKEN.client_secret",
                            "give `client_secret` or `client_secret_env`, not both; prefer `client_secret_env` so the secret stays out of the file",
                        ))
                    }
                    (None, None) => {
                        return Err(invalid(
                            "TOKEN.client_secret_env",
                            "source `client-secret` needs the secret: add `client_secret_env = \"VAR\"` (the environment variable holding it)",
                        ))
                    }
                    _ => {}
                }
            }
            SourceKind::ClientCertificate => {
                need("tenant_id", &self.tenant_id, "the directory (tenant) id")?;
                need("client_id", &self.client_id, "the application (client) id")?;
                if self.certificate_file.is_none() {
                    return Err(invalid(
                        "TOKEN.certificate_file",
                        "source `client-certificate` needs `certificate_file` (a PEM file with the certificate and its private key); add it",
                    ));
                }
            }
            SourceKind::DeviceCode => {
                need(
                    "client_id",
                    &self.client_id,
                    "the application (client) id of a public client app registration",
                )?;
            }
            SourceKind::WorkloadIdentity | SourceKind::DeveloperTools | SourceKind::Default => {}
        }
        if let Some(scope) = &self.scope {
            if scope.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "TOKEN.scope",
                    "a scope has no spaces; use e.g. `https://database.windows.net/.default`",
                ));
            }
        }
        if let Some(host) = &self.authority_host {
            if !host.starts_with("https://") {
                return Err(invalid(
                    "TOKEN.authority_host",
                    "must be an https:// URL, e.g. `https://login.microsoftonline.com`",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TokenSourceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSourceSettings")
            .field("source", &self.source)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("object_id", &self.object_id)
            .field("resource_id", &self.resource_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("client_secret_env", &self.client_secret_env)
            .field("certificate_file", &self.certificate_file)
            .field("private_key_file", &self.private_key_file)
            .field("token_file", &self.token_file)
            .field("tool", &self.tool)
            .field("authority_host", &self.authority_host)
            .field("ca_file", &self.ca_file)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("token", &self.token)
            .field("token_env", &self.token_env)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A parsed connection string's Display masks PWD and other secret keywords.
        let extra = self
            .extra_params
            .as_deref()
            .map(|e| match ConnectionString::parse(e) {
                Ok(cs) => cs.to_string(),
                Err(_) => "<not valid; not shown>".to_owned(),
            });
        f.debug_struct("Options")
            .field("driver", &self.driver)
            .field("extra_params", &extra)
            .field("dsn", &self.dsn)
            .field("login_timeout", &self.login_timeout)
            .field(
                "danger_allow_unencrypted_token",
                &self.danger_allow_unencrypted_token,
            )
            .field(
                "danger_trust_server_certificate",
                &self.danger_trust_server_certificate,
            )
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The environment variables [`Settings::from_env`] reads, after `<PREFIX>_`, and the key each one
/// sets. A `TOKEN` table is given as `<PREFIX>_TOKEN_SOURCE` plus `<PREFIX>_TOKEN_<KEY>` (upper case).
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("ENGINE", "ENGINE"),
    ("NAME", "NAME"),
    ("HOST", "HOST"),
    ("PORT", "PORT"),
    ("USER", "USER"),
    ("PASSWORD", "PASSWORD"),
    ("PASSWORD_ENV", "PASSWORD_ENV"),
    ("TOKEN", "TOKEN"),
    ("TOKEN_ENV", "TOKEN_ENV"),
    ("DRIVER", "OPTIONS.driver"),
    ("EXTRA_PARAMS", "OPTIONS.extra_params"),
    ("DSN", "OPTIONS.dsn"),
    ("LOGIN_TIMEOUT", "OPTIONS.login_timeout"),
    (
        "DANGER_ALLOW_UNENCRYPTED_TOKEN",
        "OPTIONS.danger_allow_unencrypted_token",
    ),
    (
        "DANGER_TRUST_SERVER_CERTIFICATE",
        "OPTIONS.danger_trust_server_certificate",
    ),
    ("POOL_MAX_SIZE", "OPTIONS.pool.max_size"),
    ("POOL_MIN_IDLE", "OPTIONS.pool.min_idle"),
    ("POOL_MAX_LIFETIME", "OPTIONS.pool.max_lifetime"),
    ("POOL_IDLE_TIMEOUT", "OPTIONS.pool.idle_timeout"),
    ("POOL_CONNECTION_TIMEOUT", "OPTIONS.pool.connection_timeout"),
    ("TOKEN_SOURCE", "TOKEN.source"),
    ("TOKEN_TENANT_ID", "TOKEN.tenant_id"),
    ("TOKEN_CLIENT_ID", "TOKEN.client_id"),
    ("TOKEN_OBJECT_ID", "TOKEN.object_id"),
    ("TOKEN_RESOURCE_ID", "TOKEN.resource_id"),
    ("TOKEN_CLIENT_SECRET", "TOKEN.client_secret"),
    ("TOKEN_CLIENT_SECRET_ENV", "TOKEN.client_secret_env"),
    ("TOKEN_CERTIFICATE_FILE", "TOKEN.certificate_file"),
    ("TOKEN_PRIVATE_KEY_FILE", "TOKEN.private_key_file"),
    (
        "TOKEN_SEND_CERTIFICATE_CHAIN",
        "TOKEN.send_certificate_chain",
    ),
    ("TOKEN_TOKEN_FILE", "TOKEN.token_file"),
    ("TOKEN_TOOL", "TOKEN.tool"),
    ("TOKEN_AUTHORITY_HOST", "TOKEN.authority_host"),
    ("TOKEN_CA_FILE", "TOKEN.ca_file"),
    ("TOKEN_SCOPE", "TOKEN.scope"),
];

impl Settings {
    /// Reads TOML (the keys at the top level, `OPTIONS` and `TOKEN` as tables) and validates.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        let settings: Settings = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| Error::Parse {
                format: "TOML",
                message: with_path(e.path(), toml_message(text, e.inner())),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads JSON (a Django `DATABASES["default"]` dict, as is) and validates.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let settings: Settings =
            serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
                format: "JSON",
                message: with_path(e.path(), e.inner().to_string()),
            })?;
        de.end().map_err(|e| Error::Parse {
            format: "JSON",
            message: e.to_string(),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads a `.toml` or `.json` file, by its extension.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            key: "settings file".to_owned(),
            path: path.to_owned(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Self::from_toml_str(&text),
            Some(e) if e.eq_ignore_ascii_case("json") => Self::from_json_str(&text),
            _ => Err(invalid(
                "settings file",
                format!(
                    "cannot tell the format of `{}`; name it `*.toml` or `*.json`",
                    path.display()
                ),
            )),
        }
    }

    /// Reads the process environment: `<prefix>_HOST`, `<prefix>_NAME`, ... (see [`ENV_KEYS`]).
    ///
    /// Every variable starting with `<prefix>_` must be one of [`ENV_KEYS`] or be named by a
    /// `*_ENV` key, so a misspelt variable is an error rather than silently ignored.
    pub fn from_env(prefix: &str) -> Result<Self, Error> {
        Self::from_env_vars(prefix, std::env::vars())
    }

    /// [`from_env`](Self::from_env) over the given variables instead of the process environment.
    pub fn from_env_vars(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let start = format!("{prefix}_");
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(&start))
            .collect();
        // Variables named by `*_ENV` keys hold secrets and are not settings themselves.
        let referenced: HashSet<&str> = ["PASSWORD_ENV", "TOKEN_ENV", "TOKEN_CLIENT_SECRET_ENV"]
            .iter()
            .filter_map(|k| vars.get(&format!("{start}{k}")))
            .map(String::as_str)
            .collect();
        let mut root = serde_json::Map::new();
        let mut options = serde_json::Map::new();
        let mut pool = serde_json::Map::new();
        let mut token = serde_json::Map::new();
        for (var, value) in &vars {
            let Some(suffix) = var.strip_prefix(&start) else {
                continue;
            };
            let Some((_, key)) = ENV_KEYS.iter().find(|(name, _)| *name == suffix) else {
                if referenced.contains(var.as_str()) {
                    continue;
                }
                return Err(invalid(
                    var.clone(),
                    format!(
                        "unknown variable; the {start}* variables are: {}",
                        ENV_KEYS
                            .iter()
                            .map(|(n, _)| format!("{start}{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let value = serde_json::Value::String(value.clone());
            if let Some(k) = key.strip_prefix("OPTIONS.pool.") {
                pool.insert(k.to_owned(), value);
            } else if let Some(k) = key.strip_prefix("OPTIONS.") {
                options.insert(k.to_owned(), value);
            } else if let Some(k) = key.strip_prefix("TOKEN.") {
                token.insert(k.to_owned(), value);
            } else {
                root.insert((*key).to_owned(), value);
            }
        }
        if !token.is_empty() {
            if root.contains_key("TOKEN") {
                return Err(invalid(
                    format!("{start}TOKEN"),
                    format!("give either a literal {start}TOKEN or {start}TOKEN_SOURCE with its {start}TOKEN_* keys, not both"),
                ));
            }
            if !token.contains_key("source") {
                return Err(invalid(
                    format!("{start}TOKEN_SOURCE"),
                    format!("{start}TOKEN_* variables are set but {start}TOKEN_SOURCE is not; set it, e.g. to `managed-identity`"),
                ));
            }
            root.insert("TOKEN".to_owned(), serde_json::Value::Object(token));
        }
        if !pool.is_empty() {
            options.insert("pool".to_owned(), serde_json::Value::Object(pool));
        }
        if !options.is_empty() {
            root.insert("OPTIONS".to_owned(), serde_json::Value::Object(options));
        }
        let settings: Settings = serde_path_to_error::deserialize(serde_json::Value::Object(root))
            .map_err(|e| Error::Parse {
                format: "environment",
                message: with_path(e.path(), e.inner().to_string()),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The authentication mode written in `OPTIONS.extra_params`, if any.
    pub fn extra_params_authentication(&self) -> Result<Option<Authentication>, Error> {
        match &self.options.extra_params {
            None => Ok(None),
            Some(text) => {
                let cs = ConnectionString::parse(text).map_err(|e| {
                    Error::ConnectionString(mssql_entra_connstr::Error::ExtraParams(Box::new(e)))
                })?;
                Ok(cs.authentication()?)
            }
        }
    }

    /// Checks what can be checked without the environment or I/O: the server is named once,
    /// secrets are given one way, `TOKEN` does not meet `USER`, `PASSWORD` or an
    /// `Authentication=` in `extra_params`, each `Authentication=` mode gets the `USER`/`PASSWORD`
    /// it needs and nothing it refuses, the `TOKEN` table has the keys its source needs and no
    /// others, and the pool sizes fit. The loaders call it; call it again after editing fields.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(engine) = &self.engine {
            let e = engine.to_ascii_lowercase();
            if !(e.contains("mssql") || e.contains("sql_server")) {
                return Err(invalid(
                    "ENGINE",
                    format!("`{engine}` is not the mssql backend; use `mssql` or remove ENGINE"),
                ));
            }
        }
        let opts = &self.options;
        match (&opts.dsn, &self.host) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "OPTIONS.dsn",
                    "a DSN names the server itself; remove HOST or OPTIONS.dsn",
                ))
            }
            (None, None) => return Err(invalid(
                "HOST",
                "no server given; set HOST (e.g. `myserver.database.windows.net`) or OPTIONS.dsn",
            )),
            _ => {}
        }
        if opts.dsn.is_some() {
            if self.port.is_some() {
                return Err(invalid(
                    "PORT",
                    "a DSN names the server and port itself; remove PORT",
                ));
            }
            if opts.driver.is_some() {
                return Err(invalid(
                    "OPTIONS.driver",
                    "a DSN names the driver itself; remove OPTIONS.driver",
                ));
            }
        }
        if self.password.is_some() && self.password_env.is_some() {
            return Err(invalid(
                "PASSWORD",
                "give PASSWORD or PASSWORD_ENV, not both; prefer PASSWORD_ENV so the secret stays out of the file",
            ));
        }
        if self.token.is_some() && self.token_env.is_some() {
            return Err(invalid("TOKEN_ENV", "give TOKEN or TOKEN_ENV, not both"));
        }
        let has_password = self.password.is_some() || self.password_env.is_some();
        let has_token = self.token.is_some() || self.token_env.is_some();
        let mode = self.extra_params_authentication()?;
        if has_token {
            if self.user.is_some() {
                return Err(invalid(
                    "USER",
                    "TOKEN and USER cannot be combined: the token already names the principal (the driver refuses UID with an access token, FA005); remove USER (for a user-assigned managed identity use TOKEN.client_id)",
                ));
            }
            if has_password {
                return Err(invalid(
                    "PASSWORD",
                    "TOKEN and PASSWORD cannot be combined (the driver refuses PWD with an access token, FA005); remove PASSWORD (a client secret goes in TOKEN.client_secret_env)",
                ));
            }
            if let Some(mode) = mode {
                return Err(invalid(
                    "OPTIONS.extra_params",
                    format!("`Authentication={mode}` cannot be combined with TOKEN (the driver refuses it with an access token, FA005); remove one of them"),
                ));
            }
        }
        if let Some(mode) = mode {
            self.check_mode_credentials(mode, has_password)?;
        }
        if let Some(TokenSetting::Source(source)) = &self.token {
            source.validate()?;
        }
        if let Some(TokenSetting::Literal(token)) = &self.token {
            if token.expose_secret().trim().is_empty() {
                return Err(invalid(
                    "TOKEN",
                    "the access token is empty; give the token, a TOKEN table, or remove TOKEN",
                ));
            }
        }
        let pool = &opts.pool;
        if pool.max_size == Some(0) {
            return Err(invalid("OPTIONS.pool.max_size", "must be at least 1"));
        }
        if let (Some(min), max) = (pool.min_idle, pool.max_size.unwrap_or(10)) {
            if min > max {
                return Err(invalid(
                    "OPTIONS.pool.min_idle",
                    format!(
                        "{min} is more than max_size ({max}); lower min_idle or raise max_size"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `USER`/`PASSWORD` per `Authentication=` mode, in the settings' own words.
    fn check_mode_credentials(
        &self,
        mode: Authentication,
        has_password: bool,
    ) -> Result<(), Error> {
        let has_user = self.user.is_some();
        let need = |key: &str, what: &str| {
            invalid(
                key,
                format!("`Authentication={mode}` needs {key} ({what}); add it"),
            )
        };
        let refuse = |key: &str, why: &str| {
            invalid(
                key,
                format!("`Authentication={mode}` takes no {key} ({why}); remove it"),
            )
        };
        match mode {
            Authentication::ServicePrincipal => {
                if !has_user {
                    return Err(need("USER", "the application (client) id"));
                }
                if !has_password {
                    return Err(need(
                        "PASSWORD",
                        "the client secret; PASSWORD_ENV keeps it out of the file",
                    ));
                }
            }
            Authentication::Password | Authentication::SqlPassword => {
                if !has_user {
                    return Err(need("USER", "the user name"));
                }
                if !has_password {
                    return Err(need(
                        "PASSWORD",
                        "the password; PASSWORD_ENV keeps it out of the file",
                    ));
                }
            }
            Authentication::Interactive => {
                if !has_user {
                    return Err(need("USER", "the user principal name to sign in"));
                }
                if has_password {
                    return Err(refuse("PASSWORD", "the user signs in interactively"));
                }
            }
            Authentication::Integrated => {
                if has_user {
                    return Err(refuse("USER", "the identity is the Kerberos ticket's"));
                }
                if has_password {
                    return Err(refuse("PASSWORD", "the identity is the Kerberos ticket's"));
                }
            }
            Authentication::Default => {
                if has_user {
                    return Err(refuse(
                        "USER",
                        "the chain finds the identity; to pin a user-assigned managed identity use TOKEN = { source = \"default\", client_id = \"...\" }",
                    ));
                }
                if has_password {
                    return Err(refuse("PASSWORD", "the chain finds the identity"));
                }
            }
            _ => {
                if has_password {
                    return Err(refuse("PASSWORD", "this mode has no password or secret"));
                }
            }
        }
        Ok(())
    }
}

/// The parser's message with a line number, without quoting the line (it might hold a secret).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_owned();
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

/// `message` prefixed with the key path it concerns (`OPTIONS.pool.max_size: ...`).
fn with_path(path: &serde_path_to_error::Path, message: String) -> String {
    let path = path.to_string();
    if path.is_empty() || path == "." {
        message
    } else {
        format!("`{path}`: {message}")
    }
}

fn not_shown<E: de::Error>(key: &str) -> E {
    E::custom(format!(
        "`{key}` must be a string (the value is not shown because it may be secret)"
    ))
}

// ----- field deserializers -----

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.filter(|s| !s.trim().is_empty()))
}

fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Secret>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then(|| Secret::new(v)))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then(|| Secret::new(v)))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(not_shown("secret"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(not_shown("secret"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(not_shown("secret"))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(not_shown("secret"))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(not_shown("secret"))
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(not_shown("secret"))
        }
    }
    d.deserialize_option(V)
}

/// A number, or a string holding one; an empty string, `null` or absence is `None`.
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a string holding one")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| E::custom(format!("`{v}` is not a number")))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match opt_number(d)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (1.0..=65535.0).contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(de::Error::custom(format!(
            "PORT {n} is not a TCP port; use 1 to 65535 (1433 by default) or leave it out"
        ))),
    }
}

fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match opt_number(d)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => {
            Ok(Some(n as u32))
        }
        Some(n) => Err(de::Error::custom(format!(
            "{n} is not a whole non-negative number"
        ))),
    }
}

fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match opt_number(d)? {
        None => Ok(None),
        Some(n) if n.is_finite() && n > 0.0 && n < 1e9 => Ok(Some(Duration::from_secs_f64(n))),
        Some(n) => Err(de::Error::custom(format!(
            "{n} is not a duration; give a positive number of seconds"
        ))),
    }
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(E::custom(format!(
                    "`{v}` is not a yes/no value; use true or false"
                ))),
            }
        }
    }
    d.deserialize_any(V)
}

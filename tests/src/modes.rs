//! One connector per auth mode and form, configured the way a user configures the product: `mssql-entra`
//! [`Settings`] in the mssql-django shape (TOML here), resolved by the facade, pointed at a [`Lab`]. The
//! end-to-end suites assert on these and `cargo xtask demo` prints them, so both show the same thing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mssql_entra::{Connector, Plan, ResolveOptions, Settings};
use mssql_entra_odbc::{Auth, ConnectorOptions};
use mssql_entra_token::sources::{ClientSecretSource, ClientSecretSourceOptions};
use mssql_entra_token::{CacheOptions, CachedTokenSource, Scope, TokenSource};

use crate::lab::{
    Lab, ALICE, DEMO_APP, DEMO_APP_SECRET, DRIVER_LOGIN_TIMEOUT, FEDERATED_SUBJECT, TENANT,
};
use crate::DRIVER_NAME;

/// A mode's settings: the TOML a user would write (secrets included, since these are the emulator's).
#[derive(Clone)]
pub struct ModeSettings {
    /// `TOKEN = …` (a literal or an inline table), if any.
    pub token: Option<String>,
    /// `USER`, if any.
    pub user: Option<String>,
    /// `PASSWORD`, if any.
    pub password: Option<String>,
    /// `OPTIONS.extra_params`, if any.
    pub extra_params: Option<String>,
    /// Variables the facade reads instead of the process environment (`AZURE_*` for the default chain).
    pub env: Option<HashMap<String, String>>,
}

impl std::fmt::Debug for ModeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the shape: these hold test secrets.
        f.debug_struct("ModeSettings")
            .field("extra_params", &self.extra_params)
            .finish_non_exhaustive()
    }
}

fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

impl ModeSettings {
    fn token(table: &str) -> Self {
        Self {
            token: Some(table.to_owned()),
            user: None,
            password: None,
            extra_params: None,
            env: None,
        }
    }

    fn extra(extra_params: &str) -> Self {
        Self {
            token: None,
            user: None,
            password: None,
            extra_params: Some(extra_params.to_owned()),
            env: None,
        }
    }

    fn with_user(mut self, user: &str, password: Option<&str>) -> Self {
        self.user = Some(user.to_owned());
        self.password = password.map(str::to_owned);
        self
    }

    /// The TOML for `lab`.
    pub fn toml(&self, lab: &Lab) -> String {
        let mut options = vec![
            format!("driver = {}", quoted(DRIVER_NAME)),
            format!("login_timeout = {}", DRIVER_LOGIN_TIMEOUT.as_secs()),
        ];
        if let Some(extra) = &self.extra_params {
            options.push(format!("extra_params = {}", quoted(extra)));
        }
        let mut text = format!(
            "HOST = \"127.0.0.1\"\nPORT = {}\nNAME = \"appdb\"\n",
            lab.sql_port()
        );
        if let Some(user) = &self.user {
            text.push_str(&format!("USER = {}\n", quoted(user)));
        }
        if let Some(password) = &self.password {
            text.push_str(&format!("PASSWORD = {}\n", quoted(password)));
        }
        if let Some(token) = &self.token {
            text.push_str(&format!("TOKEN = {token}\n"));
        }
        text.push_str(&format!("OPTIONS = {{ {} }}\n", options.join(", ")));
        text
    }

    /// What the demo shows under "configured with": the keys that choose the mode, secrets masked.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(token) = &self.token {
            let shown = if token.starts_with('{') {
                mask(token)
            } else {
                "\"<access token>\"".to_owned()
            };
            parts.push(format!("TOKEN = {shown}"));
        }
        if let Some(user) = &self.user {
            parts.push(format!("USER = {}", quoted(user)));
        }
        if self.password.is_some() {
            parts.push("PASSWORD = \"***\"".to_owned());
        }
        if let Some(extra) = &self.extra_params {
            parts.push(format!("extra_params = {}", quoted(extra)));
        }
        if let Some(env) = &self.env {
            let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
            keys.sort_unstable();
            if keys.is_empty() {
                parts.push("no AZURE_* variables".to_owned());
            } else {
                parts.push(keys.join(" "));
            }
        }
        parts.join("; ")
    }

    /// The settings, parsed by the facade.
    pub fn settings(&self, lab: &Lab) -> Result<Settings, mssql_entra::Error> {
        Settings::from_toml_str(&self.toml(lab))
    }

    /// The facade's plan for `lab`.
    pub fn plan(&self, lab: &Lab) -> Result<Plan, mssql_entra::Error> {
        let mut options = ResolveOptions::default();
        if let Some(env) = &self.env {
            options = options.with_env(env.clone());
        }
        self.settings(lab)?.resolve_with(&options)
    }

    /// The facade's connector for `lab`.
    pub fn connector(&self, lab: &Lab) -> Result<Connector, mssql_entra::Error> {
        self.plan(lab)?.connector()
    }
}

/// Keeps what identifies the source (`source`, `client_id`) and elides the rest (tenant, secrets, files, the
/// emulator's authority and CA).
fn mask(table: &str) -> String {
    let inner = table.trim().trim_start_matches('{').trim_end_matches('}');
    let mut elided = false;
    let mut parts: Vec<String> = Vec::new();
    for kv in inner.split(", ") {
        let Some((k, v)) = kv.split_once(" = ") else {
            continue;
        };
        match k.trim() {
            "source" | "client_id" | "object_id" => {
                parts.push(format!("{} = {}", k.trim(), v.trim()))
            }
            _ => elided = true,
        }
    }
    if elided {
        parts.push("…".to_owned());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// `authority_host` and `ca_file` for the emulator.
fn emulator_keys(lab: &Lab) -> String {
    format!(
        "authority_host = {}, ca_file = {}",
        quoted(lab.authority_host()),
        quoted(&lab.ca_path().display().to_string())
    )
}

/// Access token, static: `TOKEN = "<a token minted for the demo app>"`.
pub fn static_token(lab: &Lab) -> ModeSettings {
    let minted = lab.issue_token(DEMO_APP, Duration::from_secs(3600));
    ModeSettings::token(&quoted(&minted))
}

/// `TOKEN = { source = "managed-identity" }` (user-assigned with `client_id`).
pub fn managed_identity_source(client_id: Option<&str>) -> ModeSettings {
    match client_id {
        None => ModeSettings::token("{ source = \"managed-identity\" }"),
        Some(id) => ModeSettings::token(&format!(
            "{{ source = \"managed-identity\", client_id = {} }}",
            quoted(id)
        )),
    }
}

/// `TOKEN = { source = "developer-tools", tool = "azure-cli" }`: the Azure CLI on `PATH` supplies the token.
pub fn developer_tools_azure_cli() -> ModeSettings {
    ModeSettings::token("{ source = \"developer-tools\", tool = \"azure-cli\" }")
}

/// `TOKEN = { source = "client-secret", … }` for the demo app.
pub fn client_secret_source(lab: &Lab) -> ModeSettings {
    ModeSettings::token(&format!(
        "{{ source = \"client-secret\", tenant_id = {}, client_id = {}, client_secret = {}, {} }}",
        quoted(TENANT),
        quoted(DEMO_APP),
        quoted(DEMO_APP_SECRET),
        emulator_keys(lab)
    ))
}

/// `TOKEN = { source = "client-certificate", … }` with the demo app's certificate (PEM written by the emulator).
pub fn client_certificate_source(lab: &Lab) -> ModeSettings {
    let path = lab
        .emulator()
        .write_app_certificate("demo-app")
        .expect("the emulator writes the certificate")
        .expect("demo-app has a certificate");
    ModeSettings::token(&format!(
        "{{ source = \"client-certificate\", tenant_id = {}, client_id = {}, certificate_file = {}, {} }}",
        quoted(TENANT),
        quoted(DEMO_APP),
        quoted(&path.display().to_string()),
        emulator_keys(lab)
    ))
}

/// `TOKEN = { source = "workload-identity", … }` with a federated token file for the demo app.
pub fn workload_identity_source(lab: &Lab) -> ModeSettings {
    let file = lab
        .emulator()
        .write_federated_token(FEDERATED_SUBJECT, Duration::from_secs(3600))
        .expect("the emulator writes the federated token");
    ModeSettings::token(&format!(
        "{{ source = \"workload-identity\", tenant_id = {}, client_id = {}, token_file = {}, {} }}",
        quoted(TENANT),
        quoted(DEMO_APP),
        quoted(&file.display().to_string()),
        emulator_keys(lab)
    ))
}

/// `TOKEN = { source = "device-code", … }`; the emulator approves the code as Alice at the first poll.
pub fn device_code_source(lab: &Lab) -> ModeSettings {
    let identity = lab.emulator().identity();
    identity.set_device_code_interval(1);
    identity.auto_approve_device_codes(Some((0, ALICE)));
    ModeSettings::token(&format!(
        "{{ source = \"device-code\", tenant_id = {}, client_id = {}, {} }}",
        quoted(TENANT),
        quoted(DEMO_APP),
        emulator_keys(lab)
    ))
}

/// `TOKEN = { source = "default" }`: our explicit chain, reading `env` instead of the process environment (the
/// managed-identity step reads `IDENTITY_ENDPOINT` from the process, as azure_identity does).
pub fn default_chain_source(lab: &Lab, env: HashMap<String, String>) -> ModeSettings {
    let mut mode = ModeSettings::token(&format!(
        "{{ source = \"default\", {} }}",
        emulator_keys(lab)
    ));
    mode.env = Some(env);
    mode
}

/// `extra_params = "Authentication=ActiveDirectoryDefault"`: refused by the driver, served by our chain.
/// The chain reads `AZURE_*` from `env`; its HTTPS trusts the system roots plus `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// (the lab's CA) and signs in at `AZURE_AUTHORITY_HOST` of the process.
pub fn active_directory_default(env: Option<HashMap<String, String>>) -> ModeSettings {
    let mut mode = ModeSettings::extra("Authentication=ActiveDirectoryDefault");
    mode.env = env;
    mode
}

/// The environment of a service principal with a secret, as `AZURE_*` variables.
pub fn service_principal_env(lab: &Lab) -> HashMap<String, String> {
    [
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        ("AZURE_CLIENT_ID", DEMO_APP.to_owned()),
        ("AZURE_CLIENT_SECRET", DEMO_APP_SECRET.to_owned()),
        ("AZURE_AUTHORITY_HOST", lab.authority_host().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `extra_params = "Authentication=ActiveDirectoryMsi"`, with `USER` for a user-assigned identity (the
/// driver's `UID`).
pub fn msi(uid: Option<&str>) -> ModeSettings {
    let mode = ModeSettings::extra("Authentication=ActiveDirectoryMsi");
    match uid {
        Some(uid) => mode.with_user(uid, None),
        None => mode,
    }
}

/// `extra_params = "Authentication=ActiveDirectoryServicePrincipal"`, `USER` = client id, `PASSWORD` = secret.
pub fn service_principal() -> ModeSettings {
    ModeSettings::extra("Authentication=ActiveDirectoryServicePrincipal")
        .with_user(DEMO_APP, Some(DEMO_APP_SECRET))
}

/// `extra_params = "Authentication=ActiveDirectoryPassword"` for `user`.
pub fn password(user: &str, password: &str) -> ModeSettings {
    ModeSettings::extra("Authentication=ActiveDirectoryPassword").with_user(user, Some(password))
}

/// `extra_params = "Authentication=ActiveDirectoryIntegrated"`.
pub fn integrated() -> ModeSettings {
    ModeSettings::extra("Authentication=ActiveDirectoryIntegrated")
}

/// `extra_params = "Authentication=ActiveDirectoryInteractive"` with `USER`.
pub fn interactive() -> ModeSettings {
    ModeSettings::extra("Authentication=ActiveDirectoryInteractive").with_user(ALICE, None)
}

/// Below the facade, for what settings cannot say: token mode with a client-secret source whose cache is
/// tuned for short-lived tokens (`refresh_before`, `expiry_margin`), and the connector's own options.
pub fn client_secret_connector(
    lab: &Lab,
    cache: CacheOptions,
    options: ConnectorOptions,
) -> Result<Connector, mssql_entra_odbc::Error> {
    let source = ClientSecretSource::new(
        TENANT,
        DEMO_APP,
        DEMO_APP_SECRET,
        Some(ClientSecretSourceOptions::default().with_http(lab.http_options())),
    )
    .map_err(mssql_entra_odbc::Error::Token)?;
    let source: Arc<dyn TokenSource> =
        Arc::new(CachedTokenSource::with_options(Arc::new(source), cache));
    Connector::new(
        lab.connection_string(""),
        Auth::Token(source, Scope::azure_sql()),
        options,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_mode_and_hides_secrets() {
        let table = ModeSettings::token(&format!(
            "{{ source = \"client-secret\", tenant_id = {}, client_id = {}, client_secret = {}, authority_host = \"https://127.0.0.1:1/\" }}",
            quoted(TENANT),
            quoted(DEMO_APP),
            quoted(DEMO_APP_SECRET)
        ));
        let shown = table.summary();
        assert_eq!(
            shown,
            format!("TOKEN = {{ source = \"client-secret\", client_id = \"{DEMO_APP}\", … }}")
        );
        let password = super::password(ALICE, "alice-password");
        let shown = format!("{} {:?}", password.summary(), password);
        assert!(!shown.contains("alice-password"), "{shown}");
        assert!(shown.contains("PASSWORD = \"***\""), "{shown}");
        let literal = ModeSettings::token("\"eyJ0eXAi.secret.sig\"");
        assert_eq!(literal.summary(), "TOKEN = \"<access token>\"");
    }
}

//! [`DefaultChainSource`]: the seed's `ActiveDirectoryDefault`, as an explicit, logged, pinnable chain.

use super::azure::HttpOptions;
use super::{
    ClientSecretSource, ClientSecretSourceOptions, DeveloperTool, DeveloperToolsSource,
    DeveloperToolsSourceOptions, ManagedIdentitySource, ManagedIdentitySourceOptions,
    UserAssignedId, WorkloadIdentitySource, WorkloadIdentitySourceOptions,
};
use crate::{AccessToken, Secret, TokenError, TokenRequestOptions, TokenSource};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable that pins the chain.
pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";

/// One step of the default chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainStep {
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` or
    /// `AZURE_CLIENT_CERTIFICATE_PATH` (PEM; needs feature `client-certificate`).
    Environment,
    /// Workload identity from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// The managed identity (user-assigned when configured, or when `AZURE_CLIENT_ID` is set).
    ManagedIdentity,
    /// A developer tool's sign-in.
    DeveloperTools(DeveloperTool),
}

impl ChainStep {
    /// The name used in logs, errors and `AZURE_TOKEN_CREDENTIALS`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Environment => "EnvironmentCredential",
            Self::WorkloadIdentity => "WorkloadIdentityCredential",
            Self::ManagedIdentity => "ManagedIdentityCredential",
            Self::DeveloperTools(DeveloperTool::AzureCli) => "AzureCliCredential",
            Self::DeveloperTools(DeveloperTool::AzureDeveloperCli) => "AzureDeveloperCliCredential",
            Self::DeveloperTools(_) => "DeveloperToolsCredential",
        }
    }

    /// The full chain, in order.
    pub const ALL: [ChainStep; 4] = [
        Self::Environment,
        Self::WorkloadIdentity,
        Self::ManagedIdentity,
        Self::DeveloperTools(DeveloperTool::Any),
    ];

    /// The steps an `AZURE_TOKEN_CREDENTIALS` value selects: unset or empty for all of them, `prod` for the
    /// first three, `dev` for developer tools, or one step's [`name`](Self::name) (case-insensitive).
    pub fn parse_selection(value: Option<&str>) -> Result<Vec<ChainStep>, TokenError> {
        let v = value.map(str::trim).unwrap_or("");
        if v.is_empty() {
            return Ok(Self::ALL.to_vec());
        }
        let lower = v.to_ascii_lowercase();
        let steps = match lower.as_str() {
            "prod" => vec![Self::Environment, Self::WorkloadIdentity, Self::ManagedIdentity],
            "dev" => vec![Self::DeveloperTools(DeveloperTool::Any)],
            "environmentcredential" => vec![Self::Environment],
            "workloadidentitycredential" => vec![Self::WorkloadIdentity],
            "managedidentitycredential" => vec![Self::ManagedIdentity],
            "azureclicredential" => vec![Self::DeveloperTools(DeveloperTool::AzureCli)],
            "azuredeveloperclicredential" => vec![Self::DeveloperTools(DeveloperTool::AzureDeveloperCli)],
            _ => {
                return Err(TokenError::Config {
                    field: AZURE_TOKEN_CREDENTIALS,
                    reason: format!(
                        "`{v}` is not a known value; use `prod`, `dev`, EnvironmentCredential, WorkloadIdentityCredential, \
                         ManagedIdentityCredential, AzureCliCredential or AzureDeveloperCliCredential, or unset it"
                    ),
                })
            }
        };
        Ok(steps)
    }
}

/// Options of [`DefaultChainSource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DefaultChainSourceOptions {
    /// The steps to try, in order. Default: what `AZURE_TOKEN_CREDENTIALS` selects, else all four.
    pub steps: Option<Vec<ChainStep>>,
    /// The user-assigned managed identity. Default: `AZURE_CLIENT_ID` when set, else system-assigned.
    pub managed_identity: Option<UserAssignedId>,
    /// When the managed identity has to be reached at the instance metadata service, give up on it after
    /// this long on the first request (off Azure nothing answers there). Default 2 s.
    pub imds_probe_timeout: Option<Duration>,
    /// HTTP settings for every step.
    pub http: HttpOptions,
    /// Read these variables instead of the process environment (tests, sandboxes). The managed identity
    /// endpoint variables (`IDENTITY_ENDPOINT`, ...) are always read by `azure_identity` from the process.
    pub env: Option<HashMap<String, String>>,
}

impl DefaultChainSourceOptions {
    /// Sets [`steps`](Self::steps).
    pub fn with_steps(mut self, steps: Vec<ChainStep>) -> Self {
        self.steps = Some(steps);
        self
    }

    /// Sets [`env`](Self::env).
    pub fn with_env(mut self, env: HashMap<String, String>) -> Self {
        self.env = Some(env);
        self
    }

    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// Sets [`managed_identity`](Self::managed_identity).
    pub fn with_managed_identity(mut self, id: UserAssignedId) -> Self {
        self.managed_identity = Some(id);
        self
    }
}

struct Step {
    step: ChainStep,
    source: Result<Arc<dyn TokenSource>, TokenError>,
    probe_timeout: Option<Duration>,
}

/// The explicit default chain:
///
/// 1. **Environment** service principal (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` or
///    `AZURE_CLIENT_CERTIFICATE_PATH`),
/// 2. **Workload identity** (`AZURE_FEDERATED_TOKEN_FILE` with tenant and client id),
/// 3. **Managed identity**,
/// 4. **Developer tools** (Azure CLI, then azd).
///
/// A step whose configuration is absent is skipped ([`TokenError::Unavailable`]); a managed identity that
/// nothing answers for within the probe timeout counts as absent too. A step that is configured but fails
/// (a wrong secret, say) ends the chain: silently falling through to another identity hides mistakes. Each
/// step is logged (`debug` when skipped, `info` for the winner) and the first step that produces a token is
/// used for every later call. `AZURE_TOKEN_CREDENTIALS` pins the chain (see [`ChainStep::parse_selection`]).
/// On failure, [`TokenError::ChainExhausted`] lists every step and why it failed.
pub struct DefaultChainSource {
    steps: Vec<Step>,
    winner: AtomicUsize,
}

const NO_WINNER: usize = usize::MAX;

impl DefaultChainSource {
    /// Builds the chain. Fails only on an invalid `AZURE_TOKEN_CREDENTIALS` or an empty step list.
    pub fn new(options: Option<DefaultChainSourceOptions>) -> Result<Self, TokenError> {
        let options = options.unwrap_or_default();
        let env = |k: &str| -> Option<String> {
            let v = match &options.env {
                Some(map) => map.get(k).cloned(),
                None => std::env::var(k).ok(),
            };
            v.filter(|v| !v.trim().is_empty())
        };
        let selected = match options.steps.clone() {
            Some(steps) => steps,
            None => ChainStep::parse_selection(env(AZURE_TOKEN_CREDENTIALS).as_deref())?,
        };
        if selected.is_empty() {
            return Err(TokenError::Config {
                field: "steps",
                reason: "the default chain has no steps; leave `steps` unset for the full chain"
                    .to_owned(),
            });
        }
        tracing::debug!(steps = ?selected.iter().map(|s| s.name()).collect::<Vec<_>>(), "default credential chain");
        let steps = selected
            .into_iter()
            .map(|step| {
                let (source, probe_timeout) = build(step, &options, &env);
                if let Err(e) = &source {
                    tracing::debug!(credential = step.name(), reason = %e, "default chain step not available");
                }
                Step {
                    step,
                    source,
                    probe_timeout,
                }
            })
            .collect();
        Ok(Self {
            steps,
            winner: AtomicUsize::new(NO_WINNER),
        })
    }

    /// The steps, in order.
    pub fn steps(&self) -> Vec<ChainStep> {
        self.steps.iter().map(|s| s.step).collect()
    }

    /// The step that produced the first token, once there is one.
    pub fn winner(&self) -> Option<ChainStep> {
        self.steps
            .get(self.winner.load(Ordering::Acquire))
            .map(|s| s.step)
    }
}

fn unavailable(step: ChainStep, reason: String) -> TokenError {
    TokenError::Unavailable {
        credential: step.name(),
        reason,
    }
}

type Built = (Result<Arc<dyn TokenSource>, TokenError>, Option<Duration>);

fn build(
    step: ChainStep,
    options: &DefaultChainSourceOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Built {
    let missing = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| env(n).is_none())
            .map(|n| (*n).to_owned())
            .collect()
    };
    match step {
        ChainStep::Environment => {
            let absent = missing(&["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]);
            let secret = env("AZURE_CLIENT_SECRET");
            let cert = env("AZURE_CLIENT_CERTIFICATE_PATH");
            if !absent.is_empty() || (secret.is_none() && cert.is_none()) {
                let mut absent = absent;
                if secret.is_none() && cert.is_none() {
                    absent.push("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH".to_owned());
                }
                return (
                    Err(unavailable(step, format!("{} not set", absent.join(", ")))),
                    None,
                );
            }
            let (tenant, client) = (
                env("AZURE_TENANT_ID").unwrap_or_default(),
                env("AZURE_CLIENT_ID").unwrap_or_default(),
            );
            if let Some(secret) = secret {
                let o = ClientSecretSourceOptions::default().with_http(options.http.clone());
                let s = ClientSecretSource::new(&tenant, &client, Secret::new(secret), Some(o));
                return (s.map(|s| Arc::new(s) as Arc<dyn TokenSource>), None);
            }
            (
                env_certificate(&tenant, &client, cert.unwrap_or_default(), options),
                None,
            )
        }
        ChainStep::WorkloadIdentity => {
            let absent = missing(&[
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
            ]);
            if !absent.is_empty() {
                return (
                    Err(unavailable(step, format!("{} not set", absent.join(", ")))),
                    None,
                );
            }
            let o = WorkloadIdentitySourceOptions::default()
                .with_identity(
                    env("AZURE_TENANT_ID").unwrap_or_default(),
                    env("AZURE_CLIENT_ID").unwrap_or_default(),
                    env("AZURE_FEDERATED_TOKEN_FILE").unwrap_or_default(),
                )
                .with_http(options.http.clone());
            (
                WorkloadIdentitySource::new(Some(o)).map(|s| Arc::new(s) as Arc<dyn TokenSource>),
                None,
            )
        }
        ChainStep::ManagedIdentity => {
            let id = options
                .managed_identity
                .clone()
                .or_else(|| env("AZURE_CLIENT_ID").map(UserAssignedId::ClientId));
            // Off Azure, the metadata service address swallows packets; probe it briefly, without retries.
            let on_imds = std::env::var_os("IDENTITY_ENDPOINT").is_none()
                && std::env::var_os("MSI_ENDPOINT").is_none();
            let mut http = options.http.clone();
            let probe = if on_imds {
                http.client_options.retry = azure_core::http::RetryOptions::none();
                Some(options.imds_probe_timeout.unwrap_or(Duration::from_secs(2)))
            } else {
                None
            };
            let mut o = ManagedIdentitySourceOptions::default().with_http(http);
            o.user_assigned_id = id;
            (
                ManagedIdentitySource::new(Some(o)).map(|s| Arc::new(s) as Arc<dyn TokenSource>),
                probe,
            )
        }
        ChainStep::DeveloperTools(tool) => {
            let o = DeveloperToolsSourceOptions::default().with_tool(tool);
            (
                DeveloperToolsSource::new(Some(o)).map(|s| Arc::new(s) as Arc<dyn TokenSource>),
                None,
            )
        }
    }
}

#[cfg(feature = "client-certificate")]
fn env_certificate(
    tenant: &str,
    client: &str,
    path: String,
    options: &DefaultChainSourceOptions,
) -> Result<Arc<dyn TokenSource>, TokenError> {
    let o = super::ClientCertificateSourceOptions::default().with_http(options.http.clone());
    super::ClientCertificateSource::from_pem_file(
        tenant,
        client,
        std::path::Path::new(&path),
        Some(o),
    )
    .map(|s| Arc::new(s) as Arc<dyn TokenSource>)
}

#[cfg(not(feature = "client-certificate"))]
fn env_certificate(
    _tenant: &str,
    _client: &str,
    _path: String,
    _options: &DefaultChainSourceOptions,
) -> Result<Arc<dyn TokenSource>, TokenError> {
    Err(TokenError::NotEnabled {
        credential: "EnvironmentCredential (AZURE_CLIENT_CERTIFICATE_PATH)",
        feature: "client-certificate",
    })
}

#[async_trait::async_trait]
impl TokenSource for DefaultChainSource {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        if let Some(step) = self.steps.get(self.winner.load(Ordering::Acquire)) {
            if let Ok(source) = &step.source {
                return source.get_token(scopes, options).await;
            }
        }
        let mut attempts = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let name = step.step.name();
            let source = match &step.source {
                Ok(source) => source,
                Err(e) => {
                    attempts.push((name, e.clone()));
                    continue;
                }
            };
            tracing::debug!(credential = name, "default chain: trying");
            let result = match step.probe_timeout {
                Some(limit) => {
                    match tokio::time::timeout(limit, source.get_token(scopes, options.clone()))
                        .await
                    {
                        Ok(Err(TokenError::Connection { message, .. })) => Err(unavailable(
                            step.step,
                            format!("no managed identity endpoint answered ({message})"),
                        )),
                        Ok(r) => r,
                        Err(_) => Err(unavailable(
                            step.step,
                            format!(
                                "the instance metadata service did not answer within {limit:?}"
                            ),
                        )),
                    }
                }
                None => source.get_token(scopes, options.clone()).await,
            };
            match result {
                Ok(token) => {
                    self.winner.store(i, Ordering::Release);
                    tracing::info!(
                        credential = name,
                        "default chain: {name} provided the token and is used from now on"
                    );
                    return Ok(token);
                }
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(credential = name, reason = %e, "default chain: not available, next");
                    attempts.push((name, e));
                }
                Err(e) => {
                    tracing::warn!(credential = name, error = %e, "default chain: configured credential failed; stopping");
                    attempts.push((name, e));
                    break;
                }
            }
        }
        Err(TokenError::ChainExhausted { attempts })
    }
}

impl fmt::Debug for DefaultChainSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultChainSource")
            .field("steps", &self.steps())
            .field("winner", &self.winner())
            .finish_non_exhaustive()
    }
}

//! [`DeveloperToolsSource`] over the Azure CLI and Azure Developer CLI credentials of `azure_identity`.

use super::azure::{adapter_source, construct_error, Adapter};
use crate::TokenError;
use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, DeveloperToolsCredential,
};
use std::sync::Arc;

/// Which developer tool to ask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeveloperTool {
    /// The Azure CLI (`az account get-access-token`), then the Azure Developer CLI.
    #[default]
    Any,
    /// Only the Azure CLI.
    AzureCli,
    /// Only the Azure Developer CLI (`azd auth token`).
    AzureDeveloperCli,
}

/// Options of [`DeveloperToolsSource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeveloperToolsSourceOptions {
    /// Which tool.
    pub tool: DeveloperTool,
    /// Sign in to this tenant instead of the tool's default (not used with [`DeveloperTool::Any`]).
    pub tenant_id: Option<String>,
}

impl DeveloperToolsSourceOptions {
    /// Sets [`tool`](Self::tool).
    pub fn with_tool(mut self, tool: DeveloperTool) -> Self {
        self.tool = tool;
        self
    }

    /// Sets [`tenant_id`](Self::tenant_id).
    pub fn with_tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }
}

adapter_source! {
    /// The developer's own sign-in, taken from the Azure CLI or the Azure Developer CLI. For local
    /// development; no secret is stored by this crate.
    DeveloperToolsSource
}

impl DeveloperToolsSource {
    /// A source for the tool in `options` (default: Azure CLI, then azd).
    pub fn new(options: Option<DeveloperToolsSourceOptions>) -> Result<Self, TokenError> {
        let options = options.unwrap_or_default();
        let (name, credential): (&'static str, Arc<dyn TokenCredential>) = match options.tool {
            DeveloperTool::Any => {
                if options.tenant_id.is_some() {
                    return Err(TokenError::Config {
                        field: "tenant_id",
                        reason: "a tenant can only be chosen for one tool; set tool to AzureCli or AzureDeveloperCli".to_owned(),
                    });
                }
                (
                    "DeveloperToolsCredential",
                    DeveloperToolsCredential::new(None).map_err(|e| construct_error("tool", &e))?,
                )
            }
            DeveloperTool::AzureCli => {
                let az = AzureCliCredentialOptions {
                    tenant_id: options.tenant_id,
                    ..Default::default()
                };
                (
                    "AzureCliCredential",
                    AzureCliCredential::new(Some(az))
                        .map_err(|e| construct_error("tenant_id", &e))?,
                )
            }
            DeveloperTool::AzureDeveloperCli => {
                let az = AzureDeveloperCliCredentialOptions {
                    tenant_id: options.tenant_id,
                    ..Default::default()
                };
                (
                    "AzureDeveloperCliCredential",
                    AzureDeveloperCliCredential::new(Some(az))
                        .map_err(|e| construct_error("tenant_id", &e))?,
                )
            }
        };
        Ok(Self {
            inner: Adapter::new(name, credential),
        })
    }
}

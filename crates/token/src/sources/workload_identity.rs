//! [`WorkloadIdentitySource`] over `azure_identity::WorkloadIdentityCredential`.

use super::azure::{adapter_source, construct_error, Adapter, HttpOptions};
use crate::TokenError;
use azure_identity::{
    ClientAssertionCredentialOptions, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use std::path::PathBuf;

/// Options of [`WorkloadIdentitySource`]. Unset fields come from the environment variables that the AKS
/// workload identity webhook injects.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WorkloadIdentitySourceOptions {
    /// Tenant; default `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// Client id of the federated identity; default `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// The projected service account token file; default `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file_path: Option<PathBuf>,
    /// HTTP settings.
    pub http: HttpOptions,
}

impl WorkloadIdentitySourceOptions {
    /// Sets tenant, client id and token file explicitly.
    pub fn with_identity(
        mut self,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        token_file_path: impl Into<PathBuf>,
    ) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self.client_id = Some(client_id.into());
        self.token_file_path = Some(token_file_path.into());
        self
    }

    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

adapter_source! {
    /// Workload identity federation: a Kubernetes service account token (re-read from its file on every
    /// request, as the kubelet rotates it) exchanged for an Entra ID token.
    WorkloadIdentitySource
}

impl WorkloadIdentitySource {
    /// A source from `options`, falling back to the environment.
    ///
    /// Fails with [`TokenError::Config`] when tenant, client id or token file are neither given nor set in
    /// the environment.
    pub fn new(options: Option<WorkloadIdentitySourceOptions>) -> Result<Self, TokenError> {
        let options = options.unwrap_or_default();
        let az = WorkloadIdentityCredentialOptions {
            credential_options: ClientAssertionCredentialOptions {
                client_options: options.http.into_client_options()?,
            },
            tenant_id: options.tenant_id,
            client_id: options.client_id,
            token_file_path: options.token_file_path,
        };
        let credential = WorkloadIdentityCredential::new(Some(az))
            .map_err(|e| construct_error("AZURE_FEDERATED_TOKEN_FILE", &e))?;
        Ok(Self {
            inner: Adapter::new("WorkloadIdentityCredential", credential),
        })
    }
}

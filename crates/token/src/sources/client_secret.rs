//! [`ClientSecretSource`] over `azure_identity::ClientSecretCredential`.

use super::azure::{adapter_source, construct_error, require, Adapter, HttpOptions};
use crate::{Secret, TokenError};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

/// Options of [`ClientSecretSource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientSecretSourceOptions {
    /// HTTP settings.
    pub http: HttpOptions,
}

impl ClientSecretSourceOptions {
    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

adapter_source! {
    /// A service principal signing in with a client secret (the seed's `ActiveDirectoryServicePrincipal`:
    /// `USER` = client id, `PASSWORD` = secret).
    ClientSecretSource
}

impl ClientSecretSource {
    /// A source for the app `client_id` in `tenant_id`.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        secret: impl Into<Secret>,
        options: Option<ClientSecretSourceOptions>,
    ) -> Result<Self, TokenError> {
        let secret = secret.into();
        require("tenant_id", tenant_id)?;
        require("client_id", client_id)?;
        if secret.expose_secret().is_empty() {
            return Err(TokenError::Config {
                field: "client_secret",
                reason: "the client secret is empty; pass the secret's value (not its id)"
                    .to_owned(),
            });
        }
        let options = options.unwrap_or_default();
        let az = ClientSecretCredentialOptions {
            client_options: options.http.into_client_options()?,
        };
        let credential = ClientSecretCredential::new(
            tenant_id,
            client_id.to_owned(),
            azure_core::credentials::Secret::new(secret.expose_secret().to_owned()),
            Some(az),
        )
        .map_err(|e| construct_error("tenant_id", &e))?;
        Ok(Self {
            inner: Adapter::new("ClientSecretCredential", credential),
        })
    }
}

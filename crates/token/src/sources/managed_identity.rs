//! [`ManagedIdentitySource`] over `azure_identity::ManagedIdentityCredential`.

use super::azure::{adapter_source, construct_error, Adapter, HttpOptions};
use crate::TokenError;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions};

/// Which user-assigned identity to use. The seed's `UID=` of `ActiveDirectoryMsi` is a client or object id.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserAssignedId {
    /// The identity's client (application) id.
    ClientId(String),
    /// The identity's object (principal) id.
    ObjectId(String),
    /// The identity's Azure resource id (`/subscriptions/.../userAssignedIdentities/name`).
    ResourceId(String),
}

impl std::fmt::Debug for UserAssignedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientId(v) => f.debug_tuple("ClientId").field(v).finish(),
            Self::ObjectId(v) => f.debug_tuple("ObjectId").field(v).finish(),
            Self::ResourceId(v) => f.debug_tuple("ResourceId").field(v).finish(),
        }
    }
}

/// Options of [`ManagedIdentitySource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ManagedIdentitySourceOptions {
    /// A user-assigned identity; `None` for the system-assigned one.
    pub user_assigned_id: Option<UserAssignedId>,
    /// HTTP settings.
    pub http: HttpOptions,
}

impl ManagedIdentitySourceOptions {
    /// Sets [`user_assigned_id`](Self::user_assigned_id).
    pub fn with_user_assigned_id(mut self, id: UserAssignedId) -> Self {
        self.user_assigned_id = Some(id);
        self
    }

    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

adapter_source! {
    /// Tokens of the managed identity of the Azure resource this process runs on.
    ///
    /// The endpoint is chosen by `azure_identity` from the environment: App Service / Functions / Container
    /// Apps (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), otherwise the instance metadata service at
    /// 169.254.169.254. The ODBC driver's own `ActiveDirectoryMsi` calls that endpoint on every connect;
    /// wrapped in [`CachedTokenSource`](crate::CachedTokenSource) this source calls it once per token lifetime.
    ManagedIdentitySource
}

impl ManagedIdentitySource {
    /// A source for the system-assigned identity, or the user-assigned one in `options`.
    pub fn new(options: Option<ManagedIdentitySourceOptions>) -> Result<Self, TokenError> {
        let options = options.unwrap_or_default();
        let user_assigned_id = match options.user_assigned_id {
            None => None,
            Some(id) => Some(match id {
                UserAssignedId::ClientId(v) => {
                    azure_identity::UserAssignedId::ClientId(non_empty(v)?)
                }
                UserAssignedId::ObjectId(v) => {
                    azure_identity::UserAssignedId::ObjectId(non_empty(v)?)
                }
                UserAssignedId::ResourceId(v) => {
                    azure_identity::UserAssignedId::ResourceId(non_empty(v)?)
                }
            }),
        };
        let az = ManagedIdentityCredentialOptions {
            user_assigned_id,
            client_options: options.http.into_client_options()?,
        };
        let credential = ManagedIdentityCredential::new(Some(az))
            .map_err(|e| construct_error("user_assigned_id", &e))?;
        Ok(Self {
            inner: Adapter::new("ManagedIdentityCredential", credential),
        })
    }
}

fn non_empty(v: String) -> Result<String, TokenError> {
    if v.trim().is_empty() {
        return Err(TokenError::Config {
            field: "user_assigned_id",
            reason: "the user-assigned identity id is empty; give its client id, object id or resource id, or none for the system-assigned identity".to_owned(),
        });
    }
    Ok(v.trim().to_owned())
}

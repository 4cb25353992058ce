//! Token sources, each behind its own cargo feature.
//!
//! | feature | source | backed by |
//! |---|---|---|
//! | `static-token` | [`StaticTokenSource`] | a fixed token (the settings' `TOKEN`) |
//! | `custom` | [`FnTokenSource`] | your async closure |
//! | `managed-identity` | [`ManagedIdentitySource`] | `azure_identity::ManagedIdentityCredential` |
//! | `client-secret` | [`ClientSecretSource`] | `azure_identity::ClientSecretCredential` |
//! | `client-certificate` | [`ClientCertificateSource`] | `azure_identity::ClientAssertionCredential` + a ring-signed assertion |
//! | `workload-identity` | [`WorkloadIdentitySource`] | `azure_identity::WorkloadIdentityCredential` |
//! | `developer-tools` | [`DeveloperToolsSource`] | `azure_identity` Azure CLI / azd credentials |
//! | `device-code` | [`DeviceCodeSource`] | the device authorization grant on azure_core's pipeline |
//! | `default-chain` | [`DefaultChainSource`] | the steps above, in a documented order |
//!
//! None of them caches beyond what `azure_identity` does internally; wrap them in
//! [`CachedTokenSource`](crate::CachedTokenSource).

#[cfg(feature = "_azure")]
mod azure;
#[cfg(feature = "client-certificate")]
mod client_certificate;
#[cfg(feature = "client-secret")]
mod client_secret;
#[cfg(feature = "custom")]
mod custom;
#[cfg(feature = "default-chain")]
mod default_chain;
#[cfg(feature = "developer-tools")]
mod developer_tools;
#[cfg(feature = "device-code")]
mod device_code;
#[cfg(feature = "managed-identity")]
mod managed_identity;
#[cfg(feature = "static-token")]
mod static_token;
#[cfg(feature = "workload-identity")]
mod workload_identity;

#[cfg(feature = "_azure")]
pub use azure::{http_client, AzureClientOptions, HttpOptions};
#[cfg(feature = "client-certificate")]
pub use client_certificate::{ClientCertificateSource, ClientCertificateSourceOptions};
#[cfg(feature = "client-secret")]
pub use client_secret::{ClientSecretSource, ClientSecretSourceOptions};
#[cfg(feature = "custom")]
pub use custom::FnTokenSource;
#[cfg(feature = "default-chain")]
pub use default_chain::{
    ChainStep, DefaultChainSource, DefaultChainSourceOptions, AZURE_TOKEN_CREDENTIALS,
};
#[cfg(feature = "developer-tools")]
pub use developer_tools::{DeveloperTool, DeveloperToolsSource, DeveloperToolsSourceOptions};
#[cfg(feature = "device-code")]
pub use device_code::{DeviceCodePrompt, DeviceCodeSource, DeviceCodeSourceOptions};
#[cfg(feature = "managed-identity")]
pub use managed_identity::{ManagedIdentitySource, ManagedIdentitySourceOptions, UserAssignedId};
#[cfg(feature = "static-token")]
pub use static_token::StaticTokenSource;
#[cfg(feature = "workload-identity")]
pub use workload_identity::{WorkloadIdentitySource, WorkloadIdentitySourceOptions};

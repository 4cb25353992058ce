//! Integration tests of mssql-entra-token: one binary, a module per area.

mod blocking;
mod cache;
mod fake;
mod fake_http;
mod mock;
mod no_secrets;
mod sources;

/// Every public source type can be shared across threads as `Arc<dyn TokenSource>`.
#[test]
fn public_types_are_send_and_sync() {
    fn is<T: Send + Sync + 'static>() {}
    use mssql_entra_token::sources::*;
    is::<StaticTokenSource>();
    is::<ManagedIdentitySource>();
    is::<ClientSecretSource>();
    is::<ClientCertificateSource>();
    is::<WorkloadIdentitySource>();
    is::<DeveloperToolsSource>();
    is::<DeviceCodeSource>();
    is::<DefaultChainSource>();
    is::<HttpOptions>();
    is::<mssql_entra_token::mock::MockTokenSource>();
    is::<mssql_entra_token::CachedTokenSource>();
    is::<mssql_entra_token::UnverifiedClaims>();
}

//! azure_identity 1.0 itself against the emulator: the v2.0 token endpoint with a client secret and with a
//! workload-identity (federated) assertion, over HTTPS trusting only the emulator's CA.
//! (Its managed-identity credential reads the process environment, so it is exercised in `driver.rs`, which owns
//! `IDENTITY_ENDPOINT` in this test binary.)

use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use mssql_entra_emulator::{Emulator, Endpoint, LoginAuthority, PrincipalKind};

use crate::{start, DEMO_APP};

/// Client options pointing azure_identity at the emulator and trusting its CA.
pub fn client_options(emu: &Emulator) -> ClientOptions {
    let tls = emu.pki().client_config().unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let mut custom = CustomConfiguration::default();
    custom.authority_host = emu.sts_base_url();
    let mut options = ClientOptions::default();
    options.transport = Some(Transport::new(Arc::new(http)));
    options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_credential_gets_a_token_the_sql_side_accepts() {
    let emu = start().await;
    let mut options = azure_identity::ClientSecretCredentialOptions::default();
    options.client_options = client_options(&emu);
    let credential = azure_identity::ClientSecretCredential::new(
        &emu.tenant_id().to_string(),
        DEMO_APP.to_owned(),
        Secret::new("demo-app-secret"),
        Some(options),
    )
    .unwrap();
    let token = credential
        .get_token(&["https://database.windows.net//.default"], None)
        .await
        .unwrap();
    let principal = emu.identity().validate(token.token.secret()).unwrap();
    assert_eq!(principal.kind, PrincipalKind::ServicePrincipal);
    let left = token.expires_on - azure_core::time::OffsetDateTime::now_utc();
    assert!(left.whole_minutes() >= 70, "expires_in was read: {left}");
    assert_eq!(emu.http_stats().count(Endpoint::TokenV2), 1);

    let mut options = azure_identity::ClientSecretCredentialOptions::default();
    options.client_options = client_options(&emu);
    let wrong = azure_identity::ClientSecretCredential::new(
        &emu.tenant_id().to_string(),
        DEMO_APP.to_owned(),
        Secret::new("wrong-secret"),
        Some(options),
    )
    .unwrap();
    let err = wrong
        .get_token(&["https://database.windows.net//.default"], None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("7000215"),
        "azure_identity surfaces the AADSTS code: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_credential_exchanges_a_federated_token() {
    let emu = start().await;
    let file = emu
        .write_federated_token(
            "system:serviceaccount:default:demo",
            Duration::from_secs(600),
        )
        .unwrap();
    let mut options = azure_identity::WorkloadIdentityCredentialOptions::default();
    options.credential_options.client_options = client_options(&emu);
    options.client_id = Some(DEMO_APP.to_owned());
    options.tenant_id = Some(emu.tenant_id().to_string());
    options.token_file_path = Some(file);
    let credential = azure_identity::WorkloadIdentityCredential::new(Some(options)).unwrap();
    let token = credential
        .get_token(&["https://database.windows.net//.default"], None)
        .await
        .unwrap();
    let principal = emu.identity().validate(token.token.secret()).unwrap();
    assert_eq!(principal.display_name, "demo-app");
}

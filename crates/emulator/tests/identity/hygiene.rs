//! Secrets stay out of logs (at TRACE, with hyper's own events), and public types are `Send + Sync`.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use mssql_entra_emulator::{
    Directory, Emulator, EmulatorError, EmulatorHandle, HttpFaults, HttpStats, Identity, Secret,
    TokenRejection,
};

use crate::client::{get, post};
use crate::{start, DEMO_APP};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a global TRACE subscriber that writes into memory.
fn captured() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let sink = Captured::default();
            let writer = sink.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber");
            sink
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let logs = captured();
    let emu = start().await;
    let url = emu.token_url_v1(&emu.tenant_id().to_string());
    let ok = post(
        &emu,
        &url,
        &[
            ("resource", "https://database.windows.net/"),
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_APP),
            ("client_secret", "demo-app-secret"),
        ],
    )
    .await;
    let token = ok.driver_token().unwrap();
    post(
        &emu,
        &url,
        &[
            ("resource", "r"),
            ("grant_type", "password"),
            ("username", "alice@emulator.onmicrosoft.com"),
            ("password", "alice-password"),
            ("client_id", DEMO_APP),
        ],
    )
    .await;
    let header = emu.identity_header().expose().to_owned();
    let msi = get(
        &emu,
        &format!(
            "{}?api-version=2019-08-01&resource=r",
            emu.identity_endpoint()
        ),
        &[("x-identity-header", &header)],
    )
    .await;
    assert_eq!(msi.status, 200);
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("answered"),
        "the subscriber captured the emulator's events:\n{logs}"
    );
    for secret in [
        "demo-app-secret",
        "alice-password",
        header.as_str(),
        token.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Emulator>();
    check::<EmulatorHandle>();
    check::<EmulatorError>();
    check::<Identity>();
    check::<HttpFaults>();
    check::<HttpStats>();
    check::<Directory>();
    check::<Secret>();
    check::<TokenRejection>();
}

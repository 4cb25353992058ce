//! HTTP fault knobs and request counters.

use std::time::{Duration, Instant};

use mssql_entra_emulator::{Endpoint, HttpFault, HttpService, Times};

use crate::client::{get, send};
use crate::start;

fn imds(emu: &mssql_entra_emulator::Emulator) -> String {
    format!(
        "{}?api-version=2018-02-01&resource=https%3A%2F%2Fdatabase.windows.net%2F",
        emu.imds_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_faults_for_the_next_n_requests() {
    let emu = start().await;
    emu.http_faults().inject(
        Some(HttpService::Imds),
        HttpFault::Status(500),
        Times::Next(2),
    );
    let h = [("metadata", "true")];
    assert_eq!(get(&emu, &imds(&emu), &h).await.status, 500);
    assert_eq!(get(&emu, &imds(&emu), &h).await.status, 500);
    assert_eq!(get(&emu, &imds(&emu), &h).await.status, 200);
    assert_eq!(emu.http_faults().active(), 0);
    assert_eq!(
        emu.http_stats().count(Endpoint::ImdsToken),
        3,
        "faulted requests are counted too"
    );
    emu.http_stats().reset();
    assert_eq!(emu.http_stats().count(Endpoint::ImdsToken), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_malformed_json_and_targeting() {
    let emu = start().await;
    let faults = emu.http_faults();
    faults.inject(
        Some(HttpService::Imds),
        HttpFault::TooManyRequests {
            retry_after: Duration::from_secs(7),
        },
        Times::Next(1),
    );
    faults.inject(
        Some(HttpService::Imds),
        HttpFault::MalformedJson,
        Times::Next(1),
    );
    let h = [("metadata", "true")];
    // A fault on IMDS leaves the token service alone.
    let jwks = get(
        &emu,
        &format!("{}/common/discovery/keys", emu.sts_base_url()),
        &[],
    )
    .await;
    assert_eq!(jwks.status, 200);

    let throttled = get(&emu, &imds(&emu), &h).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let malformed = get(&emu, &imds(&emu), &h).await;
    assert_eq!(malformed.status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&malformed.body).is_err(),
        "{}",
        malformed.body
    );
    assert!(malformed.driver_token().is_none());
    assert_eq!(get(&emu, &imds(&emu), &h).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_service_down_until_cleared_and_slow() {
    let emu = start().await;
    let url = format!("{}/common/discovery/keys", emu.sts_base_url());
    emu.http_faults().token_service_down(Times::UntilCleared);
    for _ in 0..2 {
        let err = send(&emu, "GET", &url, &[], None)
            .await
            .expect_err("the connection is closed without an answer");
        assert!(err.starts_with("request"), "{err}");
    }
    emu.http_faults().clear();
    assert_eq!(get(&emu, &url, &[]).await.status, 200);

    emu.http_faults().inject(
        None,
        HttpFault::Delay(Duration::from_millis(1000)),
        Times::Next(1),
    );
    let started = Instant::now();
    assert_eq!(get(&emu, &url, &[]).await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(get(&emu, &url, &[]).await.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the delay was for one request only"
    );
    assert_eq!(emu.http_stats().count(Endpoint::Jwks), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_specific_clear() {
    let emu = start().await;
    let faults = emu.http_faults();
    faults.inject(
        Some(HttpService::AppService),
        HttpFault::Status(503),
        Times::UntilCleared,
    );
    faults.inject(
        Some(HttpService::TokenService),
        HttpFault::Status(500),
        Times::UntilCleared,
    );
    faults.clear_service(HttpService::AppService);
    assert_eq!(faults.active(), 1);
    let url = format!("{}/common/discovery/keys", emu.sts_base_url());
    assert_eq!(get(&emu, &url, &[]).await.status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_until_allowed_again_on_the_same_port() {
    let emu = start().await;
    let url = imds(&emu);
    let h = [("metadata", "true")];
    emu.http_faults()
        .refuse_connections(HttpService::Imds, true);
    assert!(emu.http_faults().is_refusing(HttpService::Imds));
    let mut refused = false;
    for _ in 0..50 {
        match send(&emu, "GET", &url, &h, None).await {
            Err(e) if e.contains("connect") && e.contains("refused") => {
                refused = true;
                break;
            }
            // The accept loop closes its socket asynchronously.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(refused, "connections are refused while the fault is on");
    // Other services keep listening.
    assert_eq!(
        get(
            &emu,
            &format!("{}/common/discovery/keys", emu.sts_base_url()),
            &[]
        )
        .await
        .status,
        200
    );

    emu.http_faults()
        .refuse_connections(HttpService::Imds, false);
    let mut back = false;
    for _ in 0..50 {
        if let Ok(reply) = send(&emu, "GET", &url, &h, None).await {
            assert_eq!(reply.status, 200);
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        back,
        "the same address answers again after the fault is cleared"
    );
}

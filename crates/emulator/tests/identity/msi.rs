//! The managed-identity endpoints, with the driver's exact requests.

use mssql_entra_emulator::{Endpoint, LoginAuthority, PrincipalKind};

use crate::client::get;
use crate::{start, DEMO_MI, DEMO_UAMI, DEMO_UAMI_OBJECT};

const DRIVER_HEADERS: &[(&str, &str)] = &[
    ("user-agent", "AzureADAuthProvider"),
    ("pragma", "no-cache"),
    ("accept", "*/*"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_answers_the_driver_request_compactly() {
    let emu = start().await;
    let url = format!(
        "{}?api-version=2018-02-01&resource=https%3A%2F%2Fdatabase.windows.net%2F",
        emu.imds_url()
    );
    let mut headers = DRIVER_HEADERS.to_vec();
    headers.push(("metadata", "true"));
    let reply = get(&emu, &url, &headers).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply
        .driver_token()
        .expect("literal search finds the token");
    let json = reply.json();
    for field in [
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
    ] {
        assert!(
            json[field].is_string(),
            "IMDS writes {field} as a string: {json}"
        );
    }
    assert_eq!(json["client_id"], DEMO_MI);
    assert_eq!(json["resource"], "https://database.windows.net/");
    let principal = emu.identity().validate(&token).unwrap();
    assert_eq!(
        (principal.kind, principal.display_name.as_str()),
        (PrincipalKind::ManagedIdentity, "demo-mi")
    );
    assert!(emu
        .identity()
        .decode_claims(&token)
        .unwrap()
        .xms_mirid
        .is_some());

    // The driver names a user-assigned identity with object_id; azure_identity may use client_id or msi_res_id.
    let by_object = get(
        &emu,
        &format!("{url}&object_id={DEMO_UAMI_OBJECT}"),
        &headers,
    )
    .await;
    assert_eq!(by_object.json()["client_id"], DEMO_UAMI);
    let by_client = get(&emu, &format!("{url}&client_id={DEMO_UAMI}"), &headers).await;
    assert_eq!(by_client.json()["client_id"], DEMO_UAMI);
    let res = emu.directory().managed_identities[1].resource_id.clone();
    let by_res = get(
        &emu,
        &format!("{url}&msi_res_id={}", urlencode(&res)),
        &headers,
    )
    .await;
    assert_eq!(by_res.json()["client_id"], DEMO_UAMI);
    assert_eq!(emu.http_stats().count(Endpoint::ImdsToken), 4);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_errors() {
    let emu = start().await;
    let url = format!(
        "{}?api-version=2018-02-01&resource=https%3A%2F%2Fdatabase.windows.net%2F",
        emu.imds_url()
    );
    let no_header = get(&emu, &url, DRIVER_HEADERS).await;
    assert_eq!(no_header.status, 400);
    assert_eq!(
        no_header.json()["error_description"],
        "Required metadata header not specified"
    );
    let unknown = get(
        &emu,
        &format!("{url}&object_id=11111111-2222-4333-8444-555555555555"),
        &[("metadata", "true")],
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"], "invalid_request");
    assert_eq!(unknown.json()["error_description"], "Identity not found");
    let no_resource = get(
        &emu,
        &format!("{}?api-version=2018-02-01", emu.imds_url()),
        &[("metadata", "true")],
    )
    .await;
    assert_eq!(no_resource.status, 400);
    assert!(no_resource.body.contains("resource"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_service_form() {
    let emu = start().await;
    let header = emu.identity_header().expose().to_owned();
    let base = format!(
        "{}?api-version=2019-08-01&resource=https%3A%2F%2Fdatabase.windows.net%2F",
        emu.identity_endpoint()
    );
    let mut headers = DRIVER_HEADERS.to_vec();
    headers.push(("x-identity-header", &header));
    let reply = get(&emu, &base, &headers).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    let expires_on: i64 = json["expires_on"]
        .as_str()
        .expect("epoch string")
        .parse()
        .unwrap();
    assert!(expires_on > 1_700_000_000);
    assert_eq!(json["client_id"], DEMO_MI);
    assert_eq!(json["token_type"], "Bearer");
    assert!(emu
        .identity()
        .validate(&reply.driver_token().unwrap())
        .is_ok());

    let uami = get(&emu, &format!("{base}&client_id={DEMO_UAMI}"), &headers).await;
    assert_eq!(uami.json()["client_id"], DEMO_UAMI);
    let res = emu.directory().managed_identities[1].resource_id.clone();
    let by_res = get(
        &emu,
        &format!("{base}&mi_res_id={}", urlencode(&res)),
        &headers,
    )
    .await;
    assert_eq!(by_res.json()["client_id"], DEMO_UAMI);

    let wrong = get(&emu, &base, &[("x-identity-header", "not-it")]).await;
    assert_eq!(wrong.status, 401);
    let missing = get(&emu, &base, &[]).await;
    assert_eq!(missing.status, 401);
    let old = get(&emu, &base.replace("2019-08-01", "2017-09-01"), &headers).await;
    assert_eq!(old.status, 400);
    let unknown = get(
        &emu,
        &format!("{base}&client_id=11111111-2222-4333-8444-555555555555"),
        &headers,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(emu.http_stats().count(Endpoint::AppServiceToken), 7);
    assert_eq!(emu.http_stats().token_requests(), 7);
}

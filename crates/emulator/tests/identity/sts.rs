//! The HTTPS token service: the driver's v1 requests, azure_identity's v2.0 requests, device code, discovery.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use mssql_entra_emulator::{Emulator, Endpoint, LoginAuthority, PrincipalKind};

use crate::client::{get, post, Reply};
use crate::{start, DEMO_APP};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_service_principal_request_gets_a_compact_v1_token() {
    let emu = start().await;
    // Exactly what the driver posts (driver-facts Q3): the STS URL from FEDAUTHINFO + /oauth2/token?api-version.
    let url = format!("{}/oauth2/token?api-version=2015-06-01", emu.sts_url());
    let reply = post(
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
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply
        .driver_token()
        .expect("the driver's literal search finds the token");
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["resource"], "https://database.windows.net/");
    let expires_on: u64 = json["expires_on"]
        .as_str()
        .expect("expires_on is a string")
        .parse()
        .unwrap();
    assert!(
        expires_on > now() + 70 * 60 && expires_on <= now() + 75 * 60 + 2,
        "{expires_on}"
    );
    assert!(
        json["expires_in"].is_string() && json["not_before"].is_string(),
        "{json}"
    );

    let principal = emu
        .identity()
        .validate(&token)
        .expect("the SQL side accepts the token");
    assert_eq!(principal.kind, PrincipalKind::ServicePrincipal);
    assert_eq!(
        principal.app_id.map(|a| a.to_string()).as_deref(),
        Some(DEMO_APP)
    );
    assert_eq!(principal.display_name, "demo-app");
    let claims = emu.identity().decode_claims(&token).unwrap();
    assert_eq!(claims.aud, "https://database.windows.net/");
    assert_eq!(
        claims.iss,
        format!("https://sts.windows.net/{}/", emu.tenant_id())
    );
    assert_eq!(claims.idtyp.as_deref(), Some("app"));
    assert_eq!(claims.ver, "1.0");
    assert_eq!(emu.http_stats().count(Endpoint::TokenV1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_errors_look_like_entra() {
    let emu = start().await;
    let url = emu.token_url_v1(&emu.tenant_id().to_string());
    let wrong = post(
        &emu,
        &url,
        &[
            ("resource", "https://database.windows.net/"),
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_APP),
            ("client_secret", "not-the-secret-XYZ"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert_eq!(wrong.error_code(), Some(7000215));
    assert!(wrong.json()["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215: "));
    assert!(
        !wrong.body.contains("not-the-secret-XYZ"),
        "the presented secret is never echoed"
    );
    assert!(!wrong.body.contains(": \""), "compact JSON: {}", wrong.body);

    let unknown = post(
        &emu,
        &url,
        &[
            ("resource", "https://database.windows.net/"),
            ("grant_type", "client_credentials"),
            ("client_id", "11111111-2222-4333-8444-555555555555"),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_eq!((unknown.status, unknown.error_code()), (400, Some(700016)));
    assert_eq!(unknown.json()["error"], "unauthorized_client");

    let no_credential = post(
        &emu,
        &url,
        &[
            ("resource", "r"),
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_APP),
        ],
    )
    .await;
    assert_eq!(
        (no_credential.status, no_credential.error_code()),
        (401, Some(7000218))
    );

    let no_grant = post(&emu, &url, &[("resource", "r")]).await;
    assert_eq!(
        (no_grant.status, no_grant.error_code()),
        (400, Some(900144))
    );

    let other_tenant = post(
        &emu,
        &emu.token_url_v1("contoso.example"),
        &[
            ("resource", "r"),
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_APP),
            ("client_secret", "demo-app-secret"),
        ],
    )
    .await;
    assert_eq!(
        (other_tenant.status, other_tenant.error_code()),
        (400, Some(90002))
    );

    let common = post(
        &emu,
        &emu.token_url_v1("common"),
        &[
            ("resource", "r"),
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_APP),
            ("client_secret", "demo-app-secret"),
        ],
    )
    .await;
    assert_eq!(common.error_code(), Some(50059));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_flow_user_realm_then_ropc() {
    let emu = start().await;
    let realm = get(
        &emu,
        &format!(
            "{}/common/UserRealm/alice%40emulator.onmicrosoft.com?api-version=1.0",
            emu.sts_base_url()
        ),
        &[],
    )
    .await;
    assert_eq!(realm.status, 200);
    assert_eq!(realm.json()["account_type"], "Managed");
    assert_eq!(realm.json()["domain_name"], "emulator.onmicrosoft.com");
    let elsewhere = get(
        &emu,
        &format!(
            "{}/common/UserRealm/x@contoso.example?api-version=1.0",
            emu.sts_base_url()
        ),
        &[],
    )
    .await;
    assert_eq!(elsewhere.json()["account_type"], "Unknown");
    assert_eq!(emu.http_stats().count(Endpoint::UserRealm), 2);

    let url = format!("{}/oauth2/token?api-version=2015-06-01", emu.sts_url());
    let ropc = |user: &'static str, password: &'static str| {
        [
            ("resource", "https://database.windows.net/"),
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("client_id", "2C1229AA-16C5-4FF5-B46B-4F7FE2A2A9C8"),
        ]
    };
    let ok = post(
        &emu,
        &url,
        &ropc("alice@emulator.onmicrosoft.com", "alice-password"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let principal = emu
        .identity()
        .validate(&ok.driver_token().unwrap())
        .unwrap();
    assert_eq!(principal.kind, PrincipalKind::User);
    assert_eq!(
        principal.upn.as_deref(),
        Some("alice@emulator.onmicrosoft.com")
    );
    assert_eq!(principal.login_name(), "alice@emulator.onmicrosoft.com");

    let mfa = post(
        &emu,
        &url,
        &ropc("bob@emulator.onmicrosoft.com", "bob-password"),
    )
    .await;
    assert_eq!((mfa.status, mfa.error_code()), (400, Some(50076)));
    assert_eq!(mfa.json()["error"], "invalid_grant");
    assert_eq!(mfa.json()["suberror"], "basic_action");
    assert!(mfa.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("multi-factor authentication"));

    let bad = post(
        &emu,
        &url,
        &ropc("alice@emulator.onmicrosoft.com", "wrong-password-123"),
    )
    .await;
    assert_eq!((bad.status, bad.error_code()), (400, Some(50126)));
    assert!(!bad.body.contains("wrong-password-123"));
    // Bob's wrong password is refused as a bad password, not as MFA (Entra checks the password first).
    let bob_bad = post(&emu, &url, &ropc("bob@emulator.onmicrosoft.com", "nope")).await;
    assert_eq!(bob_bad.error_code(), Some(50126));
    let nobody = post(&emu, &url, &ropc("nobody@emulator.onmicrosoft.com", "x")).await;
    assert_eq!(nobody.error_code(), Some(50034));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_client_secret_scope_and_numbers() {
    let emu = start().await;
    let url = emu.token_url_v2(&emu.tenant_id().to_string());
    let reply = post(
        &emu,
        &url,
        &[
            ("client_id", DEMO_APP),
            ("scope", "https://database.windows.net//.default"),
            ("client_secret", "demo-app-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert!(
        json["expires_in"].as_i64().unwrap() > 70 * 60,
        "azure_identity reads expires_in as a number: {json}"
    );
    assert!(json["ext_expires_in"].is_i64());
    let claims = emu
        .identity()
        .decode_claims(json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.aud, "https://database.windows.net/");
    assert_eq!(emu.http_stats().count(Endpoint::TokenV2), 1);

    // The domain works as the tenant too; the scope without the double slash gives the audience without it.
    let by_domain = post(
        &emu,
        &emu.token_url_v2("emulator.onmicrosoft.com"),
        &[
            ("client_id", DEMO_APP),
            ("scope", "https://database.windows.net/.default"),
            ("client_secret", "demo-app-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    let token = by_domain.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        emu.identity().decode_claims(&token).unwrap().aud,
        "https://database.windows.net"
    );
    assert!(
        emu.identity().validate(&token).is_ok(),
        "both audience forms are accepted by the SQL side"
    );

    let no_default = post(
        &emu,
        &url,
        &[
            ("client_id", DEMO_APP),
            ("scope", "https://database.windows.net/user_impersonation"),
            ("client_secret", "demo-app-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(
        (no_default.status, no_default.error_code()),
        (400, Some(1002012))
    );
}

fn assertion(emu: &Emulator, x5t: String, exp_offset: i64, aud: &str) -> String {
    let dir = emu.directory();
    let cert = &dir.apps[0].certificates[0];
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(x5t);
    let now = now() as i64;
    let claims = serde_json::json!({
        "aud": aud, "exp": now + exp_offset, "iss": DEMO_APP, "jti": "1", "nbf": now - 600, "sub": DEMO_APP,
    });
    jsonwebtoken::encode(&header, &claims, &cert.encoding_key()).unwrap()
}

/// Exchanges a client assertion for a token at the v2.0 endpoint.
async fn exchange(emu: &Emulator, assertion: &str) -> Reply {
    post(
        emu,
        &emu.token_url_v2(&emu.tenant_id().to_string()),
        &[
            ("client_id", DEMO_APP),
            ("scope", "https://database.windows.net//.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("grant_type", "client_credentials"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_certificate_assertion_is_verified_against_the_registered_certificate() {
    let emu = start().await;
    let url = emu.token_url_v2(&emu.tenant_id().to_string());
    let dir = emu.directory();
    let cert = &dir.apps[0].certificates[0];
    // azure_identity writes x5t as standard base64 of the SHA-1 thumbprint; the JOSE form is base64url.
    let hex = cert.thumbprint_hex();
    let thumb: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let standard = base64::engine::general_purpose::STANDARD.encode(&thumb);
    for x5t in [standard, cert.x5t()] {
        let ok = exchange(&emu, &assertion(&emu, x5t.clone(), 600, &url)).await;
        assert_eq!(ok.status, 200, "x5t {x5t}: {}", ok.body);
        let expired = exchange(&emu, &assertion(&emu, x5t.clone(), -3600, &url)).await;
        assert_eq!(expired.error_code(), Some(700024), "{}", expired.body);
    }
    let unknown_key = exchange(
        &emu,
        &assertion(&emu, "AAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), 600, &url),
    )
    .await;
    assert_eq!(
        (unknown_key.status, unknown_key.error_code()),
        (401, Some(700027))
    );
    // An assertion whose signature does not verify.
    let mut forged = assertion(&emu, cert.x5t(), 600, &url);
    forged.truncate(forged.rfind('.').unwrap());
    forged.push_str(".AAAA");
    let reply = exchange(&emu, &forged).await;
    assert_eq!(reply.error_code(), Some(700027), "{}", reply.body);
    // Signed for another tenant's token endpoint.
    let elsewhere = exchange(
        &emu,
        &assertion(
            &emu,
            cert.x5t(),
            600,
            "https://login.microsoftonline.com/other/oauth2/v2.0/token",
        ),
    )
    .await;
    assert_eq!(elsewhere.status, 401, "{}", elsewhere.body);
    let bad_type = post(
        &emu,
        &url,
        &[
            ("client_id", DEMO_APP),
            ("scope", "https://database.windows.net//.default"),
            ("client_assertion_type", "jwt"),
            ("client_assertion", "x.y.z"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(bad_type.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_federated_token_exchange() {
    let emu = start().await;
    let good = emu
        .identity()
        .issue_federated_token(
            "system:serviceaccount:default:demo",
            Duration::from_secs(600),
        )
        .unwrap();
    let reply = exchange(&emu, &good).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let principal = emu
        .identity()
        .validate(reply.json()["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(principal.display_name, "demo-app");

    let wrong_subject = emu
        .identity()
        .issue_federated_token(
            "system:serviceaccount:default:other",
            Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(
        exchange(&emu, &wrong_subject).await.error_code(),
        Some(700213)
    );
    // A federated token file can be written for AZURE_FEDERATED_TOKEN_FILE.
    let path = emu
        .write_federated_token(
            "system:serviceaccount:default:demo",
            Duration::from_secs(600),
        )
        .unwrap();
    let from_file = std::fs::read_to_string(path).unwrap();
    assert_eq!(exchange(&emu, &from_file).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_pending_until_approved() {
    let emu = start().await;
    emu.identity().set_device_code_interval(1);
    let tenant = emu.tenant_id().to_string();
    let url = format!("{}/{tenant}/oauth2/v2.0/devicecode", emu.sts_base_url());
    let client = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let scope = "https://database.windows.net//.default offline_access";
    let start_reply = post(&emu, &url, &[("client_id", client), ("scope", scope)]).await;
    assert_eq!(start_reply.status, 200, "{}", start_reply.body);
    let json = start_reply.json();
    let device_code = json["device_code"].as_str().unwrap().to_owned();
    let user_code = json["user_code"].as_str().unwrap().to_owned();
    assert_eq!(json["interval"], 1);
    assert_eq!(json["expires_in"], 900);
    assert!(json["message"].as_str().unwrap().contains(&user_code));
    assert!(json["verification_uri"]
        .as_str()
        .unwrap()
        .starts_with(&emu.sts_base_url()));
    assert_eq!(emu.identity().pending_user_codes(), vec![user_code.clone()]);

    let token_url = emu.token_url_v2(&tenant);
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", client),
        ("device_code", device_code.as_str()),
    ];
    let pending = post(&emu, &token_url, &poll).await;
    assert_eq!(
        (pending.status, pending.json()["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert_eq!(pending.error_code(), Some(70016));

    assert!(emu
        .approve_device_code("NOPE-NOPE", "alice@emulator.onmicrosoft.com")
        .is_err());
    emu.approve_device_code(&user_code, "alice@emulator.onmicrosoft.com")
        .unwrap();
    let done = post(&emu, &token_url, &poll).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let token = done.json()["access_token"].as_str().unwrap().to_owned();
    let claims = emu.identity().decode_claims(&token).unwrap();
    assert_eq!(
        claims.upn.as_deref(),
        Some("alice@emulator.onmicrosoft.com")
    );
    assert_eq!(claims.appid.as_deref(), Some(client));
    assert_eq!(claims.aud, "https://database.windows.net/");
    // The code is used up.
    assert_eq!(
        post(&emu, &token_url, &poll).await.json()["error"],
        "invalid_grant"
    );

    // Auto-approval after two pending polls (MFA users can use the device flow).
    emu.identity()
        .auto_approve_device_codes(Some((2, "bob@emulator.onmicrosoft.com")));
    let second = post(&emu, &url, &[("client_id", client), ("scope", scope)])
        .await
        .json();
    let code = second["device_code"].as_str().unwrap().to_owned();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", client),
        ("device_code", code.as_str()),
    ];
    assert_eq!(
        post(&emu, &token_url, &poll).await.json()["error"],
        "authorization_pending"
    );
    assert_eq!(
        post(&emu, &token_url, &poll).await.json()["error"],
        "authorization_pending"
    );
    let third = post(&emu, &token_url, &poll).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(emu.http_stats().count(Endpoint::DeviceCode), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_describe_the_signing_key() {
    let emu = start().await;
    let tenant = emu.tenant_id().to_string();
    let v2 = get(
        &emu,
        &format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            emu.sts_base_url()
        ),
        &[],
    )
    .await;
    assert_eq!(v2.status, 200);
    let v2 = v2.json();
    assert_eq!(
        v2["issuer"],
        format!("https://login.microsoftonline.com/{tenant}/v2.0")
    );
    assert_eq!(v2["token_endpoint"], emu.token_url_v2(&tenant));
    let v1 = get(
        &emu,
        &format!(
            "{}/{tenant}/.well-known/openid-configuration",
            emu.sts_base_url()
        ),
        &[],
    )
    .await
    .json();
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{tenant}/"));
    assert_eq!(v1["token_endpoint"], emu.token_url_v1(&tenant));

    let jwks = get(&emu, v2["jwks_uri"].as_str().unwrap(), &[])
        .await
        .json();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    let token = emu
        .issue_token(
            "demo-app",
            "https://database.windows.net/",
            Duration::from_secs(60),
        )
        .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    // Anyone holding the JWKS can verify our tokens.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://database.windows.net/"]);
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
        .expect("verifies with the JWKS");
    assert_eq!(emu.http_stats().count(Endpoint::Jwks), 1);
    assert_eq!(emu.http_stats().count(Endpoint::OpenIdConfiguration), 2);
    let missing = get(&emu, &format!("{}/nothing/here", emu.sts_base_url()), &[]).await;
    assert_eq!(missing.status, 404);
}

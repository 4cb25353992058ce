//! The azure_identity-backed sources against a fake HTTP transport.

use crate::fake_http::{entra_error, entra_token, jwt, FakeHttp};
use mssql_entra_token::sources::{
    ChainStep, ClientCertificateSource, ClientCertificateSourceOptions, ClientSecretSource,
    ClientSecretSourceOptions, DefaultChainSource, DefaultChainSourceOptions, DeveloperTool,
    DeviceCodePrompt, DeviceCodeSource, DeviceCodeSourceOptions, HttpOptions,
    ManagedIdentitySource, ManagedIdentitySourceOptions, UserAssignedId,
    WorkloadIdentitySourceOptions,
};
use mssql_entra_token::{
    CacheOptions, CachedTokenSource, Secret, TokenError, TokenRequestOptions, TokenSource,
    AZURE_SQL_SCOPE,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT: &str = "619a4449-b4aa-4383-a2a9-7c365106c5e7";
pub const CLIENT_SECRET: &str = "Sup3r~S3cret.Value_Never_Logged";
const S: &[&str] = &[AZURE_SQL_SCOPE];

/// Tests that set process environment variables hold this.
pub static ENV_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn token_url() -> String {
    format!("https://login.fake.test/{TENANT}/oauth2/v2.0/token")
}

#[tokio::test]
async fn client_secret_posts_the_client_credentials_grant() {
    let access = jwt(r#"{"aud":"https://database.windows.net/","idtyp":"app"}"#);
    let a = access.clone();
    let fake = FakeHttp::new(move |_, _| entra_token(&a, 3600));
    let opts = ClientSecretSourceOptions::default().with_http(fake.options());
    let source = ClientSecretSource::new(TENANT, CLIENT, CLIENT_SECRET, Some(opts)).unwrap();
    let before = time::OffsetDateTime::now_utc();
    let token = source.get_token(S, None).await.unwrap();
    assert_eq!(token.token.expose_secret(), access);
    let lifetime = token.expires_on - before;
    assert!(
        lifetime > time::Duration::minutes(59) && lifetime <= time::Duration::minutes(61),
        "{lifetime}"
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "Post");
    assert_eq!(seen[0].url, token_url());
    assert_eq!(
        seen[0].form("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(seen[0].form("client_id").as_deref(), Some(CLIENT));
    assert_eq!(
        seen[0].form("client_secret").as_deref(),
        Some(CLIENT_SECRET)
    );
    assert_eq!(seen[0].form("scope").as_deref(), Some(AZURE_SQL_SCOPE));
}

#[tokio::test]
async fn client_secret_errors_keep_status_codes_and_retry_after() {
    let fake = FakeHttp::new(|_, n| match n {
        0 => entra_error(401, "invalid_client", 7000215, vec![]),
        _ => entra_error(
            429,
            "throttled",
            50196,
            vec![("retry-after", "7".to_owned())],
        ),
    });
    let opts = ClientSecretSourceOptions::default().with_http(fake.options());
    let source = ClientSecretSource::new(TENANT, CLIENT, CLIENT_SECRET, Some(opts)).unwrap();
    let err = source.get_token(S, None).await.unwrap_err();
    match &err {
        TokenError::Http {
            status: 401,
            error_code,
            ..
        } => assert_eq!(error_code.as_deref(), Some("7000215")),
        other => panic!("expected HTTP 401, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    let err = source.get_token(S, None).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test(start_paused = true)]
async fn cached_client_secret_retries_a_429_after_its_retry_after() {
    let fake = FakeHttp::new(|_, n| match n {
        0 => entra_error(
            429,
            "throttled",
            50196,
            vec![("retry-after", "3".to_owned())],
        ),
        _ => entra_token("eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln", 3600),
    });
    let opts = ClientSecretSourceOptions::default().with_http(fake.options());
    let source =
        Arc::new(ClientSecretSource::new(TENANT, CLIENT, CLIENT_SECRET, Some(opts)).unwrap());
    let cache = CachedTokenSource::new(source);
    let start = tokio::time::Instant::now();
    cache.get_token(S, None).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(fake.seen().len(), 2);
}

#[test]
fn client_secret_rejects_blank_settings() {
    let e = ClientSecretSource::new("", CLIENT, CLIENT_SECRET, None).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "tenant_id",
                ..
            }
        ),
        "{e:?}"
    );
    let e = ClientSecretSource::new(TENANT, " ", CLIENT_SECRET, None).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "client_id",
                ..
            }
        ),
        "{e:?}"
    );
    let e = ClientSecretSource::new(TENANT, CLIENT, "", None).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "client_secret",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn http_options_validate_authority_and_ca() {
    let e = HttpOptions::default()
        .with_authority_host("http://login.fake.test")
        .resolved_authority_host()
        .unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "authority_host",
                ..
            }
        ),
        "{e:?}"
    );
    let e = HttpOptions::default()
        .with_authority_host("not a url")
        .resolved_authority_host()
        .unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "authority_host",
                ..
            }
        ),
        "{e:?}"
    );
    let e = mssql_entra_token::sources::http_client(Some(b"no pem here")).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "extra_root_ca_pem",
                ..
            }
        ),
        "{e:?}"
    );
    let cert = include_bytes!("fixtures/cert.pem");
    assert!(mssql_entra_token::sources::http_client(Some(cert)).is_ok());
    // An extra CA with a custom transport would be silently ignored: refused instead.
    let fake = FakeHttp::new(|_, _| entra_token("t", 3600));
    let opts = ClientSecretSourceOptions::default()
        .with_http(fake.options().with_extra_root_ca_pem(cert.to_vec()));
    let e = ClientSecretSource::new(TENANT, CLIENT, CLIENT_SECRET, Some(opts)).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "extra_root_ca_pem",
                ..
            }
        ),
        "{e:?}"
    );
}

pub struct AppServiceEnv;

impl AppServiceEnv {
    pub const HEADER_SECRET: &'static str = "app-service-identity-header-secret-9f8e7d";

    pub fn set() -> Self {
        std::env::set_var("IDENTITY_ENDPOINT", "http://127.0.0.1:41999/msi/token");
        std::env::set_var("IDENTITY_HEADER", Self::HEADER_SECRET);
        Self
    }
}

impl Drop for AppServiceEnv {
    fn drop(&mut self) {
        std::env::remove_var("IDENTITY_ENDPOINT");
        std::env::remove_var("IDENTITY_HEADER");
    }
}

pub fn msi_answer(access_token: &str) -> crate::fake_http::Answer {
    let expires_on = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    (
        200,
        vec![],
        format!(
            r#"{{"access_token":"{access_token}","expires_on":"{expires_on}","token_type":"Bearer","resource":"https://database.windows.net"}}"#
        ),
    )
}

#[tokio::test]
async fn managed_identity_through_app_service_variables() {
    let _env = ENV_LOCK.lock().await;
    let _vars = AppServiceEnv::set();
    let fake = FakeHttp::new(|_, _| msi_answer("mi-access-token-1234"));
    for (id, param) in [
        (None, None),
        (
            Some(UserAssignedId::ClientId(CLIENT.to_owned())),
            Some(("client_id", CLIENT)),
        ),
        (
            Some(UserAssignedId::ObjectId(TENANT.to_owned())),
            Some(("object_id", TENANT)),
        ),
    ] {
        let mut opts = ManagedIdentitySourceOptions::default().with_http(fake.options());
        opts.user_assigned_id = id;
        let source = ManagedIdentitySource::new(Some(opts)).unwrap();
        let token = source.get_token(S, None).await.unwrap();
        assert_eq!(token.token.expose_secret(), "mi-access-token-1234");
        assert!(token.expires_on > time::OffsetDateTime::now_utc() + time::Duration::hours(23));
        let seen = fake.seen().pop().unwrap();
        assert_eq!(seen.method, "Get");
        assert!(
            seen.url.starts_with("http://127.0.0.1:41999/msi/token?"),
            "{}",
            seen.url
        );
        assert_eq!(seen.query("api-version").as_deref(), Some("2019-08-01"));
        assert_eq!(
            seen.query("resource").as_deref(),
            Some("https://database.windows.net")
        );
        assert_eq!(
            seen.header("x-identity-header"),
            Some(AppServiceEnv::HEADER_SECRET)
        );
        for key in ["client_id", "object_id", "msi_res_id"] {
            let want = param.filter(|(k, _)| *k == key).map(|(_, v)| v.to_owned());
            assert_eq!(seen.query(key), want, "query {key}");
        }
    }
    let e = ManagedIdentitySource::new(Some(
        ManagedIdentitySourceOptions::default()
            .with_user_assigned_id(UserAssignedId::ClientId(" ".into())),
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "user_assigned_id",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn managed_identity_errors_are_typed() {
    let _env = ENV_LOCK.lock().await;
    let _vars = AppServiceEnv::set();
    let fake = FakeHttp::new(|_, _| (503, vec![], "busy".to_owned()));
    let source = ManagedIdentitySource::new(Some(
        ManagedIdentitySourceOptions::default().with_http(fake.options()),
    ))
    .unwrap();
    let err = source.get_token(S, None).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Http { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

// ---- client certificate ----

const CERT: &[u8] = include_bytes!("fixtures/cert.pem");
const KEY_PKCS8: &str = include_str!("fixtures/key-pkcs8.pem");
const KEY_PKCS1: &str = include_str!("fixtures/key-pkcs1.pem");
/// base64url(SHA-1(cert DER)) of fixtures/cert.pem, from `openssl x509 -fingerprint -sha1`.
const X5T: &str = "JAIFc-ri1wwz9rpV9-Y3mXlv7EI";

fn check_assertion(assertion: &str, expect_x5c: bool) {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&e.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], X5T);
    assert_eq!(header.get("x5c").is_some(), expect_x5c);
    assert_eq!(claims["aud"], token_url());
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    let exp = claims["exp"].as_i64().unwrap();
    let nbf = claims["nbf"].as_i64().unwrap();
    assert_eq!(exp - nbf, 600);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
    let public = base64::engine::general_purpose::STANDARD
        .decode(include_str!("fixtures/pubkey-pkcs1.der.b64").trim())
        .unwrap();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify(signed.as_bytes(), &e.decode(parts[2]).unwrap())
        .expect("the assertion signature verifies with the certificate's public key");
}

#[tokio::test]
async fn client_certificate_sends_a_signed_assertion() {
    for (key, chain) in [
        (Some(KEY_PKCS8), false),
        (Some(KEY_PKCS1), true),
        (None, false),
    ] {
        let fake = FakeHttp::new(|_, _| entra_token("cert-access-token", 3600));
        let opts = ClientCertificateSourceOptions::default()
            .with_send_certificate_chain(chain)
            .with_http(fake.options());
        let source = match key {
            Some(k) => {
                ClientCertificateSource::new(TENANT, CLIENT, CERT, Some(Secret::new(k)), Some(opts))
                    .unwrap()
            }
            None => {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/it/fixtures/combined.pem");
                ClientCertificateSource::from_pem_file(TENANT, CLIENT, &path, Some(opts)).unwrap()
            }
        };
        let token = source.get_token(S, None).await.unwrap();
        assert_eq!(token.token.expose_secret(), "cert-access-token");
        let seen = fake.seen().pop().unwrap();
        assert_eq!(seen.url, token_url());
        assert_eq!(
            seen.form("client_assertion_type").as_deref(),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        assert_eq!(
            seen.form("grant_type").as_deref(),
            Some("client_credentials")
        );
        check_assertion(&seen.form("client_assertion").unwrap(), chain);
    }
}

#[test]
fn client_certificate_refuses_unusable_keys_clearly() {
    let cases: [(&[u8], Option<&str>, &str); 4] = [
        (
            CERT,
            Some(include_str!("fixtures/key-encrypted.pem")),
            "private_key",
        ),
        (
            CERT,
            Some(include_str!("fixtures/ec-key.pem")),
            "private_key",
        ),
        (CERT, None, "private_key"),
        (KEY_PKCS8.as_bytes(), Some(KEY_PKCS8), "certificate"),
    ];
    for (cert, key, field) in cases {
        let e = ClientCertificateSource::new(TENANT, CLIENT, cert, key.map(Secret::new), None)
            .unwrap_err();
        match &e {
            TokenError::Config { field: f, .. } => assert_eq!(*f, field, "{e}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    let e = ClientCertificateSource::from_pem_file(
        TENANT,
        CLIENT,
        std::path::Path::new("/nonexistent.pem"),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "AZURE_CLIENT_CERTIFICATE_PATH",
                ..
            }
        ),
        "{e:?}"
    );
}

// ---- workload identity ----

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_file() {
    let dir = std::env::temp_dir().join(format!("mssql-entra-token-wi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "k8s-service-account-token").unwrap();
    let fake = FakeHttp::new(|_, _| entra_token("wi-access-token", 3600));
    let opts = WorkloadIdentitySourceOptions::default()
        .with_identity(TENANT, CLIENT, &file)
        .with_http(fake.options());
    let source = mssql_entra_token::sources::WorkloadIdentitySource::new(Some(opts)).unwrap();
    let token = source.get_token(S, None).await.unwrap();
    assert_eq!(token.token.expose_secret(), "wi-access-token");
    let seen = fake.seen().pop().unwrap();
    assert_eq!(seen.url, token_url());
    assert_eq!(
        seen.form("client_assertion").as_deref(),
        Some("k8s-service-account-token")
    );
    assert_eq!(seen.form("client_id").as_deref(), Some(CLIENT));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- device code ----

fn device_code_answer() -> crate::fake_http::Answer {
    (
        200,
        vec![],
        r#"{"device_code":"device-code-secret-77","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin",
            "expires_in":900,"interval":1,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."}"#
            .to_owned(),
    )
}

fn oauth_error(error: &str) -> crate::fake_http::Answer {
    (
        400,
        vec![],
        format!(r#"{{"error":"{error}","error_description":"{error}","error_codes":[70016]}}"#),
    )
}

fn with_refresh(access: &str, refresh: &str) -> crate::fake_http::Answer {
    (
        200,
        vec![],
        format!(
            r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{access}","refresh_token":"{refresh}"}}"#
        ),
    )
}

type Prompts = Arc<Mutex<Vec<DeviceCodePrompt>>>;

fn device_source(fake: &Arc<FakeHttp>) -> (DeviceCodeSource, Prompts) {
    let prompts: Prompts = Arc::default();
    let p = prompts.clone();
    let source = DeviceCodeSource::new(
        TENANT,
        CLIENT,
        move |prompt| p.lock().unwrap().push(prompt.clone()),
        Some(DeviceCodeSourceOptions::default().with_http(fake.options())),
    )
    .unwrap();
    (source, prompts)
}

#[tokio::test(start_paused = true)]
async fn device_code_polls_slows_down_and_then_uses_the_refresh_token() {
    let fake = FakeHttp::new(|seen, _| {
        if seen.path.ends_with("/devicecode") {
            return device_code_answer();
        }
        match (
            seen.form("grant_type").as_deref(),
            seen.form("refresh_token").as_deref(),
        ) {
            (Some("refresh_token"), Some("refresh-token-1")) => {
                with_refresh("access-2", "refresh-token-2")
            }
            (Some("urn:ietf:params:oauth:grant-type:device_code"), _) => {
                // pending, slow_down, then success: decided by how many polls came before.
                thread_local!(static POLLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
                let n = POLLS.with(|p| {
                    p.set(p.get() + 1);
                    p.get()
                });
                match n {
                    1 => oauth_error("authorization_pending"),
                    2 => oauth_error("slow_down"),
                    _ => with_refresh("access-1", "refresh-token-1"),
                }
            }
            _ => oauth_error("invalid_grant"),
        }
    });
    let (source, prompts) = device_source(&fake);
    let start = tokio::time::Instant::now();
    let token = source.get_token(S, None).await.unwrap();
    assert_eq!(token.token.expose_secret(), "access-1");
    // Polls at 1 s, 2 s (slow_down: interval becomes 6 s), 8 s.
    assert_eq!(start.elapsed(), Duration::from_secs(8));
    {
        let prompts = prompts.lock().unwrap();
        assert_eq!(prompts.len(), 1);
        assert_eq!(prompts[0].user_code, "ABCD-EFGH");
        assert_eq!(
            prompts[0].verification_uri,
            "https://microsoft.com/devicelogin"
        );
        assert_eq!(prompts[0].expires_in, Duration::from_secs(900));
    }
    let seen = fake.seen();
    assert_eq!(
        seen[0].url,
        format!("https://login.fake.test/{TENANT}/oauth2/v2.0/devicecode")
    );
    assert_eq!(
        seen[0].form("scope").as_deref(),
        Some("https://database.windows.net/.default offline_access")
    );
    assert_eq!(
        seen[1].form("device_code").as_deref(),
        Some("device-code-secret-77")
    );
    assert_eq!(seen.len(), 4);

    // The next call renews silently with the refresh token: no second prompt.
    let token = source.get_token(S, None).await.unwrap();
    assert_eq!(token.token.expose_secret(), "access-2");
    assert_eq!(prompts.lock().unwrap().len(), 1);
    assert_eq!(fake.seen().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn device_code_expiry_and_decline_are_authentication_errors() {
    for (answer, needle) in [
        ("expired_token", "expired"),
        ("authorization_declined", "declined"),
    ] {
        let fake = FakeHttp::new(move |seen, _| {
            if seen.path.ends_with("/devicecode") {
                device_code_answer()
            } else {
                oauth_error(answer)
            }
        });
        let (source, _) = device_source(&fake);
        let e = source.get_token(S, None).await.unwrap_err();
        assert!(matches!(e, TokenError::Authentication { .. }), "{e:?}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn device_code_gives_up_when_the_code_expires() {
    let fake = FakeHttp::new(|seen, _| {
        if seen.path.ends_with("/devicecode") {
            device_code_answer()
        } else {
            oauth_error("authorization_pending")
        }
    });
    let (source, _) = device_source(&fake);
    let start = tokio::time::Instant::now();
    let e = source.get_token(S, None).await.unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    assert!(start.elapsed() <= Duration::from_secs(900));
    assert_eq!(fake.seen().len(), 1 + 900);
}

#[test]
fn device_code_validates_ids() {
    let e = DeviceCodeSource::new("bad tenant/..", CLIENT, |_| {}, None).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "tenant_id",
                ..
            }
        ),
        "{e:?}"
    );
    let e = DeviceCodeSource::new(TENANT, "", |_| {}, None).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Config {
                field: "client_id",
                ..
            }
        ),
        "{e:?}"
    );
}

// ---- default chain ----

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn azure_token_credentials_selects_steps() {
    type Want = Result<Vec<ChainStep>, ()>;
    let table: [(Option<&str>, Want); 8] = [
        (None, Ok(ChainStep::ALL.to_vec())),
        (Some(""), Ok(ChainStep::ALL.to_vec())),
        (
            Some("prod"),
            Ok(vec![
                ChainStep::Environment,
                ChainStep::WorkloadIdentity,
                ChainStep::ManagedIdentity,
            ]),
        ),
        (
            Some("DEV"),
            Ok(vec![ChainStep::DeveloperTools(DeveloperTool::Any)]),
        ),
        (
            Some("ManagedIdentityCredential"),
            Ok(vec![ChainStep::ManagedIdentity]),
        ),
        (
            Some("azureclicredential"),
            Ok(vec![ChainStep::DeveloperTools(DeveloperTool::AzureCli)]),
        ),
        (
            Some("AzureDeveloperCliCredential"),
            Ok(vec![ChainStep::DeveloperTools(
                DeveloperTool::AzureDeveloperCli,
            )]),
        ),
        (Some("InteractiveBrowserCredential"), Err(())),
    ];
    for (value, want) in table {
        let got = ChainStep::parse_selection(value);
        match want {
            Ok(steps) => assert_eq!(got.unwrap(), steps, "{value:?}"),
            Err(()) => assert!(
                matches!(
                    got,
                    Err(TokenError::Config {
                        field: "AZURE_TOKEN_CREDENTIALS",
                        ..
                    })
                ),
                "{value:?}"
            ),
        }
    }
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")])),
    ))
    .unwrap();
    assert_eq!(chain.steps(), [ChainStep::Environment]);
    let e = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default().with_env(env(&[("AZURE_TOKEN_CREDENTIALS", "nope")])),
    ))
    .unwrap_err();
    assert!(matches!(
        e,
        TokenError::Config {
            field: "AZURE_TOKEN_CREDENTIALS",
            ..
        }
    ));
}

#[tokio::test]
async fn chain_skips_unconfigured_steps_and_names_them() {
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[]))
            .with_steps(vec![ChainStep::Environment, ChainStep::WorkloadIdentity]),
    ))
    .unwrap();
    let e = chain.get_token(S, None).await.unwrap_err();
    match &e {
        TokenError::ChainExhausted { attempts } => {
            let names: Vec<_> = attempts.iter().map(|(n, _)| *n).collect();
            assert_eq!(
                names,
                ["EnvironmentCredential", "WorkloadIdentityCredential"]
            );
            assert!(attempts
                .iter()
                .all(|(_, e)| matches!(e, TokenError::Unavailable { .. })));
        }
        other => panic!("expected ChainExhausted, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH")
            && text.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{text}"
    );
    assert_eq!(chain.winner(), None);
}

#[tokio::test]
async fn chain_picks_the_environment_service_principal_and_sticks_to_it() {
    let fake = FakeHttp::new(|_, _| entra_token("env-sp-token", 3600));
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
            ]))
            .with_http(fake.options()),
    ))
    .unwrap();
    let t = chain.get_token(S, None).await.unwrap();
    assert_eq!(t.token.expose_secret(), "env-sp-token");
    assert_eq!(chain.winner(), Some(ChainStep::Environment));
    assert_eq!(
        fake.seen()[0].form("client_secret").as_deref(),
        Some(CLIENT_SECRET)
    );
    chain
        .get_token(
            S,
            Some(TokenRequestOptions::default().with_force_refresh(true)),
        )
        .await
        .unwrap();
    assert!(format!("{chain:?}").contains("Environment"));
}

#[tokio::test]
async fn chain_stops_at_a_configured_step_that_fails() {
    let fake = FakeHttp::new(|_, _| entra_error(401, "invalid_client", 7000215, vec![]));
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
            ]))
            .with_steps(vec![
                ChainStep::Environment,
                ChainStep::DeveloperTools(DeveloperTool::AzureCli),
            ])
            .with_http(fake.options()),
    ))
    .unwrap();
    let e = chain.get_token(S, None).await.unwrap_err();
    match &e {
        TokenError::ChainExhausted { attempts } => {
            assert_eq!(
                attempts.len(),
                1,
                "developer tools must not be tried: {attempts:?}"
            );
            assert!(matches!(
                attempts[0].1,
                TokenError::Http { status: 401, .. }
            ));
        }
        other => panic!("expected ChainExhausted, got {other:?}"),
    }
    assert!(!e.is_transient());
}

#[tokio::test]
async fn chain_uses_the_managed_identity_when_nothing_else_is_configured() {
    let _env = ENV_LOCK.lock().await;
    let _vars = AppServiceEnv::set();
    let fake = FakeHttp::new(|_, _| msi_answer("chain-mi-token"));
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[("AZURE_CLIENT_ID", CLIENT)]))
            .with_steps(vec![
                ChainStep::Environment,
                ChainStep::WorkloadIdentity,
                ChainStep::ManagedIdentity,
            ])
            .with_http(fake.options()),
    ))
    .unwrap();
    let t = chain.get_token(S, None).await.unwrap();
    assert_eq!(t.token.expose_secret(), "chain-mi-token");
    assert_eq!(chain.winner(), Some(ChainStep::ManagedIdentity));
    // AZURE_CLIENT_ID alone selects the user-assigned identity, as in the Azure SDKs.
    assert_eq!(fake.seen()[0].query("client_id").as_deref(), Some(CLIENT));
}

#[tokio::test(start_paused = true)]
async fn chain_through_the_cache_retries_transient_failures() {
    let fake = FakeHttp::new(|_, n| match n {
        0 => entra_error(503, "temporarily_unavailable", 50_000, vec![]),
        _ => entra_token("after-retry", 3600),
    });
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env(&[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
            ]))
            .with_steps(vec![ChainStep::Environment])
            .with_http(fake.options()),
    ))
    .unwrap();
    let cache = CachedTokenSource::with_options(Arc::new(chain), CacheOptions::default());
    let t = cache.get_token(S, None).await.unwrap();
    assert_eq!(t.token.expose_secret(), "after-retry");
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn device_code_behind_the_interactive_cache_prompts_once() {
    // The user takes 10 minutes: the interactive preset waits instead of retrying with a second prompt.
    let fake = FakeHttp::new(|seen, n| {
        if seen.path.ends_with("/devicecode") {
            device_code_answer()
        } else if n < 600 {
            oauth_error("authorization_pending")
        } else {
            with_refresh("late-access", "late-refresh")
        }
    });
    let (source, prompts) = device_source(&fake);
    let cache = CachedTokenSource::with_options(Arc::new(source), CacheOptions::for_interactive());
    assert_eq!(
        cache
            .get_token(S, None)
            .await
            .unwrap()
            .token
            .expose_secret(),
        "late-access"
    );
    assert_eq!(prompts.lock().unwrap().len(), 1);
}

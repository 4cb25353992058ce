//! Runs every source and the cache, failures included, under a TRACE subscriber, then checks that no
//! token, secret, password, refresh token, device code or private key reached the logs, an error's
//! `Display`/`Debug`, or any `Debug` output.

use crate::fake_http::{entra_error, entra_token, jwt, FakeHttp};
use crate::sources::{msi_answer, AppServiceEnv, CLIENT, CLIENT_SECRET, ENV_LOCK, TENANT};
use mssql_entra_token::sources::{
    ChainStep, ClientCertificateSource, ClientCertificateSourceOptions, ClientSecretSource,
    ClientSecretSourceOptions, DefaultChainSource, DefaultChainSourceOptions, DeviceCodeSource,
    DeviceCodeSourceOptions, ManagedIdentitySource, ManagedIdentitySourceOptions,
    StaticTokenSource,
};
use mssql_entra_token::{
    CacheOptions, CachedTokenSource, Clock as _, Secret, TokenError, TokenRequestOptions,
    TokenSource, TokioClock, AZURE_SQL_SCOPE,
};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const S: &[&str] = &[AZURE_SQL_SCOPE];
const KEY: &str = include_str!("fixtures/key-pkcs8.pem");

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn no_secret_reaches_logs_errors_or_debug() {
    let _env = ENV_LOCK.lock().await;
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not thread-local: tracing caches "nobody listens" per call site, so a call site first hit by
    // another test's thread would stay silent under a thread-local subscriber. Capturing every test's
    // output is stricter anyway: none of it may contain these secrets either.
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only global subscriber of this binary");

    let access = jwt(
        r#"{"aud":"https://database.windows.net/","oid":"x","exp":4102444800,"sig":"access-token-one"}"#,
    );
    let access2 = jwt(
        r#"{"aud":"https://database.windows.net/","oid":"y","exp":4102444800,"sig":"access-token-two"}"#,
    );
    let refresh = "0.AAAA-refresh-token-secret-value";
    let device_code = "DAQABAAEAAA-device-code-secret";
    let user_code = "QWERTY-UC9";
    let mut errors: Vec<TokenError> = Vec::new();
    let mut debugs: Vec<String> = Vec::new();

    // Client secret: success and a 401.
    let a1 = access.clone();
    let fake = FakeHttp::new(move |_, n| match n {
        0 => entra_token(&a1, 3600),
        _ => entra_error(401, "invalid_client", 7000215, vec![]),
    });
    let options = ClientSecretSourceOptions::default().with_http(fake.options());
    debugs.push(format!("{options:?}"));
    let secret_source =
        ClientSecretSource::new(TENANT, CLIENT, CLIENT_SECRET, Some(options)).unwrap();
    debugs.push(format!("{secret_source:?}"));
    let t = secret_source.get_token(S, None).await.unwrap();
    debugs.push(format!("{t:?} {:?}", t.token));
    // azure_identity caches per scope: another scope goes upstream and meets the 401.
    errors.push(
        secret_source
            .get_token(&["https://other.example/.default"], None)
            .await
            .unwrap_err(),
    );

    // The cache: a transient failure whose message quotes the token (retry logs), success, then failing
    // refreshes ahead of expiry (warn logs) while the cached token keeps serving, then no token at all.
    let clock = TokioClock::default();
    let (a1, a2) = (access.clone(), access2.clone());
    let upstream = crate::fake::Fake::new(clock.clone(), Duration::ZERO, move |n, c| match n {
        0 => Err(TokenError::transient(format!("proxy rejected Bearer {a1}"))),
        1 => Ok(mssql_entra_token::AccessToken::new(
            a2.clone(),
            c.now() + Duration::from_secs(3600),
        )),
        _ => Err(crate::fake::http(503, None)),
    });
    let cache = CachedTokenSource::with_options(
        upstream,
        CacheOptions::default().with_clock(Arc::new(clock)),
    );
    let t = cache.get_token(S, None).await.unwrap();
    assert_eq!(t.token.expose_secret(), access2);
    tokio::time::advance(Duration::from_secs(56 * 60)).await;
    assert_eq!(
        cache
            .get_token(S, None)
            .await
            .unwrap()
            .token
            .expose_secret(),
        access2
    );
    debugs.push(format!("{cache:?}"));
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    errors.push(cache.get_token(S, None).await.unwrap_err());

    // Managed identity: the App Service header secret, a token, and an error body that echoes a token.
    {
        let _vars = AppServiceEnv::set();
        let a = access.clone();
        let fake = FakeHttp::new(move |_, n| match n {
            0 => msi_answer(&a),
            _ => (500, vec![], format!("upstream said: Bearer {a}")),
        });
        let mi = ManagedIdentitySource::new(Some(
            ManagedIdentitySourceOptions::default().with_http(fake.options()),
        ))
        .unwrap();
        debugs.push(format!("{mi:?}"));
        mi.get_token(S, None).await.unwrap();
        let mi = ManagedIdentitySource::new(Some(
            ManagedIdentitySourceOptions::default().with_http(fake.options()),
        ))
        .unwrap();
        errors.push(mi.get_token(S, None).await.unwrap_err());
    }

    // Device code: prompt, polling, refresh token, then a rejected refresh token and a declined sign-in.
    let (a1, a2, rt, dc, uc) = (
        access.clone(),
        access2.clone(),
        refresh.to_owned(),
        device_code.to_owned(),
        user_code.to_owned(),
    );
    let fake = FakeHttp::new(move |seen, n| {
        if seen.path.ends_with("/devicecode") {
            return (
                200,
                vec![],
                format!(
                    r#"{{"device_code":"{dc}","user_code":"{uc}","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":1,"message":"enter {uc}"}}"#
                ),
            );
        }
        match (n, seen.form("grant_type").as_deref()) {
            (1, _) => (
                400,
                vec![],
                r#"{"error":"authorization_pending"}"#.to_owned(),
            ),
            (2, _) => (
                200,
                vec![],
                format!(r#"{{"expires_in":3600,"access_token":"{a1}","refresh_token":"{rt}"}}"#),
            ),
            (3, Some("refresh_token")) => (
                200,
                vec![],
                format!(r#"{{"expires_in":3600,"access_token":"{a2}","refresh_token":"{rt}"}}"#),
            ),
            (4, Some("refresh_token")) => (
                400,
                vec![],
                r#"{"error":"invalid_grant","error_description":"AADSTS70000: expired"}"#
                    .to_owned(),
            ),
            _ => (
                400,
                vec![],
                r#"{"error":"authorization_declined"}"#.to_owned(),
            ),
        }
    });
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let p = prompts.clone();
    let dcs = DeviceCodeSource::new(
        TENANT,
        CLIENT,
        move |prompt| p.lock().unwrap().push(format!("{prompt:?}")),
        Some(DeviceCodeSourceOptions::default().with_http(fake.options())),
    )
    .unwrap();
    dcs.get_token(S, None).await.unwrap();
    dcs.get_token(S, None).await.unwrap();
    errors.push(dcs.get_token(S, None).await.unwrap_err());
    debugs.push(format!("{dcs:?}"));
    debugs.extend(prompts.lock().unwrap().iter().cloned());

    // Certificate: the private key and the signed assertion.
    let fake = FakeHttp::new(|_, n| match n {
        0 => entra_token(
            "eyJhbGciOiJIUzI1NiJ9.eyJjZXJ0Ijp0cnVlfQ.cert-token-sig",
            3600,
        ),
        _ => entra_error(401, "invalid_client", 700027, vec![]),
    });
    let cert = ClientCertificateSource::new(
        TENANT,
        CLIENT,
        include_bytes!("fixtures/cert.pem"),
        Some(Secret::new(KEY)),
        Some(ClientCertificateSourceOptions::default().with_http(fake.options())),
    )
    .unwrap();
    debugs.push(format!("{cert:?}"));
    cert.get_token(S, None).await.unwrap();
    errors.push(
        cert.get_token(&["https://other.example/.default"], None)
            .await
            .unwrap_err(),
    );
    let assertion = fake.seen()[0].form("client_assertion").unwrap();

    // Default chain with an environment secret, and one that fails.
    let fake = FakeHttp::new(|_, _| entra_error(401, "invalid_client", 7000215, vec![]));
    let env = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let chain = DefaultChainSource::new(Some(
        DefaultChainSourceOptions::default()
            .with_env(env)
            .with_steps(vec![ChainStep::Environment, ChainStep::WorkloadIdentity])
            .with_http(fake.options()),
    ))
    .unwrap();
    errors.push(
        chain
            .get_token(S, Some(TokenRequestOptions::default()))
            .await
            .unwrap_err(),
    );
    debugs.push(format!("{chain:?}"));

    // Static token: served, then expired.
    let st = StaticTokenSource::new(access.clone()).unwrap();
    debugs.push(format!("{st:?}"));
    st.get_token(S, None).await.unwrap();
    let expired =
        StaticTokenSource::with_expires_on(access.clone(), time::OffsetDateTime::UNIX_EPOCH)
            .unwrap();
    errors.push(expired.get_token(S, None).await.unwrap_err());
    errors.push(StaticTokenSource::new("not-a-jwt-but-secret-opaque-token").unwrap_err());

    // The real transport builder logs too.
    mssql_entra_token::sources::http_client(Some(include_bytes!("fixtures/cert.pem"))).unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture saw the paths we meant to exercise; otherwise this test would prove nothing.
    for marker in [
        "retrying",
        "refresh-ahead failed",
        "device code sign-in",
        "configured credential failed",
        "static access token has expired",
        "ClientSecretCredential",
        "TRACE",
    ] {
        assert!(
            logs.contains(marker),
            "log capture lacks `{marker}`:\n{logs}"
        );
    }
    assert_eq!(errors.len(), 8);
    let key_line = KEY.lines().nth(5).unwrap();
    let secrets = [
        access.as_str(),
        access2.as_str(),
        access.split('.').nth(1).unwrap(),
        CLIENT_SECRET,
        AppServiceEnv::HEADER_SECRET,
        refresh,
        device_code,
        user_code,
        key_line,
        assertion.as_str(),
        "not-a-jwt-but-secret-opaque-token",
        "cert-token-sig",
    ];
    let mut outputs = vec![("logs".to_owned(), logs)];
    for e in &errors {
        outputs.push((format!("error {e:?}"), format!("{e}")));
        outputs.push((format!("error debug of {e}"), format!("{e:?}")));
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            outputs.push(("error source".to_owned(), s.to_string()));
            source = s.source();
        }
    }
    for d in debugs {
        outputs.push(("debug".to_owned(), d));
    }
    for (what, text) in &outputs {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what} contains the secret `{secret}`:\n{text}"
            );
        }
    }
}

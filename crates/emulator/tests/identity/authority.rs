//! The emulator's `LoginAuthority`: how the SQL endpoint validates tokens, plus the knobs on lifetimes and
//! clocks, the seeded databases, and secrets kept out of `Debug`.

use std::time::{Duration, SystemTime};

use mssql_entra_emulator::{
    Directory, Emulator, EmulatorError, LoginAuthority, MintOptions, PrincipalKind, TokenRejection,
};
use uuid::Uuid;

use crate::client::get;
use crate::{start, DEMO_APP};

const SQL: &str = "https://database.windows.net/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_expired_wrong_audience_and_forged_tokens() {
    let emu = start().await;
    let auth = emu.identity();
    let ok = emu
        .issue_token("demo-app", SQL, Duration::from_secs(60))
        .unwrap();
    let principal = auth.validate(&ok).unwrap();
    assert_eq!(principal.kind, PrincipalKind::ServicePrincipal);
    assert_eq!(
        principal.sid(),
        Uuid::parse_str(DEMO_APP).unwrap().to_bytes_le()
    );
    assert_eq!(
        principal.login_name(),
        format!("{DEMO_APP}@{}", emu.tenant_id())
    );

    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let expired = emu
        .mint_token(
            "demo-app",
            SQL,
            MintOptions::default()
                .issued_at(two_hours_ago)
                .lifetime(Duration::from_secs(3600)),
        )
        .unwrap();
    match auth.validate(&expired) {
        Err(TokenRejection::Expired { expired_at }) => {
            let ago = SystemTime::now().duration_since(expired_at).unwrap();
            assert!(
                ago >= Duration::from_secs(3590) && ago <= Duration::from_secs(3610),
                "{ago:?}"
            );
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    let wrong_aud = emu
        .issue_token(
            "demo-app",
            "https://vault.azure.net",
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        auth.validate(&wrong_aud),
        Err(TokenRejection::WrongAudience {
            found: "https://vault.azure.net".to_owned()
        })
    );

    let foreign = emu
        .mint_token("demo-app", SQL, MintOptions::default().foreign_key())
        .unwrap();
    assert_eq!(auth.validate(&foreign), Err(TokenRejection::BadSignature));
    let mut tampered = ok.clone();
    let mid = tampered.find('.').unwrap() + 5;
    tampered.replace_range(
        mid..mid + 1,
        if &tampered[mid..mid + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );
    assert!(matches!(
        auth.validate(&tampered),
        Err(TokenRejection::BadSignature | TokenRejection::Malformed)
    ));
    assert_eq!(auth.validate("not a jwt"), Err(TokenRejection::Malformed));
    assert_eq!(auth.validate(""), Err(TokenRejection::Malformed));

    let other_tenant = Uuid::new_v4();
    let wrong_iss = emu
        .mint_token(
            "demo-app",
            SQL,
            MintOptions::default().tenant_id(other_tenant),
        )
        .unwrap();
    assert!(
        matches!(auth.validate(&wrong_iss), Err(TokenRejection::WrongIssuer { found }) if found.contains(&other_tenant.to_string()))
    );

    let future = emu
        .mint_token(
            "demo-app",
            SQL,
            MintOptions::default().issued_at(SystemTime::now() + Duration::from_secs(600)),
        )
        .unwrap();
    assert_eq!(auth.validate(&future), Err(TokenRejection::NotYetValid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leeway_clock_offset_and_lifetime_knobs() {
    let emu = Emulator::builder()
        .token_lifetime(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let auth = emu.identity();
    let reply = get(
        &emu,
        &format!(
            "{}?api-version=2018-02-01&resource=https%3A%2F%2Fdatabase.windows.net%2F",
            emu.imds_url()
        ),
        &[("metadata", "true")],
    )
    .await;
    let expires_in: i64 = reply.json()["expires_in"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((4..=5).contains(&expires_in), "{expires_in}");

    // Expired 10 s ago: accepted with the default 30 s leeway, refused with none.
    let just_expired = emu
        .mint_token(
            "demo-mi",
            SQL,
            MintOptions::default()
                .issued_at(SystemTime::now() - Duration::from_secs(70))
                .lifetime(Duration::from_secs(60)),
        )
        .unwrap();
    assert!(auth.validate(&just_expired).is_ok());
    auth.set_validation_leeway(Duration::ZERO);
    assert!(matches!(
        auth.validate(&just_expired),
        Err(TokenRejection::Expired { .. })
    ));

    // A token service whose clock is two hours behind issues tokens that are already expired.
    auth.set_token_lifetime(Duration::from_secs(3600));
    auth.set_clock_offset(-7200);
    let skewed = emu
        .issue_token("demo-app", SQL, Duration::from_secs(3600))
        .unwrap();
    assert!(matches!(
        auth.validate(&skewed),
        Err(TokenRejection::Expired { .. })
    ));
    auth.set_clock_offset(0);
    assert!(auth
        .validate(
            &emu.issue_token("demo-app", SQL, Duration::from_secs(3600))
                .unwrap()
        )
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_graph_sts_url_audiences_and_seeded_users() {
    let emu = Emulator::builder()
        .accept_audience("https://database.usgovcloudapi.net/")
        .start()
        .await
        .unwrap();
    let auth = emu.identity();
    assert_eq!(
        auth.resolve_name("demo-uami").map(|p| p.kind),
        Some(PrincipalKind::ManagedIdentity)
    );
    assert_eq!(
        auth.resolve_name("Bob").and_then(|p| p.upn),
        Some("bob@emulator.onmicrosoft.com".to_owned())
    );
    assert_eq!(
        auth.resolve_name("sql-admins").map(|p| p.kind),
        Some(PrincipalKind::Group)
    );
    assert!(auth.resolve_name("mallory").is_none());
    assert!(auth.graph_available());
    emu.set_graph_available(false);
    assert!(!auth.graph_available());

    assert_eq!(
        auth.sts_url(),
        format!(
            "https://127.0.0.1:{}/{}",
            emu.sts_addr().port(),
            emu.tenant_id()
        )
    );
    assert_eq!(auth.spn(), SQL);
    for aud in [
        SQL,
        "https://database.windows.net",
        "https://database.usgovcloudapi.net/",
        "https://database.usgovcloudapi.net",
    ] {
        let token = emu
            .issue_token("demo-app", aud, Duration::from_secs(60))
            .unwrap();
        assert!(auth.validate(&token).is_ok(), "{aud}");
    }

    let dbs = emu.sql().databases();
    let app_user = dbs
        .user("appdb", "demo-app")
        .expect("seeded from the directory");
    assert_eq!(
        app_user.sid,
        Uuid::parse_str(DEMO_APP).unwrap().to_bytes_le().to_vec()
    );
    assert_eq!(
        dbs.is_role_member("appdb", "demo-app", "db_datawriter"),
        Some(true)
    );
    assert!(dbs
        .user("appdb", "alice@emulator.onmicrosoft.com")
        .is_some());
    assert!(dbs.user("appdb", "unmapped-app").is_none());
    let admin = dbs
        .entra_admin()
        .expect("the demo directory names the server's Entra admin");
    assert_eq!(
        admin.upn.as_deref(),
        Some("sqladmin@emulator.onmicrosoft.com")
    );
    assert_ne!(emu.sql_addr().port(), 0);
    assert!(std::fs::read_to_string(emu.ca_path())
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn blocking_handle_and_secrets_stay_out_of_debug() {
    let emu =
        Emulator::start_blocking(Emulator::builder().identity_header("identity-header-secret-1"))
            .unwrap();
    let dir = emu.output_dir().to_owned();
    let token = emu
        .issue_token(
            "alice@emulator.onmicrosoft.com",
            SQL,
            Duration::from_secs(60),
        )
        .unwrap();
    let cert_path = emu
        .write_app_certificate("demo-app")
        .unwrap()
        .expect("the demo app has a certificate");
    let debug = format!(
        "{:?} {:?} {:?} {:?}",
        *emu,
        emu.directory(),
        emu.identity(),
        emu.http_faults()
    );
    for secret in [
        "identity-header-secret-1",
        "demo-app-secret",
        "alice-password",
        "PRIVATE KEY",
        token.as_str(),
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug output");
    }
    let env = emu.client_env(Some("demo-app"));
    assert!(env.contains(&("AZURE_CLIENT_ID", DEMO_APP.to_owned())));
    assert!(env
        .iter()
        .any(|(k, v)| *k == "IDENTITY_HEADER" && v == "identity-header-secret-1"));
    assert!(std::fs::read_to_string(&cert_path)
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    // The runtime is usable from the test.
    let status = emu.runtime().block_on(async {
        get(
            &emu,
            &format!("{}/common/discovery/keys", emu.sts_base_url()),
            &[],
        )
        .await
        .status
    });
    assert_eq!(status, 200);
    drop(emu);
    assert!(
        !dir.exists(),
        "the temporary output directory is removed on drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_errors_name_the_problem() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Emulator::builder()
        .sts_port(port)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EmulatorError::Bind {
                what: "token service",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");

    let mut dir = Directory::demo().unwrap();
    dir.databases[0].users[0].principal = "ghost".to_owned();
    let err = Emulator::builder()
        .directory(dir)
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulators_share_a_signing_key_unless_asked_for_a_fresh_one() {
    let a = start().await;
    let b = start().await;
    let c = Emulator::builder()
        .fresh_signing_key()
        .start()
        .await
        .unwrap();
    let token = a
        .issue_token("demo-app", SQL, Duration::from_secs(60))
        .unwrap();
    assert!(b.identity().validate(&token).is_ok());
    assert_eq!(
        c.identity().validate(&token),
        Err(TokenRejection::BadSignature)
    );
    assert_ne!(a.identity().kid(), c.identity().kid());
}

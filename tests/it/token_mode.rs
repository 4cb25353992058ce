//! Token mode: the driver gets an access token (attribute 1256) from each of our token sources, and the
//! emulated Azure SQL endpoint names the principal the token was issued to.
//!
//! `static_token`, `client_secret` and `connections_outlive_each_other` also run under valgrind in
//! `cargo xtask test` (emulator in a child process); the others need knobs of an in-process emulator.

use std::collections::HashMap;
use std::time::Duration;

use mssql_entra_emulator::Endpoint;
use mssql_entra_tests::lab::{app_login, Lab, ALICE, DEMO_APP, DEMO_MI, DEMO_UAMI};
use mssql_entra_tests::{isolate, isolated, modes, principal, scalar, test_options, Isolation};

use crate::pool;

#[test]
fn static_token() {
    let lab = Lab::start();
    let conn = modes::static_token(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert!(conn.uses_access_token());
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(scalar(&conn, "SELECT USER_NAME()").unwrap(), "demo-app");
    assert_eq!(lab.http_count(Endpoint::TokenV2), 0, "no token request");
}

#[test]
fn client_secret() {
    let lab = Lab::start();
    let connector = modes::client_secret_source(&lab).connector(&lab).unwrap();
    let first = connector.connect().unwrap();
    let second = connector.connect().unwrap();
    assert_eq!(principal(&first).unwrap(), app_login(DEMO_APP));
    assert_eq!(principal(&second).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1, "one fetch, cached");
}

/// The driver keeps a pointer to each connection's token buffer; each buffer must live exactly as long as its
/// connection. Connections opened with different tokens, dropped out of order, keep working (under valgrind
/// in `cargo xtask test`: no read of a freed token).
#[test]
fn connections_outlive_each_other() {
    let lab = Lab::start();
    let a = modes::static_token(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    let b = modes::client_secret_source(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    let c = modes::static_token(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    drop(b);
    assert_eq!(principal(&a).unwrap(), app_login(DEMO_APP));
    drop(a);
    assert_eq!(principal(&c).unwrap(), app_login(DEMO_APP));
    let d = modes::client_secret_source(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    drop(c);
    assert_eq!(scalar(&d, "SELECT DB_NAME()").unwrap(), "appdb");
    assert_eq!(lab.logins(), (4, 0));
}

#[test]
fn client_certificate() {
    let lab = Lab::start();
    let conn = modes::client_certificate_source(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1);
}

#[test]
fn workload_identity() {
    let lab = Lab::start();
    let conn = modes::workload_identity_source(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1);
}

#[test]
fn device_code_auto_approved() {
    let lab = Lab::start();
    let conn = modes::device_code_source(&lab)
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), ALICE);
    assert_eq!(lab.http_count(Endpoint::DeviceCode), 1);
}

/// azure_identity's managed-identity credential, App Service form; token mode calls the endpoint once for
/// many connects (the driver's own `ActiveDirectoryMsi` calls it on every connect, see `driver_modes`).
#[test]
fn managed_identity_app_service() {
    if !isolated(
        "token_mode::managed_identity_app_service",
        Isolation::Process,
    ) {
        return;
    }
    let lab = isolate::app_service_lab();
    let connector = modes::managed_identity_source(None)
        .connector(&lab)
        .unwrap();
    for _ in 0..3 {
        let conn = connector.connect().unwrap();
        assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
    }
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 1);

    let conn = modes::managed_identity_source(Some(DEMO_UAMI))
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_UAMI));
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 2);
}

/// Our explicit default chain with no `AZURE_*` service principal or workload identity configured falls
/// through to the managed identity.
#[test]
fn default_chain_falls_through_to_managed_identity() {
    if !isolated(
        "token_mode::default_chain_falls_through_to_managed_identity",
        Isolation::Process,
    ) {
        return;
    }
    let lab = isolate::app_service_lab();
    let connector = modes::default_chain_source(&lab, HashMap::new())
        .connector(&lab)
        .unwrap();
    let conn = connector.connect().unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 1);
    assert_eq!(lab.http_count(Endpoint::TokenV2), 0);
}

/// The first configured step wins: a service principal in the environment.
#[test]
fn default_chain_environment_service_principal() {
    let lab = Lab::start();
    let env = modes::service_principal_env(&lab);
    let connector = modes::default_chain_source(&lab, env)
        .connector(&lab)
        .unwrap();
    let conn = connector.connect().unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 0);
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1);
}

/// A short-lived token is renewed by the cache before the next physical connection needs it.
#[test]
fn short_lived_tokens_are_renewed() {
    let lab = Lab::with_token_lifetime(Duration::from_secs(5));
    let connector =
        modes::client_secret_connector(&lab, pool::short_token_cache(), test_options()).unwrap();
    let first = connector.connect().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let second = connector.connect().unwrap();
    assert_eq!(principal(&first).unwrap(), app_login(DEMO_APP));
    assert_eq!(principal(&second).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV2), 2);
    assert_eq!(lab.logins(), (2, 0));
}

/// `TOKEN = { source = "developer-tools", tool = "azure-cli" }`: azure_identity's Azure CLI credential runs
/// `az account get-access-token` through `/bin/sh`. A stand-in `az` on `PATH` (in a child process, so the
/// test's own `PATH` is untouched) answers with a token the emulator minted for alice, and records the
/// arguments it was given.
#[test]
fn developer_tools_azure_cli() {
    if !isolated("token_mode::developer_tools_azure_cli", Isolation::Process) {
        return;
    }
    let lab = Lab::start();
    let token = lab.issue_token(ALICE, Duration::from_secs(3600));
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let bin = std::env::temp_dir().join(format!("mssql-entra-fake-az-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = bin.join("args");
    let script = format!(
        "#!/bin/sh\nprintf '%s ' \"$@\" > '{}'\nprintf '{{\"accessToken\":\"%s\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":%s,\"tokenType\":\"Bearer\"}}' '{token}' '{expires_on}'\n",
        args_file.display()
    );
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // This child process runs only this test, so changing its environment races with nothing.
    std::env::set_var("PATH", path);

    let connector = modes::developer_tools_azure_cli().connector(&lab).unwrap();
    for _ in 0..2 {
        let conn = connector.connect().unwrap();
        assert_eq!(principal(&conn).unwrap(), ALICE);
    }
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.starts_with("account get-access-token -o json --scope https://database.windows.net"),
        "az was asked: {args}"
    );
    let _ = std::fs::remove_dir_all(&bin);
}

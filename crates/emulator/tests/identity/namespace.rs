//! The real driver's own token flows against the whole emulator, inside a private network + mount namespace
//! (`unshare -n -m`) that this test creates by re-running itself: there 169.254.169.254 is on `lo`, so the
//! driver's built-in instance-metadata address reaches our IMDS, and the emulator's CA is bind-mounted over
//! `/etc/ssl/certs/ca-certificates.crt`, the only file the driver's libcurl trusts. No packet leaves the host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use mssql_entra_emulator::{Emulator, Endpoint};
use odbc_api::{ConnectionOptions, Cursor as _, Environment};

const INSIDE: &str = "MSSQL_ENTRA_EMULATOR_TEST_IN_NAMESPACE";

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?}: {status}");
}

fn scalar(conn: &odbc_api::Connection<'_>, sql: &str) -> String {
    let mut cursor = conn.execute(sql, (), None).unwrap().expect("a result set");
    let mut row = cursor.next_row().unwrap().expect("a row");
    let mut buf = Vec::new();
    assert!(row.get_text(1, &mut buf).unwrap(), "not NULL");
    String::from_utf8(buf).unwrap()
}

#[test]
fn driver_msi_imds_service_principal_and_password_flows() {
    if std::env::var_os(INSIDE).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["-n", "-m", "--"])
            .arg(exe)
            .args([
                "--exact",
                "namespace::driver_msi_imds_service_principal_and_password_flows",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INSIDE, "1")
            .output()
            .expect("unshare runs (root is needed for network namespaces)");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "inside the namespace:\n{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    // Inside the namespace.
    run("ip", &["link", "set", "lo", "up"]);
    run("ip", &["addr", "add", "169.254.169.254/32", "dev", "lo"]);
    let emu = Emulator::start_blocking(
        Emulator::builder()
            .imds_bind(SocketAddr::from(([169, 254, 169, 254], 80)))
            .validation_leeway(std::time::Duration::from_secs(5)),
    )
    .unwrap();
    run(
        "mount",
        &[
            "--bind",
            emu.ca_path().to_str().unwrap(),
            "/etc/ssl/certs/ca-certificates.crt",
        ],
    );
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/driver")
        .canonicalize()
        .unwrap();
    std::env::set_var("ODBCSYSINI", &driver);
    std::env::set_var("SSL_CERT_FILE", emu.ca_path());
    std::env::remove_var("IDENTITY_ENDPOINT");
    std::env::remove_var("IDENTITY_HEADER");
    let env = Environment::new().unwrap();
    let options = ConnectionOptions {
        login_timeout_sec: Some(3),
        packet_size: None,
    };
    let tenant = emu.tenant_id();
    let connect = |auth: &str| {
        let cs = format!(
            "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes;{auth}",
            emu.sql_addr().port()
        );
        env.connect_with_connection_string(&cs, options)
    };

    // Managed identity through the instance-metadata address built into the driver.
    let conn = connect("Authentication=ActiveDirectoryMsi")
        .unwrap_or_else(|e| panic!("MSI via IMDS: {e}"));
    assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-mi");
    assert_eq!(emu.http_stats().count(Endpoint::ImdsToken), 1);

    // Service principal: FEDAUTHINFO's STS URL → POST <sts>/oauth2/token (client_credentials).
    let conn = connect(&format!(
        "Authentication=ActiveDirectoryServicePrincipal;UID={};PWD=demo-app-secret",
        crate::DEMO_APP
    ))
    .unwrap_or_else(|e| panic!("service principal: {e}"));
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        format!("{}@{tenant}", crate::DEMO_APP)
    );
    assert_eq!(scalar(&conn, "SELECT USER_NAME()"), "demo-app");
    assert_eq!(emu.http_stats().count(Endpoint::TokenV1), 1);
    // A wrong secret: one POST, answered 401 AADSTS7000215 (checked at the HTTP level in sts.rs); the driver
    // waits out the login timeout and reports HYT00 first (odbc-api shows the first record only).
    let err = connect(&format!(
        "Authentication=ActiveDirectoryServicePrincipal;UID={};PWD=wrong",
        crate::DEMO_APP
    ))
    .map(|_| ())
    .unwrap_err();
    assert!(err.to_string().contains("HYT00"), "{err}");
    assert_eq!(
        emu.http_stats().count(Endpoint::TokenV1),
        2,
        "no retry on 401"
    );

    // Password: UserRealm, then ROPC.
    let conn = connect("Authentication=ActiveDirectoryPassword;UID=alice@emulator.onmicrosoft.com;PWD=alice-password")
        .unwrap_or_else(|e| panic!("password: {e}"));
    assert_eq!(
        scalar(&conn, "SELECT SUSER_SNAME()"),
        "alice@emulator.onmicrosoft.com"
    );
    assert!(emu.http_stats().count(Endpoint::UserRealm) >= 1);
    // Bob needs MFA: the ROPC request is made and refused (AADSTS50076, checked at the HTTP level in sts.rs); the
    // driver then waits out the login timeout and reports HYT00 first. No login succeeds.
    let before = emu.http_stats().count(Endpoint::TokenV1);
    let err = connect(
        "Authentication=ActiveDirectoryPassword;UID=bob@emulator.onmicrosoft.com;PWD=bob-password",
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        err.to_string().contains("HYT00") || err.to_string().contains("AADSTS50076"),
        "{err}"
    );
    // Measured: the driver retries the refused (400) ROPC request, 4 POSTs in all when the login timeout allows.
    let attempts = emu.http_stats().count(Endpoint::TokenV1) - before;
    assert!(attempts >= 1, "the ROPC request was made");
    println!("ROPC attempts for the MFA user: {attempts}");
    println!("namespace flows: ok");
}

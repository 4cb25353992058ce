//! The driver's own `Authentication=` modes against the emulator: the driver fetches the token itself (from
//! the managed-identity endpoints or the token service named in FEDAUTHINFO), and the modes it lacks or
//! cannot do here are refused or diagnosed.
//!
//! The instance-metadata tests, ServicePrincipal and Password run in a private network and mount namespace
//! (169.254.169.254 on loopback, the emulator's CA in the one bundle the driver's libcurl reads); the App
//! Service tests in a child process with `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` set.

use mssql_entra_connstr::Authentication;
use mssql_entra_emulator::Endpoint;
use mssql_entra_odbc::{DiagnosisKind, Error};
use mssql_entra_tests::lab::{
    app_login, Lab, ALICE, BOB, DEMO_APP, DEMO_MI, DEMO_UAMI, DEMO_UAMI_OBJECT,
};
use mssql_entra_tests::{isolate, isolated, modes, principal, test_options, Isolation};

fn records(e: &Error) -> String {
    e.odbc()
        .map(|f| {
            f.records
                .iter()
                .map(|r| format!("[{}] {} {}", r.sqlstate, r.native_error, r.message))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|| e.to_string())
}

/// System-assigned, App Service form: the driver calls `IDENTITY_ENDPOINT` on every connect (no cache).
#[test]
fn msi_app_service_system_assigned() {
    if !isolated(
        "driver_modes::msi_app_service_system_assigned",
        Isolation::Process,
    ) {
        return;
    }
    let lab = isolate::app_service_lab();
    let connector = modes::msi(None).connector(&lab).unwrap();
    for _ in 0..2 {
        let conn = connector.connect().unwrap();
        assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
    }
    assert_eq!(
        lab.http_count(Endpoint::AppServiceToken),
        2,
        "one call per connect"
    );
    assert_eq!(lab.http_count(Endpoint::ImdsToken), 0);
}

/// User-assigned, App Service form: `UID=<client id>`, which the driver sends as `client_id` (the
/// emulator's App Service endpoint selects the identity by that parameter).
#[test]
fn msi_app_service_user_assigned() {
    if !isolated(
        "driver_modes::msi_app_service_user_assigned",
        Isolation::Process,
    ) {
        return;
    }
    let lab = isolate::app_service_lab();
    let conn = modes::msi(Some(DEMO_UAMI))
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_UAMI));
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 1);

    // The object id in UID is not found there: the driver does not send `object_id` to App Service.
    let err = modes::msi(Some(DEMO_UAMI_OBJECT))
        .connector(&lab)
        .unwrap()
        .check()
        .unwrap_err();
    assert!(
        records(&err).contains("ActiveDirectoryMSI"),
        "{}",
        records(&err)
    );
    assert!(lab.http_count(Endpoint::AppServiceToken) >= 2);
    assert_eq!(lab.logins().0, 1, "only the first login succeeded");
}

/// System-assigned through the instance-metadata endpoint at 169.254.169.254:80.
#[test]
fn msi_imds_system_assigned() {
    if !isolated(
        "driver_modes::msi_imds_system_assigned",
        Isolation::Namespace,
    ) {
        return;
    }
    let lab = isolate::namespace_lab();
    let conn = modes::msi(None).connector(&lab).unwrap().connect().unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_MI));
    assert_eq!(lab.http_count(Endpoint::ImdsToken), 1);
    assert_eq!(lab.http_count(Endpoint::AppServiceToken), 0);
}

/// User-assigned through the instance-metadata endpoint: `UID=<object id>`, which the driver sends as
/// `object_id`. The emulator's IMDS selects by `object_id` under that name and by `client_id` under that one,
/// so the login as the user-assigned identity with its object id, and the failure with its client id, pin the
/// parameter the driver sends.
#[test]
fn msi_imds_user_assigned() {
    if !isolated("driver_modes::msi_imds_user_assigned", Isolation::Namespace) {
        return;
    }
    let lab = isolate::namespace_lab();
    let conn = modes::msi(Some(DEMO_UAMI_OBJECT))
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_UAMI));
    assert_eq!(lab.http_count(Endpoint::ImdsToken), 1);

    let err = modes::msi(Some(DEMO_UAMI))
        .connector(&lab)
        .unwrap()
        .check()
        .unwrap_err();
    assert!(
        records(&err).contains("ActiveDirectoryMSI"),
        "{}",
        records(&err)
    );
    assert!(lab.http_count(Endpoint::ImdsToken) >= 2);
    assert_eq!(lab.logins().0, 1, "only the first login succeeded");
}

/// ServicePrincipal: client credentials to the STS URL from FEDAUTHINFO (the v1 endpoint), over HTTPS that
/// trusts only the system bundle.
#[test]
fn service_principal() {
    if !isolated("driver_modes::service_principal", Isolation::Namespace) {
        return;
    }
    let lab = isolate::namespace_lab();
    let conn = modes::service_principal()
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV1), 1);
}

/// Password (deprecated): UserRealm, then ROPC. Bob's sign-in needs MFA, which ROPC cannot do: the token
/// service refuses it (AADSTS50076) and no login reaches the SQL endpoint.
#[test]
fn password_and_its_refusal_for_an_mfa_user() {
    if !isolated(
        "driver_modes::password_and_its_refusal_for_an_mfa_user",
        Isolation::Namespace,
    ) {
        return;
    }
    let lab = isolate::namespace_lab();
    let conn = modes::password(ALICE, "alice-password")
        .connector(&lab)
        .unwrap()
        .connect()
        .unwrap();
    assert_eq!(principal(&conn).unwrap(), ALICE);
    assert!(lab.http_count(Endpoint::UserRealm) >= 1);
    let logins = lab.logins();

    let bob = modes::password(BOB, "bob-password")
        .connector(&lab)
        .unwrap();
    // `check` keeps every diagnostic record (a plain connect keeps only the first, HYT00).
    let err = bob.check().unwrap_err();
    let shown = records(&err);
    assert!(shown.contains("AADSTS50076"), "{shown}");
    assert_eq!(lab.logins().0, logins.0, "no login succeeded for bob");
}

/// Default: the driver refuses `ActiveDirectoryDefault` (checked below the facade, by the connector, before any
/// I/O); the facade serves it in token mode with our explicit chain, configured as in a deployment: `AZURE_*`
/// variables in the process environment (so this runs in a child process).
#[test]
fn default_is_served_by_our_chain() {
    if !isolated(
        "driver_modes::default_is_served_by_our_chain",
        Isolation::Process,
    ) {
        return;
    }
    let lab = Lab::start();
    let refused = mssql_entra::Connector::new(
        lab.connection_string("Authentication=ActiveDirectoryDefault"),
        mssql_entra::Auth::ConnectionString,
        test_options(),
    )
    .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::ProvidedInTokenMode {
                mode: Authentication::Default
            }
        ),
        "{refused:?}"
    );
    // A single-threaded test child; nothing else reads the environment yet.
    for (key, value) in modes::service_principal_env(&lab) {
        std::env::set_var(key, value);
    }
    let plan = modes::active_directory_default(None).plan(&lab).unwrap();
    assert_eq!(
        plan.mode(),
        mssql_entra::AuthMode::TokenSource(mssql_entra::SourceKind::Default)
    );
    let conn = plan.connect().unwrap();
    assert_eq!(principal(&conn).unwrap(), app_login(DEMO_APP));
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1);
}

/// Integrated needs a Kerberos ticket. Without one the driver (18.6, Linux) reports FA004 "Error acquiring
/// Kerberos credentials" and then waits out the login timeout, so a plain connect's first record is HYT00;
/// `check`, which keeps every record, is diagnosed as Kerberos being unavailable. No login succeeds.
#[test]
fn integrated_without_kerberos_is_diagnosed() {
    let lab = Lab::start();
    let connector = modes::integrated().connector(&lab).unwrap();
    let err = connector.check().unwrap_err();
    let shown = records(&err);
    assert!(
        shown.contains("No Kerberos credentials available"),
        "{shown}"
    );
    let diagnosis = err
        .diagnosis()
        .unwrap_or_else(|| panic!("no diagnosis: {err}"));
    assert_eq!(diagnosis.kind, DiagnosisKind::KerberosUnavailable, "{err}");
    let err = connector.connect().unwrap_err();
    assert_eq!(
        err.odbc().and_then(|f| f.sqlstate()),
        Some("HYT00"),
        "{err}"
    );
    assert_eq!(lab.logins().0, 0, "no login succeeded");
}

/// Interactive off Windows is refused before any I/O, by the facade and by the connector below it, with the
/// alternatives named.
#[test]
fn interactive_is_refused_off_windows_before_any_io() {
    let lab = Lab::start();
    let err = modes::interactive().connector(&lab).unwrap_err();
    assert!(
        matches!(err, mssql_entra::Error::InteractiveNotWindows),
        "{err:?}"
    );
    assert!(err.to_string().contains("device-code"), "{err}");
    let err = mssql_entra::Connector::new(
        lab.connection_string(&format!(
            "Authentication=ActiveDirectoryInteractive;UID={ALICE}"
        )),
        mssql_entra::Auth::ConnectionString,
        test_options(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::InteractiveNotWindows { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::InteractiveNotWindows)
    );
    assert_eq!(lab.sql_connections(), 0, "nothing reached the server");
}

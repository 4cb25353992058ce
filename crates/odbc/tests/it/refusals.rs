//! Refusals made before any network I/O (the driver list is read, nothing is connected).

use mssql_entra_connstr::{Authentication, ConnectionString, TargetOs};
use mssql_entra_odbc::{
    Auth, Connector, ConnectorOptions, DiagnosisKind, DriverVersion, Error, ModeName,
};
use mssql_entra_token::Scope;

use crate::support::*;

fn cs(extra: &str) -> ConnectionString {
    ConnectionString::parse(&format!(
        "Driver={{{DRIVER}}};Server=tcp:127.0.0.1,{};Database=appdb;{extra}",
        closed_port()
    ))
    .expect("valid")
}

fn linux() -> ConnectorOptions {
    test_options().with_target_os(TargetOs::NotWindows)
}

#[test]
fn modes_the_driver_refuses_are_sent_to_token_mode() {
    init();
    for mode in [
        Authentication::Default,
        Authentication::ManagedIdentity,
        Authentication::WorkloadIdentity,
        Authentication::DeviceCode,
    ] {
        let e = Connector::new(cs(""), Auth::Driver(mode), linux()).unwrap_err();
        assert_eq!(e, Error::ProvidedInTokenMode { mode });
        assert!(e.to_string().contains("token mode"), "{e}");
        let d = e.diagnosis().expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::ProvidedInTokenMode);
        // Also when the mode is written in the connection string.
        let written = cs(&format!("Authentication={}", mode.as_str()));
        let e = Connector::new(written, Auth::ConnectionString, linux()).unwrap_err();
        assert_eq!(e, Error::ProvidedInTokenMode { mode });
    }
}

#[test]
fn interactive_is_refused_off_windows_with_alternatives() {
    init();
    let e = Connector::new(
        cs("UID=alice@contoso.example"),
        Auth::Driver(Authentication::Interactive),
        linux(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InteractiveNotWindows { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("device code") && text.contains("Azure CLI"),
        "{text}"
    );
    assert_eq!(
        e.diagnosis().map(|d| d.anchor),
        Some("troubleshooting.md#interactive-not-windows")
    );
}

#[test]
fn token_mode_refuses_conflicting_keywords_and_clear_text() {
    init();
    let (source, calls) = counting_source(app_token());
    for (extra, expected) in [
        ("UID=app", mssql_entra_connstr::Error::AccessTokenWithUid),
        ("PWD=", mssql_entra_connstr::Error::AccessTokenWithPwd),
        (
            "Authentication=ActiveDirectoryMsi",
            mssql_entra_connstr::Error::AccessTokenWithAuthentication,
        ),
        (
            "Trusted_Connection=yes",
            mssql_entra_connstr::Error::AccessTokenWithTrustedConnection,
        ),
    ] {
        let e = Connector::new(
            cs(extra),
            Auth::Token(source.clone(), Scope::azure_sql()),
            linux(),
        )
        .unwrap_err();
        assert_eq!(e, Error::ConnectionString(expected), "{extra}");
    }
    let e = Connector::new(
        cs("Encrypt=no"),
        Auth::Token(source, Scope::azure_sql()),
        linux(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ConnectionString(mssql_entra_connstr::Error::UnencryptedToken { .. })
        ),
        "{e:?}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_second_authentication_mode_is_a_conflict() {
    init();
    let e = Connector::new(
        cs("Authentication=ActiveDirectoryServicePrincipal;UID=a;PWD=b"),
        Auth::Driver(Authentication::Msi),
        linux(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ConnectionString(mssql_entra_connstr::Error::ConflictingKey { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn the_installed_driver_version_is_read_from_the_driver_manager() {
    init();
    let c = Connector::new(cs(""), Auth::Driver(Authentication::Msi), linux()).expect("valid");
    assert_eq!(c.driver_version(), Some(DriverVersion::new(18, 6)));
    assert!(c
        .connection_string()
        .to_string()
        .contains("Authentication=ActiveDirectoryMsi"));
    let lib = mssql_entra_odbc::driver_library(DRIVER)
        .expect("driver list")
        .expect("registered");
    assert!(lib.contains("libmsodbcsql-18.6"), "{lib}");
}

#[test]
fn a_driver_older_than_the_mode_is_refused_with_the_minimum_version() {
    init();
    let e = Connector::new(
        cs("UID=app;PWD=secret"),
        Auth::Driver(Authentication::ServicePrincipal),
        linux().with_driver_version(DriverVersion::new(17, 6)),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::DriverTooOld {
            mode: ModeName::Authentication(Authentication::ServicePrincipal),
            driver: DRIVER.to_owned(),
            installed: DriverVersion::new(17, 6),
            minimum: DriverVersion::new(17, 7),
        }
    );
    assert!(e.to_string().contains("17.7 or later"), "{e}");
    assert!(!e.to_string().contains("secret"));
    assert_eq!(
        e.diagnosis().map(|d| d.kind),
        Some(DiagnosisKind::ModeNotSupportedByDriver)
    );
    // 17.7 itself is enough.
    Connector::new(
        cs("UID=app;PWD=secret"),
        Auth::Driver(Authentication::ServicePrincipal),
        linux().with_driver_version(DriverVersion::new(17, 7)),
    )
    .expect("17.7 implements ServicePrincipal");
}

#[test]
fn connector_debug_masks_the_client_secret() {
    init();
    let c = Connector::new(
        cs("UID=app;PWD=s3cr3t-value"),
        Auth::Driver(Authentication::ServicePrincipal),
        linux(),
    )
    .expect("valid");
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t-value"), "{debug}");
    assert!(debug.contains("ServicePrincipal"), "{debug}");
}

#[test]
fn blocking_connect_inside_a_runtime_is_refused() {
    init();
    let (source, _) = counting_source(app_token());
    let c = token_connector(cs(""), source);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let e = rt.block_on(async { c.connect() }).unwrap_err();
    assert!(matches!(e, Error::Runtime { .. }), "{e:?}");
    assert!(e.to_string().contains("connect_async"), "{e}");
}

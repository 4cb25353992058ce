//! Acceptance (b): both TLS forms, plus the login-only and clear-text test modes.

use mssql_entra_emulator::sql::Encryption;

use crate::support::*;

fn suser(conn: &odbc_api::Connection<'_>) -> String {
    scalar(conn, "SELECT SUSER_SNAME()").unwrap().unwrap()
}

#[test]
fn encrypt_yes_validates_the_certificate_with_ssl_cert_file() {
    let s = Server::start();
    let conn = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes;TrustServerCertificate=no")
        .unwrap();
    assert_eq!(suser(&conn), app().login_name());
}

#[test]
fn encrypt_yes_with_trust_server_certificate() {
    let s = Server::start();
    let conn = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes;TrustServerCertificate=yes")
        .unwrap();
    assert_eq!(suser(&conn), app().login_name());
}

#[test]
fn encrypt_strict_logs_in_tls_first() {
    let s = Server::start();
    let conn = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=strict")
        .unwrap();
    assert_eq!(suser(&conn), app().login_name());
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn encrypt_no_still_gets_full_tls_from_an_azure_like_server() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=no").unwrap();
    assert_eq!(suser(&conn), app().login_name());
}

#[test]
fn login_only_encryption_when_configured() {
    let s = Server::start_with(|c| c.encryption = Encryption::Off);
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=no").unwrap();
    assert_eq!(suser(&conn), app().login_name());
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn login_only_encryption_with_a_multi_packet_login() {
    // The first LOGIN7 packet travels in TLS, the rest in clear: the emulator must switch mid-message.
    let s = Server::start_with(|c| c.encryption = Encryption::Off);
    let big = format!("big-{}", "y".repeat(5000));
    let e = s
        .connect_token(&big, "appdb", "Encrypt=no")
        .map(|_| ())
        .unwrap_err();
    assert!(diag(&e).2.contains("well-formed"), "{}", diag(&e).2);
}

#[test]
fn clear_text_when_the_server_does_not_support_encryption() {
    let s = Server::start_with(|c| c.encryption = Encryption::NotSupported);
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=no").unwrap();
    assert_eq!(suser(&conn), app().login_name());
    // And a client that insists on encryption is turned away by the driver itself.
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    assert!(
        diag(&e).2.contains("Encryption not supported"),
        "{}",
        diag(&e).2
    );
}

#[test]
fn tds7_with_tls13_follows_the_unwrapped_final_flight() {
    // With TLS 1.3 the driver sends its last handshake flight as raw records instead of 0x12 packets.
    let s = Server::start_with(|c| c.tds7_allow_tls13 = true);
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(suser(&conn), app().login_name());
}

#[test]
fn config_debug_does_not_show_the_private_key() {
    let pki = pki();
    let config =
        mssql_entra_emulator::sql::SqlEndpointConfig::new(pki.chain.clone(), pki.key.clone());
    let dbg = format!("{config:?}");
    assert!(!dbg.contains("key"), "{dbg}");
    assert!(dbg.contains("2 certificate(s)"), "{dbg}");
}

#[test]
fn echo_bit_policy() {
    // ODBC 18 sets fFedAuthEcho only on fully encrypted sessions; insisting on it in clear text refuses the login.
    let s = Server::start_with(|c| {
        c.encryption = Encryption::NotSupported;
        c.fedauth_echo = mssql_entra_emulator::sql::EchoPolicy::Always;
    });
    let e = s
        .connect_token(APP_TOKEN, "appdb", "Encrypt=no")
        .map(|_| ())
        .unwrap_err();
    let (_, native, text) = diag(&e);
    assert_eq!(native, 18456);
    assert!(text.contains("fFedAuthEcho"), "{text}");
    // With the default policy the same client is fine, and a fully encrypted one is checked (and passes).
    let s = Server::start_with(|c| c.encryption = Encryption::NotSupported);
    s.connect_token(APP_TOKEN, "appdb", "Encrypt=no").unwrap();
}

#[test]
fn server_nonce_is_appended_to_the_access_token_by_the_driver() {
    let s = Server::start_with(|c| c.send_nonce = true);
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(suser(&conn), app().login_name());
}

#[test]
fn public_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<mssql_entra_emulator::sql::SqlEndpoint>();
    check::<mssql_entra_emulator::sql::Databases>();
    check::<mssql_entra_emulator::sql::SqlFaults>();
    check::<mssql_entra_emulator::sql::SqlStats>();
    check::<mssql_entra_emulator::sql::SqlEndpointConfig>();
}

//! Acceptance (c): the driver's own `Authentication=ActiveDirectoryMsi` against an App Service style identity
//! endpoint: LOGIN7 (FEDAUTH library 2) → FEDAUTHINFO → the driver's GET to IDENTITY_ENDPOINT → 0x08 → login.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mssql_entra_emulator::sql::LoginStage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const HEADER_SECRET: &str = "identity-header-secret";

/// A minimal App Service managed-identity endpoint: checks `X-IDENTITY-HEADER` and the resource, answers compact
/// JSON (the driver finds the token by a literal search for `"access_token":"`).
fn start_identity_endpoint(s: &Server) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener =
        s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
    let url = format!("http://{}/msi/token", listener.local_addr().unwrap());
    let counter = hits.clone();
    s.rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let req = String::from_utf8_lossy(&req).to_lowercase();
                let authorised = req.contains(&format!("x-identity-header: {HEADER_SECRET}"));
                let resource_ok = req.contains("resource=https%3a%2f%2fdatabase.windows.net%2f");
                let version_ok = req.contains("api-version=2019-08-01");
                let (status, body) = if authorised && resource_ok && version_ok {
                    let body = format!(
                        "{{\"access_token\":\"{MI_TOKEN}\",\"expires_on\":\"{}\",\"resource\":\"https://database.windows.net/\",\"token_type\":\"Bearer\",\"client_id\":\"{}\"}}",
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600,
                        managed_identity().app_id.unwrap()
                    );
                    ("200 OK", body)
                } else {
                    ("400 Bad Request", "{\"error\":\"invalid_request\"}".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, hits)
}

#[test]
fn active_directory_msi_logs_in_end_to_end() {
    let s = Server::start();
    s.databases()
        .add_principal_user("appdb", "demo-mi", &managed_identity())
        .unwrap();
    let (url, hits) = start_identity_endpoint(&s);
    env();
    let _env = identity_env_lock();
    std::env::set_var("IDENTITY_ENDPOINT", &url);
    std::env::set_var("IDENTITY_HEADER", HEADER_SECRET);

    for extra in ["Encrypt=yes", "Encrypt=strict"] {
        let conn = connect(&s.conn_str(
            "appdb",
            &format!("Authentication=ActiveDirectoryMsi;{extra}"),
        ))
        .unwrap_or_else(|e| panic!("{extra}: {}", diag(&e).2));
        assert_eq!(
            scalar(&conn, "SELECT SUSER_SNAME()").unwrap().unwrap(),
            managed_identity().login_name()
        );
        assert_eq!(
            scalar(&conn, "SELECT USER_NAME()").unwrap().unwrap(),
            "demo-mi"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "one identity-endpoint call per connect"
    );

    // Cut off right after the 0x08 token message: the driver reports a broken link.
    s.faults().drop_connection(LoginStage::AfterFedAuthToken, 1);
    let e = connect(&s.conn_str("appdb", "Authentication=ActiveDirectoryMsi;Encrypt=yes"))
        .map(|_| ())
        .unwrap_err();
    assert!(diag(&e).0.starts_with("08"), "{}", diag(&e).2);

    // The same identity against a database where it has no user.
    let e = connect(&s.conn_str("otherdb", "Authentication=ActiveDirectoryMsi;Encrypt=yes"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 18456, "{}", diag(&e).2);
}

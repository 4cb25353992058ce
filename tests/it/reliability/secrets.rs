//! No secret in the logs or errors of a representative slice of the end-to-end flows, failures included.
//!
//! A global subscriber captures every tracing event at TRACE, and `try_init` also installs the `log` bridge
//! (tracing-log's `LogTracer`), so odbc-api's own `log` records (it logs every driver diagnostic it sees,
//! unredacted, at `warn`) land in the same capture. Global, not per thread: tracing caches "nobody listens"
//! per call site, so a thread-local subscriber would miss call sites first reached by other tests' threads.
//! It captures the other tests of this binary too, which only makes the scan stricter.
//!
//! The flows: token mode with a client-secret source (facade settings), a static token (facade settings),
//! a login refused for a token of the wrong audience, a token fetch refused for a wrong client secret, a
//! token service failing with nothing cached, and SQL authentication with a password the emulator refuses.
//! `ActiveDirectoryServicePrincipal`/`ActiveDirectoryPassword` are left out: the driver sends those to
//! login.microsoftonline.com, which needs a private network namespace (see `driver_modes`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mssql_entra_connstr::ConnectionString;
use mssql_entra_emulator::{HttpFault, HttpService, Times};
use mssql_entra_odbc::{Auth, Connector};
use mssql_entra_tests::lab::{Lab, DEMO_APP, DEMO_APP_SECRET, TENANT};
use mssql_entra_tests::modes::{self, ModeSettings};
use mssql_entra_tests::{principal, test_options, DRIVER_NAME};
use mssql_entra_token::CacheOptions;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// The first JWT-shaped run in `text` (`eyJ` + base64url, a dot, more base64url: the header and the claims),
/// so that tokens we did not mint ourselves (those the client-secret source fetched) are caught by shape.
fn find_jwt(text: &str) -> Option<&str> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        let candidate = &rest[at..];
        let head = candidate
            .find(|c: char| !is_b64(c))
            .unwrap_or(candidate.len());
        if head >= 12 && candidate[head..].starts_with('.') {
            let tail = &candidate[head + 1..];
            let body = tail.find(|c: char| !is_b64(c)).unwrap_or(tail.len());
            if body >= 8 {
                return Some(&candidate[..head + 1 + body]);
            }
        }
        rest = &rest[at + 3..];
    }
    None
}

fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

fn token_settings(token: String) -> ModeSettings {
    ModeSettings {
        token: Some(token),
        user: None,
        password: None,
        extra_params: None,
        env: None,
    }
}

/// `err`'s `Display` and `Debug` at every level of its `source()` chain.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        text.push_str(&format!("{e}\n{e:?}\n"));
        next = e.source();
    }
    text
}

#[test]
fn no_secret_in_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only global subscriber (and log bridge) of this binary");

    let lab = Lab::start();
    let wrong_secret = "wrong-client-secret-Zq8v3W";
    let sql_password = "Sql-Password-Kx7!Rm2";
    let static_token = lab.issue_token(DEMO_APP, Duration::from_secs(3600));
    let foreign_token = lab
        .emulator()
        .issue_token(
            DEMO_APP,
            "https://storage.azure.com/",
            Duration::from_secs(3600),
        )
        .expect("the emulator mints a token for another resource");
    let mut secrets: Vec<String> = vec![
        DEMO_APP_SECRET.to_owned(),
        wrong_secret.to_owned(),
        sql_password.to_owned(),
        lab.emulator().identity_header().expose().to_owned(),
    ];
    for token in [&static_token, &foreign_token] {
        secrets.push(token.clone());
        secrets.extend(
            token
                .split('.')
                .filter(|p| p.len() >= 16)
                .map(str::to_owned),
        );
    }
    let mut shown: Vec<String> = Vec::new();

    // Token mode, client-secret source, through the facade: success.
    let mode = modes::client_secret_source(&lab);
    let settings = mode.settings(&lab).expect("settings parse");
    let plan = mode.plan(&lab).expect("settings resolve");
    let connector = plan.connector().expect("a connector");
    shown.push(format!("{settings:?}\n{plan:?}\n{connector:?}"));
    let conn = connector.connect().expect("client-secret connect");
    principal(&conn).expect("a query");
    shown.push(format!("{conn:?}"));
    drop(conn);

    // A static token through the facade: success.
    let mode = token_settings(quoted(&static_token));
    let plan = mode.plan(&lab).expect("settings resolve");
    shown.push(format!("{:?}\n{plan:?}", mode.settings(&lab)));
    let conn = plan
        .connector()
        .expect("a connector")
        .connect()
        .expect("static-token connect");
    principal(&conn).expect("a query");
    drop(conn);

    // A token for another resource: the server refuses the login (18456).
    let err = token_settings(quoted(&foreign_token))
        .connector(&lab)
        .expect("a connector")
        .connect()
        .expect_err("a token for another audience is refused");
    shown.push(describe(&err));
    if let Some(diagnosis) = err.diagnosis() {
        shown.push(format!("{diagnosis}\n{diagnosis:?}"));
    }

    // A wrong client secret: the token service refuses it (AADSTS7000215), nothing reaches SQL.
    let table = format!(
        "{{ source = \"client-secret\", tenant_id = {}, client_id = {}, client_secret = {}, authority_host = {}, ca_file = {} }}",
        quoted(TENANT),
        quoted(DEMO_APP),
        quoted(wrong_secret),
        quoted(lab.authority_host()),
        quoted(&lab.ca_path().display().to_string())
    );
    let mode = token_settings(table);
    shown.push(format!("{:?}", mode.settings(&lab)));
    let err = mode
        .connector(&lab)
        .expect("a connector")
        .connect()
        .expect_err("a wrong client secret is refused");
    shown.push(describe(&err));

    // The token service fails with nothing cached: a token error after the retries.
    let faults = lab.emulator().http_faults();
    faults.inject(
        Some(HttpService::TokenService),
        HttpFault::Status(500),
        Times::UntilCleared,
    );
    let cache = CacheOptions::default()
        .with_deadline(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(100));
    let err = modes::client_secret_connector(&lab, cache, test_options())
        .expect("a connector")
        .connect()
        .expect_err("the token service fails");
    shown.push(describe(&err));
    faults.clear();

    // SQL authentication with a password: the emulator (like Azure SQL with Entra-only auth) refuses it.
    let text = format!(
        "Driver={{{DRIVER_NAME}}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes;UID=sqluser;PWD={{{sql_password}}}",
        lab.sql_port()
    );
    let cs = ConnectionString::parse(&text).expect("a valid connection string");
    shown.push(format!("{cs}\n{cs:?}"));
    match Connector::new(cs, Auth::ConnectionString, test_options()) {
        Ok(connector) => {
            shown.push(format!("{connector:?}"));
            let err = connector
                .connect()
                .expect_err("the emulator refuses SQL authentication");
            shown.push(describe(&err));
        }
        Err(err) => shown.push(describe(&err)),
    }

    let logs = capture.text();
    let log_records: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("odbc_api"))
        .collect();
    println!(
        "captured {} lines of TRACE output, {} of them odbc-api `log` records; for example:",
        logs.lines().count(),
        log_records.len()
    );
    for line in log_records.iter().take(8) {
        println!("    {line}");
    }
    assert!(
        !log_records.is_empty(),
        "the log bridge delivered odbc-api's `log` records (otherwise this scan would not cover them)"
    );
    assert!(
        logs.contains("Login failed") || logs.contains("18456"),
        "the refused logins were logged, so the scan covers driver diagnostics"
    );

    for (what, text) in [
        ("the TRACE log", logs.as_str()),
        ("errors and Debug output", &shown.join("\n")),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({} characters, starting {:?}) appears in {what}",
                secret.len(),
                &secret[..4.min(secret.len())]
            );
        }
        if let Some(jwt) = find_jwt(text) {
            panic!(
                "a JWT-shaped string appears in {what}: {}…",
                &jwt[..12.min(jwt.len())]
            );
        }
    }
}

#[test]
fn the_jwt_detector_finds_tokens_and_nothing_else() {
    let header_and_claims =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2RhdGFiYXNlIn0";
    let token = format!("{header_and_claims}.c2lnbmF0dXJl");
    assert_eq!(
        find_jwt(&format!("token={token};")),
        Some(header_and_claims)
    );
    assert_eq!(find_jwt("the header eyJ alone, eyJabc.def"), None);
    assert_eq!(find_jwt("nothing here"), None);
}

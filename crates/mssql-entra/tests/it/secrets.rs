//! Secrets never appear in Debug, Display, errors or logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mssql_entra::{Error, Settings};

use crate::support::{jwt, opts, toml};

const PASSWORD: &str = "Pa55-w0rd-SECRET";
const CLIENT_SECRET: &str = "cl1ent-SECRET-value";

fn assert_clean(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} leaked into: {text}");
    }
}

#[test]
fn settings_debug_hides_password_token_and_client_secret() {
    let token = jwt();
    let with_password = toml(&format!(
        "HOST = \"h\"\nUSER = \"app\"\nPASSWORD = \"{PASSWORD}\"\n\
         OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryServicePrincipal;ApplicationIntent=ReadOnly\" }}"
    ));
    let with_token = toml(&format!("HOST = \"h\"\nTOKEN = \"{token}\""));
    let with_secret = toml(&format!(
        "HOST = \"h\"\nTOKEN = {{ source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret = \"{CLIENT_SECRET}\" }}"
    ));
    let with_pwd_in_extra = toml(&format!(
        "HOST = \"h\"\nUSER = \"sa\"\nOPTIONS = {{ extra_params = \"PWD={PASSWORD}\" }}"
    ));
    for s in [
        &with_password,
        &with_token,
        &with_secret,
        &with_pwd_in_extra,
    ] {
        let debug = format!("{s:?} {s:#?}");
        assert_clean(&debug, &[PASSWORD, CLIENT_SECRET, &token, "test-signature"]);
    }
    // The safe parts are still there.
    let debug = format!("{with_password:?}");
    assert!(
        debug.contains("app") && debug.contains("ApplicationIntent"),
        "{debug}"
    );
    assert!(format!("{with_token:?}").contains("Literal(<redacted>)"));
}

#[test]
fn secrets_of_the_wrong_type_are_not_echoed() {
    for text in [
        "HOST = \"h\"\nPASSWORD = 98765432123",
        "HOST = \"h\"\nTOKEN = 98765432123",
        "HOST = \"h\"\nTOKEN = { source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret = 98765432123 }",
    ] {
        let e = Settings::from_toml_str(text).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{e:?}");
        assert_clean(&format!("{e} {e:?}"), &["98765432123"]);
    }
    let e = Settings::from_json_str(r#"{"HOST": "h", "PASSWORD": 98765432123}"#).unwrap_err();
    assert_clean(&format!("{e} {e:?}"), &["98765432123"]);
    // A TOML syntax error on a secret's line does not quote the line.
    let e = Settings::from_toml_str(&format!("HOST = \"h\"\nPASSWORD = \"{PASSWORD}")).unwrap_err();
    assert_clean(&format!("{e} {e:?}"), &[PASSWORD]);
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn plan_debug_and_errors_hide_secrets() {
    let s = toml(&format!(
        "HOST = \"h\"\nUSER = \"app\"\nPASSWORD = \"{PASSWORD}\"\nNAME = \"a\"\n\
         OPTIONS = {{ extra_params = \"Authentication=SqlPassword;Database=b\" }}"
    ));
    let e = s.resolve_with(&opts(&[])).unwrap_err();
    assert_clean(&chain(&e), &[PASSWORD]);

    let s = toml(&format!(
        "HOST = \"h\"\nUSER = \"sa\"\nPASSWORD = \"{PASSWORD}\""
    ));
    let plan = s.resolve_with(&opts(&[])).unwrap();
    assert_clean(
        &format!("{plan:?} {}", plan.connection_string()),
        &[PASSWORD],
    );
    // The driver still gets it.
    assert!(plan.connection_string().to_odbc_string().contains(PASSWORD));
}

fn chain(e: &Error) -> String {
    let mut out = format!("{e} {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(" | {s}"));
        source = s.source();
    }
    out
}

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

/// Resolves every settings form at TRACE and scans the log for secrets; also checks the
/// deprecation warning of ActiveDirectoryPassword and the token-mode note of the refused modes.
#[test]
fn logs_carry_no_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let token = jwt();
    let env = opts(&[("SECRET_VAR", CLIENT_SECRET), ("PW_VAR", PASSWORD)]);
    let texts = [
        format!("HOST = \"h\"\nTOKEN = \"{token}\""),
        "HOST = \"h\"\nTOKEN = { source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret_env = \"SECRET_VAR\" }".to_owned(),
        "HOST = \"h\"\nUSER = \"u@contoso.com\"\nPASSWORD_ENV = \"PW_VAR\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryPassword\" }".to_owned(),
        "HOST = \"h\"\nUSER = \"app\"\nPASSWORD_ENV = \"PW_VAR\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryServicePrincipal\" }".to_owned(),
        "HOST = \"h\"\nOPTIONS = { extra_params = \"Authentication=ActiveDirectoryDefault\" }".to_owned(),
        format!("HOST = \"h\"\nUSER = \"sa\"\nPASSWORD = \"{PASSWORD}\""),
    ];
    tracing::subscriber::with_default(subscriber, || {
        for text in &texts {
            let s = toml(text);
            tracing::debug!(settings = ?s, "loaded");
            match s.resolve_with(&env) {
                Ok(plan) => tracing::debug!(plan = ?plan, "resolved"),
                Err(e) => tracing::debug!(error = %chain(&e), "not resolved"),
            }
        }
    });
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("resolved"), "{log}");
    assert_clean(&log, &[PASSWORD, CLIENT_SECRET, &token, "test-signature"]);
    #[cfg(feature = "password")]
    assert!(
        log.contains("ActiveDirectoryPassword is deprecated"),
        "{log}"
    );
    #[cfg(feature = "default-chain")]
    assert!(log.contains("serving it in token mode"), "{log}");
}

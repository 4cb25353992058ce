use std::collections::HashMap;

use base64::Engine as _;
use mssql_entra::{Error, ResolveOptions, Settings, TargetOs};

/// An unsigned JWT with `exp` one hour ahead (the static source reads `exp`, nothing verifies).
pub fn jwt() -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "aud": "https://database.windows.net/",
        "exp": exp,
        "oid": "00000000-0000-4000-8000-00000000000a",
        "appid": "00000000-0000-4000-8000-00000000000b",
    });
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"test-signature-SECRET")
    )
}

pub fn toml(text: &str) -> Settings {
    Settings::from_toml_str(text).unwrap_or_else(|e| panic!("{e:?}"))
}

pub fn toml_err(text: &str) -> Error {
    match Settings::from_toml_str(text) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

/// Resolve options with a fixed environment and a non-Windows target.
pub fn opts(env: &[(&str, &str)]) -> ResolveOptions {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ResolveOptions::default()
        .with_env(map)
        .with_target_os(TargetOs::NotWindows)
}

/// The key of an `Error::Invalid`, or a panic showing the error.
pub fn invalid_key(e: &Error) -> &str {
    match e {
        Error::Invalid { key, .. } => key,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

/// Points unixODBC at the driver provisioned by `cargo xtask setup` and the driver's TLS
/// (OpenSSL) at the emulator's test CA. Runs once, before any test of this binary starts ODBC.
pub fn init_driver() {
    use std::path::PathBuf;
    use std::sync::OnceLock;
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let dir = std::env::var_os("ODBCSYSINI")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/driver")
            });
        assert!(
            dir.join("odbcinst.ini").exists(),
            "no odbcinst.ini in {}; run `cargo xtask setup`",
            dir.display()
        );
        let ca =
            std::env::temp_dir().join(format!("mssql-entra-facade-it-{}.pem", std::process::id()));
        std::fs::write(&ca, crate::emulator::pki().ca_pem()).expect("write the test CA");
        // Only the driver tests read these, and they all come through here first.
        std::env::set_var("ODBCSYSINI", &dir);
        std::env::set_var("SSL_CERT_FILE", &ca);
        std::env::remove_var("SSL_CERT_DIR");
    });
}

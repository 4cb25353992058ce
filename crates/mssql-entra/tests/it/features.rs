//! A mode whose cargo feature is not compiled in is a runtime error naming the feature; a mode
//! whose feature is compiled in is never refused for that reason. Run under
//! `--no-default-features --features <one>` to see both sides.

use mssql_entra::{Error, TargetOs};

use crate::support::{jwt, opts, toml};

#[test]
fn each_mode_needs_its_feature() {
    let token = jwt();
    let h = "HOST = \"myserver.database.windows.net\"\n";
    let cases: Vec<(String, &str, bool)> = vec![
        (format!("{h}TOKEN = \"{token}\""), "access-token", cfg!(feature = "access-token")),
        (format!("{h}TOKEN = {{ source = \"managed-identity\" }}"), "managed-identity", cfg!(feature = "managed-identity")),
        (format!("{h}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryMsi\" }}"), "managed-identity", cfg!(feature = "managed-identity")),
        (format!("{h}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryManagedIdentity\" }}"), "managed-identity", cfg!(feature = "managed-identity")),
        (format!("{h}TOKEN = {{ source = \"client-secret\", tenant_id = \"t\", client_id = \"c\", client_secret_env = \"S\" }}"), "service-principal", cfg!(feature = "service-principal")),
        (format!("{h}USER = \"c\"\nPASSWORD = \"p\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryServicePrincipal\" }}"), "service-principal", cfg!(feature = "service-principal")),
        (format!("{h}TOKEN = {{ source = \"client-certificate\", tenant_id = \"t\", client_id = \"c\", certificate_file = \"/nonexistent.pem\" }}"), "service-principal-certificate", cfg!(feature = "service-principal-certificate")),
        (format!("{h}TOKEN = {{ source = \"workload-identity\", tenant_id = \"t\", client_id = \"c\", token_file = \"/f\" }}"), "workload-identity", cfg!(feature = "workload-identity")),
        (format!("{h}USER = \"c\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryWorkloadIdentity\" }}"), "workload-identity", cfg!(feature = "workload-identity")),
        (format!("{h}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryIntegrated\" }}"), "integrated", cfg!(feature = "integrated")),
        (format!("{h}USER = \"u@x\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryInteractive\" }}"), "interactive", cfg!(feature = "interactive")),
        (format!("{h}TOKEN = {{ source = \"default\" }}"), "default-chain", cfg!(feature = "default-chain")),
        (format!("{h}OPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryDefault\" }}"), "default-chain", cfg!(feature = "default-chain")),
        (format!("{h}USER = \"u@x\"\nPASSWORD = \"p\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryPassword\" }}"), "password", cfg!(feature = "password")),
        (format!("{h}TOKEN = {{ source = \"developer-tools\" }}"), "developer-tools", cfg!(feature = "developer-tools")),
        (format!("{h}TOKEN = {{ source = \"device-code\", client_id = \"c\" }}"), "device-code", cfg!(feature = "device-code")),
        (format!("{h}USER = \"c\"\nOPTIONS = {{ extra_params = \"Authentication=ActiveDirectoryDeviceCode\" }}"), "device-code", cfg!(feature = "device-code")),
    ];
    // Windows as target, so that Interactive is judged by its feature alone.
    let options = opts(&[("S", "secret")]).with_target_os(TargetOs::Windows);
    for (text, feature, compiled) in cases {
        let result = toml(&text).resolve_with(&options);
        match (compiled, result) {
            (false, Err(Error::AuthModeNotEnabled { feature: f, mode })) => {
                assert_eq!(f, feature, "{text}");
                let e = Error::AuthModeNotEnabled { mode, feature: f };
                assert!(e.to_string().contains(&format!("`{feature}`")), "{e}");
            }
            (false, other) => {
                panic!("{text}: expected AuthModeNotEnabled({feature}), got {other:?}")
            }
            (true, Err(Error::AuthModeNotEnabled { .. })) => {
                panic!("{text}: refused although feature {feature} is compiled in")
            }
            (true, _) => {}
        }
    }
}

#[test]
fn sql_logins_and_dsns_need_no_feature() {
    let plan = toml("HOST = \"h\"\nUSER = \"sa\"\nPASSWORD = \"pw\"")
        .resolve_with(&opts(&[]))
        .unwrap();
    assert_eq!(plan.mode(), mssql_entra::AuthMode::ConnectionString);
    let plan = toml("OPTIONS = { dsn = \"prod\" }")
        .resolve_with(&opts(&[]))
        .unwrap();
    assert_eq!(plan.connection_string().to_odbc_string(), "DSN=prod");
}

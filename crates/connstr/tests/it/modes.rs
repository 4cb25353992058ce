//! The per-mode rules, table-driven: a passing and a failing example for every mode,
//! the access-token form, and the transport-security rule.

use expect_test::{expect, Expect};
use mssql_entra_connstr::{ConnectionString, DangerOptions, TargetOs, ValidateOptions};

fn linux() -> ValidateOptions {
    ValidateOptions {
        target_os: TargetOs::NotWindows,
        ..ValidateOptions::default()
    }
}

fn windows() -> ValidateOptions {
    ValidateOptions {
        target_os: TargetOs::Windows,
        ..ValidateOptions::default()
    }
}

/// The facade's view: it provides the modes the driver refuses in token mode.
fn provided() -> ValidateOptions {
    ValidateOptions {
        token_modes_provided: true,
        ..linux()
    }
}

/// Attribute 1256 (SQL_COPT_SS_ACCESS_TOKEN) will be set.
fn token() -> ValidateOptions {
    ValidateOptions {
        access_token: true,
        ..linux()
    }
}

fn danger(mut options: ValidateOptions) -> ValidateOptions {
    options.danger = DangerOptions {
        allow_unencrypted_token: true,
    };
    options
}

fn check(text: &str, options: ValidateOptions, expect: Expect) {
    let cs = ConnectionString::parse(text).unwrap();
    let actual = match cs.validate(&options) {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("{e:?}\n{e}"),
    };
    expect.assert_eq(&actual);
}

const S: &str = "Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.example,1433;Database=app;";

#[test]
fn sql_password() {
    check(
        &format!("{S}Authentication=SqlPassword;UID=sa;PWD={{}}"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=SqlPassword;UID=sa"),
        linux(),
        expect![[r#"
        MissingPwd { mode: SqlPassword, what: "the login's password" }
        `Authentication=SqlPassword` needs `PWD` (the login's password); add `PWD=...`"#]],
    );
    check(
        &format!("{S}Authentication=SqlPassword;PWD={{p}}"),
        linux(),
        expect![[r#"
        MissingUid { mode: SqlPassword, what: "the SQL login name" }
        `Authentication=SqlPassword` needs `UID` (the SQL login name); add `UID=...`"#]],
    );
}

#[test]
fn msi() {
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMSI;UID=11111111-2222-3333-4444-555555555555"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi;PWD={{x}}"),
        linux(),
        expect![[r#"
        PwdNotAllowed { mode: Msi }
        `Authentication=ActiveDirectoryMsi` takes no `PWD`; remove `PWD` (this mode has no password or secret)"#]],
    );
}

#[test]
fn service_principal() {
    check(
        &format!("{S}Authentication=ActiveDirectoryServicePrincipal;UID=app-id;PWD={{s}}"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryServicePrincipal;UID=app-id"),
        linux(),
        expect![[r#"
        MissingPwd { mode: ServicePrincipal, what: "the client secret" }
        `Authentication=ActiveDirectoryServicePrincipal` needs `PWD` (the client secret); add `PWD=...`"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryServicePrincipal;UID= ;PWD={{s}}"),
        linux(),
        expect![[r#"
        MissingUid { mode: ServicePrincipal, what: "the application (client) id" }
        `Authentication=ActiveDirectoryServicePrincipal` needs `UID` (the application (client) id); add `UID=...`"#]],
    );
}

#[test]
fn password() {
    check(
        &format!("{S}Authentication=ActiveDirectoryPassword;UID=u@example.com;PWD={{p}}"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryPassword;PWD={{p}}"),
        linux(),
        expect![[r#"
        MissingUid { mode: Password, what: "the user principal name" }
        `Authentication=ActiveDirectoryPassword` needs `UID` (the user principal name); add `UID=...`"#]],
    );
}

#[test]
fn integrated() {
    check(
        &format!("{S}Authentication=ActiveDirectoryIntegrated"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryIntegrated;UID=u@example.com"),
        linux(),
        expect![[r#"
        UidNotAllowed { mode: Integrated, source_of_identity: "the Kerberos ticket of the signed-in user" }
        `Authentication=ActiveDirectoryIntegrated` takes no `UID`; remove `UID` (the identity comes from the Kerberos ticket of the signed-in user)"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryIntegrated;PWD={{p}}"),
        linux(),
        expect![[r#"
        PwdNotAllowed { mode: Integrated }
        `Authentication=ActiveDirectoryIntegrated` takes no `PWD`; remove `PWD` (this mode has no password or secret)"#]],
    );
}

#[test]
fn interactive() {
    check(
        &format!("{S}Authentication=ActiveDirectoryInteractive;UID=u@example.com"),
        windows(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryInteractive;UID=u@example.com"),
        linux(),
        expect![[r#"
        WindowsOnly { mode: Interactive }
        `Authentication=ActiveDirectoryInteractive` works only on Windows (on Linux and macOS the driver silently falls back to Kerberos); use ActiveDirectoryDeviceCode or another mode here"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryInteractive"),
        windows(),
        expect![[r#"
        MissingUid { mode: Interactive, what: "the user principal name to sign in" }
        `Authentication=ActiveDirectoryInteractive` needs `UID` (the user principal name to sign in); add `UID=...`"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryInteractive;UID=u@example.com;PWD={{p}}"),
        windows(),
        expect![[r#"
        PwdNotAllowed { mode: Interactive }
        `Authentication=ActiveDirectoryInteractive` takes no `PWD`; remove `PWD` (this mode has no password or secret)"#]],
    );
}

#[test]
fn default() {
    check(
        &format!("{S}Authentication=ActiveDirectoryDefault"),
        provided(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryDefault"),
        linux(),
        expect![[r#"
        TokenModeOnly { mode: Default }
        `Authentication=ActiveDirectoryDefault` is refused by the ODBC driver (`Invalid value specified for connection string attribute 'Authentication'`); remove `Authentication` and connect with an access token from a token source, which is how mssql-entra provides this mode"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryDefault;UID=someone"),
        provided(),
        expect![[r#"
        UidNotAllowed { mode: Default, source_of_identity: "the credential chain (environment, workload identity, managed identity, developer sign-in)" }
        `Authentication=ActiveDirectoryDefault` takes no `UID`; remove `UID` (the identity comes from the credential chain (environment, workload identity, managed identity, developer sign-in))"#]],
    );
}

#[test]
fn managed_identity() {
    check(
        &format!("{S}Authentication=ActiveDirectoryManagedIdentity;UID=client-id"),
        provided(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryManagedIdentity;PWD={{p}}"),
        provided(),
        expect![[r#"
        PwdNotAllowed { mode: ManagedIdentity }
        `Authentication=ActiveDirectoryManagedIdentity` takes no `PWD`; remove `PWD` (this mode has no password or secret)"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryManagedIdentity"),
        linux(),
        expect![[r#"
        TokenModeOnly { mode: ManagedIdentity }
        `Authentication=ActiveDirectoryManagedIdentity` is refused by the ODBC driver (`Invalid value specified for connection string attribute 'Authentication'`); remove `Authentication` and connect with an access token from a token source, which is how mssql-entra provides this mode"#]],
    );
}

#[test]
fn workload_identity() {
    check(
        &format!("{S}Authentication=ActiveDirectoryWorkloadIdentity"),
        provided(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryWorkloadIdentity"),
        linux(),
        expect![[r#"
        TokenModeOnly { mode: WorkloadIdentity }
        `Authentication=ActiveDirectoryWorkloadIdentity` is refused by the ODBC driver (`Invalid value specified for connection string attribute 'Authentication'`); remove `Authentication` and connect with an access token from a token source, which is how mssql-entra provides this mode"#]],
    );
}

#[test]
fn device_code() {
    check(
        &format!("{S}Authentication=ActiveDirectoryDeviceCode"),
        provided(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryDeviceCode;PWD={{p}}"),
        provided(),
        expect![[r#"
        PwdNotAllowed { mode: DeviceCode }
        `Authentication=ActiveDirectoryDeviceCode` takes no `PWD`; remove `PWD` (this mode has no password or secret)"#]],
    );
}

#[test]
fn access_token() {
    check(S, token(), expect!["ok"]);
    check(
        &format!("{S}Trusted_Connection=no;Encrypt=strict"),
        token(),
        expect!["ok"],
    );
    check(
        &format!("{S}UID="),
        token(),
        expect![[r#"
        AccessTokenWithUid
        an access-token connection cannot carry `UID`, even empty (driver error FA005); remove `UID`"#]],
    );
    check(
        &format!("{S}PWD="),
        token(),
        expect![[r#"
        AccessTokenWithPwd
        an access-token connection cannot carry `PWD`, even empty (driver error FA005); remove `PWD`"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi"),
        token(),
        expect![[r#"
        AccessTokenWithAuthentication
        an access-token connection cannot carry `Authentication` (driver error FA005); remove `Authentication`, the token already authenticates"#]],
    );
    check(
        &format!("{S}Authentication="),
        token(),
        expect![[r#"
        AccessTokenWithAuthentication
        an access-token connection cannot carry `Authentication` (driver error FA005); remove `Authentication`, the token already authenticates"#]],
    );
    check(
        &format!("{S}Integrated Security=yes"),
        token(),
        expect![[r#"
        AccessTokenWithTrustedConnection
        an access-token connection cannot carry `Trusted_Connection=yes` (driver error FA005); remove `Trusted_Connection`"#]],
    );
    check(
        &format!("{S}Encrypt=no"),
        token(),
        expect![[r#"
        UnencryptedToken { encrypt: "no", what: "an access token" }
        `Encrypt=no` with an access token lets the driver send the bearer token in clear text; use `Encrypt=yes` or `Encrypt=strict`, or set `ValidateOptions::danger.allow_unencrypted_token` if you accept that"#]],
    );
    check(&format!("{S}Encrypt=no"), danger(token()), expect!["ok"]);
}

#[test]
fn trusted_connection_with_authentication() {
    check(
        &format!("{S}Trusted_Connection=yes"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi;Trusted_Connection=yes"),
        linux(),
        expect![[r#"
        AuthenticationWithTrustedConnection { mode: Msi }
        `Authentication=ActiveDirectoryMsi` cannot be combined with `Trusted_Connection=yes` (driver error FA001); remove `Trusted_Connection`"#]],
    );
}

#[test]
fn transport_security() {
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi;Encrypt=optional"),
        linux(),
        expect![[r#"
        UnencryptedToken { encrypt: "optional", what: "`Authentication=ActiveDirectoryMsi`" }
        `Encrypt=optional` with `Authentication=ActiveDirectoryMsi` lets the driver send the bearer token in clear text; use `Encrypt=yes` or `Encrypt=strict`, or set `ValidateOptions::danger.allow_unencrypted_token` if you accept that"#]],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi;Encrypt=optional"),
        danger(linux()),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryMsi;Encrypt=Strict"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Authentication=ActiveDirectoryDefault;Encrypt=false"),
        provided(),
        expect![[r#"
        UnencryptedToken { encrypt: "false", what: "`Authentication=ActiveDirectoryDefault`" }
        `Encrypt=false` with `Authentication=ActiveDirectoryDefault` lets the driver send the bearer token in clear text; use `Encrypt=yes` or `Encrypt=strict`, or set `ValidateOptions::danger.allow_unencrypted_token` if you accept that"#]],
    );
    check(
        &format!("{S}Authentication=SqlPassword;UID=sa;PWD={{p}};Encrypt=no"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}UID=sa;PWD={{p}};Encrypt=no"),
        linux(),
        expect!["ok"],
    );
    check(
        &format!("{S}Encrypt=perhaps"),
        linux(),
        expect![[r#"
        InvalidEncrypt { value: "perhaps" }
        `Encrypt=perhaps` is not valid; use `yes`/`mandatory`, `strict`, or (unsafe) `no`/`optional`"#]],
    );
}

#[test]
fn bad_values() {
    check(
        &format!("{S}Authentication=MSI"),
        linux(),
        expect![[r#"
        UnknownAuthentication { value: "MSI" }
        `Authentication=MSI` is not a known mode; use one of SqlPassword, ActiveDirectoryMsi, ActiveDirectoryServicePrincipal, ActiveDirectoryPassword, ActiveDirectoryIntegrated, ActiveDirectoryInteractive, ActiveDirectoryDefault, ActiveDirectoryManagedIdentity, ActiveDirectoryWorkloadIdentity, ActiveDirectoryDeviceCode"#]],
    );
    check(
        &format!("{S}TrustServerCertificate=sometimes"),
        linux(),
        expect![[r#"
        InvalidBoolean { key: "TrustServerCertificate", value: "sometimes" }
        `TrustServerCertificate=sometimes` is not a yes/no value; use `yes` or `no`"#]],
    );
    check(
        "Server=s;Database=a\0b",
        linux(),
        expect![[r#"
        NulInValue { key: "Database" }
        the value of `Database` contains a NUL character, which would cut the connection string short; remove it"#]],
    );
    check(&format!("{S}Authentication="), linux(), expect!["ok"]);
}

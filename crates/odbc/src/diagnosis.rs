//! From the driver's diagnostic records (and what we know about the connection) to a cause and a fix.
//!
//! The texts matched here are the real driver's, measured in `../shared/driver-facts.md` (Q1–Q4);
//! the unit tests below feed them in verbatim.

use std::fmt;

use mssql_entra_connstr::Authentication;
use mssql_entra_token::{PrincipalKind, SqlSid, TokenError, UnverifiedClaims};
use time::OffsetDateTime;

use crate::error::{DiagRecord, ModeName};
use crate::retry::is_transient_native_error;
use crate::version::DriverVersion;

/// What we think went wrong, with a fix and a stable anchor into `docs/troubleshooting.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Which cause; match on it.
    pub kind: DiagnosisKind,
    /// One sentence on what happened.
    pub summary: String,
    /// What to do about it (may hold a T-SQL statement to run).
    pub fix: String,
    /// Where the long explanation lives, e.g. `troubleshooting.md#login-failed-object-id`.
    pub anchor: &'static str,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (see {})", self.summary, self.fix, self.anchor)
    }
}

/// The causes we recognise. Each has a stable anchor ([`DiagnosisKind::anchor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosisKind {
    /// IM002: the driver manager does not know the driver name.
    DriverNotInstalled,
    /// FA001, FA003, FA005: keywords that cannot go together (the connstr rules).
    ConnectionStringConflict,
    /// 08001 "Invalid value specified for connection string attribute 'Authentication'".
    AuthenticationValueRefused,
    /// A mode the driver refuses; we provide it in token mode.
    ProvidedInTokenMode,
    /// The installed driver is older than the mode needs.
    ModeNotSupportedByDriver,
    /// ActiveDirectoryInteractive off Windows.
    InteractiveNotWindows,
    /// 18456 with an application token: the database user was probably created from the object id.
    LoginFailedObjectId,
    /// 18456 with a user token: no database user for this user.
    LoginFailedNoUser,
    /// 18456 and nothing more to say.
    LoginFailed,
    /// 18456 with a token that had already expired.
    TokenExpired,
    /// 18456 with a token for another resource.
    WrongAudience,
    /// 4060: the database in `Database=` cannot be opened (usually: it does not exist).
    CannotOpenDatabase,
    /// 33130: principal not found in Entra ID (CREATE USER … FROM EXTERNAL PROVIDER).
    PrincipalNotFound,
    /// CE269: the identity endpoint could not be reached.
    IdentityEndpointUnreachable,
    /// CE275: the identity endpoint answered with an HTTP error status.
    IdentityEndpointHttpStatus,
    /// CE276: the identity endpoint's answer had no token the driver could find.
    NoTokenInResponse,
    /// CE274: the STS URL is not https.
    StsNotHttps,
    /// HYT00 after the driver failed to get a token.
    TokenFetchTimedOut,
    /// The Kerberos path (ActiveDirectoryIntegrated) has no credentials.
    KerberosUnavailable,
    /// TLS certificate verification failed.
    CertificateVerifyFailed,
    /// 08001 native 20: the server does not support encryption.
    ServerRefusedEncryption,
    /// 08001 native 26: the server closed the connection during the pre-login handshake.
    HandshakeFailed,
    /// 08S01: the connection broke.
    LinkFailure,
    /// The server could not be reached at all (refused, no route, name not found).
    ServerUnreachable,
    /// HYT00 with nothing more specific.
    LoginTimeout,
    /// An Azure SQL transient error (40613 and friends) that outlasted our retries.
    TransientServerError,
    /// The token source failed before anything was sent.
    TokenSourceFailed,
}

impl DiagnosisKind {
    /// Every kind there is, for documentation checks and tooling (each has a section in
    /// `docs/troubleshooting.md`). A new kind goes here too.
    pub const ALL: [DiagnosisKind; 27] = [
        DiagnosisKind::DriverNotInstalled,
        DiagnosisKind::ConnectionStringConflict,
        DiagnosisKind::AuthenticationValueRefused,
        DiagnosisKind::ProvidedInTokenMode,
        DiagnosisKind::ModeNotSupportedByDriver,
        DiagnosisKind::InteractiveNotWindows,
        DiagnosisKind::LoginFailedObjectId,
        DiagnosisKind::LoginFailedNoUser,
        DiagnosisKind::LoginFailed,
        DiagnosisKind::TokenExpired,
        DiagnosisKind::WrongAudience,
        DiagnosisKind::PrincipalNotFound,
        DiagnosisKind::IdentityEndpointUnreachable,
        DiagnosisKind::IdentityEndpointHttpStatus,
        DiagnosisKind::NoTokenInResponse,
        DiagnosisKind::StsNotHttps,
        DiagnosisKind::TokenFetchTimedOut,
        DiagnosisKind::KerberosUnavailable,
        DiagnosisKind::CertificateVerifyFailed,
        DiagnosisKind::ServerRefusedEncryption,
        DiagnosisKind::HandshakeFailed,
        DiagnosisKind::LinkFailure,
        DiagnosisKind::ServerUnreachable,
        DiagnosisKind::LoginTimeout,
        DiagnosisKind::TransientServerError,
        DiagnosisKind::TokenSourceFailed,
        DiagnosisKind::CannotOpenDatabase,
    ];

    /// The anchor into `docs/troubleshooting.md`.
    pub const fn anchor(self) -> &'static str {
        match self {
            DiagnosisKind::DriverNotInstalled => "troubleshooting.md#driver-not-installed",
            DiagnosisKind::ConnectionStringConflict => {
                "troubleshooting.md#connection-string-conflict"
            }
            DiagnosisKind::AuthenticationValueRefused => {
                "troubleshooting.md#authentication-value-refused"
            }
            DiagnosisKind::ProvidedInTokenMode => "troubleshooting.md#mode-provided-in-token-mode",
            DiagnosisKind::ModeNotSupportedByDriver => {
                "troubleshooting.md#mode-not-supported-by-driver"
            }
            DiagnosisKind::InteractiveNotWindows => "troubleshooting.md#interactive-not-windows",
            DiagnosisKind::LoginFailedObjectId => "troubleshooting.md#login-failed-object-id",
            DiagnosisKind::LoginFailedNoUser => "troubleshooting.md#login-failed-no-user",
            DiagnosisKind::LoginFailed => "troubleshooting.md#login-failed",
            DiagnosisKind::TokenExpired => "troubleshooting.md#token-expired",
            DiagnosisKind::WrongAudience => "troubleshooting.md#wrong-audience",
            DiagnosisKind::PrincipalNotFound => "troubleshooting.md#principal-not-found",
            DiagnosisKind::CannotOpenDatabase => "troubleshooting.md#cannot-open-database",
            DiagnosisKind::IdentityEndpointUnreachable => {
                "troubleshooting.md#identity-endpoint-unreachable"
            }
            DiagnosisKind::IdentityEndpointHttpStatus => {
                "troubleshooting.md#identity-endpoint-http-status"
            }
            DiagnosisKind::NoTokenInResponse => "troubleshooting.md#no-token-in-response",
            DiagnosisKind::StsNotHttps => "troubleshooting.md#sts-not-https",
            DiagnosisKind::TokenFetchTimedOut => "troubleshooting.md#token-fetch-timeout",
            DiagnosisKind::KerberosUnavailable => "troubleshooting.md#kerberos-unavailable",
            DiagnosisKind::CertificateVerifyFailed => {
                "troubleshooting.md#certificate-verify-failed"
            }
            DiagnosisKind::ServerRefusedEncryption => {
                "troubleshooting.md#server-refused-encryption"
            }
            DiagnosisKind::HandshakeFailed => "troubleshooting.md#handshake-failed",
            DiagnosisKind::LinkFailure => "troubleshooting.md#link-failure",
            DiagnosisKind::ServerUnreachable => "troubleshooting.md#server-unreachable",
            DiagnosisKind::LoginTimeout => "troubleshooting.md#login-timeout",
            DiagnosisKind::TransientServerError => "troubleshooting.md#transient-server-error",
            DiagnosisKind::TokenSourceFailed => "troubleshooting.md#token-source-failed",
        }
    }
}

/// How the failed connection authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginMode {
    /// Access token from a token source (attribute 1256).
    Token,
    /// The driver's own `Authentication=` mode.
    Driver(Authentication),
    /// No Entra mode (SQL login, DSN, …).
    Plain,
}

/// What we know besides the records.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) mode: LoginMode,
    /// The claims of the token we sent (token mode only).
    pub(crate) claims: Option<UnverifiedClaims>,
    /// The resource the token should be for, e.g. `https://database.windows.net/`.
    pub(crate) expected_resource: Option<String>,
    /// When the attempt was made.
    pub(crate) now: OffsetDateTime,
    /// The `Driver=` name, if any.
    pub(crate) driver: Option<String>,
}

impl Context {
    #[cfg(test)]
    pub(crate) fn plain() -> Self {
        Self {
            mode: LoginMode::Plain,
            claims: None,
            expected_resource: None,
            now: OffsetDateTime::now_utc(),
            driver: None,
        }
    }
}

fn make(kind: DiagnosisKind, summary: impl Into<String>, fix: impl Into<String>) -> Diagnosis {
    Diagnosis {
        kind,
        summary: summary.into(),
        fix: fix.into(),
        anchor: kind.anchor(),
    }
}

impl Diagnosis {
    pub(crate) fn provided_in_token_mode(mode: Authentication) -> Self {
        make(
            DiagnosisKind::ProvidedInTokenMode,
            format!("The ODBC driver refuses `Authentication={mode}` (it answers `Invalid value specified for connection string attribute 'Authentication'`)."),
            "Use token mode: the mssql-entra facade provides this mode with a token source from mssql-entra-token and hands the token to the driver (attribute 1256).",
        )
    }

    pub(crate) fn interactive_not_windows() -> Self {
        make(
            DiagnosisKind::InteractiveNotWindows,
            "ActiveDirectoryInteractive works only on Windows; elsewhere the driver falls into its Kerberos path and reports a misleading ActiveDirectoryIntegrated error.",
            "Sign in with the device code flow (token mode, feature `device-code`) or reuse an Azure CLI sign-in (`developer-tools`).",
        )
    }

    pub(crate) fn driver_too_old(
        mode: ModeName,
        installed: DriverVersion,
        minimum: DriverVersion,
    ) -> Self {
        make(
            DiagnosisKind::ModeNotSupportedByDriver,
            format!("{mode} needs Microsoft ODBC Driver {minimum} or later; the installed driver is {installed}."),
            "Install Microsoft ODBC Driver 18 (`cargo xtask setup` provisions it for this project; elsewhere see Microsoft's install page for your OS).",
        )
    }

    pub(crate) fn token_source_failed(error: &TokenError) -> Self {
        make(
            DiagnosisKind::TokenSourceFailed,
            "The token source could not produce an access token, so the driver was never called.",
            if error.is_transient() {
                "The failure looks transient (network or throttling); retry later, and check the identity endpoint's reachability."
            } else {
                "Fix the credential configuration named in the error (mssql-entra-token says which field)."
            },
        )
    }
}

/// The diagnosis for a failed connect, or `None` when nothing matches.
pub(crate) fn diagnose(records: &[DiagRecord], ctx: &Context) -> Option<Diagnosis> {
    let has_state = |s: &str| records.iter().any(|r| r.sqlstate.eq_ignore_ascii_case(s));
    let find_state = |s: &str| records.iter().find(|r| r.sqlstate.eq_ignore_ascii_case(s));
    let has_native = |n: i32| records.iter().any(|r| r.native_error == n);
    let text_has = |needle: &str| {
        let needle = needle.to_ascii_lowercase();
        records
            .iter()
            .any(|r| r.message.to_ascii_lowercase().contains(&needle))
    };
    let timed_out = has_state("HYT00");
    let timeout_note = if timed_out {
        " The driver waited until the login timeout before reporting it (it does not fail fast after a token-fetch failure)."
    } else {
        ""
    };

    // unixODBC answers an unknown `Driver=` name (and a registered driver whose library is missing)
    // with `[01000] Can't open lib '<name>' : file not found` (measured, unixODBC 2.3.11), and an
    // unknown DSN with IM002.
    if has_state("IM002") || text_has("Can't open lib") {
        let driver = ctx
            .driver
            .as_deref()
            .unwrap_or("the driver or DSN named in the connection string");
        return Some(make(
            DiagnosisKind::DriverNotInstalled,
            format!("The ODBC driver manager cannot load `{driver}`: no driver or DSN of that name is registered, or its library is missing."),
            "Install Microsoft ODBC Driver 18 for SQL Server, or run `cargo xtask setup` and export ODBCSYSINI=<repo>/target/driver; `odbcinst -q -d` lists the installed driver names, and `Driver=` must match one exactly.",
        ));
    }
    if has_state("FA005") {
        return Some(make(
            DiagnosisKind::ConnectionStringConflict,
            "The driver refuses an access token together with UID, PWD, Authentication or Trusted_Connection (FA005).",
            "Remove UID, PWD, Authentication and Trusted_Connection from the connection string in token mode (mssql-entra-connstr's validate with access_token = true reports which one).",
        ));
    }
    if has_state("FA001") {
        return Some(make(
            DiagnosisKind::ConnectionStringConflict,
            "The driver refuses Authentication= together with Trusted_Connection=yes (FA001).",
            "Remove Trusted_Connection; the Authentication mode decides how to sign in.",
        ));
    }
    if let Some(r) = find_state("FA003") {
        let mode = quoted_after(&r.message, "Authentication option is '").unwrap_or("this mode");
        return Some(make(
            DiagnosisKind::ConnectionStringConflict,
            format!("The driver needs both UID and PWD with Authentication={mode} (FA003)."),
            "Set UID (the client id or user name) and PWD (the secret or password); the facade's USER and PASSWORD settings fill them.",
        ));
    }
    if text_has("Invalid value specified for connection string attribute 'Authentication'") {
        return Some(make(
            DiagnosisKind::AuthenticationValueRefused,
            "The driver does not implement this Authentication= value (08001); on Linux it refuses ActiveDirectoryDefault, ManagedIdentity, WorkloadIdentity and DeviceCode.",
            "Use token mode for these modes: the mssql-entra facade acquires the token itself and passes it with attribute 1256.",
        ));
    }

    // Azure SQL sends 4060 and then 18456 for a database that does not exist (measured with the
    // emulator's Azure SQL texts); the 18456 there says nothing about the principal.
    if has_native(4060) {
        return Some(make(
            DiagnosisKind::CannotOpenDatabase,
            "The server cannot open the database named in Database= (4060), so the login failed.",
            "Check the spelling of Database= and that the database exists on this server (Azure SQL: on this logical server, not in another one); a database being moved or resumed gives 40613 instead.",
        ));
    }
    if has_native(18456) {
        return Some(diagnose_login_failed(ctx));
    }
    if has_native(33130) {
        return Some(make(
            DiagnosisKind::PrincipalNotFound,
            "Azure SQL could not find the principal in Microsoft Entra ID (33130), or its type is not supported.",
            "Check the display name (CREATE USER [name] FROM EXTERNAL PROVIDER needs the exact app or group display name, or the user's UPN), or create the user from its SID: `mssql-entra sid` prints `CREATE USER [name] WITH SID = 0x…, TYPE = E;`.",
        ));
    }

    // Token acquisition by the driver itself (driver modes).
    if let Some(r) = find_state("CE269") {
        let curl = number_after(&r.message, "Error ").unwrap_or(0);
        let (summary, fix) = if curl == 60 {
            (
                "The driver could not verify the identity endpoint's TLS certificate (CE269, curl error 60).".to_owned(),
                "The driver's HTTPS calls trust only /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE, SSL_CERT_DIR and CURL_CA_BUNDLE are ignored, measured): add the CA to the system bundle, or use token mode, whose sources honour your trust settings.",
            )
        } else if curl == 1 {
            (
                "The driver refused a non-https STS URL (CE269, curl error 1: unsupported protocol).".to_owned(),
                "The server's FEDAUTHINFO must point to an https STS; for tests, serve the STS over https.",
            )
        } else {
            (
                format!("The driver could not reach the identity endpoint (CE269, curl error {curl}).{timeout_note}"),
                "With ActiveDirectoryMsi the driver calls http://169.254.169.254 (or IDENTITY_ENDPOINT with IDENTITY_HEADER): check that the process runs where a managed identity exists and that the endpoint is reachable; token mode with a managed-identity source caches the token and reports the failure at once.",
            )
        };
        return Some(make(
            DiagnosisKind::IdentityEndpointUnreachable,
            summary,
            fix,
        ));
    }
    if has_state("CE274") {
        return Some(make(
            DiagnosisKind::StsNotHttps,
            format!("The driver refused a non-https STS URL (CE274: Invalid authorization: not a HTTPS URL).{timeout_note}"),
            "The STS URL comes from the server's FEDAUTHINFO and must be https.",
        ));
    }
    if let Some(r) = find_state("CE275") {
        let status = number_after(&r.message, "HTTP status ");
        let status_text = status.map_or_else(|| "an error".to_owned(), |s| s.to_string());
        let fix = match status {
            Some(401) | Some(400) => "The identity provider rejected the credential: check UID (client id or user) and PWD (secret or password), and that the app or user exists in the tenant.",
            Some(41354) => "The endpoint could not be reached at all (the driver reports the bogus status 41354 then): check the managed identity endpoint.",
            _ => "Check the identity endpoint (for ActiveDirectoryMsi: that a managed identity is assigned, and the UID names it); the driver retries IMDS 4 times over about 7 s before giving up.",
        };
        return Some(make(
            DiagnosisKind::IdentityEndpointHttpStatus,
            format!("The identity endpoint answered HTTP {status_text} when the driver asked for a token (CE275).{timeout_note}"),
            fix,
        ));
    }
    if has_state("CE276") {
        return Some(make(
            DiagnosisKind::NoTokenInResponse,
            format!("The identity endpoint answered, but the driver found no `\"access_token\":\"` in the body (CE276).{timeout_note}"),
            "The driver searches the body literally: a JSON answer with a space after the colon is not understood. Use token mode (mssql-entra-token parses JSON properly) or fix the endpoint to emit compact JSON.",
        ));
    }
    let kerberos = text_has("Kerberos") || text_has("SSPI") || has_native(458752);
    if kerberos {
        if ctx.mode == LoginMode::Driver(Authentication::Interactive) {
            return Some(Diagnosis::interactive_not_windows());
        }
        return Some(make(
            DiagnosisKind::KerberosUnavailable,
            "ActiveDirectoryIntegrated needs a Kerberos ticket and there is none (the driver reports `No Kerberos credentials available` / `Cannot generate SSPI context`).",
            "Run `kinit user@REALM` (or configure a keytab) before connecting, or use token mode with another credential.",
        ));
    }
    if has_state("FA004") {
        return Some(make(
            DiagnosisKind::TokenFetchTimedOut,
            format!("The driver could not get a token from Microsoft Entra ID (FA004).{timeout_note}"),
            "Check the credential and the identity endpoint; token mode reports token failures directly, without waiting for the login timeout.",
        ));
    }

    if text_has("certificate verify failed") {
        let name_mismatch = text_has("subject name does not match");
        return Some(make(
            DiagnosisKind::CertificateVerifyFailed,
            if name_mismatch {
                "The server's TLS certificate does not name the host in Server= (certificate verify failed: subject name does not match host name)."
            } else {
                "The server's TLS certificate is not trusted (certificate verify failed: unable to get local issuer certificate)."
            },
            "Trust the issuing CA (the driver's TDS TLS honours SSL_CERT_FILE and SSL_CERT_DIR), or set HostNameInCertificate= to the name in the certificate; never use TrustServerCertificate=yes in production.",
        ));
    }
    if has_native(20) && text_has("Encryption not supported") {
        return Some(make(
            DiagnosisKind::ServerRefusedEncryption,
            "The server does not support encryption, and the connection requires it (08001, native 20).",
            "Enable TLS on the server. Do not switch to Encrypt=no with Entra ID: the driver would then send the bearer token in clear text.",
        ));
    }
    if has_native(26) || text_has("prelogin failure") {
        return Some(make(
            DiagnosisKind::HandshakeFailed,
            "The server closed the connection during the pre-login handshake (08001, native 26).",
            "Check that Server= points to SQL Server on the right port (not another service), and that the server accepts new connections.",
        ));
    }
    if has_state("08S01") {
        return Some(make(
            DiagnosisKind::LinkFailure,
            "The connection to the server broke during the login (08S01 communication link failure).",
            "Often the server rejected the login by closing the socket (a gateway or firewall); check the server's log, firewall rules and that the token or credential is for this server.",
        ));
    }
    // Measured (closed port on 127.0.0.1): HYT00, then `[08001] native=10057 TCP Provider: Error
    // code 0x2749` and `A network-related or instance-specific error ... Server is not found or
    // not accessible.`
    if text_has("Server is not found or not accessible")
        || text_has("Connection refused")
        || has_native(10057)
        || has_native(10061)
        || text_has("Unable to establish connection")
        || text_has("Host is unknown")
        || has_native(11001)
    {
        return Some(make(
            DiagnosisKind::ServerUnreachable,
            "The server could not be reached (connection refused, no route, or the name does not resolve).",
            "Check Server= (host and port, `tcp:host,1433`), DNS, and that the firewall allows this client.",
        ));
    }
    if let Some(r) = records
        .iter()
        .find(|r| is_transient_native_error(r.native_error))
    {
        return Some(make(
            DiagnosisKind::TransientServerError,
            format!("Azure SQL reported a transient error ({}) that lasted longer than the retries allowed.", r.native_error),
            "Retry later, or raise RetryPolicy's max_attempts/max_elapsed; 40613 means the database is being moved or is waking up.",
        ));
    }
    if timed_out {
        // odbc-api reports only the first record, so HYT00 often stands alone here: the server did
        // not answer, refused the connection (the driver keeps retrying a refused port until the
        // timeout, measured), or, in the driver's own Entra modes, its token fetch failed.
        let fix = match ctx.mode {
            LoginMode::Driver(mode @ (Authentication::Msi
            | Authentication::ServicePrincipal
            | Authentication::Password)) => format!(
                "Check that Server= (host, port) is reachable; with {mode} the driver also reports a failed token fetch this way, after the whole login timeout, so check the identity endpoint and the credential too (token mode reports token failures at once)."
            ),
            _ => "Check that Server= (host and port, `tcp:host,1433`) is reachable and the server is listening; raise ConnectorOptions::login_timeout for slow networks.".to_owned(),
        };
        return Some(make(
            DiagnosisKind::LoginTimeout,
            "The login did not complete within the login timeout (HYT00): the server did not answer, refused the connection, or the login stalled.",
            fix,
        ));
    }
    None
}

fn diagnose_login_failed(ctx: &Context) -> Diagnosis {
    let Some(claims) = ctx.claims.as_ref().filter(|_| ctx.mode == LoginMode::Token) else {
        let fix = match ctx.mode {
            LoginMode::Driver(mode) if mode.is_entra() => "Make sure the database has a user for this identity: in the database, `CREATE USER [name] FROM EXTERNAL PROVIDER;` (or WITH SID = <application id as SID>, TYPE = E for apps and managed identities; `mssql-entra sid` prints it), then grant roles.",
            _ => "Check the login name and password, and that the login or contained user exists in this database.",
        };
        return make(
            DiagnosisKind::LoginFailed,
            "The server rejected the login (18456).",
            fix,
        );
    };
    if let Some(exp) = claims.exp {
        if exp <= ctx.now {
            return make(
                DiagnosisKind::TokenExpired,
                format!("The access token had expired when it was sent (exp {exp})."),
                "Use a refreshing token source wrapped in CachedTokenSource instead of a fixed token; a static token dies after 60–90 minutes.",
            );
        }
    }
    if let Some(expected) = ctx.expected_resource.as_deref() {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        if !claims.aud.is_empty() && !claims.aud.iter().any(|a| norm(a) == norm(expected)) {
            return make(
                DiagnosisKind::WrongAudience,
                format!(
                    "The access token is for {} but the server expects {expected}.",
                    claims.aud.join(", ")
                ),
                "Request the token for the database scope (`https://database.windows.net/.default`; sovereign clouds have their own, see mssql_entra_token::Cloud).",
            );
        }
    }
    match claims.principal_kind() {
        Some(PrincipalKind::Application) => {
            let appid = claims.application_id().unwrap_or_default();
            let app_sid = SqlSid::from_guid_str(appid).ok();
            let oid_sid = claims
                .oid
                .as_deref()
                .and_then(|oid| SqlSid::from_guid_str(oid).ok());
            let oid_text = claims.oid.as_deref().unwrap_or("unknown");
            match app_sid {
                Some(sid) => make(
                    DiagnosisKind::LoginFailedObjectId,
                    format!(
                        "Login failed for an application (appid {appid}, object id {oid_text}). Azure SQL maps applications and managed identities by application id; the database user was probably created from the object id{} or does not exist.",
                        oid_sid.map(|s| format!(" (SID {s})")).unwrap_or_default()
                    ),
                    format!(
                        "Create the user from the application id: `CREATE USER [{appid}] WITH SID = {sid}, TYPE = E;` (any name works with WITH SID; drop the user made from the object id first), then grant its roles."
                    ),
                ),
                None => make(
                    DiagnosisKind::LoginFailed,
                    "Login failed for an application token whose application id is not a GUID.",
                    "Check the token source: an Azure SQL token carries `appid` or `azp`.",
                ),
            }
        }
        Some(PrincipalKind::User) => {
            let name = claims
                .upn
                .as_deref()
                .or(claims.username.as_deref())
                .unwrap_or("user@example.com");
            let by_sid = claims
                .oid
                .as_deref()
                .and_then(|oid| SqlSid::from_guid_str(oid).ok())
                .map(|sid| format!(" or `CREATE USER [{name}] WITH SID = {sid}, TYPE = E;`"))
                .unwrap_or_default();
            make(
                DiagnosisKind::LoginFailedNoUser,
                format!("Login failed for the user {name}: the database probably has no user for them (Azure SQL maps users by object id)."),
                format!("Run `CREATE USER [{name}] FROM EXTERNAL PROVIDER;`{by_sid}, then grant its roles."),
            )
        }
        None => make(
            DiagnosisKind::LoginFailed,
            "The server rejected the access token (18456), and the token does not say whose it is.",
            "Check that the token is an Azure SQL access token from the right tenant.",
        ),
    }
}

/// The text between `prefix` and the next `'`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let start = text.find(prefix)? + prefix.len();
    let len = text[start..].find('\'')?;
    Some(&text[start..start + len])
}

/// The decimal number right after `prefix`.
fn number_after(text: &str, prefix: &str) -> Option<u32> {
    let start = text.find(prefix)? + prefix.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const PREFIX: &str = "[Microsoft][ODBC Driver 18 for SQL Server]";

    fn rec(state: &str, native: i32, text: &str) -> DiagRecord {
        DiagRecord::new(state, native, &format!("{PREFIX}{text}"))
    }

    fn kind(records: &[DiagRecord], ctx: &Context) -> Option<DiagnosisKind> {
        diagnose(records, ctx).map(|d| d.kind)
    }

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    fn token_ctx(claims: serde_json::Value) -> Context {
        Context {
            mode: LoginMode::Token,
            claims: Some(UnverifiedClaims::from_jwt(&jwt(claims)).expect("test JWT")),
            expected_resource: Some("https://database.windows.net/".to_owned()),
            now: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid"),
            driver: None,
        }
    }

    const LOGIN_FAILED: &str = "[SQL Server]Login failed for user '<token-identified principal>'.";

    #[test]
    fn app_token_18456_gives_the_create_user_statement_from_the_application_id() {
        let ctx = token_ctx(serde_json::json!({
            "aud": "https://database.windows.net/",
            "appid": "619a4449-b4aa-4383-a2a9-7c365106c5e7",
            "oid": "11111111-2222-3333-4444-555555555555",
            "idtyp": "app",
            "exp": 1_900_000_000,
        }));
        let d = diagnose(&[rec("28000", 18456, LOGIN_FAILED)], &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::LoginFailedObjectId);
        assert_eq!(d.anchor, "troubleshooting.md#login-failed-object-id");
        assert!(
            d.fix.contains("CREATE USER [619a4449-b4aa-4383-a2a9-7c365106c5e7] WITH SID = 0x49449A61AAB48343A2A97C365106C5E7, TYPE = E;"),
            "{}",
            d.fix
        );
        assert!(
            d.summary.contains("11111111-2222-3333-4444-555555555555"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn user_token_18456_suggests_from_external_provider() {
        let ctx = token_ctx(serde_json::json!({
            "aud": "https://database.windows.net",
            "oid": "619a4449-b4aa-4383-a2a9-7c365106c5e7",
            "upn": "alice@contoso.example",
            "scp": "user_impersonation",
            "exp": 1_900_000_000,
        }));
        let d = diagnose(&[rec("28000", 18456, LOGIN_FAILED)], &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::LoginFailedNoUser);
        assert!(
            d.fix
                .contains("CREATE USER [alice@contoso.example] FROM EXTERNAL PROVIDER;"),
            "{}",
            d.fix
        );
        assert!(
            d.fix
                .contains("WITH SID = 0x49449A61AAB48343A2A97C365106C5E7, TYPE = E;"),
            "{}",
            d.fix
        );
    }

    #[test]
    fn expired_and_wrong_audience_tokens_are_named() {
        let expired = token_ctx(serde_json::json!({
            "aud": "https://database.windows.net/", "appid": "619a4449-b4aa-4383-a2a9-7c365106c5e7",
            "idtyp": "app", "exp": 1_700_000_000,
        }));
        assert_eq!(
            kind(&[rec("28000", 18456, LOGIN_FAILED)], &expired),
            Some(DiagnosisKind::TokenExpired)
        );
        let graph = token_ctx(serde_json::json!({
            "aud": "https://graph.microsoft.com", "appid": "619a4449-b4aa-4383-a2a9-7c365106c5e7",
            "idtyp": "app", "exp": 1_900_000_000,
        }));
        let d = diagnose(&[rec("28000", 18456, LOGIN_FAILED)], &graph).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::WrongAudience);
        assert!(
            d.summary.contains("https://graph.microsoft.com"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn driver_mode_18456_is_a_plain_login_failure() {
        let mut ctx = Context::plain();
        ctx.mode = LoginMode::Driver(Authentication::Msi);
        assert_eq!(
            kind(&[rec("28000", 18456, LOGIN_FAILED)], &ctx),
            Some(DiagnosisKind::LoginFailed)
        );
    }

    #[test]
    fn connection_string_conflicts_map_to_the_connstr_rules() {
        let ctx = Context::plain();
        for r in [
            rec("FA005", 0, "Cannot use Access Token with any of the following options: Authentication, Integrated Security, User, Password."),
            rec("FA001", 0, "Cannot use Authentication option with Integrated Security option."),
            rec("FA003", 0, "[SQL Server]Both User and Password options must be specified, if Authentication option is 'ActiveDirectoryServicePrincipal'."),
        ] {
            assert_eq!(kind(&[r], &ctx), Some(DiagnosisKind::ConnectionStringConflict));
        }
        let d = diagnose(
            &[rec("FA003", 0, "[SQL Server]Both User and Password options must be specified, if Authentication option is 'ActiveDirectoryPassword'.")],
            &ctx,
        )
        .expect("diagnosed");
        assert!(
            d.summary.contains("ActiveDirectoryPassword"),
            "{}",
            d.summary
        );
        assert_eq!(
            kind(
                &[rec(
                    "08001",
                    0,
                    "Invalid value specified for connection string attribute 'Authentication'"
                )],
                &ctx
            ),
            Some(DiagnosisKind::AuthenticationValueRefused)
        );
    }

    #[test]
    fn identity_endpoint_failures_after_a_login_timeout() {
        let mut ctx = Context::plain();
        ctx.mode = LoginMode::Driver(Authentication::Msi);
        let timeout = rec("HYT00", 0, "Login timeout expired");
        let fa004 = rec("FA004", 0, "Failed to authenticate the user '' in Active Directory (Authentication option is 'ActiveDirectoryMSI').\nError code 0xA190; state 41360");
        let tail = [
            rec("08001", 258, "TCP Provider: Timeout error [258]. "),
            rec(
                "08001",
                258,
                "Unable to complete login process due to delay in login response",
            ),
        ];

        let unreachable = rec("CE269", 0, "Error 7 sending request to http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fdatabase.windows.net%2F");
        let bogus = rec(
            "CE275",
            0,
            "Error requesting access token, HTTP status 41354, expected 200",
        );
        let mut all = vec![timeout.clone(), fa004.clone(), unreachable, bogus];
        all.extend(tail.clone());
        let d = diagnose(&all, &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::IdentityEndpointUnreachable);
        assert!(
            d.summary.contains("curl error 7") && d.summary.contains("login timeout"),
            "{}",
            d.summary
        );

        let status = rec(
            "CE275",
            0,
            "Error requesting access token, HTTP status 500, expected 200",
        );
        let d = diagnose(&[timeout.clone(), fa004.clone(), status], &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::IdentityEndpointHttpStatus);
        assert!(d.summary.contains("HTTP 500"), "{}", d.summary);

        let body = rec("CE276", 0, "Could not find access token in response: {\"access_token\": \"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2VjcmV0c2lnbmF0dXJl\", \"expires_in\": \"3599\"}");
        assert!(
            !body.message.contains("eyJ"),
            "redacted on construction: {}",
            body.message
        );
        assert_eq!(
            kind(&[timeout.clone(), fa004.clone(), body], &ctx),
            Some(DiagnosisKind::NoTokenInResponse)
        );

        let sts = rec("CE274", 0, "Invalid authorization: not a HTTPS URL");
        assert_eq!(
            kind(&[fa004.clone(), sts], &ctx),
            Some(DiagnosisKind::StsNotHttps)
        );

        let trust = rec("CE269", 0, "Error 60 sending request to https://login.microsoftonline.com/tenant/oauth2/token?api-version=2015-06-01");
        let d = diagnose(&[fa004.clone(), trust], &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::IdentityEndpointUnreachable);
        assert!(
            d.fix.contains("/etc/ssl/certs/ca-certificates.crt"),
            "{}",
            d.fix
        );

        // Only the first record (what odbc-api 29 reports today): a timeout whose fix names both causes.
        let d = diagnose(&[timeout], &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::LoginTimeout);
        assert!(
            d.fix.contains("ActiveDirectoryMsi") && d.fix.contains("token fetch"),
            "{}",
            d.fix
        );
        ctx.mode = LoginMode::Token;
        assert_eq!(
            kind(&[rec("HYT00", 0, "Login timeout expired")], &ctx),
            Some(DiagnosisKind::LoginTimeout)
        );
    }

    #[test]
    fn interactive_off_windows_and_kerberos() {
        let mut ctx = Context::plain();
        let fa004 = rec("FA004", 0, "Failed to authenticate the user '' in Active Directory (Authentication option is 'ActiveDirectoryIntegrated').\nError code 0xA190; state 41360\nError acquiring Kerberos credentials\nGSS status: No credentials were supplied");
        ctx.mode = LoginMode::Driver(Authentication::Interactive);
        assert_eq!(
            kind(std::slice::from_ref(&fa004), &ctx),
            Some(DiagnosisKind::InteractiveNotWindows)
        );
        ctx.mode = LoginMode::Driver(Authentication::Integrated);
        assert_eq!(
            kind(&[fa004], &ctx),
            Some(DiagnosisKind::KerberosUnavailable)
        );
        let sspi = [
            rec("HY000", 458752, "SSPI Provider: No credentials were supplied, or the credentials were unavailable or inaccessible. No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)"),
            rec("HY000", 0, "Cannot generate SSPI context"),
        ];
        assert_eq!(kind(&sspi, &ctx), Some(DiagnosisKind::KerberosUnavailable));
    }

    #[test]
    fn transport_failures() {
        let ctx = Context::plain();
        let enc = [
            rec("08001", 20, "Encryption not supported on SQL Server."),
            rec("08001", 20, "Client unable to establish connection"),
        ];
        assert_eq!(
            kind(&enc, &ctx),
            Some(DiagnosisKind::ServerRefusedEncryption)
        );
        let cert = [rec("08001", -1, "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:unable to get local issuer certificate]")];
        let d = diagnose(&cert, &ctx).expect("diagnosed");
        assert_eq!(d.kind, DiagnosisKind::CertificateVerifyFailed);
        assert!(
            d.fix.contains("SSL_CERT_FILE")
                && d.fix.contains("HostNameInCertificate")
                && d.fix.contains("never use TrustServerCertificate"),
            "{}",
            d.fix
        );
        let mismatch = [rec("08001", -1, "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:subject name does not match host name]")];
        assert!(diagnose(&mismatch, &ctx)
            .expect("diagnosed")
            .summary
            .contains("does not name the host"));
        let handshake = [
            rec("08001", 26, "Client unable to establish connection because an error was encountered during handshakes before login. Common causes include client attempting to connect to an unsupported version of SQL Server, server too busy to accept new connections or a resource limitation (memory or maximum allowed connections) on the server."),
            rec("08001", 10054, "TCP Provider: Error code 0x2746"),
        ];
        assert_eq!(kind(&handshake, &ctx), Some(DiagnosisKind::HandshakeFailed));
        let link = [
            rec("08S01", 10054, "TCP Provider: Error code 0x2746"),
            rec("08S01", 10054, "Communication link failure"),
        ];
        assert_eq!(kind(&link, &ctx), Some(DiagnosisKind::LinkFailure));
        let closed = [
            rec("HYT00", 0, "Login timeout expired"),
            rec("08001", 10057, "TCP Provider: Error code 0x2749"),
            rec("08001", 10057, "A network-related or instance-specific error has occurred while establishing a connection to tcp:127.0.0.1,42991. Server is not found or not accessible. Check if instance name is correct and if SQL Server is configured to allow remote connections. For more information see SQL Server Books Online."),
        ];
        assert_eq!(kind(&closed, &ctx), Some(DiagnosisKind::ServerUnreachable));
        let no_db = [
            rec("42000", 4060, "[SQL Server]Cannot open database \"nosuchdb\" requested by the login. The login failed."),
            rec("28000", 18456, "[SQL Server]Login failed for user '<token-identified principal>'."),
        ];
        assert_eq!(kind(&no_db, &ctx), Some(DiagnosisKind::CannotOpenDatabase));
        let transient = [rec(
            "42000",
            40613,
            "[SQL Server]Database 'db' on server 'srv' is not currently available.",
        )];
        assert_eq!(
            kind(&transient, &ctx),
            Some(DiagnosisKind::TransientServerError)
        );
        assert_eq!(
            kind(&[DiagRecord::new("IM002", 0, "[unixODBC][Driver Manager]Data source name not found and no default driver specified")], &ctx),
            Some(DiagnosisKind::DriverNotInstalled)
        );
        assert_eq!(
            kind(
                &[DiagRecord::new(
                    "01000",
                    0,
                    "[unixODBC][Driver Manager]Can't open lib 'No Such Driver 99' : file not found"
                )],
                &ctx
            ),
            Some(DiagnosisKind::DriverNotInstalled)
        );
        assert_eq!(
            kind(&[rec("42S02", 208, "Invalid object name 'x'.")], &ctx),
            None
        );
    }

    #[test]
    fn every_anchor_is_distinct_and_points_into_troubleshooting() {
        use std::collections::HashSet;
        let kinds = DiagnosisKind::ALL;
        let anchors: HashSet<_> = kinds.iter().map(|k| k.anchor()).collect();
        assert_eq!(anchors.len(), kinds.len());
        assert!(anchors.iter().all(|a| a.starts_with("troubleshooting.md#")));
    }
}

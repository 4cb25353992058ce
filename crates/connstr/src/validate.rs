//! Per-mode validation: the driver's own checks, made earlier and with better messages.

use std::fmt;
use std::str::FromStr;

use crate::auth::Authentication;
use crate::connection_string::ConnectionString;
use crate::error::Error;
use crate::keyword;

/// The `Encrypt=` setting of the Microsoft ODBC Driver 18.
///
/// Parsed case-insensitively from `yes`/`mandatory`/`true`, `no`/`optional`/`false` and
/// `strict`. When the keyword is absent the driver 18 default is [`Encrypt::Mandatory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encrypt {
    /// `no`/`optional`/`false`: the driver encrypts only what the server asks for. Against a
    /// server that does not require encryption the login, or everything after the login
    /// (including the Entra token message), travels in clear text (measured, driver-facts Q1).
    Optional,
    /// `yes`/`mandatory`/`true`, the default: TLS inside TDS 7.x, certificate validated
    /// unless `TrustServerCertificate=yes`.
    #[default]
    Mandatory,
    /// `strict`: TDS 8.0, TLS before any TDS byte; `TrustServerCertificate` is ignored and the
    /// certificate is always validated.
    Strict,
}

impl Encrypt {
    /// The value we write: `no`, `yes` or `strict`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encrypt::Optional => "no",
            Encrypt::Mandatory => "yes",
            Encrypt::Strict => "strict",
        }
    }
}

impl fmt::Display for Encrypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Encrypt {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = s.trim();
        if ["yes", "mandatory", "true"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
        {
            Ok(Encrypt::Mandatory)
        } else if ["no", "optional", "false"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
        {
            Ok(Encrypt::Optional)
        } else if v.eq_ignore_ascii_case("strict") {
            Ok(Encrypt::Strict)
        } else {
            Err(Error::InvalidEncrypt {
                value: s.to_owned(),
            })
        }
    }
}

/// The operating system the connection will be made on; only "Windows or not" matters
/// (`ActiveDirectoryInteractive` is Windows-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetOs {
    /// Windows.
    Windows,
    /// Linux, macOS or anything else.
    NotWindows,
}

impl TargetOs {
    /// The OS this code was compiled for (`cfg!(windows)`).
    pub const fn current() -> Self {
        if cfg!(windows) {
            TargetOs::Windows
        } else {
            TargetOs::NotWindows
        }
    }
}

impl Default for TargetOs {
    fn default() -> Self {
        Self::current()
    }
}

/// Options that weaken validation. Each one is named for what it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DangerOptions {
    /// Accept `Encrypt=no`/`optional` with an Entra mode or an access token. The driver then
    /// sends the bearer token in clear text whenever the server does not require encryption
    /// (measured: driver-facts Q1 and Q3, login-only encryption). Only for local test servers.
    pub allow_unencrypted_token: bool,
}

/// What [`ConnectionString::validate`] needs to know beyond the string itself.
///
/// ```
/// use mssql_entra_connstr::{ConnectionString, TargetOs, ValidateOptions};
///
/// let opts = ValidateOptions { access_token: true, target_os: TargetOs::NotWindows, ..Default::default() };
/// let cs = ConnectionString::parse("Server=tcp:db.example,1433;Database=app").unwrap();
/// assert_eq!(cs.validate(&opts), Ok(()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateOptions {
    /// The connection sets the pre-connect attribute `SQL_COPT_SS_ACCESS_TOKEN` (1256). The
    /// driver then refuses `UID`, `PWD` (even empty), `Authentication` and
    /// `Trusted_Connection=yes` (FA005).
    pub access_token: bool,
    /// The caller turns the modes the driver refuses (`ActiveDirectoryDefault`,
    /// `ActiveDirectoryManagedIdentity`, `ActiveDirectoryWorkloadIdentity`,
    /// `ActiveDirectoryDeviceCode`) into access-token connections before connecting, as the
    /// mssql-entra facade does. When false they are refused with [`Error::TokenModeOnly`];
    /// when true their `UID`/`PWD` rules are checked instead.
    pub token_modes_provided: bool,
    /// Where the connection will be made. Defaults to [`TargetOs::current`].
    pub target_os: TargetOs,
    /// Options that weaken the checks.
    pub danger: DangerOptions,
}

/// How a mode treats `UID`.
enum UidRule {
    /// Needed; says what `UID` holds in this mode.
    Required(&'static str),
    Optional,
    /// Not taken; says where the identity comes from instead.
    Forbidden(&'static str),
}

/// How a mode treats `PWD`.
enum PwdRule {
    /// Needed; says what `PWD` holds in this mode.
    Required(&'static str),
    Forbidden,
}

/// The `UID` and `PWD` rules of each mode.
fn rules(mode: Authentication) -> (UidRule, PwdRule) {
    match mode {
        Authentication::SqlPassword => (
            UidRule::Required("the SQL login name"),
            PwdRule::Required("the login's password"),
        ),
        Authentication::ServicePrincipal => (
            UidRule::Required("the application (client) id"),
            PwdRule::Required("the client secret"),
        ),
        Authentication::Password => (
            UidRule::Required("the user principal name"),
            PwdRule::Required("the user's password"),
        ),
        Authentication::Interactive => (
            UidRule::Required("the user principal name to sign in"),
            PwdRule::Forbidden,
        ),
        Authentication::Msi
        | Authentication::ManagedIdentity
        | Authentication::WorkloadIdentity
        | Authentication::DeviceCode => (UidRule::Optional, PwdRule::Forbidden),
        Authentication::Integrated => (
            UidRule::Forbidden("the Kerberos ticket of the signed-in user"),
            PwdRule::Forbidden,
        ),
        Authentication::Default => (
            UidRule::Forbidden(
                "the credential chain (environment, workload identity, managed identity, developer sign-in)",
            ),
            PwdRule::Forbidden,
        ),
    }
}

impl ConnectionString {
    /// Checks the string against the rules the driver applies, before the driver sees it,
    /// and against the transport-security rule the driver does not apply. Returns the first
    /// violation.
    ///
    /// * Values: no NUL anywhere; `Encrypt`, `Authentication`, `Trusted_Connection` and
    ///   `TrustServerCertificate` hold values the driver knows.
    /// * With [`ValidateOptions::access_token`]: no `UID`, no `PWD` (even empty), no
    ///   `Authentication` (even empty), no `Trusted_Connection=yes` (driver: FA005).
    /// * `Authentication` with `Trusted_Connection=yes` is refused (driver: FA001).
    /// * A mode the driver refuses is refused unless [`ValidateOptions::token_modes_provided`].
    /// * `ActiveDirectoryInteractive` only on Windows.
    /// * `UID`/`PWD` per mode: ServicePrincipal and Password need both (driver: FA003), and so
    ///   does SqlPassword; Interactive needs `UID` and takes no `PWD`; Msi, ManagedIdentity,
    ///   WorkloadIdentity and DeviceCode take an optional `UID` and no `PWD`; Integrated and
    ///   Default take neither. "Needs" means present and not blank; "takes no" means not
    ///   present with a non-blank value (the driver ignores an empty one outside token mode).
    ///   SqlPassword accepts an empty `PWD`.
    /// * With an Entra mode or an access token, `Encrypt=no`/`optional` is refused unless
    ///   [`DangerOptions::allow_unencrypted_token`]: the driver would send the bearer token in
    ///   clear text. `Encrypt=strict` is fine.
    ///
    /// ```
    /// use mssql_entra_connstr::{Authentication, ConnectionString, Error, ValidateOptions};
    ///
    /// let cs = ConnectionString::parse("Server=s;Authentication=ActiveDirectoryServicePrincipal;UID=app-id").unwrap();
    /// assert!(matches!(
    ///     cs.validate(&ValidateOptions::default()),
    ///     Err(Error::MissingPwd { mode: Authentication::ServicePrincipal, .. })
    /// ));
    /// ```
    pub fn validate(&self, options: &ValidateOptions) -> Result<(), Error> {
        if let Some((key, _)) = self.iter().find(|(_, v)| v.contains('\0')) {
            return Err(Error::NulInValue {
                key: key.to_owned(),
            });
        }
        let encrypt = self.encrypt()?;
        let trusted = self.trusted_connection()?;
        if let Some(v) = self.get(keyword::TRUST_SERVER_CERTIFICATE) {
            parse_bool(keyword::TRUST_SERVER_CERTIFICATE, v)?;
        }
        let unencrypted = encrypt == Encrypt::Optional && !options.danger.allow_unencrypted_token;
        let encrypt_text = || self.get(keyword::ENCRYPT).unwrap_or_default().to_owned();

        if options.access_token {
            if self.contains_key(keyword::UID) {
                return Err(Error::AccessTokenWithUid);
            }
            if self.contains_key(keyword::PWD) {
                return Err(Error::AccessTokenWithPwd);
            }
            if self.contains_key(keyword::AUTHENTICATION) {
                return Err(Error::AccessTokenWithAuthentication);
            }
            if trusted {
                return Err(Error::AccessTokenWithTrustedConnection);
            }
            if unencrypted {
                return Err(Error::UnencryptedToken {
                    encrypt: encrypt_text(),
                    what: "an access token".to_owned(),
                });
            }
            return Ok(());
        }

        let Some(mode) = self.authentication()? else {
            return Ok(());
        };
        if trusted {
            return Err(Error::AuthenticationWithTrustedConnection { mode });
        }
        if !mode.driver_implements() && !options.token_modes_provided {
            return Err(Error::TokenModeOnly { mode });
        }
        if mode.windows_only() && options.target_os != TargetOs::Windows {
            return Err(Error::WindowsOnly { mode });
        }
        let given = |key: &str| self.get(key).is_some_and(|v| !v.trim().is_empty());
        let (uid_rule, pwd_rule) = rules(mode);
        match uid_rule {
            UidRule::Required(what) if !given(keyword::UID) => {
                return Err(Error::MissingUid { mode, what })
            }
            UidRule::Forbidden(source_of_identity) if given(keyword::UID) => {
                return Err(Error::UidNotAllowed {
                    mode,
                    source_of_identity,
                })
            }
            _ => {}
        }
        let pwd_present = if mode == Authentication::SqlPassword {
            self.contains_key(keyword::PWD)
        } else {
            given(keyword::PWD)
        };
        match pwd_rule {
            PwdRule::Required(what) if !pwd_present => {
                return Err(Error::MissingPwd { mode, what })
            }
            PwdRule::Forbidden if given(keyword::PWD) => return Err(Error::PwdNotAllowed { mode }),
            _ => {}
        }
        if mode.is_entra() && unencrypted {
            return Err(Error::UnencryptedToken {
                encrypt: encrypt_text(),
                what: format!("`Authentication={mode}`"),
            });
        }
        Ok(())
    }
}

/// Parses a yes/no value (`yes`/`true`, `no`/`false`, any case). Empty is no.
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    let v = value.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("no") || v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else {
        Err(Error::InvalidBoolean {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Whether two values of the keyword with identity `id` mean the same thing.
pub(crate) fn values_equivalent(id: &str, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match id {
        "encrypt" => {
            matches!((a.parse::<Encrypt>(), b.parse::<Encrypt>()), (Ok(x), Ok(y)) if x == y)
        }
        "authentication" => {
            matches!((a.trim().parse::<Authentication>(), b.trim().parse::<Authentication>()), (Ok(x), Ok(y)) if x == y)
        }
        "driver" => a.trim().eq_ignore_ascii_case(b.trim()),
        "trusted_connection"
        | "trustservercertificate"
        | "multisubnetfailover"
        | "mars_connection" => {
            matches!((parse_bool(id, a), parse_bool(id, b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_values() {
        for (text, want) in [
            ("yes", Encrypt::Mandatory),
            ("Mandatory", Encrypt::Mandatory),
            ("TRUE", Encrypt::Mandatory),
            ("no", Encrypt::Optional),
            ("optional", Encrypt::Optional),
            ("False", Encrypt::Optional),
            ("Strict", Encrypt::Strict),
        ] {
            assert_eq!(text.parse::<Encrypt>(), Ok(want), "{text}");
        }
        assert_eq!(
            "maybe".parse::<Encrypt>(),
            Err(Error::InvalidEncrypt {
                value: "maybe".into()
            })
        );
        assert_eq!(ConnectionString::new().encrypt(), Ok(Encrypt::Mandatory));
    }

    #[test]
    fn equivalence() {
        assert!(values_equivalent("encrypt", "yes", "Mandatory"));
        assert!(!values_equivalent("encrypt", "yes", "strict"));
        assert!(values_equivalent("trustservercertificate", "yes", "TRUE"));
        assert!(values_equivalent(
            "authentication",
            "activedirectorymsi",
            "ActiveDirectoryMsi"
        ));
        assert!(!values_equivalent("database", "a", "A"));
    }
}

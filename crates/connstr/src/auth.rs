//! The `Authentication=` keyword as a typed enum.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A value of the `Authentication=` keyword.
///
/// Parsing ([`FromStr`]) is case-insensitive and accepts exactly the spellings of
/// [`Authentication::as_str`] (so `activedirectorymsi` and `ActiveDirectoryMSI` are
/// [`Authentication::Msi`]). No other aliases are accepted, because the driver has none:
/// a short form such as `MSI` would be refused by the driver, so we refuse it too.
///
/// The Microsoft ODBC Driver 18.6 on Linux accepts six of these values (see
/// [`Authentication::driver_implements`]) and refuses the other four with
/// `[08001] Invalid value specified for connection string attribute 'Authentication'`.
/// mssql-entra provides those four in access-token mode: it acquires the token itself and
/// hands it to the driver through the pre-connect attribute `SQL_COPT_SS_ACCESS_TOKEN` (1256).
///
/// ```
/// use mssql_entra_connstr::Authentication;
///
/// let mode: Authentication = "activedirectorymsi".parse().unwrap();
/// assert_eq!(mode, Authentication::Msi);
/// assert_eq!(mode.as_str(), "ActiveDirectoryMsi");
/// assert!(mode.driver_implements());
///
/// let default: Authentication = "ActiveDirectoryDefault".parse().unwrap();
/// assert!(!default.driver_implements()); // provided in token mode
/// assert!("MSI".parse::<Authentication>().is_err()); // no invented aliases
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authentication {
    /// `SqlPassword`: a SQL Server login (`UID` + `PWD`). Not Entra.
    SqlPassword,
    /// `ActiveDirectoryMsi`: managed identity through the driver (IMDS or App Service endpoint).
    /// `UID` optionally names a user-assigned identity.
    Msi,
    /// `ActiveDirectoryServicePrincipal`: `UID` = application (client) id, `PWD` = client secret.
    ServicePrincipal,
    /// `ActiveDirectoryPassword`: user name and password (ROPC). Deprecated by Microsoft.
    Password,
    /// `ActiveDirectoryIntegrated`: Kerberos / Windows integrated sign-in.
    Integrated,
    /// `ActiveDirectoryInteractive`: browser or MFA prompt; Windows only.
    Interactive,
    /// `ActiveDirectoryDefault`: a credential chain. Refused by the driver; token mode.
    Default,
    /// `ActiveDirectoryManagedIdentity`: managed identity. Refused by the driver; token mode.
    ManagedIdentity,
    /// `ActiveDirectoryWorkloadIdentity`: federated workload identity (Kubernetes).
    /// Refused by the driver; token mode.
    WorkloadIdentity,
    /// `ActiveDirectoryDeviceCode`: device-code sign-in. Refused by the driver; token mode.
    DeviceCode,
}

impl Authentication {
    /// Every mode, in a stable order.
    pub const ALL: [Authentication; 10] = [
        Authentication::SqlPassword,
        Authentication::Msi,
        Authentication::ServicePrincipal,
        Authentication::Password,
        Authentication::Integrated,
        Authentication::Interactive,
        Authentication::Default,
        Authentication::ManagedIdentity,
        Authentication::WorkloadIdentity,
        Authentication::DeviceCode,
    ];

    /// The value as written in a connection string, for example `ActiveDirectoryMsi`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Authentication::SqlPassword => "SqlPassword",
            Authentication::Msi => "ActiveDirectoryMsi",
            Authentication::ServicePrincipal => "ActiveDirectoryServicePrincipal",
            Authentication::Password => "ActiveDirectoryPassword",
            Authentication::Integrated => "ActiveDirectoryIntegrated",
            Authentication::Interactive => "ActiveDirectoryInteractive",
            Authentication::Default => "ActiveDirectoryDefault",
            Authentication::ManagedIdentity => "ActiveDirectoryManagedIdentity",
            Authentication::WorkloadIdentity => "ActiveDirectoryWorkloadIdentity",
            Authentication::DeviceCode => "ActiveDirectoryDeviceCode",
        }
    }

    /// Whether the Microsoft ODBC Driver 18 (measured: 18.6 on Linux) accepts this value.
    ///
    /// The others are refused with `[08001] Invalid value specified for connection string
    /// attribute 'Authentication'` before any network I/O; mssql-entra provides them in
    /// access-token mode.
    pub const fn driver_implements(self) -> bool {
        matches!(
            self,
            Authentication::SqlPassword
                | Authentication::Msi
                | Authentication::ServicePrincipal
                | Authentication::Password
                | Authentication::Integrated
                | Authentication::Interactive
        )
    }

    /// Whether this is a Microsoft Entra ID mode (everything except `SqlPassword`).
    ///
    /// Entra modes move a bearer token over the connection, so they must not run over a
    /// connection that may be unencrypted.
    pub const fn is_entra(self) -> bool {
        !matches!(self, Authentication::SqlPassword)
    }

    /// Whether Microsoft has deprecated this mode (`ActiveDirectoryPassword`: it cannot do MFA).
    /// Callers should warn.
    pub const fn is_deprecated(self) -> bool {
        matches!(self, Authentication::Password)
    }

    /// Whether this mode works only on Windows (`ActiveDirectoryInteractive`; on Linux the
    /// driver accepts the keyword but takes the Kerberos path, measured).
    pub const fn windows_only(self) -> bool {
        matches!(self, Authentication::Interactive)
    }
}

impl fmt::Display for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Authentication {
    type Err = Error;

    /// Case-insensitive; accepts exactly the spellings of [`Authentication::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Authentication::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownAuthentication {
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_mode_in_any_case() {
        for mode in Authentication::ALL {
            assert_eq!(mode.as_str().parse::<Authentication>(), Ok(mode));
            assert_eq!(
                mode.as_str().to_uppercase().parse::<Authentication>(),
                Ok(mode)
            );
            assert_eq!(
                mode.as_str().to_lowercase().parse::<Authentication>(),
                Ok(mode)
            );
            assert_eq!(mode.to_string(), mode.as_str());
        }
    }

    #[test]
    fn driver_set_matches_measurement() {
        let implemented: Vec<_> = Authentication::ALL
            .into_iter()
            .filter(|m| m.driver_implements())
            .map(Authentication::as_str)
            .collect();
        assert_eq!(
            implemented,
            [
                "SqlPassword",
                "ActiveDirectoryMsi",
                "ActiveDirectoryServicePrincipal",
                "ActiveDirectoryPassword",
                "ActiveDirectoryIntegrated",
                "ActiveDirectoryInteractive"
            ]
        );
    }

    #[test]
    fn flags() {
        assert!(!Authentication::SqlPassword.is_entra());
        assert!(Authentication::ALL[1..].iter().all(|m| m.is_entra()));
        let deprecated: Vec<_> = Authentication::ALL
            .into_iter()
            .filter(|m| m.is_deprecated())
            .collect();
        assert_eq!(deprecated, [Authentication::Password]);
        let windows: Vec<_> = Authentication::ALL
            .into_iter()
            .filter(|m| m.windows_only())
            .collect();
        assert_eq!(windows, [Authentication::Interactive]);
    }

    #[test]
    fn unknown_values_are_refused() {
        for bad in ["", "MSI", "ActiveDirectory", "ActiveDirectoryMsi ", "Entra"] {
            assert_eq!(
                bad.parse::<Authentication>(),
                Err(Error::UnknownAuthentication {
                    value: bad.to_owned()
                })
            );
        }
    }
}

//! The installed driver's version and the minimum version of each `Authentication=` mode.

use std::fmt;
use std::str::FromStr;

use mssql_entra_connstr::{Authentication, TargetOs};

/// A Microsoft ODBC Driver for SQL Server version, `major.minor`.
///
/// [`Connector::new`](crate::Connector::new) reads it before connecting, from the shared library
/// that the driver manager's entry for the `Driver=` name points to: Microsoft names it
/// `libmsodbcsql-<major>.<minor>.so.<x>.<y>` (measured: `libmsodbcsql-18.6.so.2.1` for 18.6.2.1),
/// and `msodbcsql<major>.dll` on Windows (major only). Reading the file name needs no connection, so
/// an unsupported mode is refused before any network I/O. When the name does not tell (a DSN, a
/// renamed library), no version is known and nothing is refused on version grounds; give it with
/// [`ConnectorOptions::driver_version`](crate::ConnectorOptions::driver_version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriverVersion {
    /// Major version, e.g. 18.
    pub major: u16,
    /// Minor version, e.g. 6.
    pub minor: u16,
}

impl DriverVersion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// The version encoded in a driver library path, if the name follows Microsoft's pattern.
    ///
    /// ```
    /// use mssql_entra_odbc::DriverVersion;
    ///
    /// let path = "/opt/microsoft/msodbcsql18/lib64/libmsodbcsql-18.6.so.2.1";
    /// assert_eq!(DriverVersion::from_library_path(path), Some(DriverVersion::new(18, 6)));
    /// assert_eq!(DriverVersion::from_library_path("C:\\Windows\\system32\\msodbcsql17.dll"), Some(DriverVersion::new(17, 0)));
    /// assert_eq!(DriverVersion::from_library_path("/usr/lib/libtdsodbc.so"), None);
    /// ```
    pub fn from_library_path(path: &str) -> Option<Self> {
        let file = path.rsplit(['/', '\\']).next()?.to_ascii_lowercase();
        if let Some(rest) = file.strip_prefix("libmsodbcsql-") {
            // `18.6.so.2.1`
            let mut parts = rest.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            return Some(Self { major, minor });
        }
        if let Some(rest) = file.strip_prefix("msodbcsql") {
            // `17.dll`, `18.dll`: the major version only.
            let digits = rest.strip_suffix(".dll")?;
            let major = digits.parse().ok()?;
            return Some(Self { major, minor: 0 });
        }
        None
    }
}

impl fmt::Display for DriverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for DriverVersion {
    type Err = String;

    /// `18.6` or `18.6.2.1` (the parts after the minor are ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split('.');
        let parse = |p: Option<&str>| p.and_then(|p| p.parse::<u16>().ok());
        match (parse(parts.next()), parse(parts.next())) {
            (Some(major), Some(minor)) => Ok(Self { major, minor }),
            _ => Err(format!(
                "`{s}` is not a driver version; write it as major.minor, e.g. 18.6"
            )),
        }
    }
}

/// The first Microsoft ODBC Driver version that implements `mode` on `os`, from Microsoft's
/// "Using Microsoft Entra ID with the ODBC Driver" page. `None` for the modes no driver implements
/// (mssql-entra provides them in token mode).
pub fn minimum_driver_version(mode: Authentication, os: TargetOs) -> Option<DriverVersion> {
    let v = DriverVersion::new;
    match mode {
        Authentication::SqlPassword | Authentication::Password => Some(v(17, 0)),
        Authentication::Interactive => Some(v(17, 0)),
        Authentication::Integrated => Some(match os {
            TargetOs::Windows => v(17, 0),
            TargetOs::NotWindows => v(17, 6),
        }),
        Authentication::Msi => Some(v(17, 3)),
        Authentication::ServicePrincipal => Some(v(17, 7)),
        _ => None,
    }
}

/// The first version that accepts the access-token attribute (`SQL_COPT_SS_ACCESS_TOKEN`) on `os`.
pub fn minimum_access_token_version(os: TargetOs) -> DriverVersion {
    match os {
        TargetOs::Windows => DriverVersion::new(13, 1),
        TargetOs::NotWindows => DriverVersion::new(17, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_measured_library_name() {
        let path = "/work/main/target/driver/wheel/mssql_python_odbc/libs/linux/debian_ubuntu/x86_64/lib/libmsodbcsql-18.6.so.2.1";
        assert_eq!(
            DriverVersion::from_library_path(path),
            Some(DriverVersion::new(18, 6))
        );
        assert_eq!(
            DriverVersion::from_library_path(
                "/opt/microsoft/msodbcsql17/lib64/libmsodbcsql-17.10.so.6.1"
            ),
            Some(DriverVersion::new(17, 10))
        );
        assert_eq!(DriverVersion::from_library_path("libmsodbcsql-x.so"), None);
        assert_eq!(DriverVersion::from_library_path(""), None);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(DriverVersion::new(17, 10) > DriverVersion::new(17, 7));
        assert!(DriverVersion::new(18, 0) > DriverVersion::new(17, 10));
        assert_eq!("18.6.2.1".parse(), Ok(DriverVersion::new(18, 6)));
        assert!("18".parse::<DriverVersion>().is_err());
    }

    #[test]
    fn minimums_follow_microsoft() {
        let linux = TargetOs::NotWindows;
        assert_eq!(
            minimum_driver_version(Authentication::ServicePrincipal, linux),
            Some(DriverVersion::new(17, 7))
        );
        assert_eq!(
            minimum_driver_version(Authentication::Integrated, linux),
            Some(DriverVersion::new(17, 6))
        );
        assert_eq!(
            minimum_driver_version(Authentication::Integrated, TargetOs::Windows),
            Some(DriverVersion::new(17, 0))
        );
        assert_eq!(minimum_driver_version(Authentication::Default, linux), None);
        // 18.6 (the measured driver) implements every mode it accepts.
        for mode in Authentication::ALL
            .into_iter()
            .filter(|m| m.driver_implements())
        {
            let min = minimum_driver_version(mode, linux).expect("a driver mode has a minimum");
            assert!(min <= DriverVersion::new(18, 6), "{mode}");
        }
    }
}

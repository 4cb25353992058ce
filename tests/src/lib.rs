//! Shared helpers for the end-to-end suites in `tests/`: the provisioned driver, an emulator per test
//! ([`Lab`]), tests isolated in a child process or a private namespace ([`isolated`]), and the per-mode
//! connections the suites and `cargo xtask demo` share ([`modes`]).
//!
//! The suites themselves live in `tests/it/`. They need the driver stack that `cargo xtask setup` provisions;
//! `cargo xtask test` sets the environment they read, and [`driver`] finds it when run by a plain `cargo test`.
//! Everything binds to 127.0.0.1, or to 169.254.169.254 inside a network namespace the test created itself.
//! This crate is never published and nothing in the product depends on it.
#![forbid(unsafe_code)]

pub mod isolate;
pub mod lab;
pub mod modes;

pub use isolate::{isolated, Isolation};
pub use lab::Lab;

use std::{
    ffi::OsString,
    fmt, fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// The name `cargo xtask setup` registers the driver under: `Driver={ODBC Driver 18 for SQL Server}`.
pub const DRIVER_NAME: &str = "ODBC Driver 18 for SQL Server";

/// Where `cargo xtask setup` provisions the driver stack: `<workspace>/target/driver`.
pub fn default_driver_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate lives in `<workspace>/tests`, so it always has a parent.
    manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join("target")
        .join("driver")
}

/// Makes the provisioned driver visible to unixODBC and returns the `ODBCSYSINI` directory in use.
///
/// If `ODBCSYSINI` is set (as `cargo xtask test` does), it is checked and kept. Otherwise it is set, once per
/// process, to [`default_driver_dir`]. Call this before creating any ODBC environment: unixODBC reads the
/// variable when it loads the driver list.
///
/// # Panics
///
/// When no driver is provisioned, with the command that provisions it (`cargo xtask setup`).
pub fn driver() -> &'static Path {
    static SYS_INI: OnceLock<PathBuf> = OnceLock::new();
    SYS_INI.get_or_init(
        || match locate(std::env::var_os("ODBCSYSINI"), &default_driver_dir()) {
            Ok(Located::FromEnvironment(dir)) => dir,
            Ok(Located::Default(dir)) => {
                // Runs once, before any ODBC environment exists; every suite calls `driver()` first.
                std::env::set_var("ODBCSYSINI", &dir);
                dir
            }
            Err(err) => panic!("{err}"),
        },
    )
}

/// Connector options for tests: a short login timeout (after a failed token fetch in a driver mode the
/// driver reports the failure only when it expires) and quick retries.
pub fn test_options() -> mssql_entra_odbc::ConnectorOptions {
    mssql_entra_odbc::ConnectorOptions::default()
        .with_login_timeout(Some(lab::DRIVER_LOGIN_TIMEOUT))
        .with_retry(mssql_entra_odbc::RetryPolicy {
            max_attempts: 2,
            initial_delay: std::time::Duration::from_millis(50),
            max_delay: std::time::Duration::from_millis(200),
            max_elapsed: std::time::Duration::from_secs(5),
        })
}

/// The first column of the first row of `sql`, as text.
pub fn scalar(conn: &mssql_entra_odbc::EntraConnection, sql: &str) -> Result<String, String> {
    use odbc_api::Cursor as _;
    let mut cursor = conn
        .connection()
        .execute(sql, (), None)
        .map_err(|e| format!("{sql}: {e}"))?
        .ok_or_else(|| format!("{sql}: no result set"))?;
    let mut row = cursor
        .next_row()
        .map_err(|e| format!("{sql}: {e}"))?
        .ok_or_else(|| format!("{sql}: no row"))?;
    let mut buf = Vec::new();
    if !row
        .get_text(1, &mut buf)
        .map_err(|e| format!("{sql}: {e}"))?
    {
        return Err(format!("{sql}: NULL"));
    }
    String::from_utf8(buf).map_err(|e| format!("{sql}: {e}"))
}

/// `SELECT SUSER_SNAME()`: the login the server sees.
pub fn principal(conn: &mssql_entra_odbc::EntraConnection) -> Result<String, String> {
    scalar(conn, "SELECT SUSER_SNAME()")
}

/// Where the driver registration was found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Located {
    /// `ODBCSYSINI` was already set and holds a registration.
    FromEnvironment(PathBuf),
    /// `ODBCSYSINI` was unset; the workspace's provisioned directory holds a registration.
    Default(PathBuf),
}

/// No usable driver registration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DriverMissing {
    dir: PathBuf,
    from_environment: bool,
}

impl fmt::Display for DriverMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ini = self.dir.join("odbcinst.ini");
        if self.from_environment {
            write!(
                f,
                "ODBCSYSINI={} but {} does not register `{DRIVER_NAME}`: run `cargo xtask setup` and point \
                 ODBCSYSINI at the directory it prints, or unset ODBCSYSINI",
                self.dir.display(),
                ini.display()
            )
        } else {
            write!(
                f,
                "the Microsoft ODBC Driver 18 is not provisioned ({} does not register `{DRIVER_NAME}`): \
                 run `cargo xtask setup`",
                ini.display()
            )
        }
    }
}

fn locate(odbcsysini: Option<OsString>, default_dir: &Path) -> Result<Located, DriverMissing> {
    let registers = |dir: &Path| {
        fs::read_to_string(dir.join("odbcinst.ini")).is_ok_and(|ini| {
            ini.lines()
                .any(|line| line.trim() == format!("[{DRIVER_NAME}]"))
        })
    };
    match odbcsysini.filter(|value| !value.is_empty()) {
        Some(value) => {
            let dir = PathBuf::from(value);
            if registers(&dir) {
                Ok(Located::FromEnvironment(dir))
            } else {
                Err(DriverMissing {
                    dir,
                    from_environment: true,
                })
            }
        }
        None if registers(default_dir) => Ok(Located::Default(default_dir.to_path_buf())),
        None => Err(DriverMissing {
            dir: default_dir.to_path_buf(),
            from_environment: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mssql-entra-tests-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn environment_wins_over_the_default() {
        let set = scratch("set");
        let default = scratch("default");
        for dir in [&set, &default] {
            fs::write(
                dir.join("odbcinst.ini"),
                format!("[{DRIVER_NAME}]\nDriver=/x.so\n"),
            )
            .unwrap();
        }
        assert_eq!(
            locate(Some(set.clone().into()), &default),
            Ok(Located::FromEnvironment(set.clone()))
        );
        assert_eq!(
            locate(None, &default),
            Ok(Located::Default(default.clone()))
        );
        assert_eq!(
            locate(Some("".into()), &default),
            Ok(Located::Default(default.clone()))
        );
        fs::remove_dir_all(set).unwrap();
        fs::remove_dir_all(default).unwrap();
    }

    #[test]
    fn a_missing_registration_names_the_fix() {
        let empty = scratch("empty");
        let other = scratch("other");
        fs::write(other.join("odbcinst.ini"), "[FreeTDS]\nDriver=/x.so\n").unwrap();

        let err = locate(None, &empty).unwrap_err();
        assert!(
            err.to_string().ends_with("run `cargo xtask setup`"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&*empty.join("odbcinst.ini").to_string_lossy()),
            "{err}"
        );

        let err = locate(Some(other.clone().into()), &empty).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("ODBCSYSINI={}", other.display())),
            "{err}"
        );
        assert!(err.to_string().contains("run `cargo xtask setup`"), "{err}");
        fs::remove_dir_all(empty).unwrap();
        fs::remove_dir_all(other).unwrap();
    }
}

//! End-to-end suites: the real Microsoft ODBC Driver 18, loaded through unixODBC by odbc-api, against the
//! emulator (`mssql-entra-emulator`).
//!
//! One test binary for the whole crate (ripgrep, odbc-api); each suite is a module. Tests that need process
//! state of their own (the App Service variables) or a private namespace (169.254.169.254, the driver's CA
//! bundle) re-run themselves in a child; see `mssql_entra_tests::isolate`.

mod driver_modes;
mod pool;
mod reliability;
mod smoke;
mod token_mode;

//! End-to-end suites: the real Microsoft ODBC Driver 18, loaded through unixODBC by odbc-api.
//!
//! One test binary for the whole crate (ripgrep, odbc-api); each suite is a module.

mod smoke;

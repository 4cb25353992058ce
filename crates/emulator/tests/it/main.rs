//! The SQL endpoint against the real Microsoft ODBC Driver 18 (through odbc-api), plus raw-socket checks.
//!
//! Needs the driver provisioned by `cargo xtask setup` under `target/driver` (ODBCSYSINI is set here).
//! Everything listens on 127.0.0.1 with ephemeral ports.

mod support;

mod emulator;
mod faults;
mod grant;
mod login;
mod msi;
mod queries;
mod raw;
mod tls;

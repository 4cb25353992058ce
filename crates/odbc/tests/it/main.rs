//! Integration tests against the real Microsoft ODBC Driver 18 (provisioned by `cargo xtask setup`
//! under target/driver) and, for logins, the emulated Azure SQL endpoint. Nothing leaves 127.0.0.1.

mod driver;
mod emulator;
mod reconnect;
mod refusals;
mod support;

//! ODBC connection strings for the Microsoft ODBC Driver 18 for SQL Server: parse, build,
//! escape, validate per authentication mode, and redact.
//!
//! This crate deliberately does no I/O: it never connects, never reads the environment or
//! files, never acquires tokens and does not link the ODBC driver manager (it has no odbc-api
//! dependency). It only turns settings into the exact text the driver reads, and checks that
//! text against the rules the driver applies (measured against the real driver 18.6) before
//! the driver sees it.
//!
//! Secrets never leave it by accident: `Display` and `Debug` of [`ConnectionString`] and
//! [`ConnectionStringBuilder`] mask every secret value, and no [`Error`] contains a value that
//! could be secret. Only [`ConnectionString::to_odbc_string`] and the accessors return secrets.
//! The crate writes no logs.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod builder;
mod connection_string;
mod error;
mod escape;
mod keyword;
mod validate;

pub use auth::Authentication;
pub use builder::{ConnectionStringBuilder, DEFAULT_DRIVER};
pub use connection_string::{ConnectionString, Iter};
pub use error::Error;
pub use escape::escape_value;
pub use validate::{DangerOptions, Encrypt, TargetOs, ValidateOptions};

//! The connector between `mssql-entra-token` and the Microsoft ODBC Driver 18, through `odbc-api`.
//!
//! This crate will open `odbc_api::Connection`s with a token from a `TokenSource` (attribute 1256, owned together
//! with the connection) or with one of the driver's own `Authentication=` modes, and turn the driver's diagnostics
//! into a matchable error with a diagnosis (issue 5). It deliberately does not acquire tokens itself.

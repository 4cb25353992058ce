//! Access tokens for Azure SQL, Fabric SQL and SQL Server with Microsoft Entra ID.
//!
//! This crate will hold the `TokenSource` trait, `AccessToken`, the refresh-ahead single-flight cache and the
//! credential sources built on `azure_identity` (issue 3). It deliberately knows nothing about ODBC.
#![forbid(unsafe_code)]

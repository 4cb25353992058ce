//! ODBC connection strings for the Microsoft ODBC Driver 18 for SQL Server.
//!
//! Work in progress: see issue 2.
#![forbid(unsafe_code)]

//! Connect to SQL Server, Azure SQL and Fabric SQL through the Microsoft ODBC Driver 18 with Microsoft Entra ID.
//!
//! This facade will hold `Settings` in the shape of mssql-django's `DATABASES` entry, one cargo feature per auth
//! mode, `connect()`, `connect_async()` and a pool (issue 5). It deliberately re-exports rather than re-implements
//! the lower crates.
#![forbid(unsafe_code)]

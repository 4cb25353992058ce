//! A local stand-in for Microsoft Entra ID, the managed-identity endpoints and Azure SQL's federated login.
//!
//! This crate will let the real Microsoft ODBC Driver 18 log in with Entra tokens that are issued and checked
//! locally (issue 4). It is a test tool: nothing in the product depends on it.
#![forbid(unsafe_code)]

pub mod model;
pub mod sql;

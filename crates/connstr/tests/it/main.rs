//! Integration tests for mssql-entra-connstr: one binary, one module per topic.

mod api;
mod builder;
mod escaping;
mod modes;
mod props;
mod secrets;

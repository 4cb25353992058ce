//! Runs the `mssql-entra` binary: the pure commands (`sid`, `grant`, help and exit codes) and, against
//! the emulator with the real ODBC driver, `connstr`, `token`, `check` and `grant --apply`.

mod docs;
mod emulator;
mod pure;
mod support;

//! The `mssql-entra` command (issue 6): check, sid, grant, token, connstr.
//!
//! Not written yet; it prints what it will do and exits with a failure code.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("mssql-entra: no commands yet (see issue 6)");
    std::process::ExitCode::from(2)
}

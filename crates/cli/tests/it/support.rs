//! Running the binary and reading what it printed.

use std::process::{Command, Output};

/// The built `mssql-entra` binary, with a clean environment for our variables.
pub fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mssql-entra"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MSSQL_ENTRA") {
            c.env_remove(k);
        }
    }
    c
}

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(c: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("the binary runs");
    Run {
        code: status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

/// Runs `mssql-entra <args>`.
pub fn mssql_entra(args: &[&str]) -> Run {
    run(cmd().args(args))
}

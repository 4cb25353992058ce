//! `emulator-host`: the test emulator in a process of its own, for valgrind runs of the end-to-end suite
//! (so that valgrind checks only the client: our crates, odbc-api, unixODBC and the driver).
//!
//! It prints one JSON line (`sql_port`, `authority_host`, `ca_path`, `tenant`), then answers one line per
//! command on stdin: `token <who> <lifetime ms>` (a minted Azure SQL token), `count <endpoint>` (HTTP
//! requests, see `lab::endpoint_name`), `logins` (`<ok> <failed>`), `connections`, `quit`. It exits at
//! `quit` or end of input. Everything listens on 127.0.0.1.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use mssql_entra_emulator::Emulator;
use mssql_entra_tests::lab::{builder, endpoint_named, SQL_AUDIENCE};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut b = builder();
    while let Some(arg) = args.next() {
        match (
            arg.as_str(),
            args.next().and_then(|v| v.parse::<u64>().ok()),
        ) {
            ("--token-lifetime-ms", Some(ms)) => b = b.token_lifetime(Duration::from_millis(ms)),
            _ => {
                eprintln!("usage: emulator-host [--token-lifetime-ms N]");
                return ExitCode::FAILURE;
            }
        }
    }
    let emu = match Emulator::start_blocking(b) {
        Ok(emu) => emu,
        Err(e) => {
            eprintln!("error: the emulator did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let banner = serde_json::json!({
        "sql_port": emu.sql_addr().port(),
        "authority_host": emu.authority_host(),
        "ca_path": emu.ca_path(),
        "tenant": emu.tenant_id().to_string(),
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if writeln!(out, "{banner}")
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["quit"] => break,
            ["token", who, ms] => match ms.parse::<u64>() {
                Ok(ms) => emu
                    .issue_token(who, SQL_AUDIENCE, Duration::from_millis(ms))
                    .unwrap_or_else(|e| format!("error: {e}")),
                Err(e) => format!("error: {e}"),
            },
            ["count", name] => match endpoint_named(name) {
                Some(endpoint) => emu.http_stats().count(endpoint).to_string(),
                None => format!("error: unknown endpoint `{name}`"),
            },
            ["logins"] => {
                let stats = emu.sql().stats();
                format!("{} {}", stats.logins_ok(), stats.logins_failed())
            }
            ["connections"] => emu.sql().stats().connections().to_string(),
            _ => format!("error: unknown command `{line}`"),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

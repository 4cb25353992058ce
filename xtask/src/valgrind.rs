//! `cargo xtask test`'s valgrind step: token-mode end-to-end tests under memcheck.
//! Plus the connector's reconnect test, where the driver logs in again from the token buffer it kept.
//!
//! The driver keeps the pointer to the access-token buffer and may read it again after connecting, so the
//! connector owns the buffer together with the connection. This step proves it on the real driver: a few
//! token-mode tests of `tests/it` (static token, a token source over HTTPS, connections with different tokens
//! dropped out of order) run under `valgrind --error-exitcode`, with the emulator in a child process
//! (`MSSQL_ENTRA_TESTS_EMULATOR_PROCESS`) so that only client memory is checked. `tests/valgrind.supp`
//! silences only the loader's known over-read and uninitialised-value reports inside the Microsoft driver and
//! ring's AES-GCM assembly; any invalid read or write of our memory fails the step.
//!
//! Measured with a throwaway odbc-api program under these suppressions: freeing the token buffer *before*
//! `SQLSetConnectAttr(1256)` is reported ("Invalid read" in unixODBC's `SQLSetConnectAttrW`, exit 99); freeing it
//! right *after* is not, because unixODBC 2.3.11 copies pre-connect attributes when they are set and hands its
//! copy to the driver at connect.

use std::{path::Path, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::{cargo, output, project_root};

/// The tests that run under valgrind (about 40 s together; memcheck is 20–50× slower).
const TESTS: &[&str] = &[
    "token_mode::static_token",
    "token_mode::client_secret",
    "token_mode::connections_outlive_each_other",
];

/// The reconnect test of `mssql-entra-odbc`: the emulator kills the session and the driver silently logs in
/// again, reading the access token from the buffer the connector handed it. Its emulator runs in-process
/// (it needs the kill switch), so this run checks invalid reads and writes only (`--undef-value-errors=no`):
/// ring's AES-GCM assembly in the in-process emulator gives memcheck false "uninitialised" reports.
const RECONNECT_TEST: &str = "reconnect::a_killed_session_is_recovered_with_the_same_token";

pub(crate) fn run(sys_ini: &Path) -> Result<()> {
    let suppressions = project_root().join("tests").join("valgrind.supp");
    let exe = test_binary("mssql-entra-tests")?;
    let mut command = Command::new("valgrind");
    command
        .args(["--error-exitcode=99", "--leak-check=no", "--num-callers=40"])
        .arg(format!("--suppressions={}", suppressions.display()))
        .arg(&exe)
        .arg("--exact")
        .args(TESTS)
        .args(["--test-threads=1"])
        .env("ODBCSYSINI", sys_ini)
        .env("MSSQL_ENTRA_TESTS_EMULATOR_PROCESS", "1");
    expect_passed(&mut command, TESTS.len())?;

    let exe = test_binary("mssql-entra-odbc")?;
    let mut command = Command::new("valgrind");
    command
        .args([
            "--error-exitcode=99",
            "--leak-check=no",
            "--num-callers=40",
            "--undef-value-errors=no",
        ])
        .arg(format!("--suppressions={}", suppressions.display()))
        .arg(&exe)
        .args(["--exact", RECONNECT_TEST, "--test-threads=1"])
        .env("ODBCSYSINI", sys_ini);
    expect_passed(&mut command, 1)
}

/// The path of `package`'s `it` integration-test binary, built if needed.
fn test_binary(package: &str) -> Result<String> {
    let json = output(cargo().args([
        "test",
        "-p",
        package,
        "--test",
        "it",
        "--no-run",
        "--message-format=json",
    ]))?;
    json.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "it")
        .find_map(|m| m["executable"].as_str().map(str::to_owned))
        .with_context(|| format!("cargo did not report the `it` test binary of {package}"))
}

/// Runs `command` (valgrind over a test binary) and checks that exactly `count` tests passed.
fn expect_passed(command: &mut Command, count: usize) -> Result<()> {
    let stdout = output(command)
        .context("memcheck found errors (exit 99) or a test failed; the report is above")?;
    print!("{stdout}");
    let expected = format!("test result: ok. {count} passed");
    if !stdout.contains(&expected) {
        bail!("expected `{expected}` from the tests under valgrind; a test was renamed or filtered out");
    }
    Ok(())
}

//! `cargo xtask demo`: every auth mode through the real driver against the local emulator, as a table.
//!
//! Provisions the driver stack (the same `setup` as `cargo xtask test`), then runs the `mssql-entra-demo` binary
//! of the end-to-end crate (`tests/src/bin/demo.rs`), which starts the emulator in a private network namespace
//! it creates itself and connects once per mode. It fails when a row differs from its expectation.

use anyhow::{Context as _, Result};

use crate::{cargo, run_cmd, setup, step};

pub(crate) fn run() -> Result<()> {
    let driver = setup::run(&setup::default_dir())?;
    step("demo: build", || {
        run_cmd(cargo().args([
            "build",
            "--quiet",
            "-p",
            "mssql-entra-tests",
            "--bin",
            "mssql-entra-demo",
        ]))
    })?;
    run_cmd(
        cargo()
            .args([
                "run",
                "--quiet",
                "-p",
                "mssql-entra-tests",
                "--bin",
                "mssql-entra-demo",
            ])
            .env("ODBCSYSINI", &driver.sys_ini),
    )
    .context("the demo found rows that differ from their expected principal or refusal (marked UNEXPECTED above)")
}

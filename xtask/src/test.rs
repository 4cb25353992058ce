//! `cargo xtask test`: everything CI runs, in order, failing fast.
//!
//! setup → toolchain components → fmt → tidy → clippy → test (with `ODBCSYSINI` pointing at the driver) →
//! valgrind (token-mode end-to-end tests under memcheck, see `valgrind.rs`) → features.
//! The cheap checks run first so a formatting slip fails in seconds, not after a full build.

use std::{process::Command, time::Instant};

use anyhow::Result;

use crate::{cargo, features, run_cmd, setup, step, tidy, valgrind};

pub(crate) fn run_all() -> Result<()> {
    let started = Instant::now();
    let driver = setup::run(&setup::default_dir())?;
    step("toolchain: rustfmt and clippy", ensure_components)?;
    step("fmt", || {
        run_cmd(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("tidy", tidy::run)?;
    step("clippy", || {
        run_cmd(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("test", || {
        run_cmd(
            cargo()
                .args(["test", "--workspace"])
                .env("ODBCSYSINI", &driver.sys_ini),
        )
    })?;
    step("valgrind: token-mode end-to-end tests", || {
        valgrind::run(&driver.sys_ini)
    })?;
    step("features", features::run_all)?;
    eprintln!(
        "all checks passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// rustfmt and clippy are rustup components a minimal toolchain lacks; add them when rustup is there.
fn ensure_components() -> Result<()> {
    let works = |sub: &str| {
        cargo()
            .args([sub, "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(sub, _)| !works(sub))
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if setup::which("rustup").is_none() {
        anyhow::bail!(
            "`cargo {}` is missing and there is no rustup to add it; install the components {}",
            missing[0],
            missing.join(" ")
        );
    }
    run_cmd(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
    )
}

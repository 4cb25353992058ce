//! `cargo xtask soak [--threads N] [--minutes M] [--seed S]`: the long form of the soak in
//! `tests/it/reliability/soak.rs` (its short form, 4 threads × 20 s, runs in `cargo xtask test`).
//!
//! It provisions the driver, then runs that one test with its size in environment variables; the test runs
//! in a child process of its own, prints its figures (connects, failures, token requests, descriptors and
//! VmRSS at start, middle and end) and fails on any failure or growth.

use std::ffi::OsString;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, run_cmd, setup, step};

const THREADS_ENV: &str = "MSSQL_ENTRA_SOAK_THREADS";
const SECONDS_ENV: &str = "MSSQL_ENTRA_SOAK_SECONDS";
const SEED_ENV: &str = "MSSQL_ENTRA_SOAK_SEED";

/// The size of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Soak {
    threads: u32,
    minutes: u32,
    seed: Option<u64>,
}

impl Default for Soak {
    fn default() -> Self {
        Self {
            threads: 8,
            minutes: 10,
            seed: None,
        }
    }
}

pub(crate) fn parse_flags(rest: Vec<OsString>) -> Result<Soak> {
    let mut soak = Soak::default();
    let mut rest = rest.into_iter();
    while let Some(flag) = rest.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = |example: &str| -> Result<String> {
            rest.next()
                .map(|v| v.to_string_lossy().into_owned())
                .with_context(|| format!("`{flag}` needs a value, e.g. `{flag} {example}`"))
        };
        match flag.as_str() {
            "--threads" => soak.threads = number(&flag, &value("8")?)?,
            "--minutes" => soak.minutes = number(&flag, &value("10")?)?,
            "--seed" => soak.seed = Some(number(&flag, &value("42")?)?),
            _ => bail!(
                "unknown flag `{flag}` for `soak`; it takes `--threads N`, `--minutes M` and `--seed S`"
            ),
        }
    }
    if soak.threads == 0 || soak.minutes == 0 {
        bail!("`--threads` and `--minutes` must be at least 1");
    }
    Ok(soak)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T> {
    text.parse()
        .ok()
        .with_context(|| format!("`{flag} {text}`: expected a whole number"))
}

pub(crate) fn run(soak: &Soak) -> Result<()> {
    let driver = setup::run(&setup::default_dir())?;
    step(
        &format!("soak: {} threads × {} min", soak.threads, soak.minutes),
        || {
            let mut cmd = cargo();
            cmd.args([
                "test",
                "-p",
                "mssql-entra-tests",
                "--test",
                "it",
                "--",
                "--exact",
                "reliability::soak::soak",
                "--nocapture",
            ])
            .env("ODBCSYSINI", &driver.sys_ini)
            .env(THREADS_ENV, soak.threads.to_string())
            .env(SECONDS_ENV, (u64::from(soak.minutes) * 60).to_string());
            if let Some(seed) = soak.seed {
                cmd.env(SEED_ENV, seed.to_string());
            }
            run_cmd(&mut cmd)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flags(args(&[])).unwrap(), Soak::default());
        assert_eq!(
            parse_flags(args(&["--threads", "3", "--minutes", "2", "--seed", "7"])).unwrap(),
            Soak {
                threads: 3,
                minutes: 2,
                seed: Some(7)
            }
        );
        let err = parse_flags(args(&["--threads"])).unwrap_err().to_string();
        assert!(err.contains("`--threads` needs a value"), "{err}");
        let err = parse_flags(args(&["--minutes", "x"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a whole number"), "{err}");
        let err = parse_flags(args(&["--threads", "0"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 1"), "{err}");
        let err = parse_flags(args(&["--fast"])).unwrap_err().to_string();
        assert!(err.contains("unknown flag `--fast`"), "{err}");
    }
}

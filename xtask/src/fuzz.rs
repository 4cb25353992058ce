//! `cargo xtask fuzz [--runs N] [--seed S] [--target NAME]`: builds the cargo-fuzz targets in `fuzz/` with
//! libFuzzer's instrumentation and runs each for a fixed number of executions, starting from the seed inputs
//! in `fuzz/seeds/<target>` plus the corpus earlier runs grew (`target/fuzz/corpus/<target>`).
//!
//! It builds with the flags `cargo fuzz build` uses (SanitizerCoverage: inline 8-bit counters, PC table,
//! compare tracing; `--cfg fuzzing`, debug assertions, overflow checks), so `cargo-fuzz` need not be
//! installed. With a nightly toolchain (`rustup toolchain list`) AddressSanitizer is on too; with stable
//! only, the same coverage-guided run goes without it (libFuzzer itself needs no nightly). A crash, timeout
//! or out-of-memory leaves its input in `target/fuzz/artifacts/<target>/` and fails the command; make each
//! such input a regression test (docs/fuzzing.md says where).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::{output, project_root, run_cmd, step};

/// The targets in `fuzz/Cargo.toml`.
const TARGETS: &[&str] = &["connstr_parse", "prelogin", "login7", "fedauth_token"];

/// Options of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fuzz {
    runs: u64,
    seed: u64,
    target: Option<String>,
}

impl Default for Fuzz {
    fn default() -> Self {
        Self {
            runs: 200_000,
            seed: 1,
            target: None,
        }
    }
}

pub(crate) fn parse_flags(rest: Vec<OsString>) -> Result<Fuzz> {
    let mut fuzz = Fuzz::default();
    let mut rest = rest.into_iter();
    while let Some(flag) = rest.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = |example: &str| -> Result<String> {
            rest.next()
                .map(|v| v.to_string_lossy().into_owned())
                .with_context(|| format!("`{flag}` needs a value, e.g. `{flag} {example}`"))
        };
        match flag.as_str() {
            "--runs" => fuzz.runs = number(&flag, &value("100000")?)?,
            "--seed" => fuzz.seed = number(&flag, &value("1")?)?,
            "--target" => {
                let name = value("login7")?;
                if !TARGETS.contains(&name.as_str()) {
                    bail!("unknown fuzz target `{name}`; the targets are {}", TARGETS.join(", "));
                }
                fuzz.target = Some(name);
            }
            _ => bail!(
                "unknown flag `{flag}` for `fuzz`; it takes `--runs N`, `--seed S` and `--target NAME`"
            ),
        }
    }
    if fuzz.runs == 0 {
        bail!("`--runs` must be at least 1");
    }
    Ok(fuzz)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T> {
    text.parse()
        .ok()
        .with_context(|| format!("`{flag} {text}`: expected a whole number"))
}

/// What one target did.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    runs: Option<u64>,
    seconds: f64,
    coverage: Option<u64>,
    corpus: usize,
    artifacts: Vec<PathBuf>,
}

pub(crate) fn run(fuzz: &Fuzz) -> Result<()> {
    let root = project_root();
    let target_dir = root.join("target").join("fuzz");
    let toolchain = Toolchain::detect();
    let triple = host_triple()?;
    step(
        &format!("fuzz: build the targets ({})", toolchain.describe()),
        || build(&root, &target_dir, &toolchain, &triple),
    )?;
    let targets: Vec<&str> = match &fuzz.target {
        Some(t) => vec![t.as_str()],
        None => TARGETS.to_vec(),
    };
    let mut table = Vec::new();
    for target in targets {
        let binary = target_dir.join(&triple).join("release").join(target);
        let figures = step(&format!("fuzz: {target} × {} runs", fuzz.runs), || {
            run_target(&root, &target_dir, &binary, target, fuzz)
        })?;
        table.push((target, figures));
    }
    println!("\n| target | executions | seconds | exec/s | coverage | corpus | crashes |");
    println!("|---|---|---|---|---|---|---|");
    for (target, f) in &table {
        let runs = f.runs.map_or_else(|| "?".to_owned(), |r| r.to_string());
        let rate = f.runs.map_or_else(
            || "?".to_owned(),
            |r| format!("{:.0}", r as f64 / f.seconds.max(1e-3)),
        );
        let cov = f.coverage.map_or_else(|| "?".to_owned(), |c| c.to_string());
        println!(
            "| {target} | {runs} | {:.1} | {rate} | {cov} | {} | {} |",
            f.seconds,
            f.corpus,
            f.artifacts.len()
        );
    }
    let crashes: Vec<&PathBuf> = table.iter().flat_map(|(_, f)| &f.artifacts).collect();
    if !crashes.is_empty() {
        bail!(
            "the fuzzers found {} failing input(s): {}; reproduce with the target binary and the file, then \
             add the input as a regression test (docs/fuzzing.md)",
            crashes.len(),
            crashes
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[derive(Debug)]
enum Toolchain {
    /// `rustup run nightly cargo`, with AddressSanitizer.
    Nightly,
    /// The cargo running xtask, without a sanitizer.
    Stable,
}

impl Toolchain {
    fn detect() -> Self {
        let listed = Command::new("rustup")
            .args(["toolchain", "list"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if listed.lines().any(|l| l.starts_with("nightly")) {
            Toolchain::Nightly
        } else {
            Toolchain::Stable
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Toolchain::Nightly => "nightly, libFuzzer + AddressSanitizer",
            Toolchain::Stable => "stable, libFuzzer without a sanitizer: no nightly toolchain",
        }
    }

    fn cargo(&self) -> Command {
        let mut cmd = match self {
            Toolchain::Nightly => {
                let mut cmd = Command::new("rustup");
                cmd.args(["run", "nightly", "cargo"]);
                cmd
            }
            Toolchain::Stable => {
                Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            }
        };
        // `cargo xtask` runs under the stable toolchain; keep its choice out of the nightly build.
        for var in [
            "RUSTUP_TOOLCHAIN",
            "RUSTC",
            "RUSTDOC",
            "RUSTC_WRAPPER",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn rustflags(&self) -> String {
        let mut flags = vec![
            "-Cpasses=sancov-module",
            "-Cllvm-args=-sanitizer-coverage-level=4",
            "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
            "-Cllvm-args=-sanitizer-coverage-pc-table",
            "-Cllvm-args=-sanitizer-coverage-trace-compares",
            "--cfg",
            "fuzzing",
            "-Cdebug-assertions",
            "-Coverflow-checks",
        ];
        if matches!(self, Toolchain::Nightly) {
            flags.push("-Zsanitizer=address");
        }
        flags.join(" ")
    }
}

fn host_triple() -> Result<String> {
    let text = output(Command::new("rustc").arg("-vV"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}

fn build(root: &Path, target_dir: &Path, toolchain: &Toolchain, triple: &str) -> Result<()> {
    // `--target` keeps the instrumentation out of build scripts and proc macros, as cargo-fuzz does.
    run_cmd(
        toolchain
            .cargo()
            .current_dir(root.join("fuzz"))
            .args(["build", "--release", "--bins", "--target", triple])
            .env("CARGO_TARGET_DIR", target_dir)
            .env("RUSTFLAGS", toolchain.rustflags()),
    )
}

fn run_target(
    root: &Path,
    target_dir: &Path,
    binary: &Path,
    target: &str,
    fuzz: &Fuzz,
) -> Result<Figures> {
    let corpus = target_dir.join("corpus").join(target);
    let artifacts = target_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("create {}", corpus.display()))?;
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("create {}", artifacts.display()))?;
    let seeds = root.join("fuzz").join("seeds").join(target);
    let before = list(&artifacts)?;
    let started = Instant::now();
    let out = Command::new(binary)
        .arg(format!("-runs={}", fuzz.runs))
        .arg(format!("-seed={}", fuzz.seed))
        .arg("-max_len=4096")
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .arg(&seeds)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let mut figures = parse_log(&log);
    figures.seconds = seconds;
    figures.corpus = list(&corpus)?.len();
    figures.artifacts = list(&artifacts)?
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if !out.status.success() && figures.artifacts.is_empty() {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        bail!(
            "{target} exited with {} and left no input behind:\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(figures)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        files.push(entry?.path());
    }
    files.sort();
    Ok(files)
}

/// Reads libFuzzer's final statistics and its last `cov:` figure from its log.
fn parse_log(log: &str) -> Figures {
    let mut figures = Figures::default();
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            figures.runs = n.trim().parse().ok();
        }
        if let Some(rest) = line.split(" cov: ").nth(1) {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                figures.coverage = Some(n);
            }
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flags(args(&[])).unwrap(), Fuzz::default());
        let fuzz =
            parse_flags(args(&["--runs", "10", "--seed", "3", "--target", "login7"])).unwrap();
        assert_eq!(
            fuzz,
            Fuzz {
                runs: 10,
                seed: 3,
                target: Some("login7".to_owned())
            }
        );
        let err = parse_flags(args(&["--target", "nope"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown fuzz target `nope`"), "{err}");
        let err = parse_flags(args(&["--runs", "0"])).unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn reads_libfuzzer_figures() {
        let log = "#2\tINITED cov: 52 ft: 53 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #65536\tpulse  cov: 120 ft: 300 corp: 40/2Kb lim: 652 exec/s: 32768 rss: 40Mb\n\
                   Done 100000 runs in 3 second(s)\n\
                   stat::number_of_executed_units: 100000\n\
                   stat::average_exec_per_sec:     33333\n";
        let f = parse_log(log);
        assert_eq!(f.runs, Some(100_000));
        assert_eq!(f.coverage, Some(120));
    }
}

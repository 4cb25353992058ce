//! Project automation: `cargo xtask <command>`; `cargo xtask help` lists the commands.
//!
//! One module per command, plain `std::process::Command` underneath, and only a handful of dependencies
//! (`anyhow`, `serde_json` for `cargo metadata`, `sha2` for the pinned driver wheel), after rust-analyzer's xtask.
//! It provisions the driver stack into the project (`target/driver`) and never writes to `/etc`.
//! It is not part of the product and is never published.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod features;
mod fuzz;
mod setup;
mod soak;
mod test;
mod tidy;
mod valgrind;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

const HELP: &str = "\
cargo xtask <command>

Commands:
  setup [--dir DIR]  provision unixODBC and the Microsoft ODBC Driver 18 (pinned PyPI wheel)
                     into DIR (default: <workspace>/target/driver); print the environment to reuse it
  test               everything CI runs: setup, fmt, tidy, clippy, test, valgrind, features
  valgrind           the token-mode end-to-end tests under valgrind (the step `test` runs)
  tidy               layering and documentation checks (also run by `cargo test -p xtask`)
  features           `cargo check` every product crate with each of its features alone
  demo               every auth mode through the real driver against the local emulator, as a table
                     (runs in a private network namespace it creates: needs root)
  bench [--quick]    benchmarks against raw odbc-api, pyodbc and tiberius on the emulator, written to
                     target/bench/report.md (--quick: shorter loops, for development)
  soak [--threads N] [--minutes M] [--seed S]
                     the long soak: N threads (8) connecting for M minutes (10) with rotating short
                     tokens and random token-service faults (its 20-second form runs in `test`)
  fuzz [--runs N] [--seed S] [--target NAME]
                     build the libFuzzer targets in fuzz/ and run each for N executions (200000)
  help               this text
";

fn main() {
    if let Err(err) = try_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let command = args.next().map(|it| it.to_string_lossy().into_owned());
    let rest: Vec<OsString> = args.collect();
    match command.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("setup") => {
            let dir = parse_setup_flags(rest)?;
            let driver = setup::run(&dir)?;
            driver.print_environment();
            Ok(())
        }
        Some("test") => {
            no_flags("test", &rest)?;
            test::run_all()
        }
        Some("valgrind") => {
            no_flags("valgrind", &rest)?;
            let driver = setup::run(&setup::default_dir())?;
            step("valgrind: token-mode end-to-end tests", || {
                valgrind::run(&driver.sys_ini)
            })
        }
        Some("tidy") => {
            no_flags("tidy", &rest)?;
            step("tidy", tidy::run)
        }
        Some("features") => {
            no_flags("features", &rest)?;
            step("features", features::run_all)
        }
        Some("bench") => {
            let quick = bench::parse_flags(&rest)?;
            bench::run(quick)
        }
        Some("demo") => {
            no_flags("demo", &rest)?;
            demo::run()
        }
        Some("soak") => {
            let soak = soak::parse_flags(rest)?;
            soak::run(&soak)
        }
        Some("fuzz") => {
            let fuzz = fuzz::parse_flags(rest)?;
            fuzz::run(&fuzz)
        }
        Some(other) => bail!("unknown command `{other}`; run `cargo xtask help` for the list"),
    }
}

fn parse_setup_flags(rest: Vec<OsString>) -> Result<PathBuf> {
    let mut dir = None;
    let mut rest = rest.into_iter();
    while let Some(flag) = rest.next() {
        match flag.to_str() {
            Some("--dir") => {
                let value = rest
                    .next()
                    .context("`--dir` needs a directory, e.g. `--dir /tmp/driver`")?;
                dir = Some(PathBuf::from(value));
            }
            _ => bail!(
                "unknown flag `{}` for `setup`; it takes only `--dir DIR`",
                flag.to_string_lossy()
            ),
        }
    }
    Ok(dir.unwrap_or_else(setup::default_dir))
}

fn no_flags(command: &str, rest: &[OsString]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(flag) => bail!(
            "`{command}` takes no arguments, got `{}`",
            flag.to_string_lossy()
        ),
    }
}

/// The workspace root: xtask lives one level below it.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `xtask/` always has a parent: the workspace that contains it.
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `cargo` as invoked by the user (`$CARGO` under `cargo run`), run from the workspace root.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root());
    cmd
}

/// Runs one named step, printing its name before and its time after.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let result = f();
    let took = started.elapsed().as_secs_f64();
    match &result {
        Ok(_) => eprintln!("<== {name}: ok ({took:.1}s)"),
        Err(_) => eprintln!("<== {name}: FAILED ({took:.1}s)"),
    }
    result.with_context(|| format!("step `{name}` failed"))
}

/// Runs a command with inherited stdio; a non-zero exit is an error naming the command.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout; stderr is shown as it comes.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    String::from_utf8(out.stdout)
        .with_context(|| format!("`{shown}` printed something that is not UTF-8"))
}

fn show(cmd: &Command) -> String {
    let mut shown = cmd.get_program().to_string_lossy().into_owned();
    if shown.ends_with("/cargo") {
        shown = "cargo".to_owned();
    }
    for arg in cmd.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

//! `cargo xtask bench [--quick]`: every benchmark figure of issue 7 in one run, written to `target/bench/report.md`.
//!
//! In-process figures come from criterion (`bench/peers/benches/inproc.rs`, medians read from criterion's
//! `estimates.json`); whole-process figures from `bench-peers run` (`bench/peers/src/main.rs`), which starts the
//! emulator in a process of its own and every client (our facade, raw odbc-api, pyodbc, tiberius) in a child
//! process against it. `bench/peers` is a package outside the workspace, built here only, into
//! `target/bench-build`, so its peer dependencies never slow CI. pyodbc is installed with pip into a virtualenv
//! under `target/bench/venv`. Everything talks to 127.0.0.1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::{cargo, output, project_root, run_cmd, setup, step};

/// The pyodbc release the bench installs (wheels for CPython 3.8–3.13 on manylinux x86_64).
const PYODBC: &str = "pyodbc==5.2.0";

/// Criterion benches of `bench/peers/benches/inproc.rs` the report reads, with their targets.
const CRITERION_GROUP: &str = "inproc";

pub(crate) fn run(quick: bool) -> Result<()> {
    let root = project_root();
    let out_dir = root.join("target").join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let driver = setup::run(&setup::default_dir())?;
    let python = step("bench: pyodbc in target/bench/venv", || {
        ensure_pyodbc(&out_dir)
    })?;
    let build_dir = root.join("target").join("bench-build");
    let manifest = root.join("bench").join("peers").join("Cargo.toml");
    step("bench: build bench/peers (release)", || {
        run_cmd(
            cargo()
                .args(["build", "--release", "--bins", "--manifest-path"])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &build_dir),
        )
    })?;
    let measurement = if quick { "2" } else { "5" };
    step("bench: criterion (in-process figures)", || {
        run_cmd(
            cargo()
                .args(["bench", "--bench", "inproc", "--manifest-path"])
                .arg(&manifest)
                .args([
                    "--",
                    "--warm-up-time",
                    "1",
                    "--measurement-time",
                    measurement,
                    "--noplot",
                ])
                .env("CARGO_TARGET_DIR", &build_dir),
        )
    })?;
    let peers_json = out_dir.join("peers.json");
    step("bench: whole-process figures (bench-peers run)", || {
        let mut cmd = Command::new(build_dir.join("release").join("bench-peers"));
        cmd.arg("run")
            .arg("--out")
            .arg(&peers_json)
            .arg("--python")
            .arg(&python)
            .env("ODBCSYSINI", &driver.sys_ini);
        if quick {
            cmd.arg("--quick");
        }
        run_cmd(&mut cmd)
    })?;
    let library = driver
        .library
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = render(
        quick,
        &read_json(&peers_json)?,
        &criterion_figures(&build_dir)?,
        &python,
        &library,
    )?;
    let path = out_dir.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("write {}", path.display()))?;
    println!("{report}");
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A virtualenv with pyodbc; returns its python.
fn ensure_pyodbc(out_dir: &Path) -> Result<PathBuf> {
    let venv = out_dir.join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "creating the virtualenv needs Python 3 with venv (Debian: `apt-get install python3-venv`)",
        )?;
    }
    let have = Command::new(&python)
        .args(["-c", "import pyodbc; print(pyodbc.version)"])
        .output()
        .map(|o| o.status.success() && PYODBC.ends_with(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or(false);
    if !have {
        run_cmd(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYODBC,
        ]))?;
    }
    Ok(python)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Median (ns) of one criterion bench, from `estimates.json`.
fn criterion_median(build_dir: &Path, bench: &str) -> Result<f64> {
    let path = build_dir
        .join("criterion")
        .join(CRITERION_GROUP)
        .join(bench)
        .join("new")
        .join("estimates.json");
    read_json(&path)?["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no median in {}", path.display()))
}

/// The in-process figures: (name, value, target, held, detail).
fn criterion_figures(build_dir: &Path) -> Result<Vec<[String; 5]>> {
    let get_token = criterion_median(build_dir, "cached_get_token")?;
    let arc = criterion_median(build_dir, "arc_clone")?;
    let connstr = criterion_median(build_dir, "connstr_build")?;
    Ok(vec![
        [
            "cached `get_token` median (hot path, through `dyn TokenSource`)".into(),
            format!("{get_token:.1} ns"),
            "≤ 100 ns".into(),
            yes_no(get_token <= 100.0),
            format!(
                "`Arc::clone` of a token: {arc:.1} ns, so the cache costs {:.0}× a bare clone",
                get_token / arc.max(0.001)
            ),
        ],
        [
            "connection string build median (builder + validate + render)".into(),
            format!("{:.2} µs", connstr / 1000.0),
            "—".into(),
            "—".into(),
            "host, port, database, driver, Encrypt, two extra_params".into(),
        ],
    ])
}

fn yes_no(held: bool) -> String {
    if held { "yes" } else { "**no**" }.into()
}

fn render(
    quick: bool,
    peers: &Value,
    inproc: &[[String; 5]],
    python: &Path,
    driver_library: &str,
) -> Result<String> {
    let root = project_root();
    let mut r = String::new();
    let commit = output(
        Command::new("git")
            .current_dir(&root)
            .args(["rev-parse", "HEAD"]),
    )
    .map(|s| s.trim().to_owned())
    .unwrap_or_else(|_| "unknown (not a git checkout)".into());
    let dirty = output(
        Command::new("git")
            .current_dir(&root)
            .args(["status", "--porcelain"]),
    )
    .map(|s| !s.trim().is_empty())
    .unwrap_or(false);
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let python_version = output(Command::new(python).arg("--version"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let rustc = output(Command::new("rustc").arg("--version"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let s = |v: &Value| v.as_str().unwrap_or("unknown").to_owned();

    writeln!(r, "# Benchmark report")?;
    writeln!(r)?;
    writeln!(
        r,
        "Written by `cargo xtask bench{}`. Every figure is a ratio or a count measured in this one run, on the same \
         emulator and the same driver, everything on 127.0.0.1.",
        if quick { " --quick" } else { "" }
    )?;
    writeln!(r)?;
    writeln!(r, "| | |")?;
    writeln!(r, "|---|---|")?;
    writeln!(r, "| date | {date} |")?;
    writeln!(
        r,
        "| commit | `{commit}`{} |",
        if dirty {
            " + uncommitted changes (dirty)"
        } else {
            ""
        }
    )?;
    writeln!(
        r,
        "| run | {} |",
        if quick {
            "`--quick` (shorter loops; continuous connects for 15 s instead of 60 s)"
        } else {
            "full (continuous connects for 60 s)"
        }
    )?;
    writeln!(r, "| machine | {} |", machine())?;
    writeln!(
        r,
        "| ODBC driver | Microsoft ODBC Driver 18 for SQL Server {} (`{driver_library}`, from the PyPI wheel `mssql-python-odbc`; unixODBC) |",
        s(&peers["driver_version"])
    )?;
    writeln!(
        r,
        "| pyodbc | {} ({python_version}) |",
        s(&peers["pyodbc_version"])
    )?;
    writeln!(
        r,
        "| tiberius | {} (features `tds73`, `rustls`) |",
        tiberius_version(&root)
    )?;
    writeln!(r, "| rustc | {rustc} |")?;
    writeln!(r)?;
    writeln!(r, "| figure | value | target | held | detail |")?;
    writeln!(r, "|---|---|---|---|---|")?;
    let figures = peers["figures"]
        .as_array()
        .context("peers.json has no figures")?;
    let mut failed = 0;
    for f in figures {
        let held = match f["held"].as_bool() {
            Some(true) => "yes".to_owned(),
            Some(false) => {
                failed += 1;
                "**no**".to_owned()
            }
            None => "—".to_owned(),
        };
        let target = f["target"].as_str().unwrap_or("— (reported)");
        writeln!(
            r,
            "| {} | {} | {target} | {held} | {} |",
            cell(&s(&f["name"])),
            cell(&s(&f["value"])),
            cell(&s(&f["detail"]))
        )?;
    }
    for [name, value, target, held, detail] in inproc {
        if held.contains("no") {
            failed += 1;
        }
        writeln!(
            r,
            "| {name} | {value} | {target} | {held} | {} |",
            cell(detail)
        )?;
    }
    writeln!(r)?;
    writeln!(r, "Connect + `SELECT 1` + disconnect, median per client (access token, Encrypt=yes, the emulator's CA trusted):")?;
    writeln!(r)?;
    writeln!(r, "| client | p50 (ms) |")?;
    writeln!(r, "|---|---|")?;
    if let Some(rows) = peers["connect_p50_ms"].as_array() {
        for row in rows {
            writeln!(
                r,
                "| {} | {:.2} |",
                s(&row[0]),
                row[1].as_f64().unwrap_or(f64::NAN)
            )?;
        }
    }
    writeln!(r)?;
    writeln!(
        r,
        "{failed} target(s) not held. The machine may be shared: absolute times are noisy; ratios of clients \
         interleaved in the same run are the meaningful figures."
    )?;
    Ok(r)
}

/// A markdown table cell: no pipes or newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn machine() -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{nproc} CPUs ({model}), {mem_gib} memory, Linux {kernel}")
}

/// The tiberius version locked in `bench/peers/Cargo.lock`.
fn tiberius_version(root: &Path) -> String {
    let lock = std::fs::read_to_string(root.join("bench").join("peers").join("Cargo.lock"))
        .unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"tiberius\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    "unknown".into()
}

/// Parses `bench`'s flags: only `--quick`.
pub(crate) fn parse_flags(rest: &[std::ffi::OsString]) -> Result<bool> {
    let mut quick = false;
    for flag in rest {
        match flag.to_str() {
            Some("--quick") => quick = true,
            _ => bail!(
                "unknown flag `{}` for `bench`; it takes only `--quick`",
                flag.to_string_lossy()
            ),
        }
    }
    Ok(quick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_only_quick() {
        assert!(!parse_flags(&[]).unwrap());
        assert!(parse_flags(&["--quick".into()]).unwrap());
        let err = parse_flags(&["--full".into()]).unwrap_err().to_string();
        assert!(err.contains("--full") && err.contains("--quick"), "{err}");
    }

    #[test]
    fn report_marks_missed_targets_and_escapes_cells() {
        let peers = serde_json::json!({
            "driver_version": "18.6",
            "pyodbc_version": "5.2.0",
            "figures": [
                { "name": "held one", "value": "1", "target": "1", "held": true, "detail": "a | b" },
                { "name": "missed one", "value": "3", "target": "1", "held": false, "detail": "x" },
                { "name": "reported", "value": "2.5", "target": null, "held": null, "detail": "y" }
            ],
            "connect_p50_ms": [["facade", 4.5]]
        });
        let inproc = [[
            "get_token".to_owned(),
            "250 ns".to_owned(),
            "≤ 100 ns".to_owned(),
            yes_no(false),
            "d".to_owned(),
        ]];
        let report = render(true, &peers, &inproc, Path::new("python3"), "lib.so").unwrap();
        assert!(
            report.contains("| held one | 1 | 1 | yes | a \\| b |"),
            "{report}"
        );
        assert!(
            report.contains("| missed one | 3 | 1 | **no** | x |"),
            "{report}"
        );
        assert!(
            report.contains("| reported | 2.5 | — (reported) | — | y |"),
            "{report}"
        );
        assert!(report.contains("2 target(s) not held"), "{report}");
        assert!(report.contains("`--quick`"), "{report}");
        assert!(report.contains("| facade | 4.50 |"), "{report}");
    }

    #[test]
    fn tiberius_version_comes_from_the_peers_lock_file() {
        let v = tiberius_version(&project_root());
        assert!(v.starts_with("0.12."), "{v}");
    }
}

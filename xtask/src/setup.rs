//! `cargo xtask setup`: the real driver stack, provisioned into the project.
//!
//! 1. System pieces from Debian: unixODBC (`unixodbc-dev`, `libltdl7`), the driver's own shared-library
//!    dependencies, and the tools the end-to-end suites use (`ip`, `unshare`, `valgrind`).
//!    Installed with `apt-get` when running as root and missing; otherwise the error names the one command to run.
//! 2. The Microsoft ODBC Driver 18 from the PyPI wheel `mssql-python-odbc`, pinned by version and sha256,
//!    fetched with pip, unpacked under `<dir>/wheel` and registered in `<dir>/odbcinst.ini`.
//!    Users point `ODBCSYSINI` at `<dir>`; nothing is written to `/etc`.
//!
//! The unpacked tree is renamed into place only when complete, and a stamp recording version and sha256 is
//! written last, so an interrupted run is redone and a repeat run only checks the stamp and the files.

use std::{
    fmt::Write as _,
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::{output, project_root, run_cmd, step};

/// The name under which `odbcinst.ini` registers the driver; connection strings say `Driver={…}`.
pub(crate) const DRIVER_NAME: &str = "ODBC Driver 18 for SQL Server";

/// The pinned wheel. Bumping the version means changing all four fields; the next setup re-provisions.
struct Wheel {
    project: &'static str,
    version: &'static str,
    platform: &'static str,
    file: &'static str,
    sha256: &'static str,
}

const WHEEL: Wheel = Wheel {
    project: "mssql-python-odbc",
    version: "18.6.2.2",
    platform: "manylinux_2_28_x86_64",
    file: "mssql_python_odbc-18.6.2.2-py3-none-manylinux_2_28_x86_64.whl",
    sha256: "f5ed985f6d9854345e3e65dbc38e0b574ff13d8e04e6a58492d37bb19e714553",
};

/// Inside the unpacked wheel, the driver build for Debian/Ubuntu lives in a directory ending like this.
const DRIVER_LIB_DIR: &str = "debian_ubuntu/x86_64/lib";
const DRIVER_FILE_PREFIX: &str = "libmsodbcsql-18";

const STAMP: &str = "setup.stamp";

/// Where `cargo xtask setup` puts the driver unless told otherwise.
pub(crate) fn default_dir() -> PathBuf {
    project_root().join("target").join("driver")
}

/// A provisioned driver stack.
#[derive(Debug)]
pub(crate) struct Driver {
    /// The directory holding `odbcinst.ini`: the value for `ODBCSYSINI`.
    pub(crate) sys_ini: PathBuf,
    /// The driver's shared library, as registered.
    pub(crate) library: PathBuf,
}

impl Driver {
    pub(crate) fn print_environment(&self) {
        println!(
            "`{DRIVER_NAME}` ({} {}) is registered in {}",
            WHEEL.project,
            WHEEL.version,
            self.sys_ini.join("odbcinst.ini").display()
        );
        println!("driver library: {}", self.library.display());
        println!("To use it outside xtask (odbc-api, isql, pyodbc), set:");
        println!("    export ODBCSYSINI={}", self.sys_ini.display());
    }
}

/// Provisions everything into `dir`, each part as a timed step.
pub(crate) fn run(dir: &Path) -> Result<Driver> {
    step("setup: system packages", || ensure_system(SYSTEM))?;
    step("setup: driver", || provision_driver(dir))
}

// ---------------------------------------------------------------------------------------------------------------
// System packages.

#[derive(Debug, Clone, Copy)]
enum Probe {
    /// A shared library known to the dynamic loader (x86-64).
    Lib(&'static str),
    /// An executable on PATH (or in /usr/sbin, /sbin, where root's tools live).
    Cmd(&'static str),
    /// A module that `python3 -m <module> --version` runs.
    Python(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Need {
    probe: Probe,
    package: &'static str,
    why: &'static str,
}

const SYSTEM: &[Need] = &[
    Need {
        probe: Probe::Lib("libodbc.so.2"),
        package: "unixodbc-dev",
        why: "the unixODBC driver manager",
    },
    Need {
        probe: Probe::Lib("libodbc.so"),
        package: "unixodbc-dev",
        why: "the linker needs it to build odbc-api",
    },
    Need {
        probe: Probe::Lib("libltdl.so.7"),
        package: "libltdl7",
        why: "unixODBC loads drivers with it",
    },
    Need {
        probe: Probe::Lib("libkrb5.so.3"),
        package: "libkrb5-3",
        why: "the driver links it",
    },
    Need {
        probe: Probe::Lib("libgssapi_krb5.so.2"),
        package: "libgssapi-krb5-2",
        why: "the driver links it",
    },
    Need {
        probe: Probe::Lib("libcurl.so.4"),
        package: "libcurl4",
        why: "the driver loads it for Entra ID HTTP",
    },
    Need {
        probe: Probe::Lib("libssl.so.3"),
        package: "libssl3",
        why: "the driver loads it for TLS",
    },
    Need {
        probe: Probe::Cmd("ip"),
        package: "iproute2",
        why: "end-to-end suites set up private network namespaces",
    },
    Need {
        probe: Probe::Cmd("unshare"),
        package: "util-linux",
        why: "end-to-end suites create private namespaces",
    },
    Need {
        probe: Probe::Cmd("valgrind"),
        package: "valgrind",
        why: "end-to-end suites check the driver for leaks",
    },
];

/// Only needed when the wheel has to be downloaded.
const PIP: &[Need] = &[Need {
    probe: Probe::Python("pip"),
    package: "python3-pip",
    why: "fetches the driver wheel",
}];

fn ensure_system(needs: &[Need]) -> Result<()> {
    let loader = LoaderCache::read();
    let missing: Vec<Need> = needs
        .iter()
        .copied()
        .filter(|need| !present(need.probe, &loader))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages = plan_install(&missing, which("apt-get").is_some(), is_root()?)?;
    eprintln!(
        "{}\ninstalling with apt-get: {packages}",
        missing_report(&missing)
    );
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run_cmd(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(packages.split(' '));
    run_cmd(&mut install)?;

    let loader = LoaderCache::read();
    let still: Vec<Need> = missing
        .into_iter()
        .filter(|need| !present(need.probe, &loader))
        .collect();
    if !still.is_empty() {
        bail!(
            "{}\n`apt-get install {packages}` succeeded but did not provide them",
            missing_report(&still)
        );
    }
    Ok(())
}

/// With apt-get and root: the packages to install. Otherwise the error a user sees: what is missing and the fix.
fn plan_install(missing: &[Need], has_apt: bool, root: bool) -> Result<String> {
    let packages = package_list(missing);
    let report = missing_report(missing);
    if !has_apt {
        bail!("{report}\nthis is not a Debian-like system: install the equivalents of `{packages}` and rerun");
    }
    if !root {
        bail!("{report}\nrun this as root, then rerun `cargo xtask setup`:\n    sudo apt-get install -y {packages}");
    }
    Ok(packages)
}

fn missing_report(missing: &[Need]) -> String {
    let mut report = format!("missing system pieces ({}):", missing.len());
    for need in missing {
        let (kind, name) = match need.probe {
            Probe::Lib(name) => ("library", name),
            Probe::Cmd(name) => ("command", name),
            Probe::Python(name) => ("python3 module", name),
        };
        // Writing to a String cannot fail.
        let _ = write!(
            report,
            "\n  {kind} `{name}` (Debian package {}): {}",
            need.package, need.why
        );
    }
    report
}

fn package_list(needs: &[Need]) -> String {
    let mut packages: Vec<&str> = needs.iter().map(|need| need.package).collect();
    packages.sort_unstable();
    packages.dedup();
    packages.join(" ")
}

fn present(probe: Probe, loader: &LoaderCache) -> bool {
    match probe {
        Probe::Lib(name) => loader.has(name),
        Probe::Cmd(name) => which(name).is_some(),
        Probe::Python(module) => Command::new("python3")
            .args(["-m", module, "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success()),
    }
}

/// The libraries the dynamic loader knows, from `ldconfig -p`, with a directory scan as fallback.
struct LoaderCache {
    names: Option<Vec<String>>,
}

impl LoaderCache {
    fn read() -> LoaderCache {
        let ldconfig = which("ldconfig").unwrap_or_else(|| PathBuf::from("/sbin/ldconfig"));
        let names = output(
            Command::new(ldconfig)
                .arg("-p")
                .stderr(std::process::Stdio::null()),
        )
        .ok()
        .map(|text| {
            text.lines()
                .filter(|line| line.contains("x86-64"))
                .filter_map(|line| line.split_whitespace().next())
                .map(str::to_owned)
                .collect()
        });
        LoaderCache { names }
    }

    fn has(&self, lib: &str) -> bool {
        if self
            .names
            .as_ref()
            .is_some_and(|names| names.iter().any(|name| name == lib))
        {
            return true;
        }
        const DIRS: &[&str] = &[
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/usr/local/lib",
        ];
        DIRS.iter().any(|dir| Path::new(dir).join(lib).exists())
    }
}

/// Finds an executable on PATH, then in the sbin directories a non-root PATH often lacks.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The effective user id is 0 (read from `/proc/self/status`, so no libc binding is needed).
fn is_root() -> Result<bool> {
    let status = fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status to find the user id")?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no effective `Uid:` in /proc/self/status")?;
    Ok(euid == "0")
}

// ---------------------------------------------------------------------------------------------------------------
// The driver.

fn stamp_text() -> String {
    format!(
        "{}=={} sha256={}\n",
        WHEEL.project, WHEEL.version, WHEEL.sha256
    )
}

fn provision_driver(dir: &Path) -> Result<Driver> {
    if std::env::consts::OS != "linux" || std::env::consts::ARCH != "x86_64" {
        bail!(
            "the pinned driver wheel ({}) runs on x86_64 Linux only; this is {} {}",
            WHEEL.file,
            std::env::consts::ARCH,
            std::env::consts::OS
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let wheel_dir = dir.join("wheel");
    let stamp = dir.join(STAMP);

    let done = fs::read_to_string(&stamp).is_ok_and(|text| text == stamp_text());
    let library = match find_driver(&wheel_dir) {
        Some(library) if done => library,
        _ => {
            remove_stale_temporaries(&dir);
            let wheel = download(&dir)?;
            unpack(&wheel, &dir)?
        }
    };

    write_if_changed(&dir.join("odbcinst.ini"), &odbcinst_ini(&library))?;
    if !dir.join("odbc.ini").exists() {
        write_atomically(&dir.join("odbc.ini"), "")?;
    }
    check_driver_links(&library)?;
    write_if_changed(&stamp, &stamp_text())?;
    Ok(Driver {
        sys_ini: dir,
        library,
    })
}

fn odbcinst_ini(library: &Path) -> String {
    format!(
        "[{DRIVER_NAME}]\nDescription=Microsoft ODBC Driver 18 for SQL Server\nDriver={}\nUsageCount=1\n",
        library.display()
    )
}

/// Returns the verified wheel in `<dir>/download`, fetching it with pip unless a verified copy is there.
fn download(dir: &Path) -> Result<PathBuf> {
    let download_dir = dir.join("download");
    let wheel = download_dir.join(WHEEL.file);
    if wheel.exists() && sha256_of(&wheel)? == WHEEL.sha256 {
        return Ok(wheel);
    }
    let _ = fs::remove_file(&wheel);
    ensure_system(PIP)?;
    eprintln!("fetching {} from PyPI", WHEEL.file);
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
    ])
    .args([
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--implementation",
        "py",
    ])
    .args(["--platform", WHEEL.platform, "-d"])
    .arg(&download_dir)
    .arg(format!("{}=={}", WHEEL.project, WHEEL.version));
    run_cmd(&mut pip).context(
        "pip could not download the driver wheel (is PyPI reachable? see the pip output above)",
    )?;
    if !wheel.exists() {
        bail!(
            "pip finished but {} is not there; the wheel name may have changed upstream",
            wheel.display()
        );
    }
    let actual = sha256_of(&wheel)?;
    if actual != WHEEL.sha256 {
        let _ = fs::remove_file(&wheel);
        bail!(
            "sha256 mismatch for {}: expected {}, got {actual}; the file was removed. \
             If the upstream wheel really changed, review it and update WHEEL in xtask/src/setup.rs",
            WHEEL.file,
            WHEEL.sha256
        );
    }
    Ok(wheel)
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
}

/// Unpacks into a private temporary directory and renames it to `<dir>/wheel` once complete.
fn unpack(wheel: &Path, dir: &Path) -> Result<PathBuf> {
    let pid = std::process::id();
    let fresh = dir.join(format!(".wheel.tmp.{pid}"));
    let old = dir.join(format!(".wheel.old.{pid}"));
    let _ = fs::remove_dir_all(&fresh);
    let mut unzip = Command::new("python3");
    unzip.args(["-m", "zipfile", "-e"]).arg(wheel).arg(&fresh);
    run_cmd(&mut unzip).with_context(|| format!("unpacking {}", wheel.display()))?;
    if find_driver(&fresh).is_none() {
        let _ = fs::remove_dir_all(&fresh);
        bail!(
            "{} holds no {DRIVER_LIB_DIR}/{DRIVER_FILE_PREFIX}*.so*; the wheel layout changed",
            WHEEL.file
        );
    }

    let target = dir.join("wheel");
    if target.exists() {
        fs::rename(&target, &old)
            .with_context(|| format!("moving the old {} aside", target.display()))?;
    }
    fs::rename(&fresh, &target)
        .with_context(|| format!("moving the unpacked wheel to {}", target.display()))?;
    let _ = fs::remove_dir_all(&old);
    find_driver(&target).with_context(|| format!("the driver vanished from {}", target.display()))
}

/// Leftovers of interrupted runs whose process is gone.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(".wheel.tmp.")
            .or_else(|| name.strip_prefix(".wheel.old."));
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The Debian/Ubuntu build of the driver inside an unpacked wheel.
fn find_driver(root: &Path) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && dir.ends_with(DRIVER_LIB_DIR)
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(DRIVER_FILE_PREFIX)
            {
                return Some(path);
            }
        }
    }
    None
}

/// `ldd` on the driver: every library it cannot resolve is named, with its Debian package when known.
fn check_driver_links(library: &Path) -> Result<()> {
    let text = output(Command::new("ldd").arg(library)).context("running `ldd` on the driver")?;
    let unresolved: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("not found"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    if unresolved.is_empty() {
        return Ok(());
    }
    let mut report = format!("the driver {} cannot load:", library.display());
    for lib in unresolved {
        let package = SYSTEM
            .iter()
            .find(|need| matches!(need.probe, Probe::Lib(name) if name == lib))
            .map_or("unknown; try `apt-file search`", |need| need.package);
        let _ = write!(report, "\n  library `{lib}` (Debian package {package})");
    }
    bail!(report)
}

fn write_if_changed(path: &Path, contents: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|current| current == contents) {
        return Ok(());
    }
    write_atomically(path, contents)
}

fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pieces_are_one_line_each_with_their_package() {
        let report = missing_report(&SYSTEM[..2]);
        assert_eq!(
            report,
            "missing system pieces (2):\n  \
             library `libodbc.so.2` (Debian package unixodbc-dev): the unixODBC driver manager\n  \
             library `libodbc.so` (Debian package unixodbc-dev): the linker needs it to build odbc-api"
        );
        assert_eq!(package_list(SYSTEM), "iproute2 libcurl4 libgssapi-krb5-2 libkrb5-3 libltdl7 libssl3 unixodbc-dev util-linux valgrind");
    }

    #[test]
    fn without_root_the_error_names_each_piece_and_the_one_command() {
        let missing = [SYSTEM[2], SYSTEM[9]];
        let err = plan_install(&missing, true, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing system pieces (2):\n  \
             library `libltdl.so.7` (Debian package libltdl7): unixODBC loads drivers with it\n  \
             command `valgrind` (Debian package valgrind): end-to-end suites check the driver for leaks\n\
             run this as root, then rerun `cargo xtask setup`:\n    sudo apt-get install -y libltdl7 valgrind"
        );
        let err = plan_install(&missing, false, true).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("install the equivalents of `libltdl7 valgrind` and rerun"),
            "{err}"
        );
        assert_eq!(
            plan_install(&missing, true, true).unwrap(),
            "libltdl7 valgrind"
        );
    }

    #[test]
    fn finds_the_debian_build_only() {
        let root = std::env::temp_dir().join(format!("xtask-find-driver-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let rhel = root.join("pkg/libs/linux/rhel/x86_64/lib");
        let debian = root.join("pkg/libs/linux/debian_ubuntu/x86_64/lib");
        fs::create_dir_all(&rhel).unwrap();
        fs::create_dir_all(&debian).unwrap();
        fs::write(rhel.join("libmsodbcsql-18.6.so.2.1"), "").unwrap();
        assert_eq!(find_driver(&root), None);
        fs::write(debian.join("libodbcinst.so.2"), "").unwrap();
        fs::write(debian.join("libmsodbcsql-18.6.so.2.1"), "").unwrap();
        assert_eq!(
            find_driver(&root),
            Some(debian.join("libmsodbcsql-18.6.so.2.1"))
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sha256_is_lower_hex() {
        let file = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        fs::write(&file, "abc").unwrap();
        let digest = sha256_of(&file).unwrap();
        fs::remove_file(&file).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

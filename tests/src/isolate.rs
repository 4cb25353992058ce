//! Running one test in a process of its own, optionally inside a private network and mount namespace.
//!
//! Some modes read process-wide state the tests cannot share: the driver and azure_identity read
//! `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` from the environment, the driver's instance-metadata address is the
//! fixed 169.254.169.254:80, and its libcurl trusts only `/etc/ssl/certs/ca-certificates.crt`. Such a test calls
//! [`isolated`] first: in the test process it re-runs the test binary for just that test (under `unshare -n -m`
//! for [`Isolation::Namespace`]), checks that the child passed and returns `false`; in the child it returns
//! `true` and the test body runs there. Nothing is skipped: a failing child fails the test.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::lab::{builder, Lab};

const INSIDE: &str = "MSSQL_ENTRA_TESTS_ISOLATED";

/// Where an isolated test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A child process with its own environment.
    Process,
    /// A child process in a new network and mount namespace (`unshare -n -m`; needs root, as in CI).
    Namespace,
}

/// In the test process: runs `test` (its path in the test binary, e.g. `driver_modes::msi_imds`) in a child,
/// asserts that it passed and returns `false`. In that child: returns `true`.
pub fn isolated(test: &str, isolation: Isolation) -> bool {
    if std::env::var(INSIDE).as_deref() == Ok(test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = match isolation {
        Isolation::Process => Command::new(&exe),
        Isolation::Namespace => {
            let mut cmd = Command::new("unshare");
            cmd.args(["--net", "--mount", "--propagation", "private", "--"])
                .arg(&exe);
            cmd
        }
    };
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, test);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {test} in a child ({isolation:?}; `unshare` needs root): {e}")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("---- {test} in a child ({isolation:?}) ----\n{text}");
    assert!(
        out.status.success(),
        "{test} failed in its child ({isolation:?}):\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run in its child:\n{text}"
    );
    false
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// Inside a fresh network namespace: brings `lo` up and gives it the instance-metadata address.
pub fn imds_address_on_loopback() {
    run("ip", &["link", "set", "lo", "up"]);
    run("ip", &["addr", "add", "169.254.169.254/32", "dev", "lo"]);
}

/// Inside a private mount namespace: makes `/etc/ssl/certs/ca-certificates.crt`, the only bundle the driver's
/// libcurl reads, hold `ca_path` (a directory of our own is bound over `/etc/ssl/certs`, so the file need not
/// exist on the host). The host's files are not touched.
pub fn trust_for_libcurl(ca_path: &Path, scratch: &Path) {
    let certs = scratch.join("etc-ssl-certs");
    std::fs::create_dir_all(&certs).expect("create the private certs directory");
    std::fs::copy(ca_path, certs.join("ca-certificates.crt")).expect("copy the CA");
    let target = Path::new("/etc/ssl/certs");
    if !target.is_dir() {
        std::fs::create_dir_all(target).expect("/etc/ssl/certs exists or can be created");
    }
    run(
        "mount",
        &[
            "--bind",
            certs.to_str().expect("a UTF-8 temp path"),
            "/etc/ssl/certs",
        ],
    );
}

/// Inside a namespace child: loopback with the instance-metadata address, an emulator whose instance-metadata
/// endpoint listens on 169.254.169.254:80, its CA trusted by libcurl, and no App Service variables (so the
/// driver and azure_identity go to the instance-metadata endpoint).
pub fn namespace_lab() -> Lab {
    imds_address_on_loopback();
    let lab = Lab::with(builder().imds_bind(SocketAddr::from(([169, 254, 169, 254], 80))));
    trust_for_libcurl(lab.ca_path(), lab.emulator().output_dir());
    // Single-threaded test child; the emulator's threads do not read these variables.
    std::env::remove_var("IDENTITY_ENDPOINT");
    std::env::remove_var("IDENTITY_HEADER");
    std::env::remove_var("MSI_ENDPOINT");
    lab
}

/// Inside a process child: an emulator whose App Service endpoint the environment names
/// (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), as on App Service, Functions and Container Apps.
pub fn app_service_lab() -> Lab {
    let lab = Lab::with(builder());
    let emu = lab.emulator();
    // A single-threaded test child sets these before any client code runs.
    std::env::set_var("IDENTITY_ENDPOINT", emu.identity_endpoint());
    std::env::set_var("IDENTITY_HEADER", emu.identity_header().expose());
    lab
}

//! [`Lab`]: an emulator for one test (in this process, or in a child process for valgrind runs), the trust the
//! driver needs for its TLS, and the connection strings and token-source options that point at it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mssql_entra_connstr::ConnectionString;
use mssql_entra_emulator::directory::DatabaseUserSeed;
use mssql_entra_emulator::{Directory, Emulator, EmulatorBuilder, EmulatorHandle, Endpoint};
use mssql_entra_token::sources::HttpOptions;

use crate::{driver, DRIVER_NAME};

/// The resource Azure SQL tokens are issued for.
pub const SQL_AUDIENCE: &str = "https://database.windows.net/";
/// The demo app's client id (`Directory::demo`).
pub const DEMO_APP: &str = "00000000-0000-4000-8000-0000000a0001";
/// The demo system-assigned identity's client id.
pub const DEMO_MI: &str = "00000000-0000-4000-8000-0000000c0001";
/// The demo user-assigned identity's client id.
pub const DEMO_UAMI: &str = "00000000-0000-4000-8000-0000000c0002";
/// The demo user-assigned identity's object id.
pub const DEMO_UAMI_OBJECT: &str = "00000000-0000-4000-8000-0000000d0002";
/// The demo tenant id.
pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000e001";
/// The demo app's secret.
pub const DEMO_APP_SECRET: &str = "demo-app-secret";
/// The subject of the demo app's federated credential.
pub const FEDERATED_SUBJECT: &str = "system:serviceaccount:default:demo";
/// A user without MFA, database owner of `appdb`.
pub const ALICE: &str = "alice@emulator.onmicrosoft.com";
/// A user whose sign-in requires MFA.
pub const BOB: &str = "bob@emulator.onmicrosoft.com";

/// The login timeout of the suites and the demo: after a failed token fetch in a driver mode, the driver
/// reports the failure only when it expires.
pub const DRIVER_LOGIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Set in a valgrind run: [`Lab::start`] runs the emulator in a child process (the `emulator-host` binary of
/// this package at the path this variable holds, or beside the test binary's `deps/` directory when it holds
/// `1`), so that only client memory (our crates, odbc-api, unixODBC, the driver) is checked.
pub const EMULATOR_PROCESS_ENV: &str = "MSSQL_ENTRA_TESTS_EMULATOR_PROCESS";

fn emulator_host() -> PathBuf {
    match std::env::var_os(EMULATOR_PROCESS_ENV) {
        Some(value) if value != "1" && !value.is_empty() => PathBuf::from(value),
        _ => {
            let exe = std::env::current_exe().expect("the test binary's path");
            // `target/<profile>/deps/it-<hash>` → `target/<profile>/emulator-host`.
            exe.parent()
                .and_then(Path::parent)
                .map(|dir| dir.join("emulator-host"))
                .expect("the test binary lives in target/<profile>/deps")
        }
    }
}

/// `SUSER_SNAME()` of an application or managed identity: `<client id>@<tenant id>`.
pub fn app_login(client_id: &str) -> String {
    format!("{client_id}@{TENANT}")
}

/// The demo directory, plus a database user for the user-assigned identity (the demo has none), so that every
/// identity a mode can sign in as has a user in `appdb`.
pub fn directory() -> Directory {
    // The demo directory is fixed data checked by the emulator's own tests.
    let mut dir = Directory::demo().expect("the demo directory is valid");
    if let Some(db) = dir.databases.iter_mut().find(|db| db.name == "appdb") {
        db.users.push(DatabaseUserSeed {
            principal: "demo-uami".to_owned(),
            roles: vec!["db_datareader".to_owned()],
        });
    }
    dir
}

/// The emulator builder every lab starts from: the directory above, a short validation leeway.
pub fn builder() -> EmulatorBuilder {
    Emulator::builder()
        .directory(directory())
        .validation_leeway(Duration::from_secs(5))
}

/// The CA bundle of this process: `SSL_CERT_FILE`, set once before the first connection, read by the driver's
/// TDS TLS (OpenSSL) and by rustls-native-certs (azure_identity's HTTPS). Every lab's CA is added to it; the
/// driver reads the file again for each new connection (measured), so emulators started later are trusted too.
fn ca_bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        driver();
        remove_stale_bundles();
        let path =
            std::env::temp_dir().join(format!("mssql-entra-tests-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "").expect("create the CA bundle");
        // Set once, before any connection is made (every lab calls this before connecting).
        std::env::set_var("SSL_CERT_FILE", &path);
        std::env::remove_var("SSL_CERT_DIR");
        path
    })
}

/// Removes the bundles of test processes that are gone (nothing removes a bundle at exit).
fn remove_stale_bundles() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("mssql-entra-tests-ca-"))
            .and_then(|n| n.strip_suffix(".pem"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Adds `ca_pem` to [`ca_bundle`], replacing the file in one rename so no reader sees half of it.
fn trust(ca_pem: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let bundle = ca_bundle();
    let _serial = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut text = std::fs::read_to_string(bundle).expect("read the CA bundle");
    if text.contains(ca_pem) {
        return;
    }
    text.push_str(ca_pem);
    let next = bundle.with_extension("pem.next");
    std::fs::write(&next, text).expect("write the CA bundle");
    std::fs::rename(&next, bundle).expect("replace the CA bundle");
}

/// An emulator for one test.
#[derive(Debug)]
pub struct Lab {
    backend: Backend,
    sql_port: u16,
    authority_host: String,
    ca_pem: String,
    ca_path: PathBuf,
}

#[derive(Debug)]
enum Backend {
    InProcess(Box<EmulatorHandle>),
    Process(Mutex<Remote>),
}

#[derive(Debug)]
struct Remote {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Remote {
    fn ask(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to the emulator host");
        self.stdin.flush().expect("flush to the emulator host");
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .expect("read from the emulator host");
        let answer = answer.trim_end().to_owned();
        assert!(
            !answer.is_empty() && !answer.starts_with("error"),
            "emulator host: `{line}` → `{answer}`"
        );
        answer
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

impl Lab {
    /// An emulator with [`builder`]'s defaults: in this process, or in a child process when
    /// [`EMULATOR_PROCESS_ENV`] is set (valgrind runs).
    pub fn start() -> Lab {
        if std::env::var_os(EMULATOR_PROCESS_ENV).is_some() {
            return Lab::in_child_process(&[]);
        }
        Lab::with(builder())
    }

    /// An emulator that issues tokens valid for `lifetime`.
    pub fn with_token_lifetime(lifetime: Duration) -> Lab {
        if std::env::var_os(EMULATOR_PROCESS_ENV).is_some() {
            return Lab::in_child_process(&[
                "--token-lifetime-ms",
                &lifetime.as_millis().to_string(),
            ]);
        }
        Lab::with(builder().token_lifetime(lifetime))
    }

    /// An emulator in this process from `builder`.
    pub fn with(builder: EmulatorBuilder) -> Lab {
        ca_bundle();
        let emu = Emulator::start_blocking(builder).expect("the emulator starts");
        trust(emu.ca_pem());
        Lab {
            sql_port: emu.sql_addr().port(),
            authority_host: emu.authority_host(),
            ca_pem: emu.ca_pem().to_owned(),
            ca_path: emu.ca_path().to_owned(),
            backend: Backend::InProcess(Box::new(emu)),
        }
    }

    fn in_child_process(args: &[&str]) -> Lab {
        ca_bundle();
        let host = emulator_host();
        let mut child = Command::new(&host)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (built by `cargo test -p mssql-entra-tests`): {e}",
                    host.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut banner = String::new();
        stdout
            .read_line(&mut banner)
            .expect("the emulator host's banner");
        let info: serde_json::Value = serde_json::from_str(&banner)
            .unwrap_or_else(|e| panic!("emulator host banner `{banner}`: {e}"));
        let text = |key: &str| {
            info[key]
                .as_str()
                .unwrap_or_else(|| panic!("`{key}` in `{banner}`"))
                .to_owned()
        };
        let ca_path = PathBuf::from(text("ca_path"));
        let ca_pem = std::fs::read_to_string(&ca_path).expect("read the CA");
        trust(&ca_pem);
        Lab {
            sql_port: info["sql_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .expect("sql_port"),
            authority_host: text("authority_host"),
            ca_pem,
            ca_path,
            backend: Backend::Process(Mutex::new(Remote {
                child,
                stdin,
                stdout,
            })),
        }
    }

    /// The in-process emulator, for knobs only it has (device codes, the SQL endpoint's databases, faults).
    ///
    /// # Panics
    ///
    /// When the emulator runs in a child process.
    pub fn emulator(&self) -> &Emulator {
        match &self.backend {
            Backend::InProcess(emu) => emu,
            Backend::Process(_) => {
                panic!("this test needs the emulator in process; it cannot run under valgrind")
            }
        }
    }

    /// The SQL endpoint's port on 127.0.0.1.
    pub fn sql_port(&self) -> u16 {
        self.sql_port
    }

    /// The emulator's CA file.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// `Driver=…;Server=tcp:127.0.0.1,<port>;Database=appdb;Encrypt=yes`, plus `extra`.
    pub fn connection_string_text(&self, extra: &str) -> String {
        let mut text = format!(
            "Driver={{{DRIVER_NAME}}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes",
            self.sql_port
        );
        if !extra.is_empty() {
            text.push(';');
            text.push_str(extra);
        }
        text
    }

    /// [`connection_string_text`](Self::connection_string_text), parsed.
    pub fn connection_string(&self, extra: &str) -> ConnectionString {
        ConnectionString::parse(&self.connection_string_text(extra))
            .expect("a valid connection string")
    }

    /// HTTP options for azure_identity-based sources: the emulator as authority, its CA trusted.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions::default()
            .with_authority_host(self.authority_host.clone())
            .with_extra_root_ca_pem(self.ca_pem.clone().into_bytes())
    }

    /// The authority host (`https://127.0.0.1:<port>/`).
    pub fn authority_host(&self) -> &str {
        &self.authority_host
    }

    /// Mints an Azure SQL token for `who` (name, UPN or id), valid for `lifetime`.
    pub fn issue_token(&self, who: &str, lifetime: Duration) -> String {
        match &self.backend {
            Backend::InProcess(emu) => emu
                .issue_token(who, SQL_AUDIENCE, lifetime)
                .expect("the emulator mints a token"),
            Backend::Process(remote) => remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask(&format!("token {who} {}", lifetime.as_millis())),
        }
    }

    /// Requests that reached `endpoint` so far.
    pub fn http_count(&self, endpoint: Endpoint) -> u64 {
        match &self.backend {
            Backend::InProcess(emu) => emu.http_stats().count(endpoint),
            Backend::Process(remote) => remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask(&format!("count {}", endpoint_name(endpoint)))
                .parse()
                .expect("a count"),
        }
    }

    /// Logins the SQL endpoint answered with LOGINACK, and with an error.
    pub fn logins(&self) -> (u64, u64) {
        match &self.backend {
            Backend::InProcess(emu) => {
                let stats = emu.sql().stats();
                (stats.logins_ok(), stats.logins_failed())
            }
            Backend::Process(remote) => {
                let answer = remote
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .ask("logins");
                let mut parts = answer
                    .split_whitespace()
                    .map(|n| n.parse().expect("a count"));
                (
                    parts.next().expect("logins ok"),
                    parts.next().expect("logins failed"),
                )
            }
        }
    }

    /// TCP connections the SQL endpoint accepted.
    pub fn sql_connections(&self) -> u64 {
        match &self.backend {
            Backend::InProcess(emu) => emu.sql().stats().connections(),
            Backend::Process(remote) => remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask("connections")
                .parse()
                .expect("a count"),
        }
    }
}

/// The name the emulator host understands for `endpoint`.
pub fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::TokenV1 => "token-v1",
        Endpoint::TokenV2 => "token-v2",
        Endpoint::DeviceCode => "device-code",
        Endpoint::UserRealm => "user-realm",
        Endpoint::ImdsToken => "imds",
        Endpoint::AppServiceToken => "app-service",
        _ => "other",
    }
}

/// The endpoint named by [`endpoint_name`].
pub fn endpoint_named(name: &str) -> Option<Endpoint> {
    [
        Endpoint::TokenV1,
        Endpoint::TokenV2,
        Endpoint::DeviceCode,
        Endpoint::UserRealm,
        Endpoint::ImdsToken,
        Endpoint::AppServiceToken,
    ]
    .into_iter()
    .find(|e| endpoint_name(*e) == name)
}

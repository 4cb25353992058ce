//! `mssql-entra-demo` (run by `cargo xtask demo`): every auth mode through the real Microsoft ODBC Driver 18
//! against the local emulator, one connection per mode, printed as a table.
//!
//! It re-runs itself in a private network and mount namespace (`unshare --net --mount`, as root) so that the
//! driver's fixed instance-metadata address 169.254.169.254 and its CA bundle can be ours; nothing leaves the
//! machine. Each row has an expectation (a principal, or a refusal with its reason); the exit status is 1
//! when any row differs from it.

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::time::Instant;

use mssql_entra::Connector;
use mssql_entra_odbc::DiagnosisKind;
use mssql_entra_tests::lab::{
    app_login, Lab, ALICE, BOB, DEMO_APP, DEMO_MI, DEMO_UAMI, DEMO_UAMI_OBJECT,
};
use mssql_entra_tests::modes::{self, ModeSettings};
use mssql_entra_tests::{driver, isolate, principal, scalar};

const INSIDE: &str = "MSSQL_ENTRA_DEMO_IN_NAMESPACE";

/// What a row should show.
enum Expect {
    /// A login as this `SUSER_SNAME()`.
    Principal(String),
    /// A refusal; the text is what the table says.
    Refusal(&'static str),
}

/// Which endpoint the managed-identity rows use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Msi {
    AppService,
    Imds,
    NotUsed,
}

struct Row {
    mode: &'static str,
    settings: ModeSettings,
    msi: Msi,
    expect: Expect,
    /// Extra process environment for this row (set before, removed after).
    process_env: Vec<(&'static str, String)>,
}

struct Outcome {
    result: String,
    principal: String,
    millis: u128,
    as_expected: bool,
}

fn main() -> ExitCode {
    if std::env::var_os(INSIDE).is_none() {
        return reexec_in_namespace();
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn reexec_in_namespace() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this program's path: {e}");
            return ExitCode::from(2);
        }
    };
    let status = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .env(INSIDE, "1")
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            if status.code() == Some(1) {
                ExitCode::from(1)
            } else {
                eprintln!(
                    "error: the demo runs in a private network namespace (`unshare --net --mount`), which needs \
                     root; it exited with {status}"
                );
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("error: cannot run `unshare` (util-linux; needs root): {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let sys_ini = driver().to_owned();
    let lab = isolate::namespace_lab();
    let emu = lab.emulator();
    println!(
        "mssql-entra demo: the Microsoft ODBC Driver 18 ({}) against the emulator (SQL 127.0.0.1:{}, token service {}, \
         instance metadata 169.254.169.254:80, App Service {}) in a private network namespace",
        sys_ini.display(),
        lab.sql_port(),
        lab.authority_host(),
        emu.identity_endpoint()
    );
    let app_service = [
        ("IDENTITY_ENDPOINT", emu.identity_endpoint()),
        ("IDENTITY_HEADER", emu.identity_header().expose().to_owned()),
    ];
    let rows = rows(&lab);
    let mut table = Vec::new();
    let mut all_as_expected = true;
    for row in rows {
        let mut env = row.process_env.clone();
        if row.msi == Msi::AppService {
            env.extend(app_service.iter().cloned());
        }
        // The demo's client is single-threaded; the emulator's threads do not read these variables.
        for (key, value) in &env {
            std::env::set_var(key, value);
        }
        let outcome = attempt(&lab, &row);
        for (key, _) in &env {
            std::env::remove_var(key);
        }
        all_as_expected &= outcome.as_expected;
        table.push([
            row.mode.to_owned(),
            row.settings.summary(),
            outcome.result,
            outcome.principal,
            outcome.millis.to_string(),
        ]);
    }
    print_table(&table);
    println!();
    if all_as_expected {
        println!(
            "Every row shows the expected principal or the expected refusal. Token requests the emulator served: \
             App Service {}, instance metadata {}, token service v1 (driver) {}, v2.0 (azure_identity) {}.",
            lab.http_count(mssql_entra_emulator::Endpoint::AppServiceToken),
            lab.http_count(mssql_entra_emulator::Endpoint::ImdsToken),
            lab.http_count(mssql_entra_emulator::Endpoint::TokenV1),
            lab.http_count(mssql_entra_emulator::Endpoint::TokenV2),
        );
    } else {
        println!("Some rows differ from what was expected (marked UNEXPECTED).");
    }
    Ok(all_as_expected)
}

fn rows(lab: &Lab) -> Vec<Row> {
    let row = |mode, settings, msi, expect| Row {
        mode,
        settings,
        msi,
        expect,
        process_env: Vec::new(),
    };
    let app = || Expect::Principal(app_login(DEMO_APP));
    let mi = || Expect::Principal(app_login(DEMO_MI));
    let uami = || Expect::Principal(app_login(DEMO_UAMI));
    let mut default = row(
        "ActiveDirectoryDefault",
        modes::active_directory_default(Some(modes::service_principal_env(lab))),
        Msi::NotUsed,
        app(),
    );
    default.process_env = vec![("AZURE_AUTHORITY_HOST", lab.authority_host().to_owned())];
    vec![
        row(
            "access token (static)",
            modes::static_token(lab),
            Msi::NotUsed,
            app(),
        ),
        row(
            "access token: managed identity (App Service)",
            modes::managed_identity_source(None),
            Msi::AppService,
            mi(),
        ),
        row(
            "access token: managed identity (IMDS, user)",
            modes::managed_identity_source(Some(DEMO_UAMI)),
            Msi::Imds,
            uami(),
        ),
        row(
            "access token: client secret",
            modes::client_secret_source(lab),
            Msi::NotUsed,
            app(),
        ),
        row(
            "access token: client certificate",
            modes::client_certificate_source(lab),
            Msi::NotUsed,
            app(),
        ),
        row(
            "access token: workload identity",
            modes::workload_identity_source(lab),
            Msi::NotUsed,
            app(),
        ),
        row(
            "access token: device code (auto-approved)",
            modes::device_code_source(lab),
            Msi::NotUsed,
            Expect::Principal(ALICE.to_owned()),
        ),
        row(
            "access token: default chain",
            modes::default_chain_source(lab, HashMap::new()),
            Msi::AppService,
            mi(),
        ),
        row(
            "ActiveDirectoryMsi system (App Service)",
            modes::msi(None),
            Msi::AppService,
            mi(),
        ),
        row(
            "ActiveDirectoryMsi user (App Service)",
            modes::msi(Some(DEMO_UAMI)),
            Msi::AppService,
            uami(),
        ),
        row(
            "ActiveDirectoryMsi system (IMDS)",
            modes::msi(None),
            Msi::Imds,
            mi(),
        ),
        row(
            "ActiveDirectoryMsi user (IMDS)",
            modes::msi(Some(DEMO_UAMI_OBJECT)),
            Msi::Imds,
            uami(),
        ),
        row(
            "ActiveDirectoryServicePrincipal",
            modes::service_principal(),
            Msi::NotUsed,
            app(),
        ),
        row(
            "ActiveDirectoryPassword",
            modes::password(ALICE, "alice-password"),
            Msi::NotUsed,
            Expect::Principal(ALICE.to_owned()),
        ),
        row(
            "ActiveDirectoryPassword (MFA user)",
            modes::password(BOB, "bob-password"),
            Msi::NotUsed,
            Expect::Refusal("MFA required (AADSTS50076)"),
        ),
        default,
        row(
            "ActiveDirectoryIntegrated",
            modes::integrated(),
            Msi::NotUsed,
            Expect::Refusal("Kerberos unavailable"),
        ),
        row(
            "ActiveDirectoryInteractive",
            modes::interactive(),
            Msi::NotUsed,
            Expect::Refusal("off Windows, before any I/O"),
        ),
    ]
}

fn attempt(lab: &Lab, row: &Row) -> Outcome {
    let started = Instant::now();
    let connector = row.settings.connector(lab);
    let refusal_expected = matches!(row.expect, Expect::Refusal(_));
    let result = connector
        .map_err(Refused::Facade)
        .and_then(|c| connect(&c, refusal_expected));
    let millis = started.elapsed().as_millis();
    match (&row.expect, result) {
        (Expect::Principal(expected), Ok((who, user))) => {
            let as_expected = &who == expected;
            Outcome {
                result: if as_expected {
                    "ok"
                } else {
                    "UNEXPECTED principal"
                }
                .to_owned(),
                principal: format!("{who} ({user})"),
                millis,
                as_expected,
            }
        }
        (Expect::Principal(_), Err(refused)) => Outcome {
            result: format!("UNEXPECTED failure: {}", refused.text()),
            principal: "-".to_owned(),
            millis,
            as_expected: false,
        },
        (Expect::Refusal(reason), Err(refused)) => {
            let as_expected = refused.matches(reason);
            Outcome {
                result: if as_expected {
                    format!("refused: {reason}")
                } else {
                    format!("UNEXPECTED refusal: {}", refused.text())
                },
                principal: "-".to_owned(),
                millis,
                as_expected,
            }
        }
        (Expect::Refusal(reason), Ok((who, _))) => Outcome {
            result: format!("UNEXPECTED login (expected: {reason})"),
            principal: who,
            millis,
            as_expected: false,
        },
    }
}

enum Refused {
    Facade(mssql_entra::Error),
    Odbc(mssql_entra_odbc::Error),
    Query(String),
}

impl Refused {
    fn text(&self) -> String {
        match self {
            Refused::Facade(e) => e.to_string(),
            Refused::Odbc(e) => match e.diagnosis() {
                Some(d) => format!("{e} ({:?})", d.kind),
                None => e.to_string(),
            },
            Refused::Query(e) => e.clone(),
        }
    }

    fn matches(&self, reason: &str) -> bool {
        match self {
            Refused::Facade(mssql_entra::Error::InteractiveNotWindows) => {
                reason.starts_with("off Windows")
            }
            Refused::Odbc(e) => {
                let kind = e.diagnosis().map(|d| d.kind);
                let records = e
                    .odbc()
                    .map(|f| {
                        f.records
                            .iter()
                            .map(|r| r.message.clone())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .join("\n");
                if reason.starts_with("Kerberos") {
                    kind == Some(DiagnosisKind::KerberosUnavailable)
                } else if reason.starts_with("MFA") {
                    records.contains("AADSTS50076")
                } else {
                    false
                }
            }
            _ => false,
        }
    }
}

/// Connects once. Where a refusal is expected, the one attempt is `check`, which keeps every diagnostic
/// record (a plain connect keeps only the first, often `HYT00`), for the table's reason; a plain connect that
/// fails unexpectedly is followed by a `check` for the same reason.
fn connect(connector: &Connector, refusal_expected: bool) -> Result<(String, String), Refused> {
    if refusal_expected {
        return match connector.check() {
            Err(all) => Err(Refused::Odbc(all)),
            Ok(_) => Ok(("logged in".to_owned(), "-".to_owned())),
        };
    }
    match connector.connect() {
        Ok(conn) => {
            let who = principal(&conn).map_err(Refused::Query)?;
            let user = scalar(&conn, "SELECT USER_NAME()").map_err(Refused::Query)?;
            Ok((who, user))
        }
        Err(first) => match connector.check() {
            Err(all) => Err(Refused::Odbc(all)),
            Ok(_) => Err(Refused::Odbc(first)),
        },
    }
}

fn print_table(rows: &[[String; 5]]) {
    let header = [
        "mode",
        "configured with",
        "result",
        "principal (database user)",
        "ms",
    ];
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // The settings column can be long: cap it and wrap the rest onto continuation lines.
    const SETTINGS_MAX: usize = 64;
    widths[1] = widths[1].min(SETTINGS_MAX);
    let line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                text.push_str(&format!("{cell:>w$}"));
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", text.trim_end());
    };
    line(header);
    line(widths.map(|w| "─".repeat(w)).each_ref().map(String::as_str));
    for row in rows {
        let settings: Vec<char> = row[1].chars().collect();
        let mut chunks = settings
            .chunks(SETTINGS_MAX)
            .map(|c| c.iter().collect::<String>());
        let first = chunks.next().unwrap_or_default();
        line([&row[0], &first, &row[2], &row[3], &row[4]]);
        for more in chunks {
            line(["", &more, "", "", ""]);
        }
    }
}

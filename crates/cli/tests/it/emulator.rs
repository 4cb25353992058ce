//! `connstr`, `token`, `check` and `grant --apply` against the emulator, through the real driver.
//!
//! The binary runs as a child process with `ODBCSYSINI` pointing at the provisioned driver and
//! `SSL_CERT_FILE` at the emulator's CA (the driver's TDS TLS honours it); token sources get the CA
//! through the settings' `ca_file`. Every server listens on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mssql_entra::lower::token::SqlSid;
use mssql_entra_emulator::sql::UserType;
use mssql_entra_emulator::{Emulator, EmulatorHandle, SQL_RESOURCE};

use crate::support::{cmd, run, Run};

const DEMO_APP_ID: &str = "00000000-0000-4000-8000-0000000a0001";
const UNMAPPED_APP_ID: &str = "00000000-0000-4000-8000-0000000a0002";
const UNMAPPED_APP_OID: &str = "00000000-0000-4000-8000-0000000b0002";

fn driver_dir() -> PathBuf {
    let dir = std::env::var_os("ODBCSYSINI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/driver"));
    let dir = dir.canonicalize().unwrap_or_else(|e| {
        panic!(
            "the ODBC driver is not provisioned at {} ({e}); run `cargo xtask setup`",
            dir.display()
        )
    });
    assert!(
        dir.join("odbcinst.ini").exists(),
        "no odbcinst.ini in {}; run `cargo xtask setup`",
        dir.display()
    );
    dir
}

/// One emulator (demo directory) per test: tests change its database users.
struct Lab {
    emu: EmulatorHandle,
    dir: PathBuf,
}

impl Lab {
    fn start(name: &str) -> Self {
        static DRIVER: OnceLock<PathBuf> = OnceLock::new();
        DRIVER.get_or_init(driver_dir);
        let emu = Emulator::start_blocking(Emulator::builder()).expect("emulator starts");
        let dir = emu.output_dir().join(format!("cli-{name}"));
        std::fs::create_dir_all(&dir).expect("test dir");
        Lab { emu, dir }
    }

    /// `mssql-entra …` with the driver and the emulator's CA in the child's environment.
    fn mssql_entra(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c: Command = cmd();
        c.args(args)
            .env("ODBCSYSINI", DRIVER_DIR.get_or_init(driver_dir))
            .env("SSL_CERT_FILE", self.emu.ca_path())
            .env_remove("SSL_CERT_DIR");
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.join(file);
        std::fs::write(&path, text).expect("write settings");
        path
    }

    fn common(&self) -> String {
        format!(
            "NAME = \"appdb\"\nHOST = \"127.0.0.1\"\nPORT = {}\n",
            self.emu.sql_addr().port()
        )
    }

    fn options() -> &'static str {
        "\n[OPTIONS]\ndriver = \"ODBC Driver 18 for SQL Server\"\nlogin_timeout = 10\n"
    }

    /// Settings for app `client_id` signing in with its client secret from `$CLI_IT_SECRET`.
    fn client_secret_settings(&self, client_id: &str) -> PathBuf {
        let text = format!(
            "{}TOKEN = {{ source = \"client-secret\", tenant_id = \"{}\", client_id = \"{client_id}\", client_secret_env = \"CLI_IT_SECRET\", authority_host = \"{}\", ca_file = \"{}\" }}\n{}",
            self.common(),
            self.emu.tenant_id(),
            self.emu.authority_host(),
            self.emu.ca_path().display(),
            Self::options()
        );
        self.write(&format!("{client_id}.toml"), &text)
    }

    /// Settings with a literal token for `who`, read from `$CLI_IT_TOKEN`.
    fn token_env_settings(&self, file: &str) -> PathBuf {
        let text = format!(
            "{}TOKEN_ENV = \"CLI_IT_TOKEN\"\n{}",
            self.common(),
            Self::options()
        );
        self.write(file, &text)
    }

    fn token_for(&self, who: &str) -> String {
        self.emu
            .issue_token(who, SQL_RESOURCE, Duration::from_secs(3600))
            .expect("token")
    }
}

static DRIVER_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The value of the text output's `label:` line (values start after the padded label), or "".
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).filter(|rest| rest.starts_with(' ')))
        .map_or("", str::trim)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn check_succeeds_for_a_granted_identity_with_a_client_secret() {
    let lab = Lab::start("granted");
    let settings = lab.client_secret_settings(DEMO_APP_ID);
    let env = [("CLI_IT_SECRET", "demo-app-secret")];

    let r = lab.mssql_entra(&["check", "--settings", path(&settings)], &env);
    assert_eq!(r.code, 0, "{r:?}");
    // One token request: the token shown is the one the connection used (the plan's cache).
    assert_eq!(lab.emu.http_stats().token_requests(), 1);
    let expected_sid = SqlSid::from_guid_str(DEMO_APP_ID)
        .expect("guid")
        .to_string();
    let f = |label| field(&r.stdout, label);
    assert!(
        f("mode").starts_with("token mode: `client-secret`"),
        "{}",
        r.stdout
    );
    assert!(
        f("connection").starts_with("Driver={ODBC Driver 18 for SQL Server};"),
        "{}",
        r.stdout
    );
    assert!(
        f("SQL SID").starts_with(&format!("{expected_sid} (from the application id")),
        "{}",
        r.stdout
    );
    assert_eq!(f("principal"), format!("application or managed identity (appid {DEMO_APP_ID}, object id 00000000-0000-4000-8000-0000000b0001)"));
    assert!(
        f("token").starts_with("from the `client-secret` source in "),
        "{}",
        r.stdout
    );
    assert!(f("login").starts_with("ok in "), "{}", r.stdout);
    assert_eq!(
        f("login name"),
        format!("{DEMO_APP_ID}@{}", lab.emu.tenant_id())
    );
    assert_eq!(f("database user"), "demo-app");
    assert_eq!(f("database"), "appdb");
    assert_eq!(
        f("roles"),
        "db_owner no, db_datareader yes, db_datawriter yes, db_ddladmin no"
    );
    assert!(
        f("timings").contains("login ") && f("timings").contains("total "),
        "{}",
        r.stdout
    );
    assert_eq!(f("result"), "OK");
    // The secret and the token never show.
    assert!(!r.stdout.contains("demo-app-secret") && !r.stderr.contains("demo-app-secret"));
    assert!(
        !r.stdout.contains("eyJ") && !r.stderr.contains("eyJ"),
        "{r:?}"
    );

    // The same as JSON.
    let r = lab.mssql_entra(&["check", "--settings", path(&settings), "--json"], &env);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["mode"], "token-source:client-secret");
    assert_eq!(v["token"]["sql_sid"], expected_sid.as_str());
    assert_eq!(v["token"]["claims"]["appid"], DEMO_APP_ID);
    assert_eq!(v["login"]["user_name"], "demo-app");
    assert_eq!(v["login"]["roles"][2]["role"], "db_datawriter");
    assert_eq!(v["login"]["roles"][2]["member"], true);
    assert!(v["timings"]["login_ms"].as_u64().is_some(), "{v}");
}

#[test]
fn token_and_connstr_commands() {
    let lab = Lab::start("token");
    let settings = lab.client_secret_settings(DEMO_APP_ID);
    let env = [("CLI_IT_SECRET", "demo-app-secret")];

    let r = lab.mssql_entra(&["token", "--settings", path(&settings), "--claims"], &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("appid     {DEMO_APP_ID}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("idtyp     app"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("eyJ"),
        "the token is shown only on request: {}",
        r.stdout
    );

    let r = lab.mssql_entra(
        &[
            "token",
            "--settings",
            path(&settings),
            "--show-token",
            "--json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert!(
        v["token"].as_str().is_some_and(|t| t.starts_with("eyJ")),
        "{v}"
    );
    assert!(v["expires_in_secs"].as_i64().is_some_and(|s| s > 0), "{v}");

    // The same source from the command line.
    let r = lab.mssql_entra(
        &[
            "token",
            "--source",
            "client-secret",
            "--tenant-id",
            &lab.emu.tenant_id().to_string(),
            "--client-id",
            DEMO_APP_ID,
            "--client-secret-env",
            "CLI_IT_SECRET",
            "--authority-host",
            &lab.emu.authority_host(),
            "--ca-file",
            path(lab.emu.ca_path()),
            "--json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["claims"]["appid"], DEMO_APP_ID);
    assert!(v.get("token").is_none(), "{v}");

    // A wrong secret: token error, exit 4, no secret in the output.
    let r = lab.mssql_entra(
        &["token", "--settings", path(&settings)],
        &[("CLI_IT_SECRET", "wrong-secret-value")],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("token error"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-secret-value"), "{}", r.stderr);

    let r = lab.mssql_entra(&["connstr", "--settings", path(&settings)], &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.trim(),
        format!(
            "Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:127.0.0.1,{};Database=appdb;Encrypt=yes",
            lab.emu.sql_addr().port()
        )
        .as_str(),
        "{r:?}"
    );
}

#[test]
fn check_names_the_object_id_mix_up_and_prints_the_create_user_with_sid() {
    let lab = Lab::start("object-id");
    // The mistake: the database user made from the app's OBJECT id.
    let oid_sid = SqlSid::from_guid_str(UNMAPPED_APP_OID).expect("guid");
    lab.emu
        .sql()
        .databases()
        .add_user(
            "appdb",
            "unmapped-app",
            oid_sid.as_bytes(),
            UserType::External,
        )
        .expect("user from the object id");
    let settings = lab.client_secret_settings(UNMAPPED_APP_ID);
    let r = lab.mssql_entra(
        &["check", "--settings", path(&settings)],
        &[("CLI_IT_SECRET", "unmapped-app-secret")],
    );
    assert_eq!(r.code, 5, "{r:?}");
    let app_sid = SqlSid::from_guid_str(UNMAPPED_APP_ID).expect("guid");
    // Before connecting, the claims already show the SID the server will look for.
    assert!(
        field(&r.stdout, "SQL SID").starts_with(&app_sid.to_string()),
        "{}",
        r.stdout
    );
    assert!(
        field(&r.stdout, "not").starts_with(&oid_sid.to_string()),
        "{}",
        r.stdout
    );
    assert_eq!(
        field(&r.stdout, "result"),
        "FAILED (exit 5; the diagnosis is on stderr)"
    );
    // The diagnosis names the mix-up and gives the statement.
    assert!(r.stderr.contains("18456"), "{}", r.stderr);
    assert!(r.stderr.contains("object id"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "CREATE USER [{UNMAPPED_APP_ID}] WITH SID = {app_sid}, TYPE = E;"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("troubleshooting.md#login-failed-object-id"),
        "{}",
        r.stderr
    );
}

#[test]
fn grant_apply_then_check_succeeds() {
    let lab = Lab::start("grant");
    let app = lab.client_secret_settings(UNMAPPED_APP_ID);
    let app_env = [("CLI_IT_SECRET", "unmapped-app-secret")];

    // Before: no database user, the login fails.
    let r = lab.mssql_entra(&["check", "--settings", path(&app)], &app_env);
    assert_eq!(r.code, 5, "{r:?}");

    // The Entra admin applies the grant script, creating the user WITH SID (no Graph needed).
    lab.emu.set_graph_available(false);
    let admin = lab.token_env_settings("admin.toml");
    let admin_token = lab.token_for("sqladmin@emulator.onmicrosoft.com");
    let r = lab.mssql_entra(
        &[
            "grant",
            "--name",
            "unmapped-app",
            "--app-id",
            UNMAPPED_APP_ID,
            "--read-only",
            "--migrations",
            "--apply",
            "--settings",
            path(&admin),
        ],
        &[("CLI_IT_TOKEN", &admin_token)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("ok  ALTER ROLE db_ddladmin ADD MEMBER [unmapped-app];"),
        "{}",
        r.stdout
    );

    // After: the login works with exactly the roles granted.
    let r = lab.mssql_entra(&["check", "--settings", path(&app)], &app_env);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        field(&r.stdout, "roles"),
        "db_owner no, db_datareader yes, db_datawriter no, db_ddladmin yes",
        "{}",
        r.stdout
    );
    assert_eq!(field(&r.stdout, "database user"), "unmapped-app");

    // Applying again fails on the existing user: a query error, exit 6, naming the statement.
    let r = lab.mssql_entra(
        &[
            "grant",
            "--name",
            "unmapped-app",
            "--app-id",
            UNMAPPED_APP_ID,
            "--apply",
            "--settings",
            path(&admin),
        ],
        &[("CLI_IT_TOKEN", &admin_token)],
    );
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("statement 1 of 3 failed"), "{}", r.stderr);
}

#[test]
fn grant_apply_without_permission_is_a_query_error() {
    let lab = Lab::start("no-permission");
    // demo-app is only a reader and writer: it may not create users.
    let settings = lab.client_secret_settings(DEMO_APP_ID);
    let r = lab.mssql_entra(
        &[
            "grant",
            "--name",
            "unmapped-app",
            "--app-id",
            UNMAPPED_APP_ID,
            "--apply",
            "--settings",
            path(&settings),
        ],
        &[("CLI_IT_SECRET", "demo-app-secret")],
    );
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("query failed"), "{}", r.stderr);
    assert!(lab
        .emu
        .sql()
        .databases()
        .user("appdb", "unmapped-app")
        .is_none());
}

#[test]
fn settings_and_connect_failures_have_their_own_exit_codes() {
    let lab = Lab::start("codes");
    // A settings file with an unknown key.
    let bad = lab.write(
        "bad.toml",
        "HOST = \"127.0.0.1\"\nNAME = \"appdb\"\nHOTS = 1\n",
    );
    let r = lab.mssql_entra(&["check", "--settings", path(&bad)], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("settings error") && r.stderr.contains("HOTS"),
        "{}",
        r.stderr
    );
    let r = lab.mssql_entra(&["check", "--settings", path(&bad), "--json"], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["class"], "settings");
    // A missing file.
    let r = lab.mssql_entra(&["connstr", "--settings", "/nonexistent/db.toml"], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    // The secret's variable is not set.
    let settings = lab.client_secret_settings(DEMO_APP_ID);
    let r = lab.mssql_entra(&["check", "--settings", path(&settings)], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("CLI_IT_SECRET"), "{}", r.stderr);
    // Nothing listens on the port: connect error with a diagnosis.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let text = format!(
        "NAME = \"appdb\"\nHOST = \"127.0.0.1\"\nPORT = {closed}\nTOKEN_ENV = \"CLI_IT_TOKEN\"\n[OPTIONS]\ndriver = \"ODBC Driver 18 for SQL Server\"\nlogin_timeout = 2\n"
    );
    let unreachable = lab.write("closed.toml", &text);
    let token = lab.token_for(DEMO_APP_ID);
    let r = lab.mssql_entra(
        &["check", "--settings", path(&unreachable), "--json"],
        &[("CLI_IT_TOKEN", &token)],
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("diagnosis:") && r.stderr.contains("see: docs/troubleshooting.md#"),
        "{}",
        r.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON on failure too");
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["class"], "connect");
    assert!(!r.stdout.contains(&token) && !r.stderr.contains(&token));
}

#[test]
fn check_with_a_managed_identity_in_token_mode() {
    let lab = Lab::start("managed-identity");
    let text = format!(
        "{}TOKEN = {{ source = \"managed-identity\" }}\n{}",
        lab.common(),
        Lab::options()
    );
    let settings = lab.write("mi.toml", &text);
    let endpoint = lab.emu.identity_endpoint();
    let header = lab.emu.identity_header().expose().to_owned();
    let r = lab.mssql_entra(
        &["check", "--settings", path(&settings)],
        &[
            ("IDENTITY_ENDPOINT", endpoint.as_str()),
            ("IDENTITY_HEADER", header.as_str()),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        field(&r.stdout, "mode").starts_with("token mode: `managed-identity`"),
        "{}",
        r.stdout
    );
    assert_eq!(field(&r.stdout, "database user"), "demo-mi");
    assert_eq!(
        field(&r.stdout, "roles"),
        "db_owner no, db_datareader yes, db_datawriter no, db_ddladmin no"
    );
    assert!(!r.stdout.contains(&header) && !r.stderr.contains(&header));
}

#[test]
fn check_names_a_token_for_the_wrong_audience() {
    let lab = Lab::start("audience");
    let settings = lab.token_env_settings("graph.toml");
    let graph_token = lab
        .emu
        .issue_token(
            DEMO_APP_ID,
            "https://graph.microsoft.com",
            Duration::from_secs(3600),
        )
        .expect("token");
    let r = lab.mssql_entra(
        &["check", "--settings", path(&settings), "--json"],
        &[("CLI_IT_TOKEN", &graph_token)],
    );
    assert_eq!(r.code, 5, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["mode"], "access-token");
    assert_eq!(
        v["token"]["claims"]["aud"][0],
        "https://graph.microsoft.com"
    );
    assert_eq!(v["failure"]["diagnosis"]["kind"], "WrongAudience", "{v}");
    assert_eq!(
        v["failure"]["diagnosis"]["see"],
        "docs/troubleshooting.md#wrong-audience"
    );
    assert!(
        r.stderr.contains("https://database.windows.net/.default"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains(&graph_token) && !r.stderr.contains(&graph_token));
    // odbc-api logs every driver record unredacted through `log`; the command keeps it out.
    assert!(!r.stderr.contains("Native error:"), "{}", r.stderr);
}

#[test]
fn grant_apply_from_external_provider_needs_graph() {
    let lab = Lab::start("external-provider");
    let admin = lab.token_env_settings("admin.toml");
    let admin_token = lab.token_for("sqladmin@emulator.onmicrosoft.com");
    let env = [("CLI_IT_TOKEN", admin_token.as_str())];
    let args = [
        "grant",
        "--name",
        "unmapped-app",
        "--read-only",
        "--apply",
        "--settings",
        path(&admin),
    ];

    // Without Graph the server cannot resolve the name: query error with the way out.
    lab.emu.set_graph_available(false);
    let r = lab.mssql_entra(&args, &env);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("native=33130"), "{}", r.stderr);
    assert!(r.stderr.contains("--app-id"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("see: docs/troubleshooting.md#principal-not-found"),
        "{}",
        r.stderr
    );
    assert!(lab
        .emu
        .sql()
        .databases()
        .user("appdb", "unmapped-app")
        .is_none());

    // With Graph, FROM EXTERNAL PROVIDER stores the SID of the application id.
    lab.emu.set_graph_available(true);
    let r = lab.mssql_entra(&args, &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("ok  CREATE USER [unmapped-app] FROM EXTERNAL PROVIDER;"),
        "{}",
        r.stdout
    );
    let user = lab
        .emu
        .sql()
        .databases()
        .user("appdb", "unmapped-app")
        .expect("user created");
    assert_eq!(
        user.sid,
        SqlSid::from_guid_str(UNMAPPED_APP_ID)
            .expect("guid")
            .as_bytes()
            .to_vec()
    );
}

//! The `mssql-entra` command: the jobs around an Entra ID connection to SQL Server that are not code.
//!
//! `sid` turns an application (client) id or object id into the SID Azure SQL stores and prints the
//! `CREATE USER … WITH SID` statement; `grant` writes (and with `--apply` runs) the least-privilege
//! user-and-roles script; `connstr` shows the connection string the driver will get, secrets masked;
//! `token` acquires a token through the configured source and shows its claims; `check` does all of
//! it against the server and, when the login fails, prints the connector's diagnosis and the fix.
//!
//! It deliberately holds no connection logic of its own: settings, token sources and the connector
//! are the `mssql-entra` facade's, so the command behaves exactly like an application built on it.
//! It never prints a token unless asked with `--show-token`, nor a password or client secret.
//!
//! Results go to stdout (`--json` for data), messages and errors to stderr; the exit codes are in
//! [`exit::Failure`] and in `mssql-entra --help`.
#![forbid(unsafe_code)]

mod exit;
mod live;
mod output;
mod settings;
mod tsql;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::exit::{Class, Failure};
use crate::output::Out;
use crate::settings::SettingsArgs;
use crate::tsql::{Access, GrantPlan, Name, PrincipalType};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (output could not be written)
  2  usage: unknown option, missing or malformed argument (e.g. a non-GUID id)
  3  settings: the settings file or environment is unreadable, incomplete or contradictory
  4  token: the token source could not produce an access token
  5  connect/login: the driver could not connect or the server refused the login
  6  query: connected, but a statement failed (e.g. grant --apply without permission)";

#[derive(Debug, Parser)]
#[command(
    name = "mssql-entra",
    version,
    about = "Microsoft Entra ID connections to SQL Server, Azure SQL and Fabric SQL: check them, and create the database users they need",
    after_help = EXIT_CODES,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Show what mssql-entra does on stderr: -v info (which token source, mode choices), -vv
    /// debug, -vvv trace. Only mssql-entra's own logs, which never contain secrets; RUST_LOG
    /// overrides the filter (other libraries may log more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

/// Logs of mssql-entra's crates to stderr; warnings are always shown (e.g. the deprecation of
/// ActiveDirectoryPassword).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // odbc-api logs every diagnostic record of a failed call through `log`, unredacted (the driver
    // echoes identity-provider answers in some): off, since the command prints the connector's
    // redacted records itself.
    let ours = format!("warn,odbc_api=off,mssql_entra={level},mssql_entra_token={level},mssql_entra_odbc={level},mssql_entra_connstr={level}");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(ours));
    // `try_init` fails only if a subscriber is already set, which nothing here does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(CheckArgs),
    Sid(SidArgs),
    Grant(GrantArgs),
    Token(Box<TokenArgs>),
    Connstr(ConnstrArgs),
}

/// Check a connection end to end: settings, token, login, identity and roles, with timings.
///
/// Builds the connection string (secrets masked); in token mode acquires the token and shows its
/// decoded claims (aud, tid, appid/oid, idtyp, expiry) and the SID Azure SQL maps it to; connects;
/// runs SELECT SUSER_SNAME(), USER_NAME(), DB_NAME() and IS_ROLEMEMBER for db_owner,
/// db_datareader, db_datawriter and db_ddladmin. When the login fails it prints every driver
/// diagnostic, the diagnosis and the fix (for example the CREATE USER … WITH SID statement when the
/// database user was created from the object id instead of the application id).
#[derive(Debug, Args)]
#[command(after_help = concat!("\
Examples:
  mssql-entra check --settings db.toml
  MSSQL_ENTRA_HOST=myserver.database.windows.net MSSQL_ENTRA_NAME=app \\
  MSSQL_ENTRA_TOKEN_SOURCE=managed-identity mssql-entra check --env --json

", "\
Exit codes:
  0  the login works and the queries ran    2  usage error
  3  settings error   4  token error   5  connect/login error   6  query error"))]
struct CheckArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print one JSON object (also on failure) instead of text.
    #[arg(long)]
    json: bool,
}

/// Acquire an access token through the configured source and show its claims.
///
/// The token itself is printed only with --show-token. The claims are decoded without verifying
/// the signature (the server does that): use them to explain, never to authorise.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mssql-entra token --settings db.toml --claims
  mssql-entra token --source managed-identity --client-id 6d2a3b4c-0000-4000-8000-000000000001
  mssql-entra token --source client-secret --tenant-id contoso.onmicrosoft.com \\
      --client-id <app id> --client-secret-env APP_SECRET --json")]
struct TokenArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    source: SourceArgs,
    /// Show every decoded claim.
    #[arg(long)]
    claims: bool,
    /// Also print the access token itself (a secret: anyone holding it can sign in until it expires).
    #[arg(long)]
    show_token: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A token source given on the command line instead of in settings (the keys of a TOKEN table).
#[derive(Debug, Args)]
struct SourceArgs {
    /// The token source: managed-identity, client-secret, client-certificate, workload-identity,
    /// developer-tools, device-code or default.
    #[arg(long, value_name = "KIND", conflicts_with_all = ["settings", "env"])]
    source: Option<String>,
    /// The server, to pick the cloud's token scope (TOKEN.scope overrides).
    #[arg(
        long,
        value_name = "HOST",
        requires = "source",
        default_value = "database.windows.net"
    )]
    server: String,
    /// TOKEN.tenant_id: the directory (tenant) id or domain.
    #[arg(long, requires = "source")]
    tenant_id: Option<String>,
    /// TOKEN.client_id: the application (client) id.
    #[arg(long, requires = "source")]
    client_id: Option<String>,
    /// TOKEN.object_id: a user-assigned managed identity's object id.
    #[arg(long, requires = "source")]
    object_id: Option<String>,
    /// TOKEN.resource_id: a user-assigned managed identity's resource id.
    #[arg(long, requires = "source")]
    resource_id: Option<String>,
    /// TOKEN.client_secret_env: the environment variable holding the client secret.
    #[arg(long, value_name = "VAR", requires = "source")]
    client_secret_env: Option<String>,
    /// TOKEN.certificate_file: the PEM certificate (and key) of a service principal.
    #[arg(long, value_name = "FILE", requires = "source")]
    certificate_file: Option<PathBuf>,
    /// TOKEN.token_file: the federated token file of workload identity.
    #[arg(long, value_name = "FILE", requires = "source")]
    token_file: Option<PathBuf>,
    /// TOKEN.authority_host: the Entra ID authority (sovereign clouds, test emulators).
    #[arg(long, value_name = "URL", requires = "source")]
    authority_host: Option<String>,
    /// TOKEN.ca_file: extra CA certificates (PEM) to trust for the authority.
    #[arg(long, value_name = "FILE", requires = "source")]
    ca_file: Option<PathBuf>,
    /// TOKEN.scope: the scope to ask for instead of the server's default.
    #[arg(long, requires = "source")]
    scope: Option<String>,
}

impl SourceArgs {
    /// Settings holding only this source (and the server, for the scope).
    fn settings(&self, kind: &str) -> Result<mssql_entra::Settings, Failure> {
        let mut table = serde_json::Map::new();
        table.insert("source".into(), kind.into());
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        for (key, value) in [
            ("tenant_id", self.tenant_id.clone()),
            ("client_id", self.client_id.clone()),
            ("object_id", self.object_id.clone()),
            ("resource_id", self.resource_id.clone()),
            ("client_secret_env", self.client_secret_env.clone()),
            ("certificate_file", self.certificate_file.as_ref().map(path)),
            ("token_file", self.token_file.as_ref().map(path)),
            ("authority_host", self.authority_host.clone()),
            ("ca_file", self.ca_file.as_ref().map(path)),
            ("scope", self.scope.clone()),
        ] {
            if let Some(v) = value {
                table.insert(key.into(), v.into());
            }
        }
        let settings = serde_json::json!({ "HOST": self.server, "TOKEN": table });
        mssql_entra::Settings::from_json_str(&settings.to_string())
            .map_err(|e| Failure::from_facade(&e))
    }
}

/// Print the connection string the driver will get, with secrets masked.
///
/// In token mode the token is not part of the string: it goes to the driver separately, as
/// attribute 1256 (SQL_COPT_SS_ACCESS_TOKEN). The mode and the token scope go to stderr.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mssql-entra connstr --settings db.toml
  mssql-entra connstr --env --json")]
struct ConnstrArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Print the SID Azure SQL stores for an Entra principal, and the CREATE USER … WITH SID statement.
///
/// The SID is the GUID in Windows byte order: the first three groups byte-reversed, the last two
/// as they are. Use it where the server cannot look names up in Microsoft Graph.
/// For an application or managed identity give its application (client) id, never its object id:
/// Azure SQL maps service principals by application id, users and groups by object id.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mssql-entra sid 619a4449-b4aa-4383-a2a9-7c365106c5e7
      0x49449A61AAB48343A2A97C365106C5E7 and CREATE USER [619a4449-…] WITH SID = 0x…, TYPE = E;
  mssql-entra sid 619a4449-b4aa-4383-a2a9-7c365106c5e7 --name orders-api --json
  mssql-entra sid <group object id> --name sql-admins --type X")]
struct SidArgs {
    /// The application (client) id of an app registration or managed identity, or the object id
    /// of a user or group.
    #[arg(value_name = "GUID", value_parser = tsql::parse_guid)]
    id: mssql_entra::lower::token::SqlSid,
    /// The database user name in the CREATE USER statement [default: the GUID].
    #[arg(long, value_parser = Name::parse)]
    name: Option<Name>,
    /// E for applications, managed identities and users; X for groups.
    #[arg(long = "type", value_enum, default_value = "E")]
    principal_type: PrincipalType,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Write the T-SQL that creates a database user for an Entra identity and gives it least-privilege
/// roles (and with --apply, run it).
///
/// db_datareader always; db_datawriter unless --read-only; db_ddladmin only with --migrations;
/// with --always-encrypted, VIEW ANY COLUMN MASTER KEY DEFINITION and VIEW ANY COLUMN ENCRYPTION
/// KEY DEFINITION. Without --app-id the user is created FROM EXTERNAL PROVIDER (the server looks
/// the name up in Microsoft Graph); with --app-id it is created WITH SID from the application
/// (client) id, which works where the server cannot reach Graph.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mssql-entra grant --name orders-api
  mssql-entra grant --name orders-api --app-id 619a4449-b4aa-4383-a2a9-7c365106c5e7 --migrations
  mssql-entra grant --name reporting --read-only --json
  mssql-entra grant --name orders-api --app-id 619a4449-b4aa-4383-a2a9-7c365106c5e7 \\
      --apply --settings admin.toml")]
struct GrantArgs {
    /// The database user name: for FROM EXTERNAL PROVIDER, the display name of the app, managed
    /// identity or group, or the user's UPN. Quoted safely (`]` doubled).
    #[arg(long, value_parser = Name::parse)]
    name: Name,
    /// The application (client) id: create the user WITH SID instead of FROM EXTERNAL PROVIDER.
    #[arg(long, value_name = "GUID", value_parser = tsql::parse_guid)]
    app_id: Option<mssql_entra::lower::token::SqlSid>,
    /// Only db_datareader.
    #[arg(long, conflicts_with = "read_write")]
    read_only: bool,
    /// db_datareader and db_datawriter (the default).
    #[arg(long)]
    read_write: bool,
    /// Also db_ddladmin, to run schema migrations.
    #[arg(long)]
    migrations: bool,
    /// Also the two VIEW ANY COLUMN … KEY DEFINITION permissions Always Encrypted needs.
    #[arg(long)]
    always_encrypted: bool,
    /// Run the statements through a connection made from --settings or --env (signed in as the
    /// Entra admin or a db_owner of the database), stopping at the first failure.
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print the statements as JSON instead of a script.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let mut out = Out::stdout();
    let result = match cli.command {
        Command::Check(args) => check(&args, &mut out),
        Command::Sid(args) => sid(&args, &mut out),
        Command::Grant(args) => grant(&args, &mut out),
        Command::Token(args) => token(&args, &mut out),
        Command::Connstr(args) => args
            .settings
            .plan()
            .and_then(|plan| live::connstr(&plan, args.json, &mut out)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

#[derive(Debug, Serialize)]
struct SidOutput {
    guid: String,
    sid: String,
    create_user: String,
}

fn sid(args: &SidArgs, out: &mut Out) -> Result<(), Failure> {
    let guid = args.id.to_guid().to_string();
    let name = match &args.name {
        Some(name) => name.clone(),
        // A GUID is always a valid name: 36 ASCII characters, no control characters.
        None => Name::parse(&guid).map_err(Failure::internal)?,
    };
    let create_user = tsql::create_user_with_sid(&name, args.id, args.principal_type);
    if args.json {
        return out.json(&SidOutput {
            guid,
            sid: args.id.to_string(),
            create_user,
        });
    }
    out.line(&args.id.to_string())?;
    out.line(&create_user)
}

#[derive(Debug, Serialize)]
struct GrantOutput<'a> {
    name: &'a str,
    access: Access,
    migrations: bool,
    always_encrypted: bool,
    statements: Vec<tsql::Step>,
}

fn grant_plan(args: &GrantArgs) -> GrantPlan {
    GrantPlan {
        name: args.name.clone(),
        app_id: args.app_id,
        access: if args.read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        },
        migrations: args.migrations,
        always_encrypted: args.always_encrypted,
    }
}

fn check(args: &CheckArgs, out: &mut Out) -> Result<(), Failure> {
    let started = Instant::now();
    let plan = match args.settings.plan() {
        Ok(plan) => plan,
        Err(failure) if args.json => {
            // With --json the result is always one object on stdout, even this early.
            out.json(&serde_json::json!({ "ok": false, "failure": &failure }))?;
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    live::check(&plan, started, started.elapsed(), args.json, out)
}

fn token(args: &TokenArgs, out: &mut Out) -> Result<(), Failure> {
    let settings = match &args.source.source {
        Some(kind) => args.source.settings(kind)?,
        None => args.settings.load()?,
    };
    let plan = settings.resolve().map_err(|e| Failure::from_facade(&e))?;
    live::token(&plan, args.claims, args.show_token, args.json, out)
}

fn grant(args: &GrantArgs, out: &mut Out) -> Result<(), Failure> {
    let plan = grant_plan(args);
    if args.apply {
        let settings = args.settings.plan()?;
        return live::apply(&settings, &plan, args.json, out);
    }
    if args.settings.given() {
        return Err(Failure::new(
            Class::Usage,
            "--settings/--env are used only with --apply; add --apply to run the script, or drop them to print it",
        ));
    }
    if args.json {
        return out.json(&GrantOutput {
            name: plan.name.as_str(),
            access: plan.access,
            migrations: plan.migrations,
            always_encrypted: plan.always_encrypted,
            statements: plan.steps(),
        });
    }
    out.text(&plan.script())
}

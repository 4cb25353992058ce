//! `mssql-entra-emulator`: runs the emulator until Ctrl-C and prints what a client needs to use it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mssql_entra_emulator::{Directory, Emulator, Subject};

/// A local Entra ID, managed-identity endpoints and Azure SQL endpoint for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "mssql-entra-emulator", version)]
struct Args {
    /// A directory TOML file (tenant, apps, managed identities, users, databases); default: the demo directory.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SQL endpoint's port (0: a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    sql_port: u16,
    /// The HTTPS token service's port (0: a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    http_port: u16,
    /// The App Service managed-identity endpoint's port (0: a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    msi_port: u16,
    /// Where the instance-metadata endpoint listens (169.254.169.254:80 inside a network namespace).
    #[arg(long, value_name = "ADDR")]
    imds_bind: Option<SocketAddr>,
    /// The IP every other listener binds to.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The host name in the token service's URLs (default: the bind IP).
    #[arg(long, value_name = "HOST")]
    sts_host: Option<String>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 75 * 60)]
    token_lifetime: u64,
    /// Where to write the CA, the federated token and app certificates (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let directory = match &args.config {
        Some(path) => Directory::from_toml_file(path).map_err(|e| e.to_string())?,
        None => Directory::demo().map_err(|e| e.to_string())?,
    };
    let mut builder = Emulator::builder()
        .directory(directory)
        .bind_ip(args.bind)
        .sts_port(args.http_port)
        .app_service_port(args.msi_port)
        .sql_port(args.sql_port)
        .token_lifetime(Duration::from_secs(args.token_lifetime));
    if let Some(addr) = args.imds_bind {
        builder = builder.imds_bind(addr);
    }
    if let Some(host) = args.sts_host {
        builder = builder.sts_host(host);
    }
    if let Some(dir) = args.output_dir {
        builder = builder.output_dir(dir);
    }
    let emulator = builder.start().await.map_err(|e| e.to_string())?;
    // Listen for the signals before announcing readiness, so that a Ctrl-C right after the banner stops cleanly.
    let stop = stop_signal().map_err(|e| format!("cannot listen for Ctrl-C: {e}"))?;
    print_banner(&emulator)?;

    stop.await;
    println!("stopping …");
    emulator.shutdown().await;
    println!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; the handlers are installed before this returns.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn print_banner(emulator: &Emulator) -> Result<(), String> {
    let dir = emulator.directory();
    println!(
        "mssql-entra-emulator: tenant {} ({})",
        dir.tenant.id, dir.tenant.domain
    );
    println!();
    println!(
        "  token service    {}  (STS URL {})",
        emulator.authority_host(),
        emulator.sts_url()
    );
    println!("  instance metadata {}", emulator.imds_url());
    println!("  App Service MSI  {}", emulator.identity_endpoint());
    println!(
        "  SQL endpoint     {}  (Server=tcp:{},{})",
        emulator.sql_addr(),
        emulator.sql_addr().ip(),
        emulator.sql_addr().port()
    );
    println!("  CA certificate   {}", emulator.ca_path().display());
    println!();
    println!("Directory:");
    for app in &dir.apps {
        println!(
            "  app {:<16} client id {}  ({} secret(s), {} certificate(s), {} federated credential(s))",
            app.name,
            app.client_id,
            app.secrets.len(),
            app.certificates.len(),
            app.federated_credentials.len()
        );
    }
    for mi in &dir.managed_identities {
        println!(
            "  managed identity {:<8} client id {}  object id {}  ({:?})",
            mi.name, mi.client_id, mi.object_id, mi.kind
        );
    }
    for user in &dir.users {
        println!(
            "  user {:<32} object id {}{}",
            user.upn,
            user.object_id,
            if user.mfa_required {
                "  (MFA required)"
            } else {
                ""
            }
        );
    }
    for db in &dir.databases {
        let users: Vec<&str> = db.users.iter().map(|u| u.principal.as_str()).collect();
        println!("  database {}: users {}", db.name, users.join(", "));
    }
    println!();
    println!("Environment for a client (the first app is the default client):");
    let first_app = dir.apps.first().map(|a| a.name.clone());
    for (name, value) in emulator.client_env(first_app.as_deref()) {
        println!("  export {name}='{value}'");
    }
    if let Some(app) = &first_app {
        if let Some(path) = emulator
            .write_app_certificate(app)
            .map_err(|e| e.to_string())?
        {
            println!(
                "  export AZURE_CLIENT_CERTIFICATE_PATH='{}'",
                path.display()
            );
        }
        let federated = dir.find_subject(app).and_then(|s| match s {
            Subject::App(a) => a.federated_credentials.first().map(|f| f.subject.clone()),
            _ => None,
        });
        if let Some(subject) = federated {
            let path = emulator
                .write_federated_token(&subject, Duration::from_secs(24 * 3600))
                .map_err(|e| e.to_string())?;
            println!("  export AZURE_FEDERATED_TOKEN_FILE='{}'", path.display());
        }
    }
    println!();
    println!("The driver's own flows need the CA in /etc/ssl/certs/ca-certificates.crt (its libcurl reads only that file).");
    println!("Press Ctrl-C to stop.");
    Ok(())
}

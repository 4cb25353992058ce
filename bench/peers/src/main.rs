//! `bench-peers`: the whole-process half of `cargo xtask bench`.
//!
//! `bench-peers run --out FILE [--quick] [--python PY]` starts the emulator in a child process of its own
//! (`bench-peers serve`, so that the emulator's CPU stays out of the clients' timings), then runs every client as
//! a child process (`bench-peers client KIND`, or the pyodbc script) against it, interleaving the clients round by
//! round so that a noisy neighbour slows all of them alike. It writes the measured figures as JSON; `cargo xtask
//! bench` adds the criterion figures, the machine and the commit, and renders `target/bench/report.md`.
//!
//! It is a measuring tool, not product code: errors are `anyhow`, and a failed client is reported, not hidden.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

const DRIVER: &str = "ODBC Driver 18 for SQL Server";
/// The app whose pre-built tokens the access-token clients use (a user of `appdb` in the demo directory).
const APP: &str = "demo-app";
const DATABASE: &str = "appdb";

fn main() {
    if let Err(e) = try_main() {
        eprintln!("bench-peers: error: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("client") => client(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => bail!("usage: bench-peers run --out FILE [--quick] [--python PY] | serve --token-lifetime SECS | client KIND"),
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------------------------------
// serve: the emulator in a process of its own, driven over stdin/stdout, one JSON line per answer.

/// What the emulator process announces on its first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoints {
    sql_port: u16,
    identity_endpoint: String,
    identity_header: String,
    ca_path: PathBuf,
    token_lifetime_secs: u64,
}

/// Counters of the emulator process.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Stats {
    app_service_token: u64,
    imds_token: u64,
    token_requests: u64,
    logins_ok: u64,
    logins_failed: u64,
    /// User + system CPU time of the whole emulator process, in nanoseconds (from /proc, 10 ms ticks).
    cpu_ns: u64,
}

fn serve(args: &[String]) -> Result<()> {
    use mssql_entra_emulator::{Directory, Emulator, Endpoint, SQL_RESOURCE};
    let lifetime: u64 = flag(args, "--token-lifetime")
        .unwrap_or("3600")
        .parse()
        .context("--token-lifetime takes whole seconds")?;
    let builder = Emulator::builder()
        .directory(Directory::demo()?)
        .token_lifetime(Duration::from_secs(lifetime));
    let handle = Emulator::start_blocking(builder)?;
    let emu: &Emulator = &handle;
    let mut out = std::io::stdout().lock();
    let endpoints = Endpoints {
        sql_port: emu.sql_addr().port(),
        identity_endpoint: emu.identity_endpoint(),
        identity_header: emu.identity_header().expose().to_owned(),
        ca_path: emu.ca_path().to_owned(),
        token_lifetime_secs: lifetime,
    };
    writeln!(out, "{}", serde_json::to_string(&endpoints)?)?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["stats"] => {
                let http = emu.http_stats();
                let sql = emu.sql().stats();
                let stats = Stats {
                    app_service_token: http.count(Endpoint::AppServiceToken),
                    imds_token: http.count(Endpoint::ImdsToken),
                    token_requests: http.token_requests(),
                    logins_ok: sql.logins_ok(),
                    logins_failed: sql.logins_failed(),
                    cpu_ns: process_cpu_ns().unwrap_or(0),
                };
                writeln!(out, "{}", serde_json::to_string(&stats)?)?;
            }
            ["token", secs] => {
                let secs: u64 = secs.parse().context("token SECS")?;
                let token = emu.issue_token(APP, SQL_RESOURCE, Duration::from_secs(secs))?;
                writeln!(out, "{}", serde_json::json!({ "token": token }))?;
            }
            ["quit"] | [] => break,
            other => bail!("serve: unknown command {other:?}"),
        }
        out.flush()?;
    }
    drop(handle);
    Ok(())
}

/// This process's user + system CPU time from `/proc/self/stat` (fields 14 and 15, in clock ticks of 10 ms).
fn process_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field 14 is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

/// A running emulator process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    endpoints: Endpoints,
}

impl Server {
    fn start(lifetime_secs: u64) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["serve", "--token-lifetime", &lifetime_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the emulator process")?;
        let stdin = child.stdin.take().context("emulator stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("emulator stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let endpoints: Endpoints = serde_json::from_str(&line)
            .with_context(|| format!("the emulator's first line is not its endpoints: {line:?}"))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            endpoints,
        })
    }

    fn ask(&mut self, command: &str) -> Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            bail!("the emulator process ended");
        }
        Ok(line)
    }

    fn stats(&mut self) -> Result<Stats> {
        Ok(serde_json::from_str(&self.ask("stats")?)?)
    }

    fn token(&mut self, secs: u64) -> Result<String> {
        let v: serde_json::Value = serde_json::from_str(&self.ask(&format!("token {secs}"))?)?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .context("token answer")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// client: one kind of client, timing `connect + SELECT 1 + disconnect` in a loop.

/// What a client child prints.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientOut {
    samples_ns: Vec<u64>,
    connects: u64,
    failures: u64,
    first_error: Option<String>,
    version: Option<String>,
    wall_ns: u64,
}

/// The environment every client child reads. `Debug` leaves the token out.
#[derive(Clone)]
struct ClientEnv {
    port: u16,
    token: String,
    n: usize,
    warmup: usize,
    secs: u64,
    threads: usize,
}

impl std::fmt::Debug for ClientEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEnv")
            .field("port", &self.port)
            .field("n", &self.n)
            .field("warmup", &self.warmup)
            .field("secs", &self.secs)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl ClientEnv {
    fn from_env() -> Result<Self> {
        let get = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
        Ok(Self {
            port: get("BENCH_PORT")?.parse()?,
            token: std::env::var("BENCH_TOKEN").unwrap_or_default(),
            n: get("BENCH_N")?.parse()?,
            warmup: get("BENCH_WARMUP")?.parse()?,
            secs: std::env::var("BENCH_SECS")
                .unwrap_or_else(|_| "0".into())
                .parse()?,
            threads: std::env::var("BENCH_THREADS")
                .unwrap_or_else(|_| "1".into())
                .parse()?,
        })
    }
}

/// The one connection string every ODBC client uses (the facade builds an equivalent one from its settings).
fn odbc_connection_string(port: u16) -> String {
    format!("Driver={{{DRIVER}}};Server=tcp:127.0.0.1,{port};Database={DATABASE};Encrypt=yes;")
}

fn facade_settings(port: u16, token: &str, extra: Option<&str>) -> Result<mssql_entra::Settings> {
    let mut options = format!("driver = \"{DRIVER}\"");
    if let Some(extra) = extra {
        options.push_str(&format!(", extra_params = \"{extra}\""));
    }
    let toml = format!(
        "HOST = \"127.0.0.1\"\nPORT = {port}\nNAME = \"{DATABASE}\"\n{token}OPTIONS = {{ {options} }}\n",
        token = if token.is_empty() {
            String::new()
        } else {
            format!("TOKEN = {token}\n")
        }
    );
    Ok(mssql_entra::Settings::from_toml_str(&toml)?)
}

fn select_one(conn: &odbc_api::Connection<'_>) -> Result<()> {
    use odbc_api::Cursor as _;
    let mut cursor = conn
        .execute("SELECT 1", (), None)?
        .context("SELECT 1 returned no result set")?;
    let mut row = cursor.next_row()?.context("SELECT 1 returned no row")?;
    let mut buf = Vec::new();
    row.get_text(1, &mut buf)?;
    if buf != b"1" {
        bail!("SELECT 1 returned {:?}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}

/// Times `n` calls of `once` after `warmup` untimed ones; failures are counted, not timed.
fn time_loop(env: &ClientEnv, mut once: impl FnMut() -> Result<()>) -> ClientOut {
    let mut out = ClientOut::default();
    let started = Instant::now();
    for i in 0..env.warmup + env.n {
        let t = Instant::now();
        let r = once();
        let took = t.elapsed().as_nanos() as u64;
        out.connects += 1;
        match r {
            Ok(()) if i >= env.warmup => out.samples_ns.push(took),
            Ok(()) => {}
            Err(e) => {
                out.failures += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    out.wall_ns = started.elapsed().as_nanos() as u64;
    out
}

fn connector_loop(env: &ClientEnv, connector: &mssql_entra::Connector) -> ClientOut {
    let mut out = time_loop(env, || {
        let conn = connector.connect()?;
        select_one(conn.connection())
    });
    out.version = connector.driver_version().map(|v| v.to_string());
    out
}

fn client(args: &[String]) -> Result<()> {
    let kind = args.first().map(String::as_str).unwrap_or("");
    let env = ClientEnv::from_env()?;
    let out = match kind {
        // The facade with an access token: settings resolved once into a connector, as an application holds it.
        "facade" => {
            let settings = facade_settings(env.port, &format!("\"{}\"", env.token), None)?;
            let connector = settings.resolve()?.connector()?;
            connector_loop(&env, &connector)
        }
        // Token mode with the managed-identity source (cached), through the facade.
        "facade-mi" => {
            let settings = facade_settings(env.port, "{ source = \"managed-identity\" }", None)?;
            let connector = settings.resolve()?.connector()?;
            connector_loop(&env, &connector)
        }
        // The driver's own ActiveDirectoryMsi, through the facade.
        "driver-msi" => {
            let settings =
                facade_settings(env.port, "", Some("Authentication=ActiveDirectoryMsi"))?;
            let connector = settings.resolve()?.connector()?;
            connector_loop(&env, &connector)
        }
        "raw" => raw_odbc(&env)?,
        "tiberius" => tiberius_client(&env)?,
        "cold" => cold_connects(&env)?,
        "continuous" => continuous(&env)?,
        "flood" => flood(&env)?,
        other => bail!("unknown client kind `{other}`"),
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// Raw odbc-api: one environment, a pre-built `SsAccessToken`, the same connection string.
fn raw_odbc(env: &ClientEnv) -> Result<ClientOut> {
    use odbc_api::{ConnectionOptions, Environment, MicrosoftConnectionOptions};
    let odbc = Environment::new()?;
    let token = odbc_api::sys::SsAccessToken::from_text(&env.token);
    let cs = odbc_connection_string(env.port);
    Ok(time_loop(env, || {
        let options = MicrosoftConnectionOptions {
            access_token: Some(&token),
        };
        // SAFETY: the driver is the Microsoft ODBC Driver 18, which understands attribute 1256; `token` outlives
        // the connection (it is dropped at the end of this closure, the token at the end of the function).
        let conn = unsafe {
            odbc.connect_with_connection_string_and_driver_specific_options(
                &cs,
                ConnectionOptions::default(),
                options,
            )
        }?;
        select_one(&conn)
    }))
}

/// Raw odbc-api from several threads for a fixed time: the emulator's logins per second.
fn flood(env: &ClientEnv) -> Result<ClientOut> {
    use odbc_api::{ConnectionOptions, Environment, MicrosoftConnectionOptions};
    let odbc = Environment::new()?;
    let token = odbc_api::sys::SsAccessToken::from_text(&env.token);
    let cs = odbc_connection_string(env.port);
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let until = Instant::now() + Duration::from_secs(env.secs);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..env.threads {
            s.spawn(|| {
                while Instant::now() < until {
                    let options = MicrosoftConnectionOptions {
                        access_token: Some(&token),
                    };
                    // SAFETY: as in `raw_odbc`: the Microsoft driver, and `token` outlives the connection.
                    let r = unsafe {
                        odbc.connect_with_connection_string_and_driver_specific_options(
                            &cs,
                            ConnectionOptions::default(),
                            options,
                        )
                    }
                    .map_err(anyhow::Error::from)
                    .and_then(|c| select_one(&c));
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    Ok(ClientOut {
        connects: ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed),
        failures: failed.load(Ordering::Relaxed),
        wall_ns: started.elapsed().as_nanos() as u64,
        ..ClientOut::default()
    })
}

/// tiberius (rustls) with an AAD token: connect, `SELECT 1`, close, on a current-thread runtime.
fn tiberius_client(env: &ClientEnv) -> Result<ClientOut> {
    use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
    use tokio_util::compat::TokioAsyncWriteCompatExt as _;
    let ca = std::env::var("BENCH_CA").context("BENCH_CA is not set")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(env.port);
    config.database(DATABASE);
    config.authentication(AuthMethod::aad_token(&env.token));
    config.encryption(EncryptionLevel::Required);
    config.trust_cert_ca(ca);
    let mut out = time_loop(env, || {
        rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(config.get_addr()).await?;
            tcp.set_nodelay(true)?;
            let mut client = Client::connect(config.clone(), tcp.compat_write()).await?;
            let row = client
                .simple_query("SELECT 1")
                .await?
                .into_row()
                .await?
                .context("SELECT 1 returned no row")?;
            let one: Option<i32> = row.get(0);
            if one != Some(1) {
                bail!("SELECT 1 returned {one:?}");
            }
            client.close().await?;
            Ok(())
        })
    });
    out.version = Some("tiberius (see Cargo.lock)".to_owned());
    Ok(out)
}

/// 64 (BENCH_THREADS) concurrent first connects through one facade connector in token mode with the
/// managed-identity source: the cache must make exactly one upstream call.
fn cold_connects(env: &ClientEnv) -> Result<ClientOut> {
    let settings = facade_settings(env.port, "{ source = \"managed-identity\" }", None)?;
    let connector = settings.resolve()?.connector()?;
    let barrier = Barrier::new(env.threads);
    let failed = AtomicU64::new(0);
    let first_error = std::sync::Mutex::new(None::<String>);
    let started = Instant::now();
    let samples: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..env.threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let t = Instant::now();
                    let r = connector
                        .connect()
                        .map_err(anyhow::Error::from)
                        .and_then(|c| select_one(c.connection()));
                    let took = t.elapsed().as_nanos() as u64;
                    if let Err(e) = r {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| format!("{e:#}"));
                    }
                    took
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    Ok(ClientOut {
        samples_ns: samples,
        connects: env.threads as u64,
        failures: failed.load(Ordering::Relaxed),
        first_error: first_error.into_inner().unwrap_or_else(|p| p.into_inner()),
        wall_ns: started.elapsed().as_nanos() as u64,
        version: None,
    })
}

/// Refresh-ahead settings for short tokens: refresh 1 s before expiry, refuse tokens with less than 1 s left.
const SHORT_TOKEN_AHEAD: Duration = Duration::from_secs(1);

/// Continuous connects for BENCH_SECS from BENCH_THREADS threads, token mode with the managed-identity source
/// behind a cache tuned for the emulator's 5-second tokens (the defaults would refuse tokens that short).
fn continuous(env: &ClientEnv) -> Result<ClientOut> {
    use mssql_entra_connstr::ConnectionStringBuilder;
    use mssql_entra_odbc::{Auth, Connector, ConnectorOptions};
    use mssql_entra_token::sources::ManagedIdentitySource;
    use mssql_entra_token::{CacheOptions, CachedTokenSource, Scope};
    let source = ManagedIdentitySource::new(None)?;
    let options = CacheOptions::default()
        .with_refresh_ahead(SHORT_TOKEN_AHEAD, 0.1)
        .with_expiry_margin(SHORT_TOKEN_AHEAD);
    let cached = CachedTokenSource::with_options(Arc::new(source), options);
    let cs = ConnectionStringBuilder::new("127.0.0.1")
        .port(env.port)
        .database(DATABASE)
        .driver(DRIVER)
        .build()?;
    let connector = Connector::new(
        cs,
        Auth::Token(Arc::new(cached), Scope::azure_sql()),
        ConnectorOptions::default(),
    )?;
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let first_error = std::sync::Mutex::new(None::<String>);
    let until = Instant::now() + Duration::from_secs(env.secs);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..env.threads {
            s.spawn(|| {
                while Instant::now() < until {
                    let r = connector
                        .connect()
                        .map_err(anyhow::Error::from)
                        .and_then(|c| select_one(c.connection()));
                    match r {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            first.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
            });
        }
    });
    Ok(ClientOut {
        connects: ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed),
        failures: failed.load(Ordering::Relaxed),
        first_error: first_error.into_inner().unwrap_or_else(|p| p.into_inner()),
        wall_ns: started.elapsed().as_nanos() as u64,
        ..ClientOut::default()
    })
}

// ---------------------------------------------------------------------------------------------------------------
// run: the orchestration.

/// One figure of the report.
#[derive(Debug, Serialize)]
struct Figure {
    name: String,
    value: String,
    target: Option<String>,
    held: Option<bool>,
    detail: String,
}

#[derive(Debug, Serialize)]
struct RunOut {
    quick: bool,
    driver_version: Option<String>,
    pyodbc_version: Option<String>,
    figures: Vec<Figure>,
    connect_p50_ms: Vec<(String, f64)>,
}

struct Runner {
    exe: PathBuf,
    python: Option<PathBuf>,
    script: PathBuf,
}

impl Runner {
    fn client(&self, kind: &str, server: &Endpoints, vars: &[(&str, String)]) -> Result<ClientOut> {
        let mut cmd = if kind == "pyodbc" {
            let python = self
                .python
                .as_ref()
                .context("no --python given for the pyodbc client")?;
            let mut cmd = Command::new(python);
            cmd.arg(&self.script);
            cmd
        } else {
            let mut cmd = Command::new(&self.exe);
            cmd.args(["client", kind]);
            cmd
        };
        cmd.env("BENCH_PORT", server.sql_port.to_string())
            .env("BENCH_CONNSTR", odbc_connection_string(server.sql_port))
            .env("BENCH_CA", &server.ca_path)
            // The driver's TDS TLS (OpenSSL) verifies the emulator's certificate against its CA.
            .env("SSL_CERT_FILE", &server.ca_path)
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("IDENTITY_HEADER")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .with_context(|| format!("start the `{kind}` client"))?;
        if !out.status.success() {
            bail!("the `{kind}` client failed ({})", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("");
        serde_json::from_str(last)
            .with_context(|| format!("the `{kind}` client printed no result: {text:?}"))
    }
}

fn median_ns(samples: &[u64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) as f64 / 2.0
    } else {
        s[mid] as f64
    }
}

/// The `q` quantile (0..=1, nearest rank) of `samples`, in ns.
fn quantile_ns(samples: &[u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s[i.min(s.len() - 1)] as f64
}

/// "p50 X ms (p25–p75 A–B ms) over N connects".
fn spread(samples: &[u64]) -> String {
    format!(
        "p50 {:.2} ms (p25–p75 {:.2}–{:.2} ms) over {} connects",
        ms(median_ns(samples)),
        ms(quantile_ns(samples, 0.25)),
        ms(quantile_ns(samples, 0.75)),
        samples.len()
    )
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let out_path = PathBuf::from(flag(args, "--out").context("--out FILE is required")?);
    let python = flag(args, "--python").map(PathBuf::from);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pyodbc_client.py");
    let runner = Runner {
        exe: std::env::current_exe()?,
        python,
        script,
    };
    let (rounds, n, warmup) = if quick { (6, 40, 3) } else { (12, 100, 5) };
    let continuous_secs: u64 = if quick { 15 } else { 60 };
    let flood_secs: u64 = if quick { 5 } else { 15 };
    let mut figures = Vec::new();
    let mut result = RunOut {
        quick,
        driver_version: None,
        pyodbc_version: None,
        figures: Vec::new(),
        connect_p50_ms: Vec::new(),
    };

    let mut server = Server::start(3600)?;
    let ep = server.endpoints.clone();
    let token = server.token(3600)?;
    let base = |n: usize| {
        vec![
            ("BENCH_TOKEN", token.clone()),
            ("BENCH_N", n.to_string()),
            ("BENCH_WARMUP", warmup.to_string()),
        ]
    };

    // 1. connect + SELECT 1, access token: facade, raw odbc-api, pyodbc, tiberius, interleaved by round.
    let kinds = ["facade", "raw", "pyodbc", "tiberius"];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); kinds.len()];
    let mut errors: Vec<Option<String>> = vec![None; kinds.len()];
    // Facade / raw per round: adjacent in time, so the spread of these shows the machine's noise.
    let mut round_ratios: Vec<f64> = Vec::new();
    let before = server.stats()?;
    for round in 0..rounds {
        let mut round_p50 = [f64::NAN; 2];
        for (i, kind) in kinds.iter().enumerate() {
            eprintln!("bench: round {}/{rounds}: {kind}", round + 1);
            match runner.client(kind, &ep, &base(n)) {
                Ok(out) => {
                    if i < 2 {
                        round_p50[i] = median_ns(&out.samples_ns);
                    }
                    if out.failures > 0 {
                        errors[i].get_or_insert(format!(
                            "{} of {} connects failed: {}",
                            out.failures,
                            out.connects,
                            out.first_error.clone().unwrap_or_default()
                        ));
                    }
                    samples[i].extend(&out.samples_ns);
                    if *kind == "facade" {
                        result.driver_version = out.version.clone();
                    }
                    if *kind == "pyodbc" {
                        result.pyodbc_version = out.version.clone();
                    }
                }
                Err(e) => {
                    errors[i].get_or_insert(format!("{e:#}"));
                }
            }
        }
        round_ratios.push(round_p50[0] / round_p50[1]);
    }
    let after = server.stats()?;
    round_ratios.retain(|r| r.is_finite());
    round_ratios.sort_by(f64::total_cmp);
    let p50: Vec<f64> = samples.iter().map(|s| median_ns(s)).collect();
    for (i, kind) in kinds.iter().enumerate() {
        result.connect_p50_ms.push((kind.to_string(), ms(p50[i])));
    }
    let logins = after.logins_ok.saturating_sub(before.logins_ok);
    let server_cpu_per_login =
        after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / logins.max(1) as f64;
    let detail_of = |i: usize| {
        format!(
            "{}{}",
            spread(&samples[i]),
            errors[i]
                .as_ref()
                .map(|e| format!("; FAILURES: {e}"))
                .unwrap_or_default()
        )
    };
    let ratio = p50[0] / p50[1];
    figures.push(Figure {
        name:
            "connect + SELECT 1 p50: facade (cached token) / raw odbc-api (pre-built SsAccessToken)"
                .into(),
        value: format!("{ratio:.3}"),
        target: Some("≤ 1.05".into()),
        held: Some(ratio <= 1.05 && errors[0].is_none() && errors[1].is_none()),
        detail: format!(
            "facade {}; raw {}; per-round ratios {:.3}–{:.3} over {} rounds (the noise)",
            detail_of(0),
            detail_of(1),
            round_ratios.first().copied().unwrap_or(f64::NAN),
            round_ratios.last().copied().unwrap_or(f64::NAN),
            round_ratios.len()
        ),
    });
    for (i, peer) in [
        (2, "pyodbc (attrs_before 1256)"),
        (3, "tiberius 0.12 (rustls, AAD token)"),
    ] {
        let r = p50[0] / p50[i];
        figures.push(Figure {
            name: format!("connect + SELECT 1 p50: facade / {peer}"),
            value: if r.is_finite() {
                format!("{r:.3}")
            } else {
                "n/a".into()
            },
            target: None,
            held: None,
            detail: format!("{}: {}", kinds[i], detail_of(i)),
        });
    }

    // 2. Managed identity: token mode (cached source) vs the driver's own ActiveDirectoryMsi, App Service form.
    let msi_vars = |n: usize| {
        let mut v = base(n);
        v.push(("IDENTITY_ENDPOINT", ep.identity_endpoint.clone()));
        v.push(("IDENTITY_HEADER", ep.identity_header.clone()));
        v
    };
    let mi_kinds = ["facade-mi", "driver-msi"];
    let mut mi_samples: Vec<Vec<u64>> = vec![Vec::new(); 2];
    let mut mi_calls = [0u64; 2];
    let mut mi_connects = [0u64; 2];
    let mut mi_errors: Vec<Option<String>> = vec![None; 2];
    for round in 0..rounds {
        for (i, kind) in mi_kinds.iter().enumerate() {
            eprintln!("bench: round {}/{rounds}: {kind}", round + 1);
            let before = server.stats()?;
            let r = runner.client(kind, &ep, &msi_vars(n));
            let after = server.stats()?;
            match r {
                Ok(out) => {
                    mi_samples[i].extend(&out.samples_ns);
                    mi_connects[i] += out.connects;
                    mi_calls[i] += after.app_service_token - before.app_service_token;
                    if out.failures > 0 {
                        mi_errors[i].get_or_insert(format!(
                            "{} of {} connects failed: {}",
                            out.failures,
                            out.connects,
                            out.first_error.unwrap_or_default()
                        ));
                    }
                }
                Err(e) => {
                    mi_errors[i].get_or_insert(format!("{e:#}"));
                }
            }
        }
    }
    let mi_p50: Vec<f64> = mi_samples.iter().map(|s| median_ns(s)).collect();
    let per100 = |i: usize| mi_calls[i] as f64 * 100.0 / mi_connects[i].max(1) as f64;
    let r = mi_p50[0] / mi_p50[1];
    let mi_detail = |i: usize| {
        format!(
            "{}: {}; {} identity-endpoint calls for {} connects in {rounds} processes{}",
            mi_kinds[i],
            spread(&mi_samples[i]),
            mi_calls[i],
            mi_connects[i],
            mi_errors[i]
                .as_ref()
                .map(|e| format!("; FAILURES: {e}"))
                .unwrap_or_default()
        )
    };
    figures.push(Figure {
        name: "managed identity, connect + SELECT 1 p50: token mode (cached source) / driver's ActiveDirectoryMsi".into(),
        value: if r.is_finite() { format!("{r:.3}") } else { "n/a".into() },
        target: Some("< 1 (we skip the per-connect endpoint call)".into()),
        held: Some(r < 1.0 && mi_errors.iter().all(Option::is_none)),
        detail: format!("{}; {}", mi_detail(0), mi_detail(1)),
    });
    figures.push(Figure {
        name: "identity-endpoint calls per 100 connects: token mode / driver's ActiveDirectoryMsi".into(),
        value: format!("{:.1} / {:.1}", per100(0), per100(1)),
        target: Some("token mode: one per process per token lifetime; driver: 100".into()),
        held: Some(mi_calls[0] as usize <= rounds && mi_errors[0].is_none()),
        detail: format!(
            "token mode {} calls / {} connects; driver {} calls / {} connects (one fresh process per round, so token mode fetches once per round)",
            mi_calls[0], mi_connects[0], mi_calls[1], mi_connects[1]
        ),
    });

    // 3. 64 concurrent cold connects.
    eprintln!("bench: 64 concurrent cold connects");
    let before = server.stats()?;
    let mut cold_vars = msi_vars(0);
    cold_vars.push(("BENCH_THREADS", "64".into()));
    let cold = runner.client("cold", &ep, &cold_vars);
    let after = server.stats()?;
    let cold_calls = after.app_service_token - before.app_service_token;
    match cold {
        Ok(out) => figures.push(Figure {
            name: "upstream token fetches for 64 concurrent cold connects (token mode, managed identity)".into(),
            value: cold_calls.to_string(),
            target: Some("1".into()),
            held: Some(cold_calls == 1 && out.failures == 0),
            detail: format!(
                "{} connects, {} failed{}; all done in {:.0} ms (p50 per connect {:.1} ms)",
                out.connects,
                out.failures,
                out.first_error.map(|e| format!(" ({e})")).unwrap_or_default(),
                ms(out.wall_ns as f64),
                ms(median_ns(&out.samples_ns))
            ),
        }),
        Err(e) => figures.push(Figure {
            name: "upstream token fetches for 64 concurrent cold connects".into(),
            value: "n/a".into(),
            target: Some("1".into()),
            held: Some(false),
            detail: format!("{e:#}"),
        }),
    }

    // 4. Emulator logins per second and its CPU per login (the emulator must not be the bottleneck).
    eprintln!("bench: emulator logins/s ({flood_secs} s, 4 threads)");
    let before = server.stats()?;
    let mut flood_vars = base(0);
    flood_vars.push(("BENCH_SECS", flood_secs.to_string()));
    flood_vars.push(("BENCH_THREADS", "4".into()));
    let flood = runner.client("flood", &ep, &flood_vars);
    let after = server.stats()?;
    match flood {
        Ok(out) => {
            let ok = after.logins_ok - before.logins_ok;
            let per_s = ok as f64 / (out.wall_ns as f64 / 1e9);
            let cpu_per_login = (after.cpu_ns - before.cpu_ns) as f64 / ok.max(1) as f64;
            let share = server_cpu_per_login / p50[1];
            figures.push(Figure {
                name: "emulator logins per second (4 client threads, raw odbc-api, connect + SELECT 1)".into(),
                value: format!("{per_s:.0}"),
                target: None,
                held: None,
                detail: format!(
                    "{ok} logins in {:.1} s, {} client-side failures; emulator CPU {:.2} ms per login under load",
                    out.wall_ns as f64 / 1e9,
                    out.failures,
                    ms(cpu_per_login)
                ),
            });
            figures.push(Figure {
                name: "emulator CPU per login / client connect p50 (raw odbc-api), sequential connects".into(),
                value: format!("{share:.3}"),
                target: Some("well below 1: the emulator is not the bottleneck".into()),
                held: Some(share < 0.5),
                detail: format!(
                    "emulator process CPU {:.2} ms per login (/proc, 10 ms ticks, over {logins} logins) vs client p50 {:.2} ms",
                    ms(server_cpu_per_login),
                    ms(p50[1])
                ),
            });
        }
        Err(e) => figures.push(Figure {
            name: "emulator logins per second".into(),
            value: "n/a".into(),
            target: None,
            held: Some(false),
            detail: format!("{e:#}"),
        }),
    }
    drop(server);

    // 5. Continuous connects with 5-second tokens.
    eprintln!("bench: {continuous_secs} s of continuous connects with 5-second tokens");
    let mut short = Server::start(5)?;
    let sep = short.endpoints.clone();
    let before = short.stats()?;
    let cont_vars = vec![
        ("BENCH_N", "0".to_string()),
        ("BENCH_WARMUP", "0".to_string()),
        ("BENCH_SECS", continuous_secs.to_string()),
        ("BENCH_THREADS", "2".to_string()),
        ("IDENTITY_ENDPOINT", sep.identity_endpoint.clone()),
        ("IDENTITY_HEADER", sep.identity_header.clone()),
    ];
    let cont = runner.client("continuous", &sep, &cont_vars);
    let after = short.stats()?;
    let fetches = after.app_service_token - before.app_service_token;
    // At most one fetch per (lifetime - refresh-ahead - 1 s) seconds, plus the first: the identity endpoint
    // states expiry in whole seconds, so a token may look up to 1 s shorter than its lifetime.
    let usable = sep
        .token_lifetime_secs
        .saturating_sub(SHORT_TOKEN_AHEAD.as_secs() + 1)
        .max(1);
    let bound = continuous_secs.div_ceil(usable) + 1;
    match cont {
        Ok(out) => figures.push(Figure {
            name: format!(
                "upstream token fetches during {continuous_secs} s of continuous connects with 5-second tokens"
            ),
            value: format!("{fetches} fetches, {} failures", out.failures),
            target: Some(format!("lifetime-bounded (≤ {bound}), 0 failures")),
            held: Some(fetches <= bound && out.failures == 0 && out.connects > 0),
            detail: format!(
                "{} connects from 2 threads in {:.1} s; cache refreshes {} s ahead of expiry, so at most one fetch per {usable} s (whole-second expiry) plus the first{}{}",
                out.connects,
                out.wall_ns as f64 / 1e9,
                SHORT_TOKEN_AHEAD.as_secs(),
                out.first_error.map(|e| format!("; first error: {e}")).unwrap_or_default(),
                if quick { "; --quick run (15 s instead of 60 s)" } else { "" }
            ),
        }),
        Err(e) => figures.push(Figure {
            name: "upstream token fetches during continuous connects with 5-second tokens".into(),
            value: "n/a".into(),
            target: Some(format!("≤ {bound}, 0 failures")),
            held: Some(false),
            detail: format!("{e:#}"),
        }),
    }
    drop(short);

    result.figures = figures;
    std::fs::write(&out_path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("write {}", out_path.display()))?;
    eprintln!("bench: wrote {}", out_path.display());
    Ok(())
}

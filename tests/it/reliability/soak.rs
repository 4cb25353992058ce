//! The soak: `threads` threads connect, run a query and disconnect as fast as they can for `seconds`, through
//! one connector whose cache rotates short-lived tokens, while a fault thread injects random token-service
//! faults from a seeded generator (the seed is printed; set it to replay a run).
//!
//! Expected failures: none. Every fault is a short burst (at most two faulted requests; the next burst comes
//! only after this one was used up and at least a second has passed), which the cache absorbs: while its token is valid it serves it and retries the refresh later;
//! when a caller must wait for upstream, three retries within a five-second deadline outlast any burst. So
//! any failed connect or query is attributed to us and fails the run.
//!
//! Open file descriptors (`/proc/self/fd`) and resident memory (`VmRSS`) are sampled after a warm-up (every
//! thread has connected), in the middle and at the end (connections closed, the emulator's sessions gone),
//! printed, and checked for growth.
//!
//! The short form (4 threads × 20 s) runs in `cargo test`; `cargo xtask soak --threads N --minutes M` runs
//! the long one. Both run in a child process of their own, so that other tests' sockets and memory do not
//! blur the figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mssql_entra_emulator::{Endpoint, HttpFault, HttpService, Times};
use mssql_entra_odbc::RetryPolicy;
use mssql_entra_tests::lab::{builder, Lab};
use mssql_entra_tests::{isolated, modes, scalar, test_options, Isolation};
use mssql_entra_token::CacheOptions;

/// Threads, default 4.
pub const THREADS_ENV: &str = "MSSQL_ENTRA_SOAK_THREADS";
/// Duration in seconds, default 20.
pub const SECONDS_ENV: &str = "MSSQL_ENTRA_SOAK_SECONDS";
/// The fault generator's seed, default: from the clock (printed either way).
pub const SEED_ENV: &str = "MSSQL_ENTRA_SOAK_SEED";

/// Tokens live this long, so the run rotates many of them.
const TOKEN_LIFETIME: Duration = Duration::from_secs(8);
/// Descriptors the end may hold beyond the warm sample (a lingering accept, the allocator's files).
const FD_SLACK: usize = 8;
/// Resident memory the end may hold beyond the warm sample: allocator arenas settle, the driver's caches
/// fill. A leak of a few kilobytes per connect exceeds it within the short form's thousands of connects.
const RSS_SLACK_KIB: u64 = 48 * 1024;

/// splitmix64: reproducible from a printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text}: expected a whole number")),
        Err(_) => default,
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd (Linux)")
        .count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in kB")
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    fds: usize,
    rss_kib: u64,
    connects: u64,
}

/// One random burst. Each takes at most two requests, so the cache's retries always outlast it.
fn random_fault(rng: &mut Rng) -> (&'static str, HttpFault, u32) {
    let times = 1 + u32::from(rng.below(2) == 1);
    match rng.below(5) {
        0 => ("500", HttpFault::Status(500), times),
        1 => (
            "429",
            HttpFault::TooManyRequests {
                retry_after: Duration::from_millis(500),
            },
            1,
        ),
        2 => ("slow", HttpFault::Delay(Duration::from_millis(1500)), 1),
        3 => ("close", HttpFault::CloseConnection, times),
        _ => ("503", HttpFault::Status(503), times),
    }
}

/// Waits until the emulator has closed every session (the driver's disconnects are asynchronous for it).
fn sessions_closed(lab: &Lab) {
    let until = Instant::now() + Duration::from_secs(10);
    while lab.emulator().sql().stats().open_sessions() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn soak() {
    if !isolated("reliability::soak::soak", Isolation::Process) {
        return;
    }
    let threads = env_number(THREADS_ENV, 4).max(1);
    let seconds = env_number(SECONDS_ENV, 20).max(3);
    let seed = env_number(
        SEED_ENV,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    println!(
        "soak: {threads} threads × {seconds} s, tokens of {TOKEN_LIFETIME:?}, seed {seed} ({SEED_ENV}={seed} replays the faults)"
    );

    let lab = Lab::with(builder().token_lifetime(TOKEN_LIFETIME));
    // Refresh when less than half the lifetime remains; a token is unusable 1 s before it expires.
    let cache = CacheOptions::default()
        .with_refresh_ahead(TOKEN_LIFETIME / 2, 0.5)
        .with_expiry_margin(Duration::from_secs(1))
        .with_backoff(Duration::from_millis(100), Duration::from_millis(800))
        .with_attempt_timeout(Duration::from_secs(1))
        .with_deadline(Duration::from_secs(5))
        .with_max_retries(3);
    let options = test_options().with_retry(RetryPolicy::none());
    let connector =
        Arc::new(modes::client_secret_connector(&lab, cache, options).expect("a valid connector"));

    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let failure_count = Arc::new(AtomicU64::new(0));

    // Warm-up: every thread connects once before the first sample, so the driver, the allocator arenas
    // and the emulator's sessions exist.
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let conn = connector.connect().expect("warm-up connect");
                assert_eq!(scalar(&conn, "SELECT 1").expect("warm-up query"), "1");
            });
        }
    });
    sessions_closed(&lab);
    let sample = |connects: u64| Sample {
        fds: open_fds(),
        rss_kib: rss_kib(),
        connects,
    };
    let start = sample(0);

    let started = Instant::now();
    let run_for = Duration::from_secs(seconds);
    let mut middle = None;
    let mut faults_injected: Vec<&'static str> = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (connector, stop, connects, failures, failure_count) =
                (&connector, &stop, &connects, &failures, &failure_count);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let outcome = connector
                        .connect()
                        .map_err(|e| super::chain(&e))
                        .and_then(|conn| scalar(&conn, "SELECT 1"));
                    match outcome {
                        Ok(one) if one == "1" => {
                            connects.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(other) => {
                            record(failures, failure_count, format!("SELECT 1 gave {other}"))
                        }
                        Err(e) => record(failures, failure_count, e),
                    }
                }
            });
        }
        // The fault thread is this one: a burst, then one to two seconds of calm.
        let mut rng = Rng(seed);
        let faults = lab.emulator().http_faults();
        while started.elapsed() < run_for {
            // One burst at a time: unused faults would pile up between refreshes (the token service is
            // asked only every few seconds) and add up to a longer outage than the model promises.
            if faults.active() == 0 {
                let (name, fault, times) = random_fault(&mut rng);
                faults.inject(Some(HttpService::TokenService), fault, Times::Next(times));
                faults_injected.push(name);
            }
            let calm = Duration::from_millis(1000 + rng.below(1000));
            let until = (started.elapsed() + calm).min(run_for);
            while started.elapsed() < until {
                std::thread::sleep(Duration::from_millis(50));
                if middle.is_none() && started.elapsed() >= run_for / 2 {
                    middle = Some(sample(connects.load(Ordering::Relaxed)));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed();
    lab.emulator().http_faults().clear();
    sessions_closed(&lab);
    let total = connects.load(Ordering::Relaxed);
    let end = sample(total);
    let middle = middle.unwrap_or(end);
    let fetches = lab.http_count(Endpoint::TokenV2);
    let (logins_ok, logins_failed) = lab.logins();
    let failed = failure_count.load(Ordering::Relaxed);

    println!(
        "soak: {total} connect+query+disconnect in {:.1} s ({:.0}/s), {failed} failures",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "soak: {} fault bursts injected ({}), {fetches} token requests (faulted ones included), logins {logins_ok} ok / {logins_failed} failed",
        faults_injected.len(),
        summary(&faults_injected)
    );
    for (name, s) in [("start", start), ("middle", middle), ("end", end)] {
        println!(
            "soak: {name:>6}: {:>4} fds, VmRSS {:>7} KiB, after {} connects",
            s.fds, s.rss_kib, s.connects
        );
    }

    let failures = failures.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(
        failed, 0,
        "expected no failures (faults only ever hit while the cache can absorb them); first ones: {failures:#?}"
    );
    assert!(
        total > threads,
        "the workers made progress: {total} connects"
    );
    assert!(
        faults_injected.len() >= 2,
        "the token service met faults ({} bursts): otherwise the run proves nothing about them",
        faults_injected.len()
    );
    let rotations = seconds / TOKEN_LIFETIME.as_secs();
    assert!(
        fetches >= rotations,
        "tokens rotated: {fetches} token requests in {seconds} s of {TOKEN_LIFETIME:?} tokens"
    );
    assert_eq!(logins_failed, 0, "every login the server saw succeeded");
    assert!(
        end.fds <= start.fds + FD_SLACK,
        "open descriptors grew from {} to {} over {total} connects",
        start.fds,
        end.fds
    );
    assert!(
        end.rss_kib <= start.rss_kib + RSS_SLACK_KIB,
        "VmRSS grew from {} KiB to {} KiB over {total} connects",
        start.rss_kib,
        end.rss_kib
    );
}

fn record(failures: &Mutex<Vec<String>>, count: &AtomicU64, what: String) {
    count.fetch_add(1, Ordering::Relaxed);
    let mut kept = failures.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() < 10 {
        kept.push(what);
    }
}

fn summary(names: &[&str]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
        .iter()
        .map(|(n, c)| format!("{n}×{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

//! Load: a long-lived pool with 5-second tokens used continuously for a minute, and 64 threads connecting at
//! once on a cold token cache. Counters are the emulator's (token requests, logins).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mssql_entra::{Connector, ConnectorOptions, Pool, PoolSettings};
use mssql_entra_emulator::Endpoint;
use mssql_entra_tests::lab::{app_login, Lab, DEMO_APP};
use mssql_entra_tests::{modes, principal};
use mssql_entra_token::CacheOptions;

const TOKEN_LIFETIME: Duration = Duration::from_secs(5);
const REFRESH_BEFORE: Duration = Duration::from_secs(2);

/// Cache rules scaled to 5-second tokens: renew when 2 s remain, treat the last second as expired.
pub fn short_token_cache() -> CacheOptions {
    CacheOptions::default()
        .with_refresh_ahead(REFRESH_BEFORE, 0.4)
        .with_expiry_margin(Duration::from_secs(1))
}

/// Connector options for load: a login timeout that tolerates a busy two-core machine.
fn load_options() -> ConnectorOptions {
    mssql_entra_tests::test_options().with_login_timeout(Some(Duration::from_secs(30)))
}

#[test]
fn a_pool_with_five_second_tokens_runs_for_a_minute_without_a_login_failure() {
    const RUN: Duration = Duration::from_secs(60);
    const WORKERS: usize = 4;
    let lab = Lab::with_token_lifetime(TOKEN_LIFETIME);
    let connector = modes::client_secret_connector(&lab, short_token_cache(), load_options())
        .expect("a connector");
    // The product's pool: it retires each connection before its token expires (a fifth of a short
    // token's life ahead), so every physical connection logs in with a valid token.
    let mut settings = PoolSettings::default();
    settings.max_size = Some(WORKERS as u32);
    settings.min_idle = Some(0);
    settings.connection_timeout = Some(Duration::from_secs(30));
    let pool = Pool::from_connector(connector, &settings).expect("the pool");
    let uses = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let pool = pool.clone();
            let uses = Arc::clone(&uses);
            std::thread::spawn(move || -> Result<(), String> {
                while started.elapsed() < RUN {
                    let conn = pool.get().map_err(|e| format!("pool.get: {e}"))?;
                    let who = principal(&conn)?;
                    if who != app_login(DEMO_APP) {
                        return Err(format!("logged in as {who}"));
                    }
                    uses.fetch_add(1, Ordering::Relaxed);
                    drop(conn);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .expect("the worker did not panic")
            .expect("every use succeeded");
    }
    let elapsed = started.elapsed();
    let fetches = lab.http_count(Endpoint::TokenV2);
    let (ok, failed) = lab.logins();
    println!(
        "{} uses in {elapsed:?}: {ok} logins, {failed} failed, {fetches} token fetches",
        uses.load(Ordering::Relaxed)
    );
    assert_eq!(failed, 0, "no login failed");
    assert!(ok >= 1);
    // A token is renewed once per (lifetime − refresh_before) at most often, and at least once per lifetime.
    let max = elapsed.as_secs() / (TOKEN_LIFETIME - REFRESH_BEFORE).as_secs() + 3;
    let min = elapsed.as_secs() / TOKEN_LIFETIME.as_secs();
    assert!(
        (min..=max).contains(&fetches),
        "{fetches} token fetches, expected {min}..={max}"
    );
}

#[test]
fn sixty_four_threads_on_a_cold_cache_fetch_one_token() {
    const THREADS: usize = 64;
    let lab = Lab::start();
    let plan = modes::client_secret_source(&lab)
        .plan(&lab)
        .expect("a plan");
    let connector = Connector::new(
        plan.connection_string().clone(),
        plan.auth().clone(),
        load_options(),
    )
    .expect("a connector");
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let connector = connector.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let conn = connector.connect().map_err(|e| e.to_string())?;
                principal(&conn)
            })
        })
        .collect();
    for thread in threads {
        let who = thread.join().expect("no panic").expect("connected");
        assert_eq!(who, app_login(DEMO_APP));
    }
    assert_eq!(lab.http_count(Endpoint::TokenV2), 1, "one token fetch");
    assert_eq!(lab.logins(), (THREADS as u64, 0));
}

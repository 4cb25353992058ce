//! Every rule of `CachedTokenSource`, under paused tokio time.

use crate::fake::{http, token, Fake, HOUR, MIN};
use mssql_entra_token::{
    CacheOptions, CachedTokenSource, TokenError, TokenRequestOptions, TokenSource, TokioClock,
    AZURE_SQL_SCOPE,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const S: &[&str] = &[AZURE_SQL_SCOPE];

fn cache(fake: &Arc<Fake>, options: CacheOptions) -> CachedTokenSource {
    CachedTokenSource::with_options(
        fake.clone(),
        options.with_clock(Arc::new(fake.clock.clone())),
    )
}

async fn get(c: &CachedTokenSource) -> Result<String, TokenError> {
    c.get_token(S, None)
        .await
        .map(|t| t.token.expose_secret().to_owned())
}

#[tokio::test(start_paused = true)]
async fn single_flight_64_cold_callers_cause_one_upstream_call() {
    let clock = TokioClock::default();
    let fake = Fake::new(clock, Duration::from_millis(200), |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let c = c.clone();
        set.spawn(async move { get(&c).await });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), "tok-0");
        n += 1;
    }
    assert_eq!(n, 64);
    assert_eq!(
        fake.calls(),
        1,
        "64 cold callers must share one upstream call"
    );
}

#[tokio::test(start_paused = true)]
async fn cold_callers_share_a_failure_too() {
    let fake = Fake::new(TokioClock::default(), Duration::from_millis(50), |_, _| {
        Err(http(401, None))
    });
    let c = cache(&fake, CacheOptions::default());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let c = c.clone();
        set.spawn(async move { get(&c).await });
    }
    while let Some(r) = set.join_next().await {
        assert!(matches!(
            r.unwrap(),
            Err(TokenError::Http { status: 401, .. })
        ));
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn hot_path_serves_the_cached_token() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    for _ in 0..100 {
        assert_eq!(get(&c).await.unwrap(), "tok-0");
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_when_five_minutes_remain_for_short_tokens() {
    // 40-minute token: 10 % is 4 min, so the 5-minute rule decides: refresh after 35 min.
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, 40 * MIN))
    });
    let c = cache(&fake, CacheOptions::default());
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    tokio::time::advance(34 * MIN + Duration::from_secs(50)).await;
    assert_eq!(
        get(&c).await.unwrap(),
        "tok-0",
        "5 min 10 s left: no refresh yet"
    );
    assert_eq!(fake.calls(), 1);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        get(&c).await.unwrap(),
        "tok-1",
        "4 min 50 s left: refreshed"
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_when_ten_percent_remains_for_long_tokens() {
    // 24-hour managed identity token: 10 % is 2 h 24 min, which beats 5 min.
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, 24 * HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    tokio::time::advance(21 * HOUR + 35 * MIN).await;
    assert_eq!(
        get(&c).await.unwrap(),
        "tok-0",
        "2 h 25 min left: no refresh yet"
    );
    tokio::time::advance(2 * MIN).await;
    assert_eq!(
        get(&c).await.unwrap(),
        "tok-1",
        "2 h 23 min left: refreshed"
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_is_configurable() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(
        &fake,
        CacheOptions::default().with_refresh_ahead(30 * MIN, 0.0),
    );
    get(&c).await.unwrap();
    tokio::time::advance(29 * MIN).await;
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    tokio::time::advance(2 * MIN).await;
    assert_eq!(get(&c).await.unwrap(), "tok-1");
}

#[tokio::test(start_paused = true)]
async fn others_are_served_the_current_token_during_a_refresh() {
    let fake = Fake::new(TokioClock::default(), Duration::from_secs(10), |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    get(&c).await.unwrap();
    tokio::time::advance(55 * MIN).await;
    let refresher = {
        let c = c.clone();
        tokio::spawn(async move { get(&c).await })
    };
    tokio::task::yield_now().await; // let the refresher take the flight
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..63 {
        let c = c.clone();
        set.spawn(async move { (get(&c).await, Instant::now()) });
    }
    while let Some(r) = set.join_next().await {
        let (tok, at) = r.unwrap();
        assert_eq!(tok.unwrap(), "tok-0");
        assert_eq!(at, start, "served without waiting for the refresh");
    }
    assert_eq!(refresher.await.unwrap().unwrap(), "tok-1");
    assert_eq!(fake.calls(), 2, "one initial fetch, one refresh");
    assert_eq!(get(&c).await.unwrap(), "tok-1");
}

#[tokio::test(start_paused = true)]
async fn stale_token_keeps_serving_while_refresh_fails_then_error_after_expiry() {
    // First call succeeds with a 1-hour token, every later call fails with 503.
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        if n == 0 {
            Ok(token(n, c, HOUR))
        } else {
            Err(http(503, None))
        }
    });
    let c = cache(&fake, CacheOptions::default().with_max_retries(1));
    get(&c).await.unwrap();
    tokio::time::advance(55 * MIN).await;
    assert_eq!(
        get(&c).await.unwrap(),
        "tok-0",
        "refresh failed: still served"
    );
    assert_eq!(fake.calls(), 2);
    // Inside the backoff window: no new upstream call.
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    assert_eq!(fake.calls(), 2, "failed refreshes back off");
    // After the backoff (at most 500 ms for the first failure): one more attempt.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    assert_eq!(fake.calls(), 3);
    // Past expiry minus the 30 s margin there is no usable token: the caller waits for upstream and fails.
    tokio::time::advance(5 * MIN).await;
    let err = get(&c).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Http { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(fake.calls(), 5, "one attempt plus one retry");
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_exponential_backoff_and_jitter() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        if n < 3 {
            Err(http(500, None))
        } else {
            Ok(token(n, c, HOUR))
        }
    });
    let c = cache(
        &fake,
        CacheOptions::default().with_backoff(Duration::from_secs(1), Duration::from_secs(60)),
    );
    let start = Instant::now();
    assert_eq!(get(&c).await.unwrap(), "tok-3");
    let waited = start.elapsed();
    assert_eq!(fake.calls(), 4);
    // Delays are 1 s, 2 s, 4 s with equal jitter: each between half and all of it.
    assert!(waited >= Duration::from_millis(3500), "{waited:?}");
    assert!(waited <= Duration::from_secs(7), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_the_retries_of_different_caches() {
    let mut waits = Vec::new();
    for _ in 0..8 {
        let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
            if n == 0 {
                Err(http(503, None))
            } else {
                Ok(token(n, c, HOUR))
            }
        });
        let c = cache(
            &fake,
            CacheOptions::default().with_backoff(Duration::from_secs(10), Duration::from_secs(60)),
        );
        let start = Instant::now();
        get(&c).await.unwrap();
        waits.push(start.elapsed());
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 1, "jitter must vary the delay: {waits:?}");
    assert!(
        waits
            .iter()
            .all(|w| *w >= Duration::from_secs(5) && *w <= Duration::from_secs(10)),
        "{waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_is_honoured() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        if n == 0 {
            Err(http(429, Some(Duration::from_secs(7))))
        } else {
            Ok(token(n, c, HOUR))
        }
    });
    let c = cache(&fake, CacheOptions::default());
    let start = Instant::now();
    assert_eq!(get(&c).await.unwrap(), "tok-1");
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |_, _| {
        Err(http(400, None))
    });
    let c = cache(&fake, CacheOptions::default());
    assert!(matches!(
        get(&c).await,
        Err(TokenError::Http { status: 400, .. })
    ));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |_, _| {
        Err(TokenError::transient("flaky"))
    });
    let c = cache(&fake, CacheOptions::default().with_max_retries(2));
    let err = get(&c).await.unwrap_err();
    assert_eq!(err, TokenError::transient("flaky"));
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn deadline_gives_one_typed_error_when_retry_after_is_too_long() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |_, _| {
        Err(http(429, Some(Duration::from_secs(20))))
    });
    let c = cache(
        &fake,
        CacheOptions::default()
            .with_deadline(Duration::from_secs(30))
            .with_max_retries(10),
    );
    let start = Instant::now();
    let err = get(&c).await.unwrap_err();
    match &err {
        TokenError::DeadlineExceeded {
            deadline,
            attempts,
            last_error,
        } => {
            assert_eq!(*deadline, Duration::from_secs(30));
            assert_eq!(*attempts, 2);
            assert!(matches!(
                last_error.as_deref(),
                Some(TokenError::Http { status: 429, .. })
            ));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(20),
        "gives up as soon as the next wait would pass the deadline"
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_a_hanging_upstream_for_every_waiter() {
    let fake = Fake::new(TokioClock::default(), Duration::from_secs(3600), |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(
        &fake,
        CacheOptions::default().with_deadline(Duration::from_secs(5)),
    );
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let c = c.clone();
        set.spawn(async move { get(&c).await });
    }
    while let Some(r) = set.join_next().await {
        assert!(matches!(
            r.unwrap(),
            Err(TokenError::DeadlineExceeded { .. })
        ));
    }
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn force_refresh_fetches_anew_once_for_concurrent_callers() {
    let fake = Fake::new(TokioClock::default(), Duration::from_millis(100), |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    get(&c).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let c = c.clone();
        set.spawn(async move {
            c.get_token(
                S,
                Some(TokenRequestOptions::default().with_force_refresh(true)),
            )
            .await
            .map(|t| t.token.expose_secret().to_owned())
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), "tok-1");
    }
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_cached_per_scope() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    get(&c).await.unwrap();
    let other = c
        .get_token(&["https://database.usgovcloudapi.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(other.token.expose_secret(), "tok-1");
    assert_eq!(get(&c).await.unwrap(), "tok-0");
    assert_eq!(fake.calls(), 2);
    c.clear();
    assert_eq!(get(&c).await.unwrap(), "tok-2");
}

#[tokio::test(start_paused = true)]
async fn an_already_expired_upstream_token_is_rejected() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, Duration::from_secs(5)))
    });
    let c = cache(&fake, CacheOptions::default());
    assert!(matches!(
        get(&c).await,
        Err(TokenError::InvalidToken { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn empty_scopes_are_a_config_error() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, HOUR))
    });
    let c = cache(&fake, CacheOptions::default());
    assert!(matches!(
        c.get_token(&[], None).await,
        Err(TokenError::Config {
            field: "scopes",
            ..
        })
    ));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn absurd_options_do_not_panic() {
    let fake = Fake::new(TokioClock::default(), Duration::ZERO, |n, c| {
        Ok(token(n, c, HOUR))
    });
    let options = CacheOptions::default()
        .with_refresh_ahead(Duration::MAX, f64::NAN)
        .with_deadline(Duration::MAX)
        .with_expiry_margin(Duration::MAX)
        .with_backoff(Duration::MAX, Duration::MAX);
    let c = cache(&fake, options);
    // With an unrepresentable margin no token is ever usable: a typed error, not a panic.
    assert!(matches!(
        get(&c).await,
        Err(TokenError::InvalidToken { .. })
    ));
}

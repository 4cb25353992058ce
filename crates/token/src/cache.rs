//! [`CachedTokenSource`]: refresh-ahead, single-flight, serve-stale-while-valid, retry with backoff.

use crate::{AccessToken, TokenError, TokenRequestOptions, TokenSource};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;

/// Wall-clock time, injectable so tests can run without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock (`OffsetDateTime::now_utc`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that reads the wall time once and then advances with tokio's clock.
///
/// Under `#[tokio::test(start_paused = true)]` it moves only when tokio time does (auto-advance or
/// `tokio::time::advance`), so a test can cross an hour of token lifetime in microseconds.
#[derive(Debug, Clone)]
pub struct TokioClock {
    wall: OffsetDateTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors the clock at the given wall time and tokio's current instant.
    pub fn starting_at(wall: OffsetDateTime) -> Self {
        Self {
            wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::starting_at(OffsetDateTime::now_utc())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        self.wall + self.start.elapsed()
    }
}

/// Tuning of [`CachedTokenSource`]. `Default` gives the documented rules.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Refresh when less than this remains. Default 5 minutes.
    pub refresh_before: Duration,
    /// Also refresh when less than this fraction of the token's lifetime remains. Default 0.10.
    /// The effective refresh point is whichever of the two comes first.
    pub refresh_fraction: f64,
    /// A token with less than this left counts as expired: it would not outlive a login. Default 30 s.
    pub expiry_margin: Duration,
    /// Retries after the first upstream attempt, for transient errors. Default 3.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry, with jitter. Default 500 ms.
    pub initial_backoff: Duration,
    /// Ceiling of a backoff delay (not of an explicit `Retry-After`). Default 30 s.
    pub max_backoff: Duration,
    /// Limit for one upstream call. Default 30 s.
    pub attempt_timeout: Duration,
    /// Limit for one `get_token` that has to wait for upstream, retries included. Default 60 s.
    pub deadline: Duration,
    /// The clock. Default [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(5 * 60),
            refresh_fraction: 0.10,
            expiry_margin: Duration::from_secs(30),
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }
}

impl CacheOptions {
    /// Options for sources that wait for a person (device code): one upstream call may take up to
    /// 15 minutes, and a failed sign-in is not retried, so the user is never prompted twice for one request.
    pub fn for_interactive() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(15 * 60),
            deadline: Duration::from_secs(15 * 60),
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets [`clock`](Self::clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`deadline`](Self::deadline).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`max_retries`](Self::max_retries).
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets [`refresh_before`](Self::refresh_before) and [`refresh_fraction`](Self::refresh_fraction).
    pub fn with_refresh_ahead(mut self, before: Duration, fraction: f64) -> Self {
        self.refresh_before = before;
        self.refresh_fraction = fraction;
        self
    }

    /// Sets [`initial_backoff`](Self::initial_backoff) and [`max_backoff`](Self::max_backoff).
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets [`attempt_timeout`](Self::attempt_timeout).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`expiry_margin`](Self::expiry_margin).
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }
}

/// Wraps any [`TokenSource`] with the caching rules a connection pool needs.
///
/// * **Refresh-ahead.** A cached token is served as is until less than
///   max([`refresh_before`](CacheOptions::refresh_before), [`refresh_fraction`](CacheOptions::refresh_fraction)
///   × lifetime) remains, 5 minutes or 10 % by default. The first caller after that point refreshes it.
/// * **Serve stale while valid.** While one caller refreshes, the others get the current token at once. If
///   the refresh fails, the current token keeps being served until it expires; further refresh attempts
///   back off (exponentially, or as long as the provider's `Retry-After` said).
/// * **Single flight.** Callers that find no usable token (cold cache, expired token, `force_refresh`) wait
///   for one upstream call and all get its result, token or error. N concurrent cold callers cause exactly
///   one upstream call.
/// * **Retries.** Transient errors ([`TokenError::is_transient`]: HTTP 408/429/5xx, connection failures,
///   timeouts) are retried up to [`max_retries`](CacheOptions::max_retries) times with exponential backoff
///   and jitter; a `Retry-After` is honoured exactly. Permanent errors are returned at once.
/// * **Deadline.** A caller that has to wait for upstream waits at most
///   [`deadline`](CacheOptions::deadline); if no valid token can be had by then (including when a
///   `Retry-After` would end after it), it gets [`TokenError::DeadlineExceeded`] with the last upstream error
///   as its source. When the retries run out first, the last upstream error is returned as is.
///
/// Tokens are cached per scope set. Clones of a `CachedTokenSource` share the cache.
#[derive(Clone)]
pub struct CachedTokenSource {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn TokenSource>,
    options: CacheOptions,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The slot of the first single scope asked for (almost always the only one: Azure SQL's), found by
    /// comparing the scope string, without hashing it, taking the map's lock or counting a reference.
    first: OnceLock<(Box<str>, Arc<Slot>)>,
    jitter_seed: AtomicU64,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Held by the caller that talks to upstream.
    flight: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    token: Option<Cached>,
    /// Completed upstream fetches (success or failure); waiters compare it to join a finished flight.
    epoch: u64,
    /// The error of the last fetch, when it failed.
    last_error: Option<TokenError>,
    /// Whether `last_error` is the outcome of a full fetch (retries and deadline included), which callers
    /// waiting for that flight share. A failed refresh-ahead (one attempt, while the token was still
    /// valid) is not: a caller that needs a token now makes its own fetch instead of inheriting it.
    last_error_shared: bool,
    /// After a failed refresh-ahead, no new attempt before this time.
    not_before: Option<OffsetDateTime>,
    /// Consecutive failed refresh-ahead attempts, for the backoff.
    refresh_failures: u32,
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: OffsetDateTime,
    usable_until: OffsetDateTime,
}

/// `t - d`, saturating at the earliest representable time instead of panicking.
fn minus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d))
        .unwrap_or(time::PrimitiveDateTime::MIN.assume_utc())
}

/// A usable refresh fraction: NaN and out-of-range values are clamped into [0, 1].
fn fraction(f: f64) -> f64 {
    if f.is_nan() {
        0.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

/// The `credential` of timeouts the cache itself imposes.
const TIMEOUT_CREDENTIAL: &str = "token source";

/// A per-cache seed from the standard library's randomly keyed hasher, so that many processes that fail
/// together do not retry in lockstep.
fn random_seed() -> u64 {
    use std::hash::BuildHasher as _;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is plain data updated in single assignments, so a panic elsewhere cannot leave it half
    // written; recovering from poisoning is safe.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CachedTokenSource {
    /// Wraps `inner` with the default [`CacheOptions`].
    pub fn new(inner: Arc<dyn TokenSource>) -> Self {
        Self::with_options(inner, CacheOptions::default())
    }

    /// Wraps `inner` with the given options.
    pub fn with_options(inner: Arc<dyn TokenSource>, options: CacheOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                options,
                slots: Mutex::new(HashMap::new()),
                first: OnceLock::new(),
                jitter_seed: AtomicU64::new(random_seed()),
            }),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &CacheOptions {
        &self.shared.options
    }

    /// Forgets every cached token; the next call goes upstream.
    pub fn clear(&self) {
        let mut slots = lock(&self.shared.slots);
        // The first slot outlives the map (it is reachable without it), so its token is dropped in place.
        if let Some((_, first)) = self.shared.first.get() {
            lock(&first.state).token = None;
        }
        slots.clear();
    }

    fn slot(&self, scopes: &[&str]) -> SlotRef<'_> {
        if let ([one], Some((key, slot))) = (scopes, self.shared.first.get()) {
            if **key == **one {
                return SlotRef::First(slot);
            }
        }
        // The usual single scope is looked up without building a key string.
        let joined;
        let key = match scopes {
            [one] => *one,
            _ => {
                joined = scopes.join(" ");
                &joined
            }
        };
        let mut slots = lock(&self.shared.slots);
        if let Some(slot) = slots.get(key) {
            return SlotRef::Shared(Arc::clone(slot));
        }
        let slot = Arc::new(Slot::default());
        slots.insert(key.to_owned(), Arc::clone(&slot));
        if scopes.len() == 1 && self.shared.first.get().is_none() {
            // Under the map's lock, so the first slot and the map's entry for its scope are the same slot.
            let _ = self.shared.first.set((key.into(), Arc::clone(&slot)));
        }
        SlotRef::Shared(slot)
    }
}

/// A cache slot: the first scope's borrowed from the cache, any other one shared.
enum SlotRef<'a> {
    First(&'a Slot),
    Shared(Arc<Slot>),
}

impl Deref for SlotRef<'_> {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        match self {
            SlotRef::First(slot) => slot,
            SlotRef::Shared(slot) => slot,
        }
    }
}

impl Shared {
    fn now(&self) -> OffsetDateTime {
        self.options.clock.now()
    }

    fn cached(&self, token: AccessToken, now: OffsetDateTime) -> Cached {
        let lifetime = token.remaining(now);
        let ahead = self
            .options
            .refresh_before
            .max(lifetime.mul_f64(fraction(self.options.refresh_fraction)));
        let usable_until = minus(token.expires_on, self.options.expiry_margin);
        let refresh_at = minus(token.expires_on, ahead).min(usable_until);
        Cached {
            token,
            refresh_at,
            usable_until,
        }
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .options
            .initial_backoff
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.options.max_backoff);
        let half = exp / 2;
        half + half.mul_f64(self.jitter())
    }

    /// A number in [0, 1) from a splitmix64 sequence; jitter needs spread, not cryptographic quality.
    fn jitter(&self) -> f64 {
        let mut z = self
            .jitter_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One upstream call, bounded by `limit`.
    async fn attempt(&self, scopes: &[&str], limit: Duration) -> Result<AccessToken, TokenError> {
        match tokio::time::timeout(limit, self.inner.get_token(scopes, None)).await {
            Ok(Ok(token)) => {
                let now = self.now();
                if minus(token.expires_on, self.options.expiry_margin) <= now {
                    return Err(TokenError::InvalidToken {
                        reason: format!(
                            "the source returned a token that expires at {}, less than {:?} from now",
                            token.expires_on, self.options.expiry_margin
                        ),
                    });
                }
                Ok(token)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TokenError::Timeout {
                credential: TIMEOUT_CREDENTIAL,
                after: limit,
            }),
        }
    }

    /// Upstream calls with retries until a token, a permanent error, the retry limit or the deadline.
    async fn fetch(
        &self,
        scopes: &[&str],
        deadline_at: tokio::time::Instant,
    ) -> Result<AccessToken, TokenError> {
        let deadline = self.options.deadline;
        let mut attempts = 0u32;
        loop {
            let left = deadline_at.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(TokenError::DeadlineExceeded {
                    deadline,
                    attempts,
                    last_error: None,
                });
            }
            attempts += 1;
            let limit = self.options.attempt_timeout.min(left);
            let err = match self.attempt(scopes, limit).await {
                Ok(token) => {
                    tracing::debug!(attempts, expires_on = %token.expires_on, "token source returned a token");
                    return Ok(token);
                }
                Err(e) => e,
            };
            // Our own timeout, cut short by the deadline (not the source's own timeout error).
            let hit_deadline = limit < self.options.attempt_timeout
                && matches!(
                    err,
                    TokenError::Timeout {
                        credential: TIMEOUT_CREDENTIAL,
                        ..
                    }
                );
            if hit_deadline {
                return Err(TokenError::DeadlineExceeded {
                    deadline,
                    attempts,
                    last_error: Some(Box::new(err)),
                });
            }
            if !err.is_transient() {
                tracing::warn!(attempts, error = %err, "token source failed permanently");
                return Err(err);
            }
            if attempts > self.options.max_retries {
                tracing::warn!(attempts, error = %err, "token source failed; retries exhausted");
                return Err(err);
            }
            let delay = err
                .retry_after()
                .unwrap_or_else(|| self.backoff(attempts - 1));
            let left = deadline_at.saturating_duration_since(tokio::time::Instant::now());
            if delay >= left {
                tracing::warn!(attempts, error = %err, ?delay, "token source failed; next retry would pass the deadline");
                return Err(TokenError::DeadlineExceeded {
                    deadline,
                    attempts,
                    last_error: Some(Box::new(err)),
                });
            }
            tracing::info!(attempts, error = %err, ?delay, "transient token source error; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for CachedTokenSource {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        let force = options.is_some_and(|o| o.force_refresh);
        let shared = &*self.shared;
        let slot = self.slot(scopes);
        let now = shared.now();

        // Fast path and refresh-ahead: a usable token exists.
        let (usable, epoch_seen) = {
            let state = lock(&slot.state);
            let usable = state
                .token
                .as_ref()
                .filter(|c| !force && now < c.usable_until)
                .cloned();
            (usable, state.epoch)
        };
        if let Some(cached) = usable {
            if now < cached.refresh_at {
                tracing::trace!("token cache hit");
                return Ok(cached.token);
            }
            let backing_off = lock(&slot.state).not_before.is_some_and(|t| now < t);
            if backing_off {
                return Ok(cached.token);
            }
            // Someone else is refreshing: serve the current token without waiting.
            let Ok(_flight) = slot.flight.try_lock() else {
                return Ok(cached.token);
            };
            if lock(&slot.state).epoch != epoch_seen {
                // A refresh finished between our read and the lock: use its result if it produced a token.
                if let Some(c) = lock(&slot.state)
                    .token
                    .clone()
                    .filter(|c| now < c.usable_until)
                {
                    return Ok(c.token);
                }
            }
            tracing::debug!(expires_on = %cached.token.expires_on, "token is due for refresh-ahead");
            let limit = shared
                .options
                .attempt_timeout
                .min(cached.token.remaining(now));
            let result = shared.attempt(scopes, limit).await;
            let now = shared.now();
            let mut state = lock(&slot.state);
            state.epoch += 1;
            return match result {
                Ok(token) => {
                    state.token = Some(shared.cached(token.clone(), now));
                    state.last_error = None;
                    state.not_before = None;
                    state.refresh_failures = 0;
                    tracing::info!(expires_on = %token.expires_on, "access token refreshed ahead of expiry");
                    Ok(token)
                }
                Err(err) => {
                    state.refresh_failures += 1;
                    let wait = err
                        .retry_after()
                        .unwrap_or_else(|| shared.backoff(state.refresh_failures - 1));
                    state.not_before = Some(now + wait);
                    tracing::warn!(error = %err, retry_in = ?wait, expires_on = %cached.token.expires_on,
                        "refresh-ahead failed; serving the current token while it stays valid");
                    state.last_error = Some(err);
                    state.last_error_shared = false;
                    Ok(cached.token)
                }
            };
        }

        // Slow path: no usable token. Join or lead the single upstream flight, within the deadline.
        let deadline = shared.options.deadline;
        let now_instant = tokio::time::Instant::now();
        // A deadline too large to represent means "no deadline": about a century.
        let deadline_at = now_instant
            .checked_add(deadline)
            .unwrap_or_else(|| now_instant + Duration::from_secs(100 * 365 * 24 * 3600));
        let Ok(_flight) = tokio::time::timeout_at(deadline_at, slot.flight.lock()).await else {
            return Err(TokenError::DeadlineExceeded {
                deadline,
                attempts: 0,
                last_error: lock(&slot.state).last_error.clone().map(Box::new),
            });
        };
        {
            let state = lock(&slot.state);
            if state.epoch != epoch_seen {
                // A flight finished while we waited: share its outcome.
                let now = shared.now();
                if let Some(c) = state.token.as_ref().filter(|c| now < c.usable_until) {
                    return Ok(c.token.clone());
                }
                if let Some(err) = state
                    .last_error
                    .as_ref()
                    .filter(|_| state.last_error_shared)
                {
                    return Err(err.clone());
                }
            }
        }
        tracing::debug!(force, "no usable cached token; asking the token source");
        let result = shared.fetch(scopes, deadline_at).await;
        let now = shared.now();
        let mut state = lock(&slot.state);
        state.epoch += 1;
        match result {
            Ok(token) => {
                state.token = Some(shared.cached(token.clone(), now));
                state.last_error = None;
                state.not_before = None;
                state.refresh_failures = 0;
                tracing::info!(expires_on = %token.expires_on, "access token acquired");
                Ok(token)
            }
            Err(err) => {
                state.last_error = Some(err.clone());
                state.last_error_shared = true;
                Err(err)
            }
        }
    }
}

impl fmt::Debug for CachedTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedTokenSource")
            .field("inner", &self.shared.inner)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

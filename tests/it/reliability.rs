//! Reliability: the product under faults, load and hostile logging, against the real driver and the emulator.
//!
//! - [`token_faults`]: the token service fails (500, 429 with `Retry-After`, slow, closing connections,
//!   refusing connections) while a valid token is cached (connections keep succeeding) and while none is
//!   (a bounded, clear error).
//! - [`sql_faults`]: the SQL endpoint drops the connection at each login stage, answers with garbage, logs in
//!   too slowly, or refuses with Azure SQL's transient 40613.
//! - [`soak`]: threads connecting, querying and disconnecting for a while with rotating short-lived tokens and
//!   random token-service faults; zero failures, stable descriptors and memory. The short form runs here;
//!   `cargo xtask soak` runs the long one.
//! - [`secrets`]: a slice of the end-to-end flows, failures included, under a global TRACE subscriber that also
//!   receives `log` records (odbc-api logs through `log`); no token, secret or password in the output or in
//!   any error.

mod secrets;
mod soak;
mod sql_faults;
mod token_faults;

use std::time::{Duration, Instant};

/// What a bounded operation may take beyond its configured limit on a loaded two-core CI machine: thread
/// scheduling, the driver's own handshake, one TLS session. Generous on purpose: the assertion is "no
/// hang", not a speed figure (those live in `cargo xtask bench`).
const SLACK: Duration = Duration::from_secs(5);

/// Runs `f` and returns its result with the time it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// `err` and its `source()` chain, one `Display` per level, for failure messages.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        text.push_str(" ← ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

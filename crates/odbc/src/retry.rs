//! Retrying Azure SQL's transient login errors with exponential backoff.

use std::time::Duration;

/// SQL Server error numbers that Microsoft documents as transient for Azure SQL logins
/// ("Troubleshoot transient connection errors", "Transient fault error codes"): the database is
/// being reconfigured, moved, resumed or throttled, and the same login succeeds a little later.
///
/// 4060 ("Cannot open database requested by the login") is in Microsoft's table too, but it is also
/// what a misspelt `Database=` gives, so it is left out: retrying it would only delay that error.
pub const TRANSIENT_LOGIN_ERRORS: [i32; 15] = [
    615,   // could not find database id / name (during a move)
    926,   // database cannot be opened (marked suspect during a reconfiguration)
    4221, // login to read-secondary failed: long wait on HADR_DATABASE_WAIT_FOR_TRANSITION_TO_VERSIONING
    10928, // resource ID limit reached (sessions/workers): throttled
    10929, // resource ID minimum guarantee / limit: throttled
    40143, // the service has encountered an error processing your request
    40197, // the service has encountered an error processing your request (reconfiguration)
    40501, // the service is currently busy
    40540, // the service has encountered an error processing your request
    40613, // database not currently available
    42108, // serverless: cannot connect to the SQL pool, it is paused or pausing
    42109, // serverless: the SQL pool is warming up
    49918, // cannot process request: not enough resources
    49919, // cannot process create or update request: too many operations in progress
    49920, // cannot process request: too many operations in progress
];

/// Whether `native_error` is one of [`TRANSIENT_LOGIN_ERRORS`].
pub fn is_transient_native_error(native_error: i32) -> bool {
    TRANSIENT_LOGIN_ERRORS.contains(&native_error)
}

/// How often and how long to retry a login that failed with a transient error.
///
/// The delay before retry `n` (1-based) is `initial_delay * 2^(n-1)`, capped at `max_delay`. No
/// retry starts once `max_elapsed` has passed since the first attempt began, and no more than
/// `max_attempts` attempts are made in total. Each attempt gets a token from the (cached) token
/// source again, so a retry never reuses a token that expired meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 disables retrying.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s doubling to at most 10 s, within 60 s: Microsoft advises at least 5 s
    /// before the first retry of a reconfiguration and that most finish within 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_elapsed: Duration::ZERO,
        }
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }

    /// Whether to retry after `attempts` attempts, `elapsed` after the first one began, with the
    /// next delay `delay`. The attempt must also have failed with a transient error.
    pub(crate) fn should_retry(&self, attempts: u32, elapsed: Duration, delay: Duration) -> bool {
        attempts < self.max_attempts && elapsed.saturating_add(delay) <= self.max_elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_are_capped() {
        let p = RetryPolicy::default();
        let d: Vec<_> = (1..=6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 10, 10]);
        assert_eq!(RetryPolicy::none().delay(3), Duration::ZERO);
    }

    #[test]
    fn retries_are_bounded_in_count_and_time() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(1, Duration::ZERO, p.delay(1)));
        assert!(!p.should_retry(5, Duration::ZERO, p.delay(5)));
        assert!(!p.should_retry(2, Duration::from_secs(55), Duration::from_secs(8)));
        assert!(!RetryPolicy::none().should_retry(1, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn the_issue_list_is_transient_and_login_failures_are_not() {
        for n in [40613, 40197, 40501, 49918, 49919, 49920, 4221, 10928, 10929] {
            assert!(is_transient_native_error(n), "{n}");
        }
        for n in [18456, 4060, 0, 20, 26, 10054] {
            assert!(!is_transient_native_error(n), "{n}");
        }
    }
}

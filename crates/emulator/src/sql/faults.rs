//! Fault knobs for the SQL endpoint and its counters.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a session can be cut off during login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginStage {
    /// After the client's PRELOGIN, without answering it.
    AfterPrelogin,
    /// After LOGIN7, without answering it.
    AfterLogin7,
    /// After the 0x08 token message (ADAL/MSAL flows), without answering it.
    AfterFedAuthToken,
}

#[derive(Debug, Default)]
struct Knobs {
    drop_at: Option<(LoginStage, u32)>,
    garbage_at: Option<(LoginStage, u32)>,
    login_delay: Duration,
    transient: u32,
}

/// A cheap, cloneable handle on the SQL endpoint's fault knobs. Each knob applies to the next logins and is
/// consumed as they happen.
#[derive(Clone, Debug, Default)]
pub struct SqlFaults {
    knobs: Arc<Mutex<Knobs>>,
}

impl SqlFaults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Knobs> {
        // Every update is a single field write, so a poisoned lock still holds consistent values.
        self.knobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the next `times` connections that reach `stage`, without a response.
    pub fn drop_connection(&self, stage: LoginStage, times: u32) {
        self.lock().drop_at = Some((stage, times));
    }

    /// Answers the next `times` connections that reach `stage` with bytes that are not TDS, then closes.
    pub fn send_garbage(&self, stage: LoginStage, times: u32) {
        self.lock().garbage_at = Some((stage, times));
    }

    /// Waits `delay` before answering each LOGIN7 (and 0x08 token message) from now on; zero turns it off.
    pub fn slow_login(&self, delay: Duration) {
        self.lock().login_delay = delay;
    }

    /// Refuses the next `times` logins with Azure SQL's transient error 40613 ("Database … is not currently
    /// available"), after the token was checked.
    pub fn transient_errors(&self, times: u32) {
        self.lock().transient = times;
    }

    /// Turns every knob off.
    pub fn clear(&self) {
        *self.lock() = Knobs::default();
    }

    pub(crate) fn take_drop(&self, stage: LoginStage) -> bool {
        take(&mut self.lock().drop_at, stage)
    }

    pub(crate) fn take_garbage(&self, stage: LoginStage) -> bool {
        take(&mut self.lock().garbage_at, stage)
    }

    pub(crate) fn login_delay(&self) -> Duration {
        self.lock().login_delay
    }

    pub(crate) fn take_transient(&self) -> bool {
        let mut k = self.lock();
        if k.transient > 0 {
            k.transient -= 1;
            true
        } else {
            false
        }
    }
}

fn take(slot: &mut Option<(LoginStage, u32)>, stage: LoginStage) -> bool {
    match slot {
        Some((s, n)) if *s == stage && *n > 0 => {
            *n -= 1;
            if *n == 0 {
                *slot = None;
            }
            true
        }
        _ => false,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) logins_ok: AtomicU64,
    pub(crate) logins_failed: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) open_sessions: AtomicU32,
}

/// A cheap, cloneable handle on the SQL endpoint's counters.
#[derive(Clone, Debug, Default)]
pub struct SqlStats {
    pub(crate) counters: Arc<Counters>,
}

impl SqlStats {
    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Logins answered with LOGINACK.
    pub fn logins_ok(&self) -> u64 {
        self.counters.logins_ok.load(Ordering::Relaxed)
    }

    /// Logins answered with an error (18456, 4060, 40613, …).
    pub fn logins_failed(&self) -> u64 {
        self.counters.logins_failed.load(Ordering::Relaxed)
    }

    /// SQL batches received after login.
    pub fn batches(&self) -> u64 {
        self.counters.batches.load(Ordering::Relaxed)
    }

    /// Sessions ended by malformed input, TLS failures or timeouts.
    pub fn protocol_errors(&self) -> u64 {
        self.counters.protocol_errors.load(Ordering::Relaxed)
    }

    /// Sessions currently open.
    pub fn open_sessions(&self) -> u32 {
        self.counters.open_sessions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_are_consumed() {
        let f = SqlFaults::default();
        f.drop_connection(LoginStage::AfterLogin7, 2);
        assert!(!f.take_drop(LoginStage::AfterPrelogin));
        assert!(f.take_drop(LoginStage::AfterLogin7));
        assert!(f.take_drop(LoginStage::AfterLogin7));
        assert!(!f.take_drop(LoginStage::AfterLogin7));
        f.transient_errors(1);
        assert!(f.take_transient());
        assert!(!f.take_transient());
    }
}

//! Fault knobs for the SQL endpoint and its counters.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::Secret;

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

/// Ends logged-in sessions on demand: a generation number, and a wake-up for sessions waiting on their client.
#[derive(Debug, Default)]
struct KillSwitch {
    generation: AtomicU64,
    notify: Notify,
}

/// A cheap, cloneable handle on the SQL endpoint's fault knobs. Each login knob applies to the next logins and
/// is consumed as they happen.
#[derive(Clone, Debug, Default)]
pub struct SqlFaults {
    knobs: Arc<Mutex<Knobs>>,
    kill: Arc<KillSwitch>,
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

    /// Closes every logged-in session now (TLS close_notify, then TCP FIN), as a failover or a network break
    /// would; the clients notice at their next request. Sessions still logging in are not touched.
    /// A client that negotiated session recovery (ODBC: `ConnectRetryCount` > 0) reconnects silently.
    pub fn kill_sessions(&self) {
        self.kill.generation.fetch_add(1, Ordering::SeqCst);
        self.kill.notify.notify_waiters();
    }

    /// Turns every login knob off.
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

    /// The current [`SqlFaults::kill_sessions`] generation; a session remembers it when it logs in.
    pub(crate) fn kill_generation(&self) -> u64 {
        self.kill.generation.load(Ordering::SeqCst)
    }

    /// Resolves once [`SqlFaults::kill_sessions`] was called after `generation` was read.
    pub(crate) async fn killed_since(&self, generation: u64) {
        loop {
            // Created before the check, so a kill between the check and the await still wakes it.
            let notified = self.kill.notify.notified();
            if self.kill.generation.load(Ordering::SeqCst) > generation {
                return;
            }
            notified.await;
        }
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
    pub(crate) recovered_logins: AtomicU64,
    pub(crate) killed_sessions: AtomicU64,
    /// The bearer token of each recovered login, in order (for tests: the driver re-sends a saved token).
    pub(crate) recovered_tokens: Mutex<Vec<Secret>>,
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

    /// Logins that recovered a broken session (LOGIN7 with SESSIONRECOVERY data) and were answered with
    /// LOGINACK; they are counted in [`SqlStats::logins_ok`] too.
    pub fn recovered_logins(&self) -> u64 {
        self.counters.recovered_logins.load(Ordering::Relaxed)
    }

    /// The access token each recovered login carried, oldest first. A secret: compare it, never print it.
    pub fn recovered_login_tokens(&self) -> Vec<Secret> {
        self.counters
            .recovered_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Logged-in sessions closed by [`SqlFaults::kill_sessions`].
    pub fn killed_sessions(&self) -> u64 {
        self.counters.killed_sessions.load(Ordering::Relaxed)
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

    #[tokio::test]
    async fn kill_sessions_wakes_sessions_of_older_generations_only() {
        let f = SqlFaults::default();
        let before = f.kill_generation();
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.killed_since(before).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        f.kill_sessions();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the kill")
            .expect("task");
        // A session that logged in after the kill is not affected by it.
        let after = f.kill_generation();
        assert_eq!(after, before + 1);
        let late = tokio::time::timeout(Duration::from_millis(50), f.killed_since(after)).await;
        assert!(late.is_err(), "a newer session must survive an older kill");
    }
}

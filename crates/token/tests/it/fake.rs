//! A scripted token source that counts its calls.

use mssql_entra_token::{
    AccessToken, Clock, TokenError, TokenRequestOptions, TokenSource, TokioClock,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Script = dyn Fn(u32, &TokioClock) -> Result<AccessToken, TokenError> + Send + Sync;

/// Answers call `n` (0-based) with `script(n, clock)` after `delay` of tokio time.
pub struct Fake {
    pub calls: AtomicU32,
    pub delay: Duration,
    pub clock: TokioClock,
    script: Box<Script>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    pub fn new(
        clock: TokioClock,
        delay: Duration,
        script: impl Fn(u32, &TokioClock) -> Result<AccessToken, TokenError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicU32::new(0),
            delay,
            clock,
            script: Box::new(script),
        })
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenSource for Fake {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        (self.script)(n, &self.clock)
    }
}

/// A token named `tok-n` valid for `lifetime` from the clock's now.
pub fn token(n: u32, clock: &TokioClock, lifetime: Duration) -> AccessToken {
    AccessToken::new(format!("tok-{n}"), clock.now() + lifetime)
}

pub fn http(status: u16, retry_after: Option<Duration>) -> TokenError {
    TokenError::Http {
        credential: "fake",
        status,
        error_code: None,
        message: "fake failure".to_owned(),
        retry_after,
    }
}

pub const HOUR: Duration = Duration::from_secs(3600);
pub const MIN: Duration = Duration::from_secs(60);

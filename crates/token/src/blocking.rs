//! [`BlockingTokenSource`]: `get_token` for callers without an async runtime.

use crate::{AccessToken, TokenError, TokenRequestOptions, TokenSource};
use std::fmt;
use std::sync::Arc;

/// Runs any [`TokenSource`] on a private single-threaded tokio runtime, for synchronous code such as an
/// r2d2 connection manager.
///
/// Calling [`get_token`](Self::get_token) from a thread that is already inside a tokio runtime returns
/// [`TokenError::BlockingInAsyncContext`] instead of panicking or deadlocking; await the source there.
pub struct BlockingTokenSource {
    inner: Arc<dyn TokenSource>,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingTokenSource {
    /// Wraps `inner`. Fails with [`TokenError::Config`] only if the OS refuses to create the runtime.
    pub fn new(inner: Arc<dyn TokenSource>) -> Result<Self, TokenError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TokenError::Config {
                field: "runtime",
                reason: format!("could not start the private tokio runtime: {e}"),
            })?;
        Ok(Self {
            inner,
            runtime: Some(runtime),
        })
    }

    /// The wrapped source, for async callers.
    pub fn inner(&self) -> &Arc<dyn TokenSource> {
        &self.inner
    }

    /// Blocks the current thread until the wrapped source answers.
    pub fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(TokenError::BlockingInAsyncContext);
        }
        match &self.runtime {
            Some(runtime) => runtime.block_on(self.inner.get_token(scopes, options)),
            None => Err(TokenError::BlockingInAsyncContext),
        }
    }
}

impl Drop for BlockingTokenSource {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code; shutting down in the background
        // never blocks, so the adapter may be dropped anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for BlockingTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTokenSource")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

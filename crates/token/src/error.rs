//! [`TokenError`]: the one error type of this crate.

use std::time::Duration;
use time::OffsetDateTime;

/// Why a token could not be had.
///
/// Match on the variant; the message text is not API. No variant ever carries a token, a client secret or a
/// password: messages that come from identity providers pass through a filter that removes anything shaped like a JWT first.
///
/// # Transient or permanent
///
/// [`TokenError::is_transient`] says whether trying again later may succeed: HTTP 408, 429 and 5xx answers,
/// connection failures, timeouts, and [`TokenError::Custom`] errors created with [`TokenError::transient`].
/// [`CachedTokenSource`](crate::CachedTokenSource) retries exactly those, honouring
/// [`TokenError::retry_after`]. Everything else (bad configuration, a rejected secret, an unavailable
/// credential) is returned at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A setting is missing or malformed. `field` names it; `reason` says how to fix it.
    #[error("invalid `{field}`: {reason}")]
    Config {
        /// The option, environment variable or argument at fault.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The credential cannot work in this environment (no managed identity endpoint, no `az` on `PATH`,
    /// environment variables not set). The default chain moves on to its next step on this error.
    #[error("{credential} is not available here: {reason}")]
    Unavailable {
        /// Which credential.
        credential: &'static str,
        /// Why, and what would make it available.
        reason: String,
    },

    /// The identity provider answered with an HTTP error status.
    #[error("{credential}: identity provider answered HTTP {status}{}: {message}", error_code.as_deref().map(|c| format!(" (error codes {c})")).unwrap_or_default())]
    Http {
        /// Which credential.
        credential: &'static str,
        /// The HTTP status code.
        status: u16,
        /// Entra `error_codes` (comma separated), when the body had them.
        error_code: Option<String>,
        /// The provider's description, secrets removed.
        message: String,
        /// The `Retry-After` the provider asked for, if any.
        retry_after: Option<Duration>,
    },

    /// The identity provider could not be reached or the connection broke.
    #[error("{credential}: could not reach the identity provider: {message}")]
    Connection {
        /// Which credential.
        credential: &'static str,
        /// The transport's description.
        message: String,
    },

    /// One request took longer than allowed.
    #[error("{credential}: no answer within {after:?}")]
    Timeout {
        /// Which credential.
        credential: &'static str,
        /// The limit that passed.
        after: Duration,
    },

    /// The provider or tool refused the credential (wrong secret, unknown client, declined sign-in).
    #[error("{credential}: authentication failed: {message}")]
    Authentication {
        /// Which credential.
        credential: &'static str,
        /// The provider's description, secrets removed.
        message: String,
    },

    /// A token was obtained or supplied but cannot be used (not a JWT, unreadable claims).
    #[error("the access token is unusable: {reason}")]
    InvalidToken {
        /// What is wrong with it.
        reason: String,
    },

    /// A fixed token (the settings' `TOKEN`) has expired and nothing can renew it.
    #[error("the static access token expired at {expires_on}; supply a fresh token or use a refreshing source")]
    Expired {
        /// When it expired.
        expires_on: OffsetDateTime,
    },

    /// [`CachedTokenSource`](crate::CachedTokenSource) could not get a valid token before its deadline.
    /// The last upstream error, if there was one, is the [`source`](std::error::Error::source).
    #[error("no valid access token within {deadline:?} ({attempts} upstream attempt(s))")]
    DeadlineExceeded {
        /// The deadline that passed.
        deadline: Duration,
        /// Upstream calls made.
        attempts: u32,
        /// The last upstream error.
        #[source]
        last_error: Option<Box<TokenError>>,
    },

    /// Every step of the default chain failed. `attempts` lists each step and why it failed.
    #[error(
        "no credential of the default chain produced a token; tried {}",
        summarize(attempts)
    )]
    ChainExhausted {
        /// `(step name, error)` per step, in chain order.
        attempts: Vec<(&'static str, TokenError)>,
    },

    /// A credential was asked for whose cargo feature was not compiled in.
    #[error("credential `{credential}` needs cargo feature `{feature}` of mssql-entra-token")]
    NotEnabled {
        /// Which credential.
        credential: &'static str,
        /// The feature that provides it.
        feature: &'static str,
    },

    /// The blocking adapter was called on a thread that is already running an async runtime, where blocking
    /// would stall or deadlock it.
    #[error(
        "blocking get_token called inside an async runtime; await TokenSource::get_token instead"
    )]
    BlockingInAsyncContext,

    /// An error from a custom source ([`FnTokenSource`](crate::sources) or your own [`TokenSource`](crate::TokenSource)).
    #[error("{message}")]
    Custom {
        /// The description.
        message: String,
        /// Whether retrying may help.
        transient: bool,
    },
}

fn summarize(attempts: &[(&'static str, TokenError)]) -> String {
    if attempts.is_empty() {
        return "nothing (the chain was empty)".to_owned();
    }
    attempts
        .iter()
        .map(|(name, e)| format!("{name} ({e})"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl TokenError {
    /// A permanent error for custom sources.
    pub fn custom(message: impl Into<String>) -> Self {
        Self::Custom {
            message: redact(&message.into()),
            transient: false,
        }
    }

    /// A transient error for custom sources: the cache retries it with backoff.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Custom {
            message: redact(&message.into()),
            transient: true,
        }
    }

    /// Whether trying again later may succeed (see the type's docs for the rule).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Connection { .. } | Self::Timeout { .. } => true,
            Self::Custom { transient, .. } => *transient,
            Self::ChainExhausted { attempts } => {
                attempts.last().is_some_and(|(_, e)| e.is_transient())
            }
            _ => false,
        }
    }

    /// The wait the identity provider asked for (HTTP `Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            Self::ChainExhausted { attempts } => attempts.last().and_then(|(_, e)| e.retry_after()),
            _ => None,
        }
    }

    /// Whether the default chain should move on to its next step after this error.
    #[cfg_attr(not(feature = "default-chain"), allow(dead_code))]
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::NotEnabled { .. })
    }
}

/// Removes anything that looks like a JWT or a bearer value from provider messages.
///
/// Identity providers do not echo secrets, but tools (the Azure CLI) and proxies sometimes do; this is the
/// belt to the braces of never formatting a [`Secret`](crate::Secret).
pub(crate) fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_secret(word) {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
    }
    out
}

fn looks_secret(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
    // A JWT: three base64url segments, the header starting with `eyJ` (`{"`).
    if let Some(pos) = w.find("eyJ") {
        let rest = &w[pos..];
        if rest.matches('.').count() >= 2 && rest.len() > 20 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        let http = |status| TokenError::Http {
            credential: "x",
            status,
            error_code: None,
            message: String::new(),
            retry_after: None,
        };
        assert!(http(429).is_transient());
        assert!(http(503).is_transient());
        assert!(http(408).is_transient());
        assert!(!http(400).is_transient());
        assert!(!http(401).is_transient());
        assert!(TokenError::transient("x").is_transient());
        assert!(!TokenError::custom("x").is_transient());
        assert!(TokenError::Timeout {
            credential: "x",
            after: Duration::from_secs(1)
        }
        .is_transient());
        assert!(!TokenError::Config {
            field: "f",
            reason: "r".into()
        }
        .is_transient());
    }

    #[test]
    fn redact_removes_jwts() {
        let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln";
        let msg = format!("bad token '{jwt}' in header");
        let r = redact(&msg);
        assert!(!r.contains(jwt), "{r}");
        assert!(r.contains("<redacted>"));
        assert_eq!(redact("plain words stay"), "plain words stay");
        assert!(!TokenError::custom(format!("x {jwt}"))
            .to_string()
            .contains(jwt));
    }

    #[test]
    fn deadline_has_source() {
        use std::error::Error as _;
        let e = TokenError::DeadlineExceeded {
            deadline: Duration::from_secs(5),
            attempts: 2,
            last_error: Some(Box::new(TokenError::transient("boom"))),
        };
        assert_eq!(e.source().map(|s| s.to_string()), Some("boom".to_owned()));
    }
}

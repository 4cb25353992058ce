//! [`Secret`]: a string that never prints itself.

use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A secret string: an access token, a client secret, a refresh token.
///
/// * `Debug` prints `Secret`, never the value; there is no `Display`.
/// * Equality is evaluated in time independent of where the values differ (lengths may leak).
/// * The bytes are overwritten with zeros when the last clone is dropped.
/// * Cloning is cheap (a reference count), so the cache hands out clones without copying the token.
///
/// The raw value is reachable only through [`Secret::expose_secret`], so a reviewer can grep for every place
/// a secret leaves this type.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(value.into())))
    }

    /// The raw secret. Hand it to the driver or an HTTP body; never log it.
    pub fn expose_secret(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        )
    }
}

impl Eq for Secret {}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_value() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret");
        assert_eq!(format!("{s:#?}"), "Secret");
        assert_eq!(s.expose_secret(), "hunter2-token");
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
        assert_ne!(Secret::new(""), Secret::new("a"));
        assert!(Secret::new("").is_empty());
    }

    #[test]
    fn clones_share_storage() {
        let a = Secret::new("x".repeat(64));
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0));
    }
}

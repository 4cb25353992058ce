//! Keywords: case folding, synonyms, canonical spellings and which values are secret.

use crate::error::Error;

/// Keywords of the Microsoft ODBC Driver 18 in the spelling we write them, plus the synonyms
/// we fold into them. Matching is ASCII case-insensitive.
///
/// Each entry is `(folded form, canonical spelling)`. Synonyms map to the canonical keyword.
const KNOWN: &[(&str, &str)] = &[
    // Synonyms first.
    ("address", "Server"),
    ("addr", "Server"),
    ("user id", "UID"),
    ("password", "PWD"),
    ("initial catalog", "Database"),
    ("integrated security", "Trusted_Connection"),
    // The driver's own keywords.
    ("server", "Server"),
    ("uid", "UID"),
    ("pwd", "PWD"),
    ("database", "Database"),
    ("trusted_connection", "Trusted_Connection"),
    ("driver", "Driver"),
    ("dsn", "DSN"),
    ("filedsn", "FileDSN"),
    ("savefile", "SaveFile"),
    ("authentication", "Authentication"),
    ("encrypt", "Encrypt"),
    ("trustservercertificate", "TrustServerCertificate"),
    ("hostnameincertificate", "HostNameInCertificate"),
    ("servercertificate", "ServerCertificate"),
    ("serverspn", "ServerSPN"),
    ("failover_partner", "Failover_Partner"),
    ("failoverpartnerspn", "FailoverPartnerSPN"),
    ("app", "APP"),
    ("wsid", "WSID"),
    ("language", "Language"),
    ("applicationintent", "ApplicationIntent"),
    ("multisubnetfailover", "MultiSubnetFailover"),
    ("connectretrycount", "ConnectRetryCount"),
    ("connectretryinterval", "ConnectRetryInterval"),
    ("packetsize", "PacketSize"),
    ("columnencryption", "ColumnEncryption"),
    ("keystoreauthentication", "KeyStoreAuthentication"),
    ("keystoreprincipalid", "KeyStorePrincipalId"),
    ("keystoresecret", "KeyStoreSecret"),
    ("clientcertificate", "ClientCertificate"),
    ("clientkey", "ClientKey"),
    ("mars_connection", "MARS_Connection"),
    (
        "transparentnetworkipresolution",
        "TransparentNetworkIPResolution",
    ),
    ("ipaddresspreference", "IpAddressPreference"),
    ("keepalive", "KeepAlive"),
    ("keepaliveinterval", "KeepAliveInterval"),
    ("attachdbfilename", "AttachDBFileName"),
    ("autotranslate", "AutoTranslate"),
    ("ansinpw", "AnsiNPW"),
    ("quotedid", "QuotedId"),
    ("regional", "Regional"),
    ("usefmtonly", "UseFMTONLY"),
    ("longasmax", "LongAsMax"),
    ("retryexec", "RetryExec"),
];

/// Canonical spellings used across the crate.
pub(crate) const SERVER: &str = "Server";
pub(crate) const UID: &str = "UID";
pub(crate) const PWD: &str = "PWD";
pub(crate) const DATABASE: &str = "Database";
pub(crate) const DRIVER: &str = "Driver";
pub(crate) const AUTHENTICATION: &str = "Authentication";
pub(crate) const ENCRYPT: &str = "Encrypt";
pub(crate) const TRUSTED_CONNECTION: &str = "Trusted_Connection";
pub(crate) const TRUST_SERVER_CERTIFICATE: &str = "TrustServerCertificate";

/// The identity of a keyword: ASCII-lowercased, trimmed, with synonyms folded into the
/// canonical keyword. Two keys are the same keyword exactly when their identities are equal.
pub(crate) fn identity(key: &str) -> String {
    let folded = key.trim().to_ascii_lowercase();
    match KNOWN.iter().find(|(f, _)| *f == folded) {
        Some((_, canonical)) => canonical.to_ascii_lowercase(),
        None => folded,
    }
}

/// The spelling we write: the canonical one for known keywords and synonyms, the caller's
/// (trimmed) spelling otherwise.
pub(crate) fn spelling(key: &str) -> String {
    let trimmed = key.trim();
    let folded = trimmed.to_ascii_lowercase();
    match KNOWN.iter().find(|(f, _)| *f == folded) {
        Some((_, canonical)) => (*canonical).to_owned(),
        None => trimmed.to_owned(),
    }
}

/// Whether values of this keyword are secret: masked by `Display`/`Debug` and always braced.
///
/// `PWD` (and `Password`), `KeyStoreSecret`, `ClientKey` (it can carry a key password), and
/// any keyword whose name mentions a password, secret or token (`AccessToken`, `ClientSecret`…).
pub(crate) fn is_secret(key: &str) -> bool {
    let id = identity(key);
    id == "pwd"
        || id == "clientkey"
        || ["pwd", "password", "secret", "token", "credential"]
            .iter()
            .any(|word| id.contains(word))
}

/// Whether values of this keyword are always written in braces, even when they would not need
/// it: secrets (so that no password can ever be misread) and `Driver` (by convention).
pub(crate) fn always_braced(key: &str) -> bool {
    is_secret(key) || identity(key) == "driver"
}

/// Checks that `key` can be written as an ODBC keyword. `offset` is added to positions.
pub(crate) fn check_key(key: &str, offset: usize) -> Result<(), Error> {
    let trimmed = key.trim();
    if trimmed.is_empty() {
        return Err(Error::EmptyKey { position: offset });
    }
    let lead = key.len() - key.trim_start().len();
    if let Some((i, c)) = trimmed
        .char_indices()
        .find(|(_, c)| matches!(c, ';' | '=' | '{' | '}') || c.is_control())
    {
        return Err(Error::InvalidKeyChar {
            position: offset + lead + i,
            character: c,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_share_an_identity() {
        for group in [
            &["Server", "SERVER", "Address", "addr", " Addr "][..],
            &["UID", "uid", "User ID", "USER ID"],
            &["PWD", "Password", "pAsSwOrD"],
            &["Database", "Initial Catalog", "initial catalog"],
            &["Trusted_Connection", "Integrated Security"],
        ] {
            let ids: Vec<_> = group.iter().map(|k| identity(k)).collect();
            assert!(ids.windows(2).all(|w| w[0] == w[1]), "{group:?} -> {ids:?}");
        }
        assert_ne!(identity("UID"), identity("PWD"));
        assert_eq!(spelling("user id"), "UID");
        assert_eq!(spelling("My Custom Key"), "My Custom Key");
    }

    #[test]
    fn secrets() {
        for key in [
            "PWD",
            "password",
            "KeyStoreSecret",
            "ClientKey",
            "AccessToken",
            "client_secret",
            "My_Token",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "UID",
            "Server",
            "Database",
            "Authentication",
            "Encrypt",
            "Driver",
        ] {
            assert!(!is_secret(key), "{key}");
        }
    }

    #[test]
    fn bad_keys() {
        assert_eq!(check_key("  ", 3), Err(Error::EmptyKey { position: 3 }));
        assert_eq!(
            check_key(" a{b", 10),
            Err(Error::InvalidKeyChar {
                position: 12,
                character: '{'
            })
        );
        assert_eq!(check_key("Initial Catalog", 0), Ok(()));
    }
}

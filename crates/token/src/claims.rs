//! [`UnverifiedClaims`]: what an access token says about its principal, read **without** checking the
//! signature, for diagnostics only; and [`SqlSid`], the SID Azure SQL gives that principal.

use crate::TokenError;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// The claims of a JWT access token, decoded but **not verified**.
///
/// Anyone can forge these; use them to explain a login failure ("the token is for the wrong audience",
/// "the database user was created from the object id, not the application id"), never to decide access.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UnverifiedClaims {
    /// `aud`: the resource the token is for (all values when it is an array).
    pub aud: Vec<String>,
    /// `iss`: the issuing authority.
    pub iss: Option<String>,
    /// `tid`: the tenant.
    pub tid: Option<String>,
    /// `oid`: the principal's object id.
    pub oid: Option<String>,
    /// `appid` (v1 tokens): the client application id.
    pub appid: Option<String>,
    /// `azp` (v2 tokens): the client application id.
    pub azp: Option<String>,
    /// `idtyp`: `app` or `user`, when the token says.
    pub idtyp: Option<String>,
    /// `upn`: the user principal name of a user.
    pub upn: Option<String>,
    /// `unique_name` or `preferred_username`, when there is no `upn` (guests, v2 tokens).
    pub username: Option<String>,
    /// `scp`: delegated scopes (only user tokens carry them).
    pub scp: Option<String>,
    /// `exp`: expiry.
    pub exp: Option<OffsetDateTime>,
    /// `nbf`: not before.
    pub nbf: Option<OffsetDateTime>,
    /// `iat`: issued at.
    pub iat: Option<OffsetDateTime>,
}

/// Whether a token stands for an application (service principal, managed identity) or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Service principal or managed identity: Azure SQL maps it by application id.
    Application,
    /// A user: Azure SQL maps it by object id.
    User,
}

impl UnverifiedClaims {
    /// Decodes the payload of a compact JWT (`header.payload.signature`). The signature is not checked.
    pub fn from_jwt(token: &str) -> Result<Self, TokenError> {
        let invalid = |reason: String| TokenError::InvalidToken { reason };
        let mut parts = token.trim().split('.');
        let (Some(_header), Some(payload), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "not a JWT: expected three dot-separated parts (header.payload.signature)"
                    .to_owned(),
            ));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| invalid(format!("the JWT payload is not base64url: {e}")))?;
        let map: Map<String, Value> = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("the JWT payload is not a JSON object: {e}")))?;
        let s = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
        let t = |k: &str| {
            map.get(k)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        };
        let aud = match map.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            aud,
            iss: s("iss"),
            tid: s("tid"),
            oid: s("oid"),
            appid: s("appid"),
            azp: s("azp"),
            idtyp: s("idtyp"),
            upn: s("upn"),
            username: s("unique_name").or_else(|| s("preferred_username")),
            scp: s("scp"),
            exp: t("exp"),
            nbf: t("nbf"),
            iat: t("iat"),
        })
    }

    /// The client application id: `appid` (v1) or `azp` (v2).
    pub fn application_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }

    /// Application or user: `idtyp` when present; otherwise a token with `scp`, `upn` or a user name is a
    /// user's, and one with only an application id is an application's.
    pub fn principal_kind(&self) -> Option<PrincipalKind> {
        match self.idtyp.as_deref() {
            Some("app") => return Some(PrincipalKind::Application),
            Some("user") => return Some(PrincipalKind::User),
            _ => {}
        }
        if self.scp.is_some() || self.upn.is_some() || self.username.is_some() {
            Some(PrincipalKind::User)
        } else if self.application_id().is_some() {
            Some(PrincipalKind::Application)
        } else {
            None
        }
    }

    /// The SID Azure SQL maps this principal to: the application id for applications and managed
    /// identities, the object id for users. `CREATE USER [name] FROM EXTERNAL PROVIDER` stores the same.
    pub fn sql_sid(&self) -> Result<SqlSid, TokenError> {
        let invalid = |reason: &str| TokenError::InvalidToken {
            reason: reason.to_owned(),
        };
        let (claim, value) = match self.principal_kind() {
            Some(PrincipalKind::Application) => (
                "appid/azp",
                self.application_id()
                    .ok_or_else(|| invalid("an application token without `appid` or `azp`"))?,
            ),
            Some(PrincipalKind::User) => (
                "oid",
                self.oid
                    .as_deref()
                    .ok_or_else(|| invalid("a user token without `oid`"))?,
            ),
            None => {
                return Err(invalid(
                    "cannot tell application from user: no `idtyp`, `scp`, `upn` or `appid`/`azp` claim",
                ))
            }
        };
        SqlSid::from_guid_str(value).map_err(|_| TokenError::InvalidToken {
            reason: format!("claim `{claim}` is not a GUID"),
        })
    }
}

/// A 16-byte Azure SQL SID for an Entra principal: the GUID in its Windows byte order (the first three
/// fields little-endian), as `sys.database_principals.sid` shows it.
///
/// `Display` gives the T-SQL literal: `0x` and 32 uppercase hex digits.
///
/// ```
/// # use mssql_entra_token::SqlSid;
/// let sid = SqlSid::from_guid_str("619a4449-b4aa-4383-a2a9-7c365106c5e7").unwrap();
/// assert_eq!(sid.to_string(), "0x49449A61AAB48343A2A97C365106C5E7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlSid([u8; 16]);

impl SqlSid {
    /// The SID of a GUID.
    pub fn from_guid(guid: Uuid) -> Self {
        Self(guid.to_bytes_le())
    }

    /// The SID of a GUID in text form (hyphens and braces optional).
    pub fn from_guid_str(guid: &str) -> Result<Self, TokenError> {
        Uuid::parse_str(guid.trim())
            .map(Self::from_guid)
            .map_err(|e| TokenError::Config {
                field: "guid",
                reason: format!("`{guid}` is not a GUID ({e}); expected e.g. 619a4449-b4aa-4383-a2a9-7c365106c5e7"),
            })
    }

    /// The GUID this SID encodes.
    pub fn to_guid(self) -> Uuid {
        Uuid::from_bytes_le(self.0)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for SqlSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SqlSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlSid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"none"}"#),
            e.encode(payload)
        )
    }

    #[test]
    fn sid_example_from_the_issue() {
        let sid = SqlSid::from_guid_str("619a4449-b4aa-4383-a2a9-7c365106c5e7").unwrap();
        assert_eq!(sid.to_string(), "0x49449A61AAB48343A2A97C365106C5E7");
        assert_eq!(
            sid.to_guid().to_string(),
            "619a4449-b4aa-4383-a2a9-7c365106c5e7"
        );
        assert!(matches!(
            SqlSid::from_guid_str("nope"),
            Err(TokenError::Config { field: "guid", .. })
        ));
    }

    #[test]
    fn app_token_maps_to_application_id() {
        let c = UnverifiedClaims::from_jwt(&jwt(
            r#"{"aud":"https://database.windows.net/","iss":"https://sts.windows.net/t/","tid":"t",
                "oid":"11111111-1111-1111-1111-111111111111","appid":"619a4449-b4aa-4383-a2a9-7c365106c5e7",
                "idtyp":"app","exp":1900000000}"#,
        ))
        .unwrap();
        assert_eq!(c.aud, ["https://database.windows.net/"]);
        assert_eq!(c.principal_kind(), Some(PrincipalKind::Application));
        assert_eq!(
            c.sql_sid().unwrap().to_string(),
            "0x49449A61AAB48343A2A97C365106C5E7"
        );
        assert_eq!(c.exp.map(|e| e.unix_timestamp()), Some(1_900_000_000));
    }

    #[test]
    fn v2_app_token_without_idtyp_uses_azp() {
        let c = UnverifiedClaims::from_jwt(&jwt(
            r#"{"aud":["a","b"],"oid":"11111111-1111-1111-1111-111111111111","azp":"619a4449-b4aa-4383-a2a9-7c365106c5e7"}"#,
        ))
        .unwrap();
        assert_eq!(c.aud, ["a", "b"]);
        assert_eq!(c.principal_kind(), Some(PrincipalKind::Application));
        assert_eq!(
            c.sql_sid().unwrap().to_guid().to_string(),
            "619a4449-b4aa-4383-a2a9-7c365106c5e7"
        );
    }

    #[test]
    fn user_token_maps_to_object_id() {
        let c = UnverifiedClaims::from_jwt(&jwt(
            r#"{"oid":"619a4449-b4aa-4383-a2a9-7c365106c5e7","appid":"22222222-2222-2222-2222-222222222222",
                "upn":"ann@contoso.com","scp":"user_impersonation"}"#,
        ))
        .unwrap();
        assert_eq!(c.principal_kind(), Some(PrincipalKind::User));
        assert_eq!(c.upn.as_deref(), Some("ann@contoso.com"));
        assert_eq!(
            c.sql_sid().unwrap().to_string(),
            "0x49449A61AAB48343A2A97C365106C5E7"
        );
    }

    #[test]
    fn malformed_tokens_are_invalid_token_errors() {
        for bad in ["", "abc", "a.b", "a.!!!.c", &jwt("[1,2]"), "a.b.c.d"] {
            assert!(
                matches!(
                    UnverifiedClaims::from_jwt(bad),
                    Err(TokenError::InvalidToken { .. })
                ),
                "{bad}"
            );
        }
        let no_ids = UnverifiedClaims::from_jwt(&jwt(r#"{"aud":"x"}"#)).unwrap();
        assert!(matches!(
            no_ids.sql_sid(),
            Err(TokenError::InvalidToken { .. })
        ));
        let bad_guid = UnverifiedClaims::from_jwt(&jwt(r#"{"idtyp":"app","appid":"zz"}"#)).unwrap();
        assert!(matches!(
            bad_guid.sql_sid(),
            Err(TokenError::InvalidToken { .. })
        ));
    }
}

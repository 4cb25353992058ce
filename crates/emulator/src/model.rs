//! The contract between the emulator's identity half (directory, token service, managed-identity endpoints) and its
//! SQL half (the TDS endpoint and its databases).
//!
//! The SQL endpoint only sees a [`LoginAuthority`]: it hands over the bearer token it received and gets back the
//! [`Principal`] it identifies, or the reason Azure SQL would refuse it. It asks the same authority to resolve names
//! for `CREATE USER [x] FROM EXTERNAL PROVIDER`, as Azure SQL asks Microsoft Graph.

use std::fmt;
use std::time::SystemTime;

use uuid::Uuid;

/// What kind of directory object a token identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A user (`idtyp` = `user`); Azure SQL maps users by object id.
    User,
    /// An application's service principal (`idtyp` = `app`); mapped by application (client) id.
    ServicePrincipal,
    /// A managed identity (a service principal too); mapped by application (client) id.
    ManagedIdentity,
    /// A security group; only reachable through `CREATE USER … FROM EXTERNAL PROVIDER`, never as a token subject.
    Group,
}

/// The identity a valid token (or a directory lookup) stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub tenant_id: Uuid,
    /// The directory object id (`oid`).
    pub object_id: Uuid,
    /// The application (client) id (`appid`/`azp`); `None` for users and groups.
    pub app_id: Option<Uuid>,
    /// The user principal name, for users.
    pub upn: Option<String>,
    /// The display name (an app registration's or managed identity's name, a user's name).
    pub display_name: String,
}

impl Principal {
    /// The 16-byte SID Azure SQL stores for this principal: the application id for apps and managed identities,
    /// the object id for users and groups, in GUID (mixed-endian) byte order.
    pub fn sid(&self) -> [u8; 16] {
        match (self.kind, self.app_id) {
            (PrincipalKind::ServicePrincipal | PrincipalKind::ManagedIdentity, Some(app)) => {
                app.to_bytes_le()
            }
            _ => self.object_id.to_bytes_le(),
        }
    }

    /// What `SELECT SUSER_SNAME()` answers for a session of this principal: the UPN for users,
    /// `<app id>@<tenant id>` for applications and managed identities.
    pub fn login_name(&self) -> String {
        match (&self.upn, self.app_id) {
            (Some(upn), _) => upn.clone(),
            (None, Some(app)) => format!("{app}@{}", self.tenant_id),
            (None, None) => format!("{}@{}", self.object_id, self.tenant_id),
        }
    }
}

/// Why a token is refused, each with the text Azure SQL appends to error 18456.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Not a JWT, or its parts do not decode.
    Malformed,
    /// The signature does not verify against the emulator's signing keys.
    BadSignature,
    /// `exp` is in the past (beyond the allowed skew).
    Expired { expired_at: SystemTime },
    /// `nbf` is in the future (beyond the allowed skew).
    NotYetValid,
    /// `aud` is not a resource this server accepts.
    WrongAudience { found: String },
    /// `iss`/`tid` name a tenant this server does not trust.
    WrongIssuer { found: String },
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRejection::Malformed => f.write_str("the token is not a well-formed JWT"),
            TokenRejection::BadSignature => f.write_str("the token's signature is invalid"),
            TokenRejection::Expired { .. } => f.write_str("Token is expired"),
            TokenRejection::NotYetValid => f.write_str("the token is not yet valid"),
            TokenRejection::WrongAudience { found } => {
                write!(f, "the token's audience '{found}' is not accepted")
            }
            TokenRejection::WrongIssuer { found } => {
                write!(f, "the token's issuer '{found}' is not trusted")
            }
        }
    }
}

/// What the SQL endpoint needs from the identity half of the emulator.
pub trait LoginAuthority: Send + Sync + fmt::Debug + 'static {
    /// Checks a bearer token as Azure SQL does (signature, audience, issuer, lifetime) and names its principal.
    fn validate(&self, token: &str) -> Result<Principal, TokenRejection>;

    /// Resolves a display name, UPN, application id or object id as Microsoft Graph would for
    /// `CREATE USER [name] FROM EXTERNAL PROVIDER`. `None` when no such principal exists.
    fn resolve_name(&self, name: &str) -> Option<Principal>;

    /// Whether the emulated Graph is reachable (a fault knob); when false `FROM EXTERNAL PROVIDER` fails with 33130.
    fn graph_available(&self) -> bool {
        true
    }

    /// The STS URL the SQL endpoint puts in FEDAUTHINFO (`https://<host>:<port>/<tenant id>/`).
    fn sts_url(&self) -> String;

    /// The SPN (resource) the SQL endpoint puts in FEDAUTHINFO, normally `https://database.windows.net/`.
    fn spn(&self) -> String;
}

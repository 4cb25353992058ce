//! The identity core: token issue and validation, the knobs on lifetime and clocks, device codes.
//!
//! [`Identity`] is a cheap `Clone` handle shared by the HTTP services and the SQL endpoint (as its
//! [`LoginAuthority`]). Tokens are RS256 JWTs shaped like Entra's v1 access tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::{
    AppRegistration, Directory, Subject, EMULATOR_OIDC_ISSUER, FEDERATED_AUDIENCE,
};
use crate::keys::{KeyError, RsaKey};
use crate::model::{LoginAuthority, Principal, PrincipalKind, TokenRejection};
use crate::sts_error::StsError;

/// The SQL resource the real driver asks for.
pub const SQL_RESOURCE: &str = "https://database.windows.net/";
/// The default access-token lifetime (Entra's is 60–90 minutes).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(75 * 60);
/// The default clock skew allowed when validating `nbf`/`exp`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Errors of the identity API (minting tokens for tests, approving device codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No app, managed identity or user has this name, UPN or id.
    #[error("no app, managed identity or user named '{name}' in the directory; use a name, UPN, client id or object id")]
    UnknownPrincipal { name: String },
    /// No pending device code has this user code.
    #[error("no pending device code with user code '{user_code}'")]
    UnknownUserCode { user_code: String },
    /// Signing failed.
    #[error("could not sign the token: {0}")]
    Signing(String),
    /// A key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Options for [`Identity::mint_token`], to make tokens that are expired, not yet valid or from elsewhere.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MintOptions {
    /// Lifetime; default: the configured token lifetime.
    pub lifetime: Option<Duration>,
    /// `iat`/`nbf`; default: now (on the emulator's possibly skewed clock).
    pub issued_at: Option<SystemTime>,
    /// Replaces `iss` (the tenant part of the default is the directory's tenant).
    pub issuer: Option<String>,
    /// Replaces `tid`.
    pub tenant_id: Option<Uuid>,
    /// Signs with a key that is not in the JWKS (the token then fails signature validation).
    pub foreign_key: bool,
}

impl MintOptions {
    /// Sets the lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Sets `iat`/`nbf`.
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Replaces `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Replaces `tid` (and the tenant in the default `iss`).
    pub fn tenant_id(mut self, tenant: Uuid) -> Self {
        self.tenant_id = Some(tenant);
        self
    }

    /// Signs with a key outside the JWKS.
    pub fn foreign_key(mut self) -> Self {
        self.foreign_key = true;
        self
    }
}

/// An access token and its times, as returned to clients.
#[derive(Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// `iat`/`nbf`, Unix seconds.
    pub not_before: i64,
    /// `exp`, Unix seconds.
    pub expires_on: i64,
    /// `aud`.
    pub audience: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// The claims of the emulator's access tokens (a subset of Entra's v1 access-token claims).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Audience: the resource as asked (`https://database.windows.net/`), or the scope without `/.default`.
    pub aud: String,
    /// `https://sts.windows.net/<tid>/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// The client application id (apps, managed identities, and the client a user signed in with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// `app` or `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// The object id.
    pub oid: String,
    /// The subject (the object id here).
    pub sub: String,
    /// The tenant id.
    pub tid: String,
    /// The UPN (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The managed identity's resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
    /// A unique token id.
    pub uti: String,
    /// `1.0`.
    pub ver: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct FederatedClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: String,
}

#[derive(Debug, Clone)]
struct Settings {
    token_lifetime: Duration,
    leeway: Duration,
    clock_offset_secs: i64,
    graph_available: bool,
    spn: String,
    extra_audiences: Vec<String>,
    device_code_interval: u64,
    auto_approve: Option<(u32, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved(String),
    Declined,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub(crate) user_code: String,
    pub(crate) client_id: String,
    pub(crate) audience: String,
    expires_at: i64,
    polls: u32,
    state: DeviceState,
}

struct Inner {
    directory: RwLock<Directory>,
    key: Arc<RsaKey>,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    settings: Mutex<Settings>,
    device_codes: Mutex<HashMap<String, DeviceCode>>,
    sts_base_url: OnceLock<String>,
}

/// The identity core (cheap to clone; all clones share state).
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("tenant", &self.tenant_id())
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn to_unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn user_code() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..9)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The audience a v2.0 scope stands for: the scope without `/.default`.
pub fn scope_to_audience(scope: &str) -> Option<&str> {
    scope
        .split_whitespace()
        .find(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .map(|s| s.strip_suffix("/.default").unwrap_or(s))
}

impl Identity {
    /// Creates the core for `directory`, signing with `key`.
    pub fn new(directory: Directory, key: Arc<RsaKey>) -> Identity {
        let kid = key.kid();
        Identity {
            inner: Arc::new(Inner {
                encoding: key.encoding_key(),
                decoding: key.decoding_key(),
                kid,
                key,
                directory: RwLock::new(directory),
                settings: Mutex::new(Settings {
                    token_lifetime: DEFAULT_TOKEN_LIFETIME,
                    leeway: DEFAULT_LEEWAY,
                    clock_offset_secs: 0,
                    graph_available: true,
                    spn: SQL_RESOURCE.to_owned(),
                    extra_audiences: Vec::new(),
                    device_code_interval: 5,
                    auto_approve: None,
                }),
                device_codes: Mutex::new(HashMap::new()),
                sts_base_url: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn set_sts_base_url(&self, url: String) {
        let _ = self.inner.sts_base_url.set(url);
    }

    /// The token service's base URL (`https://<host>:<port>`), once it is listening.
    pub fn sts_base_url(&self) -> String {
        self.inner.sts_base_url.get().cloned().unwrap_or_default()
    }

    /// A snapshot of the directory.
    pub fn directory(&self) -> Directory {
        self.inner
            .directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the directory in place (add a user, drop a secret …); running services see the change at once.
    pub fn update_directory<R>(&self, f: impl FnOnce(&mut Directory) -> R) -> R {
        f(&mut self
            .inner
            .directory
            .write()
            .unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn with_directory<R>(&self, f: impl FnOnce(&Directory) -> R) -> R {
        f(&self
            .inner
            .directory
            .read()
            .unwrap_or_else(|p| p.into_inner()))
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Uuid {
        self.with_directory(|d| d.tenant.id)
    }

    /// `https://sts.windows.net/<tid>/`.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id())
    }

    /// The key id of the signing key.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The JWKS document (`{"keys":[…]}`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.inner.kid,
            "n": self.inner.key.n_b64(), "e": self.inner.key.e_b64(),
            "issuer": format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id()),
        }]})
    }

    // ---- knobs ----

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.inner.settings).token_lifetime = lifetime;
    }

    /// The lifetime of newly issued tokens.
    pub fn token_lifetime(&self) -> Duration {
        lock(&self.inner.settings).token_lifetime
    }

    /// Sets the clock skew allowed when validating `nbf`/`exp` (default 30 s).
    pub fn set_validation_leeway(&self, leeway: Duration) {
        lock(&self.inner.settings).leeway = leeway;
    }

    /// Shifts the token service's clock by `offset_secs` (positive: ahead) relative to the SQL endpoint's.
    /// Tokens then carry skewed `iat`/`nbf`/`exp`, as from an STS whose clock is off.
    pub fn set_clock_offset(&self, offset_secs: i64) {
        lock(&self.inner.settings).clock_offset_secs = offset_secs;
    }

    /// Switches the emulated Microsoft Graph on or off (`FROM EXTERNAL PROVIDER` then fails with 33130).
    pub fn set_graph_available(&self, available: bool) {
        lock(&self.inner.settings).graph_available = available;
    }

    /// Sets the SPN the SQL endpoint announces in FEDAUTHINFO (also accepted as an audience).
    pub fn set_spn(&self, spn: &str) {
        lock(&self.inner.settings).spn = spn.to_owned();
    }

    /// Accepts one more audience at the SQL endpoint (e.g. `https://database.usgovcloudapi.net/`).
    pub fn add_accepted_audience(&self, audience: &str) {
        lock(&self.inner.settings)
            .extra_audiences
            .push(audience.to_owned());
    }

    /// The audiences the SQL endpoint accepts.
    pub fn accepted_audiences(&self) -> Vec<String> {
        let s = lock(&self.inner.settings);
        let mut out = vec![
            SQL_RESOURCE.to_owned(),
            SQL_RESOURCE.trim_end_matches('/').to_owned(),
        ];
        for extra in s.extra_audiences.iter().chain(std::iter::once(&s.spn)) {
            for form in [
                extra.clone(),
                extra.trim_end_matches('/').to_owned(),
                format!("{}/", extra.trim_end_matches('/')),
            ] {
                if !out.contains(&form) {
                    out.push(form);
                }
            }
        }
        out
    }

    /// Sets the polling interval announced by the device-code endpoint (default 5 s; 0 or 1 in tests).
    pub fn set_device_code_interval(&self, secs: u64) {
        lock(&self.inner.settings).device_code_interval = secs;
    }

    /// Approves every device code as `user` once it has been polled `after_polls` times (0: at the first poll);
    /// `None` turns auto-approval off.
    pub fn auto_approve_device_codes(&self, rule: Option<(u32, &str)>) {
        lock(&self.inner.settings).auto_approve = rule.map(|(n, u)| (n, u.to_owned()));
    }

    fn issue_now(&self) -> i64 {
        unix_now() + lock(&self.inner.settings).clock_offset_secs
    }

    // ---- issuing ----

    /// Mints an access token for `who` (name, UPN, client id or object id) with audience `audience`.
    pub fn issue_token(
        &self,
        who: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, IdentityError> {
        self.mint_token(who, audience, MintOptions::default().lifetime(lifetime))
    }

    /// Mints an access token with full control over its times, issuer and key (for negative tests).
    pub fn mint_token(
        &self,
        who: &str,
        audience: &str,
        options: MintOptions,
    ) -> Result<String, IdentityError> {
        let subject = self
            .with_directory(|d| d.find_subject(who))
            .ok_or_else(|| IdentityError::UnknownPrincipal {
                name: who.to_owned(),
            })?;
        self.issue_for(&subject, audience, None, &options)
            .map(|t| t.token)
    }

    /// Issues a token to `subject`. For users, `client_id` is the app they signed in with.
    pub(crate) fn issue_for(
        &self,
        subject: &Subject,
        audience: &str,
        client_id: Option<&str>,
        options: &MintOptions,
    ) -> Result<IssuedToken, IdentityError> {
        let tenant = options.tenant_id.unwrap_or_else(|| self.tenant_id());
        let now = options
            .issued_at
            .map(to_unix)
            .unwrap_or_else(|| self.issue_now());
        let lifetime = options
            .lifetime
            .unwrap_or_else(|| self.token_lifetime())
            .as_secs() as i64;
        let iss = options
            .issuer
            .clone()
            .unwrap_or_else(|| format!("https://sts.windows.net/{tenant}/"));
        let principal = subject.principal(tenant);
        let (appid, idtyp, xms_mirid) = match subject {
            Subject::App(app) => (Some(app.client_id.to_string()), "app", None),
            Subject::ManagedIdentity(mi) => (
                Some(mi.client_id.to_string()),
                "app",
                Some(mi.resource_id.clone()),
            ),
            Subject::User(_) => (client_id.map(str::to_owned), "user", None),
        };
        let claims = AccessClaims {
            aud: audience.to_owned(),
            iss,
            iat: now,
            nbf: now,
            exp: now + lifetime,
            appid,
            idtyp: Some(idtyp.to_owned()),
            oid: principal.object_id.to_string(),
            sub: principal.object_id.to_string(),
            tid: tenant.to_string(),
            upn: principal.upn.clone(),
            name: Some(principal.display_name.clone()),
            xms_mirid,
            uti: random_token(16),
            ver: "1.0".to_owned(),
        };
        let token = if options.foreign_key {
            let foreign = crate::keys::foreign_rsa_key()?;
            self.sign_with(&claims, &foreign.kid(), &foreign.encoding_key())?
        } else {
            self.sign_with(&claims, &self.inner.kid, &self.inner.encoding)?
        };
        Ok(IssuedToken {
            token,
            not_before: claims.nbf,
            expires_on: claims.exp,
            audience: claims.aud,
        })
    }

    fn sign_with<T: Serialize>(
        &self,
        claims: &T,
        kid: &str,
        key: &EncodingKey,
    ) -> Result<String, IdentityError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, key)
            .map_err(|e| IdentityError::Signing(e.to_string()))
    }

    /// Mints a federated token (as a Kubernetes service-account token for workload identity would be) with
    /// issuer [`EMULATOR_OIDC_ISSUER`], audience `api://AzureADTokenExchange` and subject `subject`; an app with a
    /// matching federated credential can exchange it for an access token.
    pub fn issue_federated_token(
        &self,
        subject: &str,
        lifetime: Duration,
    ) -> Result<String, IdentityError> {
        let now = self.issue_now();
        let claims = FederatedClaims {
            iss: EMULATOR_OIDC_ISSUER.to_owned(),
            sub: subject.to_owned(),
            aud: FEDERATED_AUDIENCE.to_owned(),
            iat: now,
            nbf: now,
            exp: now + lifetime.as_secs() as i64,
            jti: random_token(12),
        };
        self.sign_with(&claims, &self.inner.kid, &self.inner.encoding)
    }

    // ---- validation ----

    /// Decodes and verifies the signature of one of our access tokens, without time/audience checks.
    pub fn decode_claims(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        let header =
            jsonwebtoken::decode_header(token.trim()).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenRejection::BadSignature);
        }
        if header
            .kid
            .as_deref()
            .is_some_and(|kid| kid != self.inner.kid)
        {
            return Err(TokenRejection::BadSignature);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        match jsonwebtoken::decode::<AccessClaims>(token.trim(), &self.inner.decoding, &validation)
        {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => {
                    Err(TokenRejection::BadSignature)
                }
                _ => Err(TokenRejection::Malformed),
            },
        }
    }

    fn principal_from_claims(&self, claims: &AccessClaims, tenant: Uuid) -> Principal {
        let oid = Uuid::parse_str(&claims.oid).unwrap_or_else(|_| Uuid::nil());
        let appid = claims
            .appid
            .as_deref()
            .and_then(|a| Uuid::parse_str(a).ok());
        let is_user = claims.idtyp.as_deref() == Some("user") || claims.upn.is_some();
        self.with_directory(|dir| {
            if is_user {
                if let Some(user) = dir.users.iter().find(|u| u.object_id == oid) {
                    return Subject::User(user.clone()).principal(tenant);
                }
                return Principal {
                    kind: PrincipalKind::User,
                    tenant_id: tenant,
                    object_id: oid,
                    app_id: None,
                    upn: claims.upn.clone(),
                    display_name: claims
                        .name
                        .clone()
                        .or_else(|| claims.upn.clone())
                        .unwrap_or_default(),
                };
            }
            if let Some(mi) = dir
                .managed_identities
                .iter()
                .find(|m| Some(m.client_id) == appid)
            {
                return Subject::ManagedIdentity(mi.clone()).principal(tenant);
            }
            if let Some(app) = dir.apps.iter().find(|a| Some(a.client_id) == appid) {
                return Subject::App(app.clone()).principal(tenant);
            }
            Principal {
                kind: if claims.xms_mirid.is_some() {
                    PrincipalKind::ManagedIdentity
                } else {
                    PrincipalKind::ServicePrincipal
                },
                tenant_id: tenant,
                object_id: oid,
                app_id: appid,
                upn: None,
                display_name: claims
                    .name
                    .clone()
                    .unwrap_or_else(|| claims.appid.clone().unwrap_or_default()),
            }
        })
    }

    // ---- client credentials ----

    /// Checks a client assertion (certificate-signed JWT, or a federated token) presented by `app`.
    pub(crate) fn verify_client_assertion(
        &self,
        app: &AppRegistration,
        assertion: &str,
    ) -> Result<(), StsError> {
        let header = jsonwebtoken::decode_header(assertion.trim())
            .map_err(|_| StsError::invalid_client(50027, "JWT token is invalid or malformed."))?;
        let leeway = lock(&self.inner.settings).leeway.as_secs();
        if let Some(x5t) = header.x5t.as_deref().or(header.x5t_s256.as_deref()) {
            let Some(cert) = app.certificates.iter().find(|c| c.matches_x5t(x5t)) else {
                return Err(StsError::invalid_client(
                    700027,
                    &format!(
                        "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{x5t}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                        app.client_id
                    ),
                ));
            };
            let mut validation = Validation::new(Algorithm::RS256);
            validation.validate_aud = false;
            validation.leeway = leeway;
            validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
            let claims = match jsonwebtoken::decode::<AssertionClaims>(assertion.trim(), &cert.decoding_key(), &validation) {
                Ok(d) => d.claims,
                Err(e) => {
                    return Err(match e.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature
                        | jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                            StsError::invalid_client(700024, "Client assertion is not within its valid time range.")
                        }
                        jsonwebtoken::errors::ErrorKind::InvalidSignature => StsError::invalid_client(
                            700027,
                            "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]",
                        ),
                        _ => StsError::invalid_client(50027, "JWT token is invalid or malformed."),
                    })
                }
            };
            let client = app.client_id.to_string();
            if !claims.iss.eq_ignore_ascii_case(&client)
                || !claims.sub.eq_ignore_ascii_case(&client)
            {
                return Err(StsError::invalid_client(
                    700021,
                    "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
                ));
            }
            let tenant_ok = self.with_directory(|d| {
                claims.aud.split('/').any(|seg| d.is_tenant(seg)) && claims.aud.contains("/oauth2/")
            });
            if !tenant_ok {
                return Err(StsError::invalid_client(
                    700016,
                    &format!("The audience '{}' of the client assertion is not this tenant's token endpoint.", claims.aud),
                ));
            }
            return Ok(());
        }
        // No thumbprint: a federated token. The emulator can verify only tokens of its own OIDC issuer.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.leeway = leeway;
        let claims = match jsonwebtoken::decode::<FederatedClaims>(assertion.trim(), &self.inner.decoding, &validation) {
            Ok(d) => d.claims,
            Err(e) => {
                return Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => StsError::invalid_client(
                        700024,
                        "Client assertion is not within its valid time range.",
                    ),
                    _ => StsError::invalid_client(
                        700211,
                        "No matching federated identity record found for presented assertion issuer (the emulator verifies only tokens of its own OIDC issuer).",
                    ),
                })
            }
        };
        let by_issuer: Vec<_> = app
            .federated_credentials
            .iter()
            .filter(|f| f.issuer == claims.iss)
            .collect();
        if by_issuer.is_empty() {
            return Err(StsError::invalid_client(
                700211,
                &format!("No matching federated identity record found for presented assertion issuer '{}'.", claims.iss),
            ));
        }
        let by_subject: Vec<_> = by_issuer
            .into_iter()
            .filter(|f| f.subject == claims.sub)
            .collect();
        if by_subject.is_empty() {
            return Err(StsError::invalid_client(
                700213,
                &format!("No matching federated identity record found for presented assertion subject '{}'.", claims.sub),
            ));
        }
        if !by_subject
            .iter()
            .any(|f| f.audiences.iter().any(|a| a == &claims.aud))
        {
            return Err(StsError::invalid_client(
                700212,
                &format!("No matching federated identity record found for presented assertion audience '{}'.", claims.aud),
            ));
        }
        Ok(())
    }

    // ---- device codes ----

    pub(crate) fn new_device_code(
        &self,
        client_id: &str,
        audience: &str,
    ) -> (String, DeviceCode, u64) {
        let interval = lock(&self.inner.settings).device_code_interval;
        let entry = DeviceCode {
            user_code: user_code(),
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            expires_at: unix_now() + 900,
            polls: 0,
            state: DeviceState::Pending,
        };
        let device_code = random_token(48);
        lock(&self.inner.device_codes).insert(device_code.clone(), entry.clone());
        (device_code, entry, interval)
    }

    /// Approves the pending device code `user_code` as `user` (UPN, name or object id).
    pub fn approve_device_code(&self, user_code: &str, user: &str) -> Result<(), IdentityError> {
        let upn = match self.with_directory(|d| d.find_subject(user)) {
            Some(Subject::User(u)) => u.upn,
            _ => {
                return Err(IdentityError::UnknownPrincipal {
                    name: user.to_owned(),
                })
            }
        };
        let mut codes = lock(&self.inner.device_codes);
        let entry = codes
            .values_mut()
            .find(|c| {
                c.user_code.eq_ignore_ascii_case(user_code.trim())
                    && c.state == DeviceState::Pending
            })
            .ok_or_else(|| IdentityError::UnknownUserCode {
                user_code: user_code.to_owned(),
            })?;
        entry.state = DeviceState::Approved(upn);
        Ok(())
    }

    /// Declines the pending device code `user_code` (the client then gets `authorization_declined`).
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), IdentityError> {
        let mut codes = lock(&self.inner.device_codes);
        let entry = codes
            .values_mut()
            .find(|c| {
                c.user_code.eq_ignore_ascii_case(user_code.trim())
                    && c.state == DeviceState::Pending
            })
            .ok_or_else(|| IdentityError::UnknownUserCode {
                user_code: user_code.to_owned(),
            })?;
        entry.state = DeviceState::Declined;
        Ok(())
    }

    /// The user codes of the device codes still pending (what a user would type in the browser).
    pub fn pending_user_codes(&self) -> Vec<String> {
        lock(&self.inner.device_codes)
            .values()
            .filter(|c| c.state == DeviceState::Pending)
            .map(|c| c.user_code.clone())
            .collect()
    }

    /// One poll of the token endpoint with a device code.
    pub(crate) fn poll_device_code(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<IssuedToken, StsError> {
        let auto = lock(&self.inner.settings).auto_approve.clone();
        let (state, audience) = {
            let mut codes = lock(&self.inner.device_codes);
            let Some(entry) = codes.get_mut(device_code) else {
                return Err(StsError::new(
                    400,
                    "invalid_grant",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid.",
                ));
            };
            if !entry.client_id.eq_ignore_ascii_case(client_id) {
                return Err(StsError::new(
                    400,
                    "invalid_grant",
                    70000,
                    "The device code was issued to another client_id.",
                ));
            }
            if unix_now() > entry.expires_at {
                return Err(StsError::new(400, "expired_token", 70020, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
            }
            entry.polls += 1;
            if entry.state == DeviceState::Pending {
                if let Some((after, user)) = &auto {
                    if entry.polls > *after {
                        let upn = match self.with_directory(|d| d.find_subject(user)) {
                            Some(Subject::User(u)) => u.upn,
                            _ => user.clone(),
                        };
                        entry.state = DeviceState::Approved(upn);
                    }
                }
            }
            (entry.state.clone(), entry.audience.clone())
        };
        match state {
            DeviceState::Pending => Err(StsError::new(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )),
            DeviceState::Declined => {
                lock(&self.inner.device_codes).remove(device_code);
                Err(StsError::new(
                    400,
                    "authorization_declined",
                    70000,
                    "The user declined the sign-in request.",
                ))
            }
            DeviceState::Approved(upn) => {
                lock(&self.inner.device_codes).remove(device_code);
                let subject = self
                    .with_directory(|d| d.find_subject(&upn))
                    .ok_or_else(|| {
                        StsError::new(
                            400,
                            "invalid_grant",
                            50034,
                            "The user account does not exist in the directory.",
                        )
                    })?;
                self.issue_for(
                    &subject,
                    &audience,
                    Some(client_id),
                    &MintOptions::default(),
                )
                .map_err(|e| StsError::server(&e.to_string()))
            }
        }
    }
}

impl LoginAuthority for Identity {
    fn validate(&self, token: &str) -> Result<Principal, TokenRejection> {
        let claims = self.decode_claims(token)?;
        let tenant = self.tenant_id();
        let tid_ok = Uuid::parse_str(&claims.tid)
            .map(|t| t == tenant)
            .unwrap_or(false);
        let iss_ok = claims.iss == format!("https://sts.windows.net/{tenant}/")
            || claims.iss == format!("https://login.microsoftonline.com/{tenant}/v2.0");
        if !tid_ok || !iss_ok {
            return Err(TokenRejection::WrongIssuer { found: claims.iss });
        }
        if !self.accepted_audiences().iter().any(|a| a == &claims.aud) {
            return Err(TokenRejection::WrongAudience { found: claims.aud });
        }
        let leeway = lock(&self.inner.settings).leeway.as_secs() as i64;
        let now = unix_now();
        if claims.exp + leeway <= now {
            let expired_at = if claims.exp >= 0 {
                UNIX_EPOCH + Duration::from_secs(claims.exp as u64)
            } else {
                UNIX_EPOCH
            };
            return Err(TokenRejection::Expired { expired_at });
        }
        if claims.nbf - leeway > now {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(self.principal_from_claims(&claims, tenant))
    }

    fn resolve_name(&self, name: &str) -> Option<Principal> {
        self.with_directory(|d| d.resolve(name))
    }

    fn graph_available(&self) -> bool {
        lock(&self.inner.settings).graph_available
    }

    fn sts_url(&self) -> String {
        format!("{}/{}", self.sts_base_url(), self.tenant_id())
    }

    fn spn(&self) -> String {
        lock(&self.inner.settings).spn.clone()
    }
}

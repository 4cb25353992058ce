//! [`DeviceCodeSource`]: the OAuth 2.0 device authorization grant (RFC 8628) on azure_core's pipeline.
//!
//! `azure_identity` 1.0 has no device code credential. This is the small flow it would be: ask
//! `/{tenant}/oauth2/v2.0/devicecode` for a code, show it to the user through a callback, poll `/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (waiting on `authorization_pending`, slowing
//! down on `slow_down`, stopping on `expired_token`), then keep the refresh token in memory so the user signs
//! in once per process, not once per hour.

use super::azure::{map_error, HttpOptions};
use crate::{AccessToken, Secret, TokenError, TokenRequestOptions, TokenSource};
use azure_core::http::headers::{HeaderName, HeaderValue};
use azure_core::http::{Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request, Url};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const NAME: &str = "DeviceCodeSource";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What to show the user: "go to `verification_uri` and enter `user_code`".
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCodePrompt {
    /// The code the user types.
    pub user_code: String,
    /// Where to type it, e.g. `https://microsoft.com/devicelogin`.
    pub verification_uri: String,
    /// Entra ID's ready-made sentence combining both.
    pub message: String,
    /// How long the code stays valid.
    pub expires_in: Duration,
}

impl fmt::Debug for DeviceCodePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user code is short-lived but grants a sign-in to whoever uses it first: keep it out of logs.
        f.debug_struct("DeviceCodePrompt")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Options of [`DeviceCodeSource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeviceCodeSourceOptions {
    /// HTTP settings.
    pub http: HttpOptions,
}

impl DeviceCodeSourceOptions {
    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

type Prompt = dyn Fn(&DeviceCodePrompt) + Send + Sync;

/// Interactive sign-in on any platform: the user opens a URL on any device and types a code.
///
/// The ODBC driver's `ActiveDirectoryInteractive` works only on Windows and it refuses `ActiveDirectoryDeviceCodeFlow`
/// in token mode; this source gets the token instead. Calls are serialised, so concurrent callers never
/// cause two prompts.
///
/// A sign-in takes minutes: behind [`CachedTokenSource`](crate::CachedTokenSource) use
/// [`CacheOptions::for_interactive`](crate::CacheOptions::for_interactive), whose timeouts wait for the
/// user, instead of the defaults, which give up after 30 s and would prompt again.
pub struct DeviceCodeSource {
    client_id: String,
    device_code_url: Url,
    token_url: Url,
    pipeline: Pipeline,
    prompt: Arc<Prompt>,
    refresh_token: tokio::sync::Mutex<Option<Secret>>,
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    message: String,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorResponse {
    error: String,
    error_description: String,
    error_codes: Vec<i64>,
}

impl DeviceCodeSource {
    /// A source for the public client `client_id` in `tenant_id` (or `organizations`/`common`);
    /// `prompt` is called with the code to show the user.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        prompt: impl Fn(&DeviceCodePrompt) + Send + Sync + 'static,
        options: Option<DeviceCodeSourceOptions>,
    ) -> Result<Self, TokenError> {
        for (field, v) in [("tenant_id", tenant_id), ("client_id", client_id)] {
            if v.trim().is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(TokenError::Config {
                    field,
                    reason: format!("`{v}` is not a valid {field}; use the GUID or domain from the app registration"),
                });
            }
        }
        let options = options.unwrap_or_default();
        let authority = options.http.resolved_authority_host()?;
        let url = |path: &str| {
            authority
                .join(&format!("/{tenant_id}/oauth2/v2.0/{path}"))
                .map_err(|e| TokenError::Config {
                    field: "tenant_id",
                    reason: format!("cannot build the {path} URL: {e}"),
                })
        };
        let device_code_url = url("devicecode")?;
        let token_url = url("token")?;
        let client_options = options.http.into_client_options()?;
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            client_options,
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Self {
            client_id: client_id.to_owned(),
            device_code_url,
            token_url,
            pipeline,
            prompt: Arc::new(prompt),
            refresh_token: tokio::sync::Mutex::new(None),
        })
    }

    async fn post(&self, url: &Url, form: &[(&str, &str)]) -> Result<RawResponse, TokenError> {
        let mut req = Request::new(url.clone(), Method::Post);
        req.insert_header(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        req.set_body(body);
        self.pipeline
            .send(
                &Context::new(),
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| map_error(NAME, &e))
    }

    fn http_error(status: u16, e: &ErrorResponse) -> TokenError {
        let codes: Vec<String> = e.error_codes.iter().map(i64::to_string).collect();
        TokenError::Http {
            credential: NAME,
            status,
            error_code: (!codes.is_empty()).then(|| codes.join(",")),
            message: crate::error::redact(&format!("{}: {}", e.error, e.error_description)),
            retry_after: None,
        }
    }

    fn token(
        &self,
        rsp: &RawResponse,
        now: OffsetDateTime,
    ) -> Result<(AccessToken, Option<Secret>), TokenError> {
        let t: TokenResponse =
            serde_json::from_slice(rsp.body().as_ref()).map_err(|e| TokenError::InvalidToken {
                reason: format!("the token endpoint's answer is not a token response: {e}"),
            })?;
        let expires_on = now
            .checked_add(time::Duration::seconds(t.expires_in))
            .ok_or_else(|| TokenError::InvalidToken {
                reason: format!(
                    "the token endpoint returned an impossible expires_in of {} s",
                    t.expires_in
                ),
            })?;
        Ok((
            AccessToken::new(t.access_token, expires_on),
            t.refresh_token.map(Secret::new),
        ))
    }

    async fn redeem_refresh_token(
        &self,
        refresh_token: &Secret,
        scope: &str,
    ) -> Result<(AccessToken, Option<Secret>), TokenError> {
        let rsp = self
            .post(
                &self.token_url,
                &[
                    ("client_id", &self.client_id),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose_secret()),
                    ("scope", scope),
                ],
            )
            .await?;
        let status = u16::from(rsp.status());
        if (200..300).contains(&status) {
            return self.token(&rsp, OffsetDateTime::now_utc());
        }
        let e: ErrorResponse = serde_json::from_slice(rsp.body().as_ref()).unwrap_or_default();
        Err(Self::http_error(status, &e))
    }

    async fn device_flow(&self, scope: &str) -> Result<(AccessToken, Option<Secret>), TokenError> {
        let rsp = self
            .post(
                &self.device_code_url,
                &[("client_id", &self.client_id), ("scope", scope)],
            )
            .await?;
        let status = u16::from(rsp.status());
        if !(200..300).contains(&status) {
            let e: ErrorResponse = serde_json::from_slice(rsp.body().as_ref()).unwrap_or_default();
            return Err(Self::http_error(status, &e));
        }
        let dc: DeviceCodeResponse = serde_json::from_slice(rsp.body().as_ref()).map_err(|e| {
            TokenError::Authentication {
                credential: NAME,
                message: format!(
                    "the devicecode endpoint's answer is not a device code response: {e}"
                ),
            }
        })?;
        let expires_in = Duration::from_secs(dc.expires_in);
        let prompt = DeviceCodePrompt {
            user_code: dc.user_code,
            verification_uri: dc.verification_uri,
            message: dc.message,
            expires_in,
        };
        tracing::info!(verification_uri = %prompt.verification_uri, ?expires_in, "device code sign-in: waiting for the user");
        (self.prompt)(&prompt);

        let started = tokio::time::Instant::now();
        let give_up = started
            .checked_add(expires_in)
            .unwrap_or_else(|| started + Duration::from_secs(24 * 3600));
        let mut interval = Duration::from_secs(dc.interval.unwrap_or(5).max(1));
        loop {
            if tokio::time::Instant::now() + interval > give_up {
                return Err(expired(expires_in));
            }
            tokio::time::sleep(interval).await;
            let rsp = self
                .post(
                    &self.token_url,
                    &[
                        ("client_id", &self.client_id),
                        ("grant_type", DEVICE_CODE_GRANT),
                        ("device_code", &dc.device_code),
                    ],
                )
                .await?;
            let status = u16::from(rsp.status());
            if (200..300).contains(&status) {
                tracing::info!("device code sign-in completed");
                return self.token(&rsp, OffsetDateTime::now_utc());
            }
            let e: ErrorResponse = serde_json::from_slice(rsp.body().as_ref()).unwrap_or_default();
            match e.error.as_str() {
                "authorization_pending" => tracing::trace!("device code: authorization pending"),
                "slow_down" => {
                    interval += Duration::from_secs(5);
                    tracing::debug!(?interval, "device code: asked to slow down");
                }
                "expired_token" => return Err(expired(expires_in)),
                "authorization_declined" | "access_denied" => {
                    return Err(TokenError::Authentication {
                        credential: NAME,
                        message: "the user declined the sign-in".to_owned(),
                    })
                }
                _ => return Err(Self::http_error(status, &e)),
            }
        }
    }
}

fn expired(expires_in: Duration) -> TokenError {
    TokenError::Authentication {
        credential: NAME,
        message: format!(
            "the device code expired before sign-in completed; request a new one and finish within {expires_in:?}"
        ),
    }
}

#[async_trait::async_trait]
impl TokenSource for DeviceCodeSource {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions>,
    ) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        let mut scope = scopes.join(" ");
        if !scopes.contains(&"offline_access") {
            scope.push_str(" offline_access");
        }
        let mut refresh_token = self.refresh_token.lock().await;
        if let Some(rt) = refresh_token.clone() {
            match self.redeem_refresh_token(&rt, &scope).await {
                Ok((token, new_rt)) => {
                    if let Some(new_rt) = new_rt {
                        *refresh_token = Some(new_rt);
                    }
                    tracing::debug!("device code: token renewed with the refresh token");
                    return Ok(token);
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::info!(error = %e, "device code: refresh token rejected; signing in again");
                    *refresh_token = None;
                }
            }
        }
        let (token, new_rt) = self.device_flow(&scope).await?;
        *refresh_token = new_rt;
        Ok(token)
    }
}

impl fmt::Debug for DeviceCodeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeSource")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

//! Glue between `azure_core`/`azure_identity` and this crate: HTTP options with an extra trusted CA,
//! error mapping, and the adapter from `TokenCredential` to [`TokenSource`](crate::TokenSource).

// Each source feature uses a different part of this glue; with all of them on, unused code still warns.
#![cfg_attr(
    not(all(
        feature = "client-secret",
        feature = "client-certificate",
        feature = "managed-identity",
        feature = "workload-identity",
        feature = "developer-tools",
        feature = "device-code"
    )),
    allow(dead_code, unused_macros, unused_imports)
)]

use crate::error::redact;
use crate::{AccessToken, TokenError};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, HttpClient, Transport, Url};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use azure_core::http::ClientOptions as AzureClientOptions;

const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// HTTP settings shared by every source that talks to Entra ID or a managed identity endpoint.
///
/// * [`client_options`](Self::client_options): azure_core's options (retry, transport, cloud, logging). Its
///   retry policy runs inside each upstream call; [`CachedTokenSource`](crate::CachedTokenSource) retries
///   around it.
/// * [`authority_host`](Self::authority_host): where to sign in, e.g. `https://login.microsoftonline.us`
///   or a local emulator. Default: the `cloud` of `client_options`, else `AZURE_AUTHORITY_HOST`, else
///   `https://login.microsoftonline.com`.
/// * [`extra_root_ca_pem`](Self::extra_root_ca_pem): one or more PEM certificates trusted **in addition to**
///   the system roots, for this source only (the emulator's CA). Nothing is written to system files.
///
/// Unless `client_options.transport` is set, the transport is a reqwest client on rustls with the *ring*
/// provider, the system roots (`rustls-native-certs`) plus the extra CA, a 10 s connect timeout and no
/// redirects.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct HttpOptions {
    /// azure_core client options.
    pub client_options: ClientOptions,
    /// The Entra ID authority host (an `https://` URL).
    pub authority_host: Option<String>,
    /// Extra CA certificates (PEM) to trust.
    pub extra_root_ca_pem: Option<Vec<u8>>,
}

impl HttpOptions {
    /// Sets [`authority_host`](Self::authority_host).
    pub fn with_authority_host(mut self, authority_host: impl Into<String>) -> Self {
        self.authority_host = Some(authority_host.into());
        self
    }

    /// Sets [`extra_root_ca_pem`](Self::extra_root_ca_pem).
    pub fn with_extra_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_root_ca_pem = Some(pem.into());
        self
    }

    /// Sets [`client_options`](Self::client_options).
    pub fn with_client_options(mut self, client_options: ClientOptions) -> Self {
        self.client_options = client_options;
        self
    }

    /// The authority host these options resolve to.
    pub fn resolved_authority_host(&self) -> Result<Url, TokenError> {
        let host = match (&self.authority_host, self.client_options.cloud.as_deref()) {
            (Some(h), _) => h.clone(),
            (None, Some(CloudConfiguration::Custom(c))) => c.authority_host.clone(),
            (None, Some(CloudConfiguration::AzureGovernment)) => {
                "https://login.microsoftonline.us".to_owned()
            }
            (None, Some(CloudConfiguration::AzureChina)) => {
                "https://login.chinacloudapi.cn".to_owned()
            }
            (None, Some(_)) => PUBLIC_AUTHORITY.to_owned(),
            (None, None) => std::env::var("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|_| PUBLIC_AUTHORITY.to_owned()),
        };
        let url = Url::parse(&host).map_err(|e| TokenError::Config {
            field: "authority_host",
            reason: format!("`{host}` is not a URL ({e}); use e.g. {PUBLIC_AUTHORITY}"),
        })?;
        if url.scheme() != "https" {
            return Err(TokenError::Config {
                field: "authority_host",
                reason: format!("`{host}` must use https; Entra ID never accepts plain http"),
            });
        }
        Ok(url)
    }

    /// azure_core options with the authority host and the transport filled in.
    pub(crate) fn into_client_options(self) -> Result<ClientOptions, TokenError> {
        let authority = self.resolved_authority_host()?;
        let mut options = self.client_options;
        if self.authority_host.is_some() || options.cloud.is_none() {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = authority.as_str().trim_end_matches('/').to_owned();
            options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
        }
        match (&options.transport, &self.extra_root_ca_pem) {
            (Some(_), Some(_)) => {
                return Err(TokenError::Config {
                    field: "extra_root_ca_pem",
                    reason: "has no effect with a custom transport in client_options; trust the CA in your transport instead"
                        .to_owned(),
                })
            }
            (Some(_), None) => {}
            (None, pem) => {
                options.transport = Some(Transport::new(http_client(pem.as_deref())?));
            }
        }
        Ok(options)
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("authority_host", &self.authority_host)
            .field(
                "extra_root_ca_pem",
                &self.extra_root_ca_pem.as_ref().map(|p| p.len()),
            )
            .finish_non_exhaustive()
    }
}

/// An azure_core [`HttpClient`]: reqwest over rustls (*ring*), trusting the system roots plus `extra_root_ca_pem`.
///
/// Fails with [`TokenError::Config`] (field `extra_root_ca_pem`) when the PEM holds no certificate or one
/// that rustls rejects.
pub fn http_client(extra_root_ca_pem: Option<&[u8]>) -> Result<Arc<dyn HttpClient>, TokenError> {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping an unreadable system root certificate");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::trace!(added, ignored, "system root certificates loaded");
    if let Some(pem) = extra_root_ca_pem {
        let bad = |reason: String| TokenError::Config {
            field: "extra_root_ca_pem",
            reason,
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                bad(format!(
                    "not PEM certificates ({e}); pass the CA's `-----BEGIN CERTIFICATE-----` file"
                ))
            })?;
        if certs.is_empty() {
            return Err(bad(
                "no `-----BEGIN CERTIFICATE-----` block found".to_owned()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("rustls rejected the certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TokenError::Config {
            field: "tls",
            reason: format!("rustls could not be configured: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TokenError::Config {
            field: "transport",
            reason: format!("the HTTP client could not be built: {e}"),
        })?;
    Ok(Arc::new(client))
}

/// Turns an azure_core error into a [`TokenError`], keeping status, error codes and `Retry-After`.
pub(crate) fn map_error(credential: &'static str, err: &azure_core::Error) -> TokenError {
    use azure_core::error::ErrorKind;
    let message = redact(&err.to_string().trim().replace('\n', " "));
    // azure_identity wraps the HTTP error in a `Credential` error; look inside.
    let mut cur = err;
    loop {
        match cur.kind() {
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => {
                let retry_after = raw_response.as_ref().and_then(|r| retry_after(r.headers()));
                return TokenError::Http {
                    credential,
                    status: u16::from(*status),
                    error_code: error_code.clone(),
                    message,
                    retry_after,
                };
            }
            ErrorKind::Connection | ErrorKind::Io => {
                return TokenError::Connection {
                    credential,
                    message,
                };
            }
            _ => match cur.downcast_ref::<azure_core::Error>() {
                Some(inner) => cur = inner,
                None => break,
            },
        }
    }
    TokenError::Authentication {
        credential,
        message,
    }
}

fn retry_after(headers: &azure_core::http::headers::Headers) -> Option<Duration> {
    use azure_core::http::headers::HeaderName;
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get_optional_str(&HeaderName::from_static(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    headers
        .get_optional_str(&HeaderName::from_static("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Adapts an azure_identity credential.
#[derive(Clone)]
pub(crate) struct Adapter {
    pub(crate) name: &'static str,
    pub(crate) credential: Arc<dyn TokenCredential>,
}

impl Adapter {
    pub(crate) fn new(name: &'static str, credential: Arc<dyn TokenCredential>) -> Self {
        Self { name, credential }
    }

    pub(crate) async fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, TokenError> {
        crate::token::check_scopes(scopes)?;
        tracing::debug!(credential = self.name, ?scopes, "requesting a token");
        match self.credential.get_token(scopes, None).await {
            Ok(t) => {
                tracing::debug!(credential = self.name, expires_on = %t.expires_on, "token received");
                Ok(AccessToken::new(t.token.secret(), t.expires_on))
            }
            Err(e) => {
                let err = map_error(self.name, &e);
                tracing::debug!(credential = self.name, error = %err, "token request failed");
                Err(err)
            }
        }
    }
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.name).finish_non_exhaustive()
    }
}

/// Fails with a config error naming `field` when `value` is blank.
pub(crate) fn require(field: &'static str, value: &str) -> Result<(), TokenError> {
    if value.trim().is_empty() {
        return Err(TokenError::Config {
            field,
            reason: format!(
                "`{field}` is empty; it is the GUID shown in the app registration's overview"
            ),
        });
    }
    Ok(())
}

/// Maps a credential constructor's error (bad tenant id, missing setting) to a config error.
pub(crate) fn construct_error(field: &'static str, err: &azure_core::Error) -> TokenError {
    TokenError::Config {
        field,
        reason: redact(err.to_string().trim()),
    }
}

macro_rules! adapter_source {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $name {
            pub(crate) inner: crate::sources::azure::Adapter,
        }

        #[async_trait::async_trait]
        impl crate::TokenSource for $name {
            async fn get_token(
                &self,
                scopes: &[&str],
                _options: Option<crate::TokenRequestOptions>,
            ) -> Result<crate::AccessToken, crate::TokenError> {
                self.inner.get_token(scopes).await
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use adapter_source;

//! [`ClientCertificateSource`]: a service principal proving itself with a certificate.
//!
//! `azure_identity`'s own `ClientCertificateCredential` sits behind its `client_certificate` feature, which
//! links OpenSSL (to read PKCS#12). We keep the whole TLS and crypto stack on rustls/*ring*, so this source
//! instead hands `azure_identity::ClientAssertionCredential` a client assertion that it signs itself: a JWT
//! with `x5t` (the certificate's SHA-1 thumbprint, which is what Entra ID looks the key up by), RS256-signed
//! with the certificate's RSA key through *ring*. Input is PEM (certificate and PKCS#8 or PKCS#1 key);
//! convert a `.pfx` once with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`.

use super::azure::{construct_error, require, Adapter, HttpOptions};
use crate::{Secret, TokenError};
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer};
use std::fmt;
use std::sync::Arc;

/// Options of [`ClientCertificateSource`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientCertificateSourceOptions {
    /// Send the certificate chain (`x5c`) with each assertion, for subject name/issuer authentication.
    pub send_certificate_chain: bool,
    /// HTTP settings.
    pub http: HttpOptions,
}

impl ClientCertificateSourceOptions {
    /// Sets [`send_certificate_chain`](Self::send_certificate_chain).
    pub fn with_send_certificate_chain(mut self, send: bool) -> Self {
        self.send_certificate_chain = send;
        self
    }

    /// Sets [`http`](Self::http).
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

super::azure::adapter_source! {
    /// A service principal authenticating with a certificate (client assertion signed with its RSA key).
    ClientCertificateSource
}

impl ClientCertificateSource {
    /// A source from PEM text holding the certificate (leaf first, then any chain) and its unencrypted
    /// private key; the key may also be passed separately in `private_key_pem`.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        certificate_pem: &[u8],
        private_key_pem: Option<Secret>,
        options: Option<ClientCertificateSourceOptions>,
    ) -> Result<Self, TokenError> {
        require("tenant_id", tenant_id)?;
        require("client_id", client_id)?;
        let options = options.unwrap_or_default();
        let certs = read_certificates(certificate_pem)?;
        let key_pem = private_key_pem
            .as_ref()
            .map(|k| k.expose_secret().as_bytes())
            .unwrap_or(certificate_pem);
        let key = read_key(key_pem)?;
        let authority = options.http.resolved_authority_host()?;
        let audience = authority
            .join(&format!("/{tenant_id}/oauth2/v2.0/token"))
            .map_err(|e| TokenError::Config {
                field: "tenant_id",
                reason: format!("cannot build the token URL from `{tenant_id}`: {e}"),
            })?;
        let leaf = &certs[0];
        let x5t = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            leaf,
        ));
        let x5c = options
            .send_certificate_chain
            .then(|| certs.iter().map(|c| STANDARD.encode(c)).collect());
        let assertion = CertificateAssertion {
            client_id: client_id.to_owned(),
            audience: audience.to_string(),
            x5t,
            x5c,
            key: Arc::new(key),
            rng: SystemRandom::new(),
        };
        let az = ClientAssertionCredentialOptions {
            client_options: options.http.into_client_options()?,
        };
        let credential = ClientAssertionCredential::new(
            tenant_id.to_owned(),
            client_id.to_owned(),
            assertion,
            Some(az),
        )
        .map_err(|e| construct_error("tenant_id", &e))?;
        Ok(Self {
            inner: Adapter::new("ClientCertificateCredential", credential),
        })
    }

    /// A source from a PEM file holding certificate and key (what `AZURE_CLIENT_CERTIFICATE_PATH` names).
    pub fn from_pem_file(
        tenant_id: &str,
        client_id: &str,
        path: &std::path::Path,
        options: Option<ClientCertificateSourceOptions>,
    ) -> Result<Self, TokenError> {
        let pem = std::fs::read(path).map_err(|e| TokenError::Config {
            field: "AZURE_CLIENT_CERTIFICATE_PATH",
            reason: format!("cannot read `{}`: {e}", path.display()),
        })?;
        // The file holds the private key: keep it in zeroizing memory while parsing.
        let pem = zeroize::Zeroizing::new(pem);
        Self::new(tenant_id, client_id, &pem, None, options)
    }
}

fn read_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TokenError> {
    let bad = |reason: String| TokenError::Config {
        field: "certificate",
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM ({e}); a .pfx converts with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`")))?;
    if certs.is_empty() {
        return Err(bad("no `-----BEGIN CERTIFICATE-----` block found; a .pfx converts with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`".to_owned()));
    }
    Ok(certs)
}

fn read_key(pem: &[u8]) -> Result<RsaKeyPair, TokenError> {
    let bad = |reason: &str| TokenError::Config {
        field: "private_key",
        reason: reason.to_owned(),
    };
    if pem
        .windows(29)
        .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
    {
        return Err(bad("the private key is encrypted; decrypt it once with `openssl pkcs8 -in key.pem -out plain.pem` and protect the file instead"));
    }
    let key = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| bad("no `PRIVATE KEY` or `RSA PRIVATE KEY` block found in the PEM"))?;
    let pair = match &key {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => {
            return Err(bad(
                "only RSA keys are supported (Entra ID client assertions are RS256)",
            ))
        }
    };
    pair.map_err(|_| bad("the key is not a usable RSA key (2048 bits or more, PKCS#8 or PKCS#1)"))
}

struct CertificateAssertion {
    client_id: String,
    audience: String,
    x5t: String,
    x5c: Option<Vec<String>>,
    key: Arc<RsaKeyPair>,
    rng: SystemRandom,
}

impl CertificateAssertion {
    fn sign(&self) -> Result<String, &'static str> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        if let Some(x5c) = &self.x5c {
            header["x5c"] = serde_json::json!(x5c);
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| "no randomness for the assertion id")?;
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::from_bytes(jti).to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "RSA signing failed")?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.sign().map_err(|m| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, m)
        })
    }
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

//! RSA keys: the token-signing key (published in the JWKS) and application certificates for client assertions.
//!
//! RSA key generation costs a noticeable fraction of a second even optimised, so keys come from a small
//! per-process pool ([`pooled_rsa_key`]): every emulator started in one test binary signs with the same key,
//! which is harmless for a test tool and keeps start-up in milliseconds.

use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;

use crate::secret::Secret;

/// Why a key or certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// RSA key generation or encoding failed (the text is the rsa crate's).
    #[error("could not generate an RSA key: {0}")]
    Rsa(String),
    /// rcgen could not make the application certificate.
    #[error("could not generate the certificate for '{name}': {reason}")]
    Certificate { name: String, reason: String },
}

/// An RSA key pair with the encodings the emulator needs.
pub struct RsaKey {
    pkcs1_der: Vec<u8>,
    pkcs8_der: Vec<u8>,
    pkcs8_pem: Secret,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &(self.modulus.len() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Generates a fresh 2048-bit key.
    pub fn generate() -> Result<RsaKey, KeyError> {
        let mut rng = rand::rngs::OsRng;
        let key =
            rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Rsa(e.to_string()))?;
        let pkcs1_der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::Rsa(e.to_string()))?
            .as_bytes()
            .to_vec();
        let pkcs8_der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Rsa(e.to_string()))?
            .as_bytes()
            .to_vec();
        let pkcs8_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Rsa(e.to_string()))?
            .to_string();
        Ok(RsaKey {
            pkcs1_der,
            pkcs8_der,
            pkcs8_pem: Secret::new(pkcs8_pem),
            modulus: key.n().to_bytes_be(),
            exponent: key.e().to_bytes_be(),
        })
    }

    /// The jsonwebtoken signing key.
    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_rsa_der(&self.pkcs1_der)
    }

    /// The jsonwebtoken verification key.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&self.modulus, &self.exponent)
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &Secret {
        &self.pkcs8_pem
    }

    /// The modulus, base64url (the JWK `n`).
    pub fn n_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.modulus)
    }

    /// The exponent, base64url (the JWK `e`).
    pub fn e_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.exponent)
    }

    /// A stable key id derived from the public key.
    pub fn kid(&self) -> String {
        let mut data = self.modulus.clone();
        data.extend_from_slice(&self.exponent);
        let digest = ring::digest::digest(&ring::digest::SHA256, &data);
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..15])
    }
}

/// The `n`th key of the per-process pool, generated on first use.
pub fn pooled_rsa_key(n: usize) -> Result<Arc<RsaKey>, KeyError> {
    static POOL: OnceLock<Mutex<Vec<Arc<RsaKey>>>> = OnceLock::new();
    let pool = POOL.get_or_init(|| Mutex::new(Vec::new()));
    // Generation happens under the lock so that concurrent tests share rather than duplicate the work.
    let mut keys = pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    while keys.len() <= n {
        keys.push(Arc::new(RsaKey::generate()?));
    }
    Ok(Arc::clone(&keys[n]))
}

/// A key outside the pool and the JWKS, for minting tokens that must fail signature validation.
pub fn foreign_rsa_key() -> Result<Arc<RsaKey>, KeyError> {
    static KEY: Mutex<Option<Arc<RsaKey>>> = Mutex::new(None);
    let mut slot = KEY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(key) = slot.as_ref() {
        return Ok(Arc::clone(key));
    }
    let key = Arc::new(RsaKey::generate()?);
    *slot = Some(Arc::clone(&key));
    Ok(key)
}

/// An application's certificate credential: a self-signed certificate over an RSA key, as uploaded to an
/// app registration. The private key is what the client signs its assertion with.
#[derive(Clone)]
pub struct AppCertificate {
    key: Arc<RsaKey>,
    cert_der: Vec<u8>,
    cert_pem: String,
    thumbprint: [u8; 20],
}

impl std::fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCertificate")
            .field("thumbprint", &self.thumbprint_hex())
            .finish_non_exhaustive()
    }
}

impl AppCertificate {
    /// Makes a self-signed certificate with common name `name` over `key`.
    pub fn generate(name: &str, key: Arc<RsaKey>) -> Result<AppCertificate, KeyError> {
        let cert_err = |e: rcgen::Error| KeyError::Certificate {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der.clone());
        let key_pair =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
                .map_err(cert_err)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key_pair).map_err(cert_err)?;
        let cert_der = cert.der().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
        let mut thumbprint = [0u8; 20];
        thumbprint.copy_from_slice(digest.as_ref());
        Ok(AppCertificate {
            key,
            cert_der,
            cert_pem: cert.pem(),
            thumbprint,
        })
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM (a secret: hand it to the client under test only).
    pub fn private_key_pem(&self) -> &Secret {
        self.key.private_key_pem()
    }

    /// The certificate plus its key in one PEM, as many clients load it.
    pub fn combined_pem(&self) -> Secret {
        Secret::new(format!(
            "{}{}",
            self.key.private_key_pem().expose(),
            self.cert_pem
        ))
    }

    /// The SHA-1 thumbprint, upper-case hex (as the Azure portal shows it).
    pub fn thumbprint_hex(&self) -> String {
        self.thumbprint.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Whether `x5t` (base64url or standard base64 of the SHA-1 thumbprint) names this certificate.
    pub fn matches_x5t(&self, x5t: &str) -> bool {
        let decoded = URL_SAFE_NO_PAD
            .decode(x5t.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(x5t))
            .unwrap_or_default();
        decoded == self.thumbprint
    }

    /// The `x5t` header value for this certificate (base64url of the SHA-1 thumbprint).
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }

    /// The key that verifies assertions signed with this certificate.
    pub fn decoding_key(&self) -> DecodingKey {
        self.key.decoding_key()
    }

    /// The key that signs assertions (for tests that play the client).
    pub fn encoding_key(&self) -> EncodingKey {
        self.key.encoding_key()
    }
}

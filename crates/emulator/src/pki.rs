//! The emulator's test PKI: a throw-away certificate authority and the TLS server certificate signed by it.
//!
//! The CA is generated with rcgen on every start (ECDSA P-256, a few milliseconds) and exported as PEM so that
//! clients can trust it (`SSL_CERT_FILE` for the TDS connection, the system bundle for the driver's libcurl).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the server certificate is valid for (its subject alternative names).
pub const SERVER_CERT_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "*.database.windows.net",
    "*.database.usgovcloudapi.net",
    "*.database.chinacloudapi.cn",
    "login.microsoftonline.com",
    "login.windows.net",
    "sts.emulator.test",
    "169.254.169.254",
];

/// Why the test PKI could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused to generate a key or certificate (the text is rcgen's).
    #[error("could not generate the emulator's {what}: {reason}")]
    Generate { what: &'static str, reason: String },
}

/// A test CA and one server certificate (chain + key) signed by it.
pub struct TestPki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Arc<PrivateKeyDer<'static>>,
    server_cert_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("server_names", &SERVER_CERT_NAMES)
            .finish_non_exhaustive()
    }
}

fn gen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |e| PkiError::Generate {
        what,
        reason: e.to_string(),
    }
}

impl TestPki {
    /// Generates a CA and a server certificate for [`SERVER_CERT_NAMES`] plus `extra_names`
    /// (host names or IP addresses).
    pub fn generate(extra_names: &[String]) -> Result<TestPki, PkiError> {
        let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA certificate"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        // A unique name per CA: OpenSSL finds an issuer by subject name, so several emulators' CAs in one bundle
        // (SSL_CERT_FILE) must not share one.
        let unique = uuid::Uuid::new_v4().simple().to_string();
        dn.push(
            DnType::CommonName,
            format!("mssql-entra emulator test CA {}", &unique[..12]),
        );
        dn.push(DnType::OrganizationName, "mssql-entra");
        ca_params.distinguished_name = dn;
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(gen_err("CA certificate"))?;

        let mut names: Vec<String> = SERVER_CERT_NAMES.iter().map(|s| (*s).to_owned()).collect();
        for extra in extra_names {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        let server_key = KeyPair::generate().map_err(gen_err("server key"))?;
        let ips: Vec<String> = names
            .iter()
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .cloned()
            .collect();
        let mut params = CertificateParams::new(names).map_err(gen_err("server certificate"))?;
        // ODBC 18 matches an IP-literal `Server=` against DNS-type SANs only (an IP SAN alone fails with "subject
        // name does not match host name"), so IP literals are carried as DNS names too.
        for ip in ips {
            let dns = ip.try_into().map_err(gen_err("server certificate"))?;
            params.subject_alt_names.push(rcgen::SanType::DnsName(dns));
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .map_err(gen_err("server certificate"))?;

        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_cert_pem: server_cert.pem(),
            server_chain: vec![server_cert.der().clone(), ca_cert.der().clone()],
            server_key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                server_key.serialize_der(),
            ))),
        })
    }

    /// The CA certificate as PEM (what `SSL_CERT_FILE` should point at).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate as DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The server certificate as PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The server chain (leaf first, then the CA).
    pub fn server_chain(&self) -> &[CertificateDer<'static>] {
        &self.server_chain
    }

    /// The server's private key.
    pub fn server_key(&self) -> Arc<PrivateKeyDer<'static>> {
        Arc::clone(&self.server_key)
    }

    /// A rustls server configuration for HTTPS (ALPN `http/1.1`), using the ring provider.
    pub fn https_server_config(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A rustls client configuration that trusts only this CA (for tests).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
    }
}

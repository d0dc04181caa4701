//! A test PKI made at test time: one trusted CA and every kind of server certificate a TLS
//! client must judge (good, wrong name, expired, from an unknown CA, self-signed, a
//! self-signed CA used as a server certificate).
//!
//! It lives here, built with rcgen (a dev-dependency, pure Rust, no tool to install), so that
//! the integration tests (`mod common;`) and the TLS unit tests (which include this file with
//! `#[path]`) share one definition, and the release build never compiles rcgen. Everything is
//! in memory; [`Pki::write_to`] puts PEM files in a directory for peers such as nginx, python3
//! or openssl.

use std::io;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names every "localhost" certificate here is valid for.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The only name the wrong-name certificate is valid for.
pub const WRONG_NAME: &str = "wrong.example";

/// The expired certificate's last day, as the error message must show it.
pub const EXPIRED_ON: &str = "2024-02-01";

/// A certificate, its key, and the chain a server presents (the certificate alone: the
/// CA is what the client trusts, not what the server sends).
pub struct Identity {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Identity {
    /// The chain a rustls server presents.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone()]
    }

    /// The private key, as a rustls server wants it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// The whole test PKI.
pub struct Pki {
    /// The CA the tests trust (through `--cacert` or `SSL_CERT_FILE`).
    pub ca: Identity,
    /// localhost, 127.0.0.1 and ::1, issued by `ca`.
    pub leaf: Identity,
    /// Only `wrong.example`, issued by `ca`.
    pub wrong_name: Identity,
    /// The local names, issued by `ca`, valid 2024-01-01 to 2024-02-01.
    pub expired: Identity,
    /// The local names, issued by a CA nobody trusts.
    pub unknown_ca: Identity,
    /// The local names, signed by its own key, not a CA (CA:FALSE).
    pub self_signed: Identity,
    /// The local names, signed by its own key and marked CA:TRUE, as `openssl req -x509`
    /// makes them.
    pub self_signed_ca: Identity,
}

impl Pki {
    /// Makes every certificate (ECDSA P-256 keys: fast to generate, accepted by TLS 1.2 and 1.3).
    pub fn generate() -> Pki {
        let (ca, ca_issuer) = make_ca("sockdemo test CA");
        let (_, other_issuer) = make_ca("sockdemo unknown CA");
        let mut expired = leaf_params("localhost", &LOCAL_NAMES);
        expired.not_before = rcgen::date_time_ymd(2024, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2024, 2, 1);
        let mut self_signed_ca = leaf_params("localhost", &LOCAL_NAMES);
        self_signed_ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki {
            ca,
            leaf: issue(leaf_params("localhost", &LOCAL_NAMES), &ca_issuer),
            wrong_name: issue(leaf_params(WRONG_NAME, &[WRONG_NAME]), &ca_issuer),
            expired: issue(expired, &ca_issuer),
            unknown_ca: issue(leaf_params("localhost", &LOCAL_NAMES), &other_issuer),
            self_signed: self_sign(leaf_params("localhost", &LOCAL_NAMES)),
            self_signed_ca: self_sign(self_signed_ca),
        }
    }

    /// Writes `NAME.pem` and `NAME.key` for every identity into `dir`.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        for (name, identity) in self.identities() {
            std::fs::write(dir.join(format!("{name}.pem")), &identity.cert_pem)?;
            std::fs::write(dir.join(format!("{name}.key")), &identity.key_pem)?;
        }
        Ok(())
    }

    /// Every identity with the file name [`Pki::write_to`] gives it.
    pub fn identities(&self) -> [(&'static str, &Identity); 7] {
        [
            ("ca", &self.ca),
            ("leaf", &self.leaf),
            ("wrong_name", &self.wrong_name),
            ("expired", &self.expired),
            ("unknown_ca", &self.unknown_ca),
            ("self_signed", &self.self_signed),
            ("self_signed_ca", &self.self_signed_ca),
        ]
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn make_ca(common_name: &str) -> (Identity, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("generate a CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    let identity = identity(cert, &key);
    (identity, Issuer::new(params, key))
}

/// A server certificate's parameters: the names as subjectAltName (IP literals as IP
/// addresses), the first as common name, server authentication as its purpose.
fn leaf_params(common_name: &str, names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("valid subject names");
    params.distinguished_name = distinguished_name(common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn issue(params: CertificateParams, issuer: &Issuer<'static, KeyPair>) -> Identity {
    let key = KeyPair::generate().expect("generate a key");
    let cert = params.signed_by(&key, issuer).expect("sign a certificate");
    identity(cert, &key)
}

fn self_sign(params: CertificateParams) -> Identity {
    let key = KeyPair::generate().expect("generate a key");
    let cert = params.self_signed(&key).expect("self-sign a certificate");
    identity(cert, &key)
}

fn identity(cert: rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}

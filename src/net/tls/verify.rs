//! The two certificate verifiers: rustls's own (webpki) with a little more said about why a
//! certificate failed, and the one `-k` uses, which accepts any certificate but still checks
//! the handshake signatures made with its key.
//!
//! rustls reports a self-signed certificate as "unknown issuer", and a CA certificate used as
//! a server's as an opaque webpki error. Users meet both daily (`openssl req -x509` makes the
//! second), so the verdict is refined here, where the certificate is at hand: the refined
//! problem travels inside rustls's error as a [`Verdict`]. The cost is the alert the server
//! receives for these two cases, `certificate_unknown` instead of `unknown_ca`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use super::error::{words_of, Verdict};
use super::{CertProblem, Error};

/// webpki's verdicts, with self-signed and CA-as-server certificates named as such.
#[derive(Debug)]
pub(super) struct Explained {
    inner: Arc<WebPkiServerVerifier>,
}

impl Explained {
    pub(super) fn new(
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<Explained, Error> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|err| Error::Setup {
                cause: words_of(&err),
            })?;
        Ok(Explained { inner })
    }
}

impl ServerCertVerifier for Explained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| refine(err, end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `err`, or a [`Verdict`] in its place when the certificate is self-signed or a CA's.
fn refine(err: rustls::Error, leaf: &CertificateDer<'_>) -> rustls::Error {
    let problem = match &err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
            if is_self_issued(leaf) =>
        {
            CertProblem::SelfSigned
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if is_ca_used_as_end_entity(other) =>
        {
            CertProblem::CaAsServer {
                self_signed: is_self_issued(leaf),
            }
        }
        _ => return err,
    };
    let verdict = OtherError(Arc::new(Verdict(problem)));
    rustls::Error::InvalidCertificate(CertificateError::Other(verdict))
}

fn is_ca_used_as_end_entity(other: &OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// `-k`: every certificate passes, but the server must still prove it holds the key of the
/// certificate it sent (the handshake signature is checked with the provider's algorithms).
#[derive(Debug)]
pub(super) struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl Unverified {
    pub(super) fn new(provider: &CryptoProvider) -> Unverified {
        Unverified {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// True when the certificate's issuer is its own subject (compared byte for byte, as webpki
/// matches names): it vouches for itself. False for anything that does not parse.
pub(super) fn is_self_issued(cert: &[u8]) -> bool {
    matches!(issuer_and_subject(cert), Some((issuer, subject)) if issuer == subject)
}

/// The issuer and subject names of a DER certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, ... }, ... }`.
fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (SEQUENCE, cert) = Elements(cert).next()? else {
        return None;
    };
    let (SEQUENCE, tbs) = Elements(cert).next()? else {
        return None;
    };
    let mut fields = Elements(tbs).peekable();
    if fields.peek()?.0 == VERSION {
        fields.next();
    }
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let (SEQUENCE, issuer) = fields.next()? else {
        return None;
    };
    let _validity = fields.next()?;
    let (SEQUENCE, subject) = fields.next()? else {
        return None;
    };
    Some((issuer, subject))
}

const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT`, the tag of a certificate's version field.
const VERSION: u8 = 0xa0;

/// The DER elements of a byte string, as `(tag, contents)`, up to the first malformed one.
struct Elements<'a>(&'a [u8]);

impl<'a> Iterator for Elements<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (digits, rest) = rest.split_at(count);
            let len = digits
                .iter()
                .fold(0u64, |len, &digit| (len << 8) | u64::from(digit));
            (usize::try_from(len).ok()?, rest)
        };
        if rest.len() < len {
            self.0 = &[];
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, contents))
    }
}

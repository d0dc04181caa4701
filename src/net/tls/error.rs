//! TLS failures in words, in one place: rustls's errors are precise but speak in Rust type
//! names and Unix timestamps, so they are translated here into one line a user can act on,
//! naming `host:port` and the way forward (`--cacert FILE`, `-k`), and into the exit status
//! class curl would use.

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustls::pki_types::pem;
use rustls::{CertificateError, OtherError};

use super::MAX_CA_FILE;

/// Which of curl's exit statuses a TLS failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 35: the handshake failed.
    Handshake,
    /// 60: the server's certificate cannot be verified.
    Certificate,
    /// 77: the `--cacert` file cannot be used.
    CaFile,
    /// 28: the server went quiet past the timeout.
    Timeout,
}

/// A TLS failure before any request was sent.
// Each variant's doc names its fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The certificate of `peer` (`host:port`) was not accepted.
    Certificate { peer: String, problem: CertProblem },
    /// The handshake with `peer` did not complete.
    Handshake { peer: String, cause: HandshakeCause },
    /// `peer` sent nothing for as long as the socket's read timeout.
    Timeout { peer: String },
    /// The `--cacert` file cannot be used.
    CaFile {
        path: PathBuf,
        problem: CaFileProblem,
    },
    /// rustls refused its configuration (not expected with the ring provider).
    Setup { cause: String },
}

/// Why a certificate was not accepted.
// Each variant's doc names its fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// It expired; the last day it was valid, as `YYYY-MM-DD`, when known.
    Expired { on: Option<String> },
    /// It is not valid yet; its first day, when known.
    NotYetValid { from: Option<String> },
    /// It does not name `name`; the host names and addresses it names, when known.
    WrongName {
        name: String,
        valid_for: Option<Vec<String>>,
    },
    /// No trusted CA issued it.
    UnknownIssuer,
    /// It is signed by its own key, and not trusted.
    SelfSigned,
    /// It is a CA certificate (CA:TRUE), which rustls never accepts as a server's.
    CaAsServer { self_signed: bool },
    /// A signature (the certificate's or the handshake's) does not verify.
    BadSignature,
    /// Anything else, in words.
    Other(String),
}

/// Why a handshake did not complete.
// Each variant's doc names its fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeCause {
    /// The reply is not TLS; its first bytes, escaped.
    NotTls { start: String },
    /// The server closed the connection.
    Closed,
    /// The server sent this alert (in words).
    Alert(String),
    /// The host is neither a valid DNS name nor an IP address.
    BadName(String),
    /// Anything else, in words.
    Failed(String),
}

/// Why the `--cacert` file cannot be used.
// Each variant's doc names its fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaFileProblem {
    /// It cannot be opened or read.
    Unreadable(String),
    /// It is larger than [`MAX_CA_FILE`].
    TooLarge,
    /// Its PEM is malformed.
    NotPem(String),
    /// It holds no PEM certificate.
    NoCertificate,
    /// Certificate number `index` (from 1) is not one rustls can trust.
    BadCertificate { index: usize, cause: String },
}

impl Error {
    /// Which of curl's exit statuses applies.
    pub fn exit_kind(&self) -> Kind {
        match self {
            Error::Certificate { .. } => Kind::Certificate,
            Error::Handshake { .. } | Error::Setup { .. } => Kind::Handshake,
            Error::Timeout { .. } => Kind::Timeout,
            Error::CaFile { .. } => Kind::CaFile,
        }
    }

    /// The error for a handshake that failed with `err`, `seen` being the first bytes the
    /// server sent (when they are not TLS, that says it all).
    pub(super) fn from_handshake(err: &io::Error, peer: &str, host: &str, seen: &[u8]) -> Error {
        let peer = peer.to_string();
        if !seen.is_empty() && !looks_like_tls(seen) {
            let start = seen.escape_ascii().to_string();
            let cause = HandshakeCause::NotTls { start };
            return Error::Handshake { peer, cause };
        }
        if crate::net::is_timeout(err) {
            return Error::Timeout { peer };
        }
        let cause = match rustls_error(err) {
            Some(rustls::Error::InvalidCertificate(problem)) => {
                let problem = cert_problem(problem, host);
                return Error::Certificate { peer, problem };
            }
            Some(rustls::Error::AlertReceived(alert)) => HandshakeCause::Alert(words_of(alert)),
            Some(other) => HandshakeCause::Failed(tls_words(other)),
            None if err.kind() == io::ErrorKind::UnexpectedEof => HandshakeCause::Closed,
            None => HandshakeCause::Failed(crate::net::describe(err)),
        };
        Error::Handshake { peer, cause }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Certificate { peer, problem } => {
                write!(f, "cannot verify the certificate of {peer}: {problem}")
            }
            Error::Handshake { peer, cause } => {
                write!(f, "cannot complete the TLS handshake with {peer}: {cause}")
            }
            Error::Timeout { peer } => {
                write!(
                    f,
                    "cannot complete the TLS handshake with {peer}: timed out"
                )
            }
            Error::CaFile { path, problem } => {
                write!(
                    f,
                    "cannot use the --cacert file {}: {problem}",
                    path.display()
                )
            }
            Error::Setup { cause } => write!(f, "cannot set up TLS: {cause}"),
        }
    }
}

impl std::error::Error for Error {}

/// The advice that ends most certificate messages.
const SKIP: &str = "-k skips verification (insecure)";

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertProblem::Expired { on: Some(day) } => write!(f, "it expired on {day}; {SKIP}"),
            CertProblem::Expired { on: None } => write!(f, "it has expired; {SKIP}"),
            CertProblem::NotYetValid { from } => {
                let from = from
                    .as_deref()
                    .map(|day| format!(" before {day}"))
                    .unwrap_or_default();
                write!(f, "it is not valid{from} (is the clock right?); {SKIP}")
            }
            CertProblem::WrongName { name, valid_for } => {
                write!(f, "it is not valid for {name}")?;
                match valid_for.as_deref() {
                    Some([]) => f.write_str(", it names no host")?,
                    Some(names) => write!(f, ", only for {}", names.join(", "))?,
                    None => {}
                }
                write!(f, "; {SKIP}")
            }
            CertProblem::UnknownIssuer => write!(
                f,
                "it is issued by an unknown CA; trust that CA with --cacert FILE, or {SKIP}"
            ),
            CertProblem::SelfSigned => write!(
                f,
                "it is self-signed; trust it with --cacert FILE (the certificate itself), \
                 or {SKIP}"
            ),
            CertProblem::CaAsServer { self_signed } => {
                let what = if *self_signed {
                    "a self-signed CA"
                } else {
                    "a CA"
                };
                write!(
                    f,
                    "it is {what} certificate (CA:TRUE) used as the server's certificate, which \
                     rustls rejects even when trusted with --cacert; give the server a \
                     certificate issued by that CA (CA:FALSE), or {SKIP}"
                )
            }
            CertProblem::BadSignature => f.write_str(
                "a signature does not verify (the server may not hold the certificate's key)",
            ),
            CertProblem::Other(words) => write!(f, "{words}; {SKIP}"),
        }
    }
}

impl fmt::Display for HandshakeCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeCause::NotTls { start } => write!(
                f,
                "the reply is not TLS (it begins \"{start}\"): the server may not speak TLS"
            ),
            HandshakeCause::Closed => f.write_str("the server closed the connection"),
            HandshakeCause::Alert(alert) if alert == "protocol version" => write!(
                f,
                "the server sent the alert \"{alert}\": it may not speak TLS 1.2 or 1.3"
            ),
            HandshakeCause::Alert(alert) => write!(f, "the server sent the alert \"{alert}\""),
            HandshakeCause::BadName(name) => {
                write!(f, "\"{name}\" is neither a host name nor an IP address")
            }
            HandshakeCause::Failed(words) => f.write_str(words),
        }
    }
}

impl fmt::Display for CaFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaFileProblem::Unreadable(cause) => f.write_str(cause),
            CaFileProblem::TooLarge => write!(f, "it is larger than {} MiB", MAX_CA_FILE >> 20),
            CaFileProblem::NotPem(cause) => write!(f, "it is not valid PEM: {cause}"),
            CaFileProblem::NoCertificate => f.write_str(
                "it holds no PEM certificate (for a DER file: \
                 openssl x509 -inform der -in FILE -out FILE.pem)",
            ),
            CaFileProblem::BadCertificate { index, cause } => {
                write!(f, "certificate {index} in it cannot be trusted: {cause}")
            }
        }
    }
}

/// A refined certificate verdict, carried inside rustls's error from the verifier to here.
#[derive(Debug)]
pub(super) struct Verdict(pub(super) CertProblem);

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Verdict {}

/// The rustls error inside an `io::Error`, if that is what it carries.
pub(super) fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// True when `bytes` can be the start of a TLS record: a content type from 20 (change cipher
/// spec) to 24 (heartbeat), then major version 3.
fn looks_like_tls(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [kind] => (20..=24).contains(kind),
        [kind, major, ..] => (20..=24).contains(kind) && *major == 3,
    }
}

fn cert_problem(err: &CertificateError, host: &str) -> CertProblem {
    use CertificateError as E;
    match err {
        E::Expired => CertProblem::Expired { on: None },
        E::ExpiredContext { not_after, .. } => CertProblem::Expired {
            on: Some(day(not_after.as_secs())),
        },
        E::NotValidYet => CertProblem::NotYetValid { from: None },
        E::NotValidYetContext { not_before, .. } => CertProblem::NotYetValid {
            from: Some(day(not_before.as_secs())),
        },
        E::NotValidForName => CertProblem::WrongName {
            name: host.to_string(),
            valid_for: None,
        },
        E::NotValidForNameContext { presented, .. } => CertProblem::WrongName {
            name: host.to_string(),
            valid_for: Some(
                presented
                    .iter()
                    .filter_map(|name| presented_name(name))
                    .collect(),
            ),
        },
        E::UnknownIssuer => CertProblem::UnknownIssuer,
        E::BadSignature => CertProblem::BadSignature,
        E::Other(other) => other_problem(other),
        other => CertProblem::Other(cert_words(other)),
    }
}

fn other_problem(other: &OtherError) -> CertProblem {
    match other.0.downcast_ref::<Verdict>() {
        Some(verdict) => verdict.0.clone(),
        None => CertProblem::Other(format!("it is not acceptable: {}", words_of(&other.0))),
    }
}

fn cert_words(err: &CertificateError) -> String {
    use CertificateError as E;
    match err {
        E::BadEncoding => "it is malformed".to_string(),
        E::Revoked => "it has been revoked".to_string(),
        E::UnhandledCriticalExtension => {
            "it has a critical extension that cannot be checked".to_string()
        }
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
            "it is not meant for a TLS server (extended key usage)".to_string()
        }
        E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm that is not supported".to_string()
        }
        E::UnknownRevocationStatus
        | E::ExpiredRevocationList
        | E::ExpiredRevocationListContext { .. } => "its revocation status is unknown".to_string(),
        other => format!("it is not acceptable: {}", words_of(other)),
    }
}

/// A name as webpki presents it (`DnsName("example.org")`, `IpAddress(127.0.0.1)`), as a user
/// would write it; other kinds of name are left out.
fn presented_name(name: &str) -> Option<String> {
    if let Some(dns) = name.strip_prefix("DnsName(\"") {
        return dns.strip_suffix("\")").map(str::to_string);
    }
    let ip = name.strip_prefix("IpAddress(")?.strip_suffix(')')?;
    Some(ip.to_string())
}

/// Why a `--cacert` certificate cannot be a trust anchor.
pub(super) fn anchor_problem(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(problem) => cert_words(problem),
        other => words_of(other),
    }
}

/// The words for a rustls error that is not about the certificate.
pub(super) fn tls_words(err: &rustls::Error) -> String {
    use rustls::Error as E;
    match err {
        E::AlertReceived(alert) => format!("the server sent the alert \"{}\"", words_of(alert)),
        E::InvalidCertificate(problem) => cert_problem(problem, "this host").to_string(),
        E::PeerIncompatible(why) => format!("the server is incompatible: {}", words_of(why)),
        E::PeerMisbehaved(why) => format!("the server broke the protocol: {}", words_of(why)),
        E::InvalidMessage(why) => format!("the server sent a malformed message: {}", words_of(why)),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a message out of turn".to_string()
        }
        E::DecryptError => "a record from the server does not decrypt".to_string(),
        E::NoCertificatesPresented => "the server sent no certificate".to_string(),
        E::PeerSentOversizedRecord => "the server sent an oversized record".to_string(),
        E::General(words) => words.to_lowercase(),
        other => words_of(other),
    }
}

/// A value's `Debug` name in words: `NoCipherSuitesInCommon` -> "no cipher suites in common".
/// Only the leading identifier is kept (no payload, no type names).
pub(super) fn words_of(value: &impl fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    let mut words = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        let boundary = c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
        if boundary || (c == '_' && !words.is_empty()) {
            words.push(' ');
        }
        if c != '_' {
            words.push(c.to_ascii_lowercase());
        }
        previous = Some(c);
    }
    if words.is_empty() {
        "an unexpected TLS error".to_string()
    } else {
        words
    }
}

/// The words for a PEM error (rustls's own texts show raw bytes).
pub(super) fn pem_problem(err: pem::Error) -> super::CaFileProblem {
    let words = match err {
        pem::Error::Io(err) => return CaFileProblem::Unreadable(crate::net::describe(&err)),
        pem::Error::NoItemsFound => return CaFileProblem::NoCertificate,
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be parsed",
    };
    CaFileProblem::NotPem(words.to_string())
}

/// A Unix time as the UTC day `YYYY-MM-DD` (Howard Hinnant's civil-from-days).
pub(super) fn day(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_read_as_days() {
        let table = [
            (0, "1970-01-01"),
            (86_399, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_706_745_600, "2024-02-01"),
            (1_795_683_263, "2026-11-26"),
            (4_102_444_800, "2100-01-01"),
        ];
        for (secs, want) in table {
            assert_eq!(day(secs), want, "{secs}");
        }
        // The largest times do not overflow.
        let _ = day(u64::MAX);
    }

    #[test]
    fn debug_names_read_as_words() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Sample {
            NoCipherSuitesInCommon,
            Tls12NotOffered,
            HandshakeFailure,
            MissingData(&'static str),
            Unknown(u8),
        }
        let table = [
            (Sample::NoCipherSuitesInCommon, "no cipher suites in common"),
            (Sample::Tls12NotOffered, "tls12 not offered"),
            (Sample::HandshakeFailure, "handshake failure"),
            (Sample::MissingData("ServerHello"), "missing data"),
            (Sample::Unknown(7), "unknown"),
        ];
        for (value, want) in table {
            assert_eq!(words_of(&value), want);
        }
        assert_eq!(
            words_of(&rustls::AlertDescription::ProtocolVersion),
            "protocol version"
        );
    }

    #[test]
    fn presented_names_read_as_typed() {
        let table = [
            ("DnsName(\"wrong.example\")", Some("wrong.example")),
            ("DnsName(\"*.example.org\")", Some("*.example.org")),
            ("IpAddress(127.0.0.1)", Some("127.0.0.1")),
            ("IpAddress(::1)", Some("::1")),
            ("DirectoryName", None),
            ("UniformResourceIdentifier(\"https://x\")", None),
            ("DnsName(\"unterminated", None),
        ];
        for (presented, want) in table {
            assert_eq!(presented_name(presented).as_deref(), want, "{presented}");
        }
    }

    #[test]
    fn tls_records_are_told_from_other_bytes() {
        assert!(looks_like_tls(b"\x16\x03\x03\x00\x7a"));
        assert!(looks_like_tls(b"\x15\x03\x03"));
        assert!(looks_like_tls(b"\x16"));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_tls(b"SSH-2.0-OpenSSH"));
        assert!(!looks_like_tls(b"\x16\x48"));
    }

    #[test]
    fn every_exit_kind_has_its_errors() {
        let peer = "localhost:443".to_string();
        let cert = Error::Certificate {
            peer: peer.clone(),
            problem: CertProblem::UnknownIssuer,
        };
        assert_eq!(cert.exit_kind(), Kind::Certificate);
        let closed = Error::Handshake {
            peer: peer.clone(),
            cause: HandshakeCause::Closed,
        };
        assert_eq!(closed.exit_kind(), Kind::Handshake);
        assert_eq!(Error::Timeout { peer }.exit_kind(), Kind::Timeout);
        let file = Error::CaFile {
            path: PathBuf::from("ca.pem"),
            problem: CaFileProblem::NoCertificate,
        };
        assert_eq!(file.exit_kind(), Kind::CaFile);
    }

    #[test]
    fn a_protocol_version_alert_explains_itself() {
        let cause = HandshakeCause::Alert(words_of(&rustls::AlertDescription::ProtocolVersion));
        let want =
            "the server sent the alert \"protocol version\": it may not speak TLS 1.2 or 1.3";
        assert_eq!(cause.to_string(), want);
    }
}

//! TLS for fetch: a client configuration built once, and a handshake that turns any connected
//! `Read + Write` stream into a [`TlsStream`].
//!
//! rustls with the ring provider, chosen here in code rather than by rustls's default features
//! (which pull in aws-lc-rs, a C build twice as long, for nothing fetch uses). Trust comes from
//! the system store (rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), or
//! from the built-in Mozilla roots (webpki-roots) where the system has none, plus `--cacert`.
//!
//! The handshake is driven here, before any request is written, so that whatever goes wrong
//! in it becomes an [`Error`] in words that names `host:port` and says which of curl's exit
//! statuses applies. What happens after it (reads, writes, a missing `close_notify`) is plain
//! `io::Error`: [`is_truncation`] and [`describe`] tell the caller what they mean.
//!
//! The stream below TLS is the caller's: a socket, or a socket wrapped in
//! [`Capped`](crate::net::capped::Capped) so that each receive asks for at most `--recv-size` bytes.

mod error;
mod keylog;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub use error::{CaFileProblem, CertProblem, Error, HandshakeCause, Kind};

/// The one protocol fetch speaks inside TLS, offered by ALPN.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A `--cacert` file larger than this is refused (system bundles are about 200 KiB).
pub const MAX_CA_FILE: u64 = 8 << 20;

/// How many bytes of a failed handshake's reply are kept to show the user.
const SEEN_BYTES: usize = 24;

/// What the command line says about TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--cacert FILE`: PEM certificates trusted besides the system's.
    pub cacert: Option<PathBuf>,
    /// `-k`/`--insecure`: accept any certificate for any name. Handshake signatures are still
    /// checked, and `--cacert` is not read at all (curl too carries on past a bad one).
    pub insecure: bool,
    /// Append the session keys to this file (what `SSLKEYLOGFILE` names), so that Wireshark
    /// can decrypt a capture. The command line reads the variable; the library never does.
    pub keylog: Option<PathBuf>,
}

/// Where the trust anchors came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStore {
    /// The system's store, with this many certificates.
    System(usize),
    /// The system store yielded none: the built-in Mozilla roots, this many.
    BuiltIn(usize),
    /// `-k`: nothing is trusted or checked.
    Unchecked,
}

/// A TLS client configuration, built once and shared by every connection of a run.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    trust: TrustStore,
    extra: usize,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("trust", &self.trust)
            .field("cacert_certificates", &self.extra)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The configuration for `options`, trusting the system store (read here, unless `-k`).
    pub fn new(options: &TlsOptions) -> Result<TlsConfig, Error> {
        let system = if options.insecure {
            Vec::new()
        } else {
            system_roots()
        };
        TlsConfig::with_system_roots(options, system)
    }

    /// The configuration for `options`, with `system` standing for what the system store
    /// yielded: the built-in roots are used when it is empty, `--cacert` is added either way.
    /// Tests use it to decide the trust store without touching the process environment.
    pub fn with_system_roots(
        options: &TlsOptions,
        system: Vec<CertificateDer<'static>>,
    ) -> Result<TlsConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (verifier, trust, extra) = if options.insecure {
            if let Some(path) = &options.cacert {
                log::debug!("-k: not reading --cacert {}", path.display());
            }
            let verifier = verify::Unverified::new(&provider);
            (Arc::new(verifier) as _, TrustStore::Unchecked, 0)
        } else {
            let (roots, trust) = trust_anchors(system);
            let (roots, extra) = add_cacert(roots, options.cacert.as_deref())?;
            let verifier = verify::Explained::new(roots, Arc::clone(&provider))?;
            (Arc::new(verifier) as _, trust, extra)
        };
        let client = client_config(provider, verifier, options.keylog.as_deref())?;
        Ok(TlsConfig {
            client: Arc::new(client),
            trust,
            extra,
        })
    }

    /// The rustls configuration, for a caller that drives a connection itself.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.client
    }

    /// Which store the trust anchors came from.
    pub fn trust_store(&self) -> TrustStore {
        self.trust
    }

    /// How many certificates `--cacert` added.
    pub fn cacert_certificates(&self) -> usize {
        self.extra
    }

    /// True with `-k`: the caller warns the user.
    pub fn is_insecure(&self) -> bool {
        self.trust == TrustStore::Unchecked
    }
}

/// What the system store holds (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`); files it
/// cannot read are logged at debug level and skipped.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        log::debug!("system trust store: {err}");
    }
    found.certs
}

/// The system's certificates as trust anchors, or the built-in ones when none is usable.
fn trust_anchors(system: Vec<CertificateDer<'static>>) -> (RootCertStore, TrustStore) {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(system);
    if ignored > 0 {
        log::debug!("system trust store: {ignored} certificates ignored (not parsable)");
    }
    if added > 0 {
        log::debug!("trusting the system store: {added} certificates");
        return (roots, TrustStore::System(added));
    }
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let count = roots.len();
    log::debug!(
        "the system store has no certificates: trusting the built-in Mozilla roots ({count})"
    );
    (roots, TrustStore::BuiltIn(count))
}

/// `roots` plus every certificate of the `--cacert` file, and how many that was.
fn add_cacert(
    mut roots: RootCertStore,
    path: Option<&Path>,
) -> Result<(RootCertStore, usize), Error> {
    let Some(path) = path else {
        return Ok((roots, 0));
    };
    let certs = read_ca_file(path)?;
    for (index, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|err| Error::CaFile {
            path: path.to_path_buf(),
            problem: CaFileProblem::BadCertificate {
                index: index + 1,
                cause: error::anchor_problem(&err),
            },
        })?;
    }
    log::debug!(
        "trusting {} certificates from {}",
        certs.len(),
        path.display()
    );
    Ok((roots, certs.len()))
}

/// The PEM certificates in the file at `path` (other PEM sections are skipped); at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let fail = |problem| Error::CaFile {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = read_limited(path, MAX_CA_FILE)
        .map_err(|err| fail(CaFileProblem::Unreadable(crate::net::describe(&err))))?
        .ok_or_else(|| fail(CaFileProblem::TooLarge))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| fail(error::pem_problem(err)))?;
    if certs.is_empty() {
        return Err(fail(CaFileProblem::NoCertificate));
    }
    Ok(certs)
}

/// The file's bytes, or `None` when it holds more than `limit`.
fn read_limited(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    keylog: Option<&Path>,
) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Setup {
            cause: error::words_of(&err),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    if let Some(path) = keylog {
        config.key_log = Arc::new(keylog::KeyLogFile::new(path));
    }
    Ok(config)
}

/// What a handshake settled on, for a trace line such as `== TLS handshake ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, as rustls names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// The key exchange group (`X25519`), when known.
    pub key_exchange: Option<String>,
    /// The protocol agreed by ALPN, `None` when the server chose none.
    pub alpn: Option<String>,
}

impl Negotiated {
    fn of(conn: &ClientConnection) -> Negotiated {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher_suite = conn
            .negotiated_cipher_suite()
            .map(|suite| suite.suite())
            .map(|suite| {
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_string)
            })
            .unwrap_or_else(|| "unknown".to_string());
        Negotiated {
            version,
            cipher_suite,
            key_exchange: conn
                .negotiated_key_exchange_group()
                .map(|group| format!("{:?}", group.name())),
            alpn: conn
                .alpn_protocol()
                .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
        }
    }
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.cipher_suite)?;
        if let Some(group) = &self.key_exchange {
            write!(f, " {group}")?;
        }
        match &self.alpn {
            Some(alpn) => write!(f, " ALPN {alpn}"),
            None => write!(f, " no ALPN"),
        }
    }
}

/// A TLS connection over the stream `S`, its handshake done.
pub struct TlsStream<S: Read + Write> {
    inner: StreamOwned<ClientConnection, S>,
    negotiated: Negotiated,
}

impl<S: Read + Write> TlsStream<S> {
    /// What the handshake settled on.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The stream below TLS.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// The stream below TLS, mutably (to change its timeouts).
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// The rustls connection.
    pub fn connection(&self) -> &ClientConnection {
        &self.inner.conn
    }

    /// Sends `close_notify`, telling the server that we have sent all we will.
    pub fn close_notify(&mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        self.inner.flush()
    }

    /// The rustls connection and the stream below it.
    pub fn into_parts(self) -> (ClientConnection, S) {
        self.inner.into_parts()
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Runs a TLS handshake with `host` (a name, or an IP literal: then no SNI is sent and the
/// certificate must name the address) over `sock`, whose read timeout bounds each wait.
pub fn handshake<S: Read + Write>(
    mut sock: S,
    host: &str,
    port: u16,
    config: &TlsConfig,
) -> Result<TlsStream<S>, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let peer = crate::net::host_port(host, port);
    let name = ServerName::try_from(host.to_string()).map_err(|_| Error::Handshake {
        peer: peer.clone(),
        cause: HandshakeCause::BadName(host.to_string()),
    })?;
    let mut conn =
        ClientConnection::new(Arc::clone(&config.client), name).map_err(|err| Error::Setup {
            cause: error::words_of(&err),
        })?;
    let mut watched = FirstBytes::new(&mut sock);
    while conn.is_handshaking() {
        match conn.complete_io(&mut watched) {
            Ok((0, 0)) => {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(Error::from_handshake(&eof, &peer, host, watched.seen()));
            }
            Ok(_) => {}
            Err(err) => {
                // A blocking socket: WouldBlock is its timeout.
                let err = crate::net::timed_out(err);
                return Err(Error::from_handshake(&err, &peer, host, watched.seen()));
            }
        }
    }
    let negotiated = Negotiated::of(&conn);
    log::debug!("TLS handshake with {peer}: {negotiated}");
    Ok(TlsStream {
        inner: StreamOwned::new(conn, sock),
        negotiated,
    })
}

/// True when a read from a [`TlsStream`] failed because the server closed the TCP connection
/// without a `close_notify` first: the data may have been cut short (curl's exit 18).
pub fn is_truncation(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof
}

/// The words for an error from reading or writing a [`TlsStream`] after its handshake.
pub fn describe(err: &io::Error) -> String {
    if is_truncation(err) {
        return "the server closed the connection without a TLS close_notify".to_string();
    }
    match error::rustls_error(err) {
        Some(tls) => error::tls_words(tls),
        None => crate::net::describe(err),
    }
}

/// The stream below TLS during the handshake, keeping the first bytes the server sent: when
/// they are not TLS at all, the error shows them.
struct FirstBytes<'a, S> {
    inner: &'a mut S,
    seen: Vec<u8>,
}

impl<'a, S> FirstBytes<'a, S> {
    fn new(inner: &'a mut S) -> Self {
        FirstBytes {
            inner,
            seen: Vec::with_capacity(SEEN_BYTES),
        }
    }

    fn seen(&self) -> &[u8] {
        &self.seen
    }
}

impl<S: Read> Read for FirstBytes<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = SEEN_BYTES.saturating_sub(self.seen.len());
        self.seen.extend(buf.iter().take(n.min(room)));
        Ok(n)
    }
}

impl<S: Write> Write for FirstBytes<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

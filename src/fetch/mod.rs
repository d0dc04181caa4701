//! `sockdemo fetch`: the first half of the tutorial, an HTTP/1.1 GET over a raw TCP socket,
//! done so that its file can be trusted. It connects, sends the request in one write, reads
//! the reply with `recv_size` receives until the server closes (or the response is
//! complete), prints each header block and streams the body into an [`Output`]. The parsing
//! is [`response`]'s, the URL work [`url`]'s, the request bytes [`request`]'s, the file
//! handling [`save`]'s, the time limits [`deadline`]'s and the layers over the socket (the
//! receive cap, TLS for https) [`transport`]'s: this module is only the conversation and the
//! redirects.
//!
//! What the user asked for decides what may be lost: a header block is shown for the user's
//! eyes, so a reader of it that went away (`| head`) stops the header, never the download.

pub mod deadline;
pub mod progress;
pub mod request;
pub mod response;
pub mod save;
pub mod transport;
pub mod url;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use log::{debug, info};

use crate::exit::{self, Kind, Tag};
use crate::net::capped::Capped;
use crate::net::tls::TlsOptions;
use crate::net::trace::{self, Role, Traced, TracedSocket, Tracer};
use crate::net::{self, Family, IoContext, Peer};
use deadline::{Deadline, ReadTimeout};
use progress::Progress;
use response::{Event, Head, ResponseReader};
use save::{Destination, Output};
use transport::{Connector, Transport};
use url::Url;

/// Statuses that `-L` follows (each with a Location).
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];
/// `-H` fields that are sent to the original host and port only: they identify or
/// authenticate the user there.
const ORIGIN_ONLY: [&str; 3] = ["Authorization", "Cookie", "Host"];

/// What `sockdemo fetch` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL as the user typed it.
    pub target: String,
    /// `-o`: a file, `-` for stdout, or `None` for a name made from the URL.
    pub output: Option<PathBuf>,
    /// `-L`: follow redirects.
    pub follow: bool,
    /// Redirects followed at most.
    pub max_redirs: u32,
    /// Bytes asked for by each receive.
    pub recv_size: usize,
    /// Bounds the connect to one address (zero: the system's own).
    pub connect_timeout: Duration,
    /// Bounds the wait for each byte (zero: none).
    pub timeout: Duration,
    /// `-m`: bounds the whole transfer, connects and redirects included (`None`: no limit).
    pub max_time: Option<Duration>,
    /// `-4`, `-6`.
    pub family: Family,
    /// `-H` fields.
    pub headers: Vec<(String, String)>,
    /// What a status of 400 or more does.
    pub fail: Fail,
    /// `-q`: no header block; only errors are for the user's eyes.
    pub quiet: bool,
    /// A progress line on stderr when it is a terminal (`--no-progress` turns it off, and
    /// so does `-q`).
    pub progress: bool,
    /// `--trace`: every connection's socket events.
    pub trace: Option<Tracer>,
    /// `--cacert`, `-k` and `SSLKEYLOGFILE`, for https.
    pub tls: TlsOptions,
}

/// What a final status of 400 or more does (`-f`, `--fail-with-body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fail {
    /// It is saved like any response, and fetch succeeds (as curl without `-f`).
    #[default]
    Never,
    /// `-f`/`--fail`: nothing is saved (an existing file stays as it was), exit 22.
    WithoutBody,
    /// `--fail-with-body`: the body is saved, then exit 22.
    WithBody,
}

/// `sockdemo fetch`.
pub fn run(config: Config) -> anyhow::Result<()> {
    save::remove_partial_on_signal()?;
    let deadline = Deadline::new(config.max_time);
    let first = parse_target(&config.target)?;
    let mut url = first.clone();
    let mut redirects = 0;
    let mut connector = Connector::new(config.tls.clone());
    loop {
        match fetch_once(&url, &first, &config, deadline, &mut connector)? {
            Outcome::Redirect(location) => {
                if redirects >= config.max_redirs {
                    return Err(anyhow::anyhow!(
                        "cannot fetch {first}: more than {} redirects (--max-redirs)",
                        config.max_redirs
                    ))
                    .tag(Kind::TooManyRedirects);
                }
                redirects += 1;
                url = url
                    .redirect(&location)
                    .with_context(|| format!("cannot follow the redirect from {url}"))
                    .tag(Kind::BadUrl)?;
                debug!("Redirected to {url}");
            }
            Outcome::Final { status, reason } => {
                return check_status(&config, &url, status, &reason)
            }
        }
    }
}

/// The TARGET: a scheme we do not speak is curl's 1, anything else unparsable its 3.
fn parse_target(text: &str) -> anyhow::Result<Url> {
    Url::parse(text).or_else(|err| {
        let kind = match err {
            url::Error::UnsupportedScheme(_) => Kind::UnsupportedScheme,
            _ => Kind::BadUrl,
        };
        Err(err)
            .with_context(|| format!("invalid target `{text}`"))
            .tag(kind)
    })
}

/// How one request ended.
enum Outcome {
    /// `-L` and a redirect to this Location.
    Redirect(String),
    /// A response saved in full.
    Final { status: u16, reason: String },
}

/// One connection, one request, one response.
fn fetch_once(
    url: &Url,
    first: &Url,
    config: &Config,
    deadline: Deadline,
    connector: &mut Connector,
) -> anyhow::Result<Outcome> {
    let (socket, peer) = open(url, config, deadline)?;
    let mut timeout = ReadTimeout::new(&socket, net::optional(config.timeout), deadline)
        .io_context(|| format!("cannot connect to {peer}"))
        .tag(Kind::Connect)?;
    // A TLS handshake waits within what is left of -m too.
    timeout
        .before_recv(0)
        .with_context(|| format!("cannot connect to {peer}"))
        .tag(Kind::Timeout)?;
    // The layers over the socket, socket first: the receive cap, the tracer, then TLS for
    // https, so that the trace shows what crosses the socket and every receive on it is
    // capped. Without --trace the conversation runs on the capped socket itself.
    let capped = Capped::new(socket, config.recv_size);
    let response = match &config.trace {
        None => exchange(
            connector.secure(capped, url)?,
            peer,
            timeout,
            url,
            first,
            config,
        )?,
        Some(tracer) => {
            let ends = Peer::of(capped.get_ref())
                .io_context(|| format!("cannot connect to {}", url.authority()))
                .tag(Kind::Connect)?;
            let traced = TracedSocket::new(capped, ends, Role::Client, tracer.clone());
            let stream = connector.secure(traced, url)?;
            if let Some(tls) = stream.negotiated() {
                let tuple = trace::tuple(&ends, Role::Client);
                tracer.event(&format!("TLS handshake {tuple}: {tls}"));
            }
            exchange(stream, peer, timeout, url, first, config)?
        }
    };
    response.finish()
}

/// The request and its response over `stream`, which is closed on return. Under `--trace`
/// over TLS, the decrypted bytes are traced too, under their own words, above the TLS layer.
fn exchange<'a, S: Read + Write>(
    mut stream: Transport<S>,
    peer: SocketAddr,
    timeout: ReadTimeout,
    url: &'a Url,
    first: &'a Url,
    config: &'a Config,
) -> anyhow::Result<Response<'a>> {
    let plaintext = config
        .trace
        .as_ref()
        .filter(|_| stream.negotiated().is_some());
    let result = match plaintext {
        None => converse(&mut stream, peer, timeout, url, first, config),
        Some(tracer) => {
            let mut traced = Traced::plaintext(&mut stream, tracer.clone());
            converse(&mut traced, peer, timeout, url, first, config)
        }
    };
    result.map_err(|err| stream.explain(err, url))
}

/// Sends the request over `stream` and reads the response from it.
fn converse<'a, S: Read + Write>(
    stream: &mut S,
    peer: SocketAddr,
    timeout: ReadTimeout,
    url: &'a Url,
    first: &'a Url,
    config: &'a Config,
) -> anyhow::Result<Response<'a>> {
    let mut conn = Conversation {
        stream,
        peer,
        timeout,
        received: 0,
    };
    let headers = headers_for(url, first, &config.headers);
    conn.send(&request::get_request(&url.path, &url.authority(), &headers))?;
    let mut response = Response::new(url, first, config);
    conn.receive(config.recv_size, &mut response)?;
    Ok(response)
}

/// Resolves the host and connects to its addresses, both families raced as RFC 8305 asks
/// (`-4`/`-6` restrict them), within what is left of `-m`.
fn open(
    url: &Url,
    config: &Config,
    deadline: Deadline,
) -> anyhow::Result<(std::net::TcpStream, SocketAddr)> {
    let addrs = net::resolve(&url.host, url.port, config.family).tag(Kind::Resolve)?;
    let timeout = net::optional(config.timeout);
    let out_of_time = || {
        Err(deadline.expired())
            .with_context(|| format!("cannot connect to {}", url.authority()))
            .tag(Kind::Timeout)
    };
    let Some(connect_timeout) = deadline.connect_timeout(config.connect_timeout, Instant::now())
    else {
        return out_of_time();
    };
    let stream = match net::happy_eyeballs(&addrs, connect_timeout, timeout) {
        Ok(stream) => stream,
        Err(_) if deadline.passed(Instant::now()) => return out_of_time(),
        Err(err) => return Err(err).tag(Kind::Connect),
    };
    let peer = stream
        .peer_addr()
        .io_context(|| format!("cannot connect to {}", url.authority()))
        .tag(Kind::Connect)?;
    debug!("Connected to {peer}");
    Ok((stream, peer))
}

/// The `-H` fields for `url`: all of them on the original scheme, host and port, and none
/// of [`ORIGIN_ONLY`] anywhere else.
fn headers_for(url: &Url, first: &Url, headers: &[(String, String)]) -> Vec<(String, String)> {
    let keep = |(name, _): &&(String, String)| {
        url.same_origin(first) || !ORIGIN_ONLY.iter().any(|o| o.eq_ignore_ascii_case(name))
    };
    headers.iter().filter(keep).cloned().collect()
}

/// `--fail-with-body`: a status of 400 or more is a failure, once the body is saved.
fn check_status(config: &Config, url: &Url, status: u16, reason: &str) -> anyhow::Result<()> {
    if config.fail == Fail::WithBody && status >= 400 {
        return http_error(url, status, reason);
    }
    Ok(())
}

/// `-f` or `--fail-with-body`, and a status of 400 or more (curl's 22).
fn http_error<T>(url: &Url, status: u16, reason: &str) -> anyhow::Result<T> {
    Err(anyhow::anyhow!(
        "cannot fetch {url}: the server answered {status} {reason}"
    ))
    .tag(Kind::HttpError)
}

/// One request and its response over any connected stream.
struct Conversation<'s, S> {
    stream: &'s mut S,
    peer: SocketAddr,
    /// `--timeout`, shortened as `-m`'s deadline nears.
    timeout: ReadTimeout,
    /// Bytes received so far, for a timeout's message.
    received: u64,
}

impl<S: Read + Write> Conversation<'_, S> {
    /// The request, in one write.
    fn send(&mut self, request: &[u8]) -> anyhow::Result<()> {
        for line in String::from_utf8_lossy(request)
            .lines()
            .filter(|l| !l.is_empty())
        {
            debug!("> {line}");
        }
        let peer = self.peer;
        net::send(&mut self.stream, request)
            .io_context(|| format!("cannot send the request to {peer}"))
            .tag(Kind::Connect)
    }

    /// The tutorial's receive loop: `recv_size` bytes at a time until the server closes,
    /// or until the response is complete (or a redirect to follow has been seen).
    fn receive(&mut self, recv_size: usize, response: &mut Response) -> anyhow::Result<()> {
        let mut reader = ResponseReader::new();
        let mut buf = vec![0; recv_size];
        while !reader.is_done() && response.redirect.is_none() {
            let n = self.recv(&mut buf)?;
            if n == 0 {
                return reader.finish().with_context(|| self.bad_response());
            }
            self.deliver(&mut reader, buf.get(..n).unwrap_or_default(), response)?;
            if n < buf.len() {
                // The socket had no more for now: what came must not wait for what has not.
                response.flush()?;
            }
        }
        Ok(())
    }

    /// One receive, within `--timeout` and what is left of `-m`.
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let peer = self.peer;
        self.timeout
            .before_recv(self.received)
            .with_context(|| format!("cannot read from {peer}"))
            .tag(Kind::Timeout)?;
        match net::recv(self.stream, buf) {
            Ok(n) => {
                self.received = self.received.saturating_add(n as u64);
                Ok(n)
            }
            Err(err) if net::is_timeout(&err) => Err(self.timeout.timed_out(self.received))
                .with_context(|| format!("cannot read from {peer}"))
                .tag(Kind::Timeout),
            Err(err) => Err(err)
                .io_context(|| format!("cannot read from {peer}"))
                .tag(Kind::Receive),
        }
    }

    /// Hands every event `input` completes to `response`.
    fn deliver(
        &self,
        reader: &mut ResponseReader,
        mut input: &[u8],
        response: &mut Response,
    ) -> anyhow::Result<()> {
        while !input.is_empty() && !reader.is_done() {
            let (used, event) = reader.feed(input).with_context(|| self.bad_response())?;
            input = input.get(used..).unwrap_or_default();
            if let Some(event) = event {
                response.on_event(event)?;
            }
        }
        Ok(())
    }

    fn bad_response(&self) -> String {
        format!("bad response from {}", self.peer)
    }
}

/// What happens to the parts of a response as they arrive.
struct Response<'a> {
    url: &'a Url,
    /// The TARGET as given: what a default file name is made from.
    first: &'a Url,
    config: &'a Config,
    status: Option<(u16, String)>,
    output: Option<Output>,
    progress: Progress,
    redirect: Option<String>,
    /// Header blocks are printed: not with `-q`, nor once their reader has gone away.
    show_heads: bool,
}

impl<'a> Response<'a> {
    fn new(url: &'a Url, first: &'a Url, config: &'a Config) -> Self {
        Response {
            url,
            first,
            config,
            status: None,
            output: None,
            progress: Progress::off(),
            redirect: None,
            show_heads: !config.quiet,
        }
    }

    fn on_event(&mut self, event: Event) -> anyhow::Result<()> {
        match (event, &mut self.output) {
            (Event::Head(head), _) => self.on_head(head),
            (Event::Body(bytes), Some(output)) => {
                self.progress.advance(bytes.len());
                output.write(bytes).tag(Kind::Write)
            }
            (Event::Body(_), None) => Ok(()),
        }
    }

    /// Prints the block; for the final response, decides between following a redirect,
    /// failing (`-f`) and opening the output, in that order, so that `-f` never opens it.
    fn on_head(&mut self, head: Head) -> anyhow::Result<()> {
        self.show(head.raw())?;
        if head.is_interim() {
            return Ok(());
        }
        let status = head.status();
        self.status = Some((status, head.reason().to_string()));
        let location = head.field_bytes("Location").map(url::location);
        if let Some(location) = location.filter(|_| REDIRECTS.contains(&status)) {
            if self.config.follow {
                self.redirect = Some(location);
                return Ok(());
            }
            info!("Not following the redirect to {location}: add -L to follow it");
        }
        if self.config.fail == Fail::WithoutBody && status >= 400 {
            return http_error(self.url, status, head.reason());
        }
        self.output = Some(Output::open(&self.destination()).tag(Kind::Write)?);
        let wanted = self.config.progress && !self.config.quiet;
        self.progress = Progress::start(progress::total(&head), wanted);
        Ok(())
    }

    /// A header block for the user's eyes, unless `-q`. A reader of stdout that went away
    /// (EPIPE) stops the header, never the download: the body still goes where it was
    /// asked to. (stderr's writer copes with a reader that went away on its own.)
    fn show(&mut self, raw: &[u8]) -> anyhow::Result<()> {
        if !self.show_heads {
            return Ok(());
        }
        let to_stderr = self.destination() == Destination::Stdout;
        match print_head(raw, to_stderr) {
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                debug!("The header's reader has gone away; the header is no longer shown");
                self.show_heads = false;
                Ok(())
            }
            result => {
                let name = if to_stderr { "stderr" } else { "stdout" };
                exit::output_write(result, name)
            }
        }
    }

    /// The network has nothing more for now: what is buffered for a reader goes out.
    fn flush(&mut self) -> anyhow::Result<()> {
        match &mut self.output {
            Some(output) => output.flush().tag(Kind::Write),
            None => Ok(()),
        }
    }

    fn destination(&self) -> Destination {
        match &self.config.output {
            Some(path) if path.as_os_str() == "-" => Destination::Stdout,
            Some(path) => Destination::Given(path.clone()),
            None => Destination::Default(self.first.file_name().into()),
        }
    }

    /// The response is over: where to go next, or the saved file.
    fn finish(self) -> anyhow::Result<Outcome> {
        if let Some(location) = self.redirect {
            return Ok(Outcome::Redirect(location));
        }
        let (Some((status, reason)), Some(output)) = (self.status, self.output) else {
            bail!("cannot fetch {}: no response", self.url);
        };
        self.progress.finish();
        let (bytes, name) = output.finish().tag(Kind::Write)?;
        info!("Saved {bytes} bytes to {name}");
        Ok(Outcome::Final { status, reason })
    }
}

/// A header block, byte for byte, on stdout; on stderr when the body goes to stdout, through
/// the one writer of stderr, so that it keeps its place among log and trace lines.
fn print_head(raw: &[u8], to_stderr: bool) -> io::Result<()> {
    if to_stderr {
        crate::console::print(raw);
        return Ok(());
    }
    let mut out = io::stdout().lock();
    out.write_all(raw)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn credentials_stay_with_the_original_scheme_host_and_port() {
        let first = Url::parse("a:8080/x").unwrap();
        let given = pairs(&[
            ("authorization", "Bearer t"),
            ("Cookie", "c=1"),
            ("Host", "h"),
            ("X", "1"),
        ]);
        let same = Url::parse("A:8080/y").unwrap();
        assert_eq!(headers_for(&same, &first, &given), given);
        for other in ["a:8081/x", "b:8080/x", "https://a:8080/x"] {
            let other = Url::parse(other).unwrap();
            assert_eq!(
                headers_for(&other, &first, &given),
                pairs(&[("X", "1")]),
                "{other}"
            );
        }
    }
}

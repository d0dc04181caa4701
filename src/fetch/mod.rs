//! `sockdemo fetch`: the first half of the tutorial, an HTTP/1.1 GET over a raw TCP socket,
//! done so that its file can be trusted. It connects, sends the request in one write, reads
//! the reply with `recv_size` receives until the server closes (or the response is
//! complete), prints each header block and streams the body into an [`Output`]. The parsing
//! is [`response`]'s, the URL work [`url`]'s, the request bytes [`request`]'s and the file
//! handling [`save`]'s: this module is only the conversation and the redirects.

pub mod request;
pub mod response;
pub mod save;
pub mod url;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use log::{debug, info};

use crate::exit::{Kind, Tag};
use crate::net::{self, Family, IoContext};
use response::{Event, Head, ResponseReader};
use save::{Destination, Output};
use url::{Scheme, Url};

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
    /// `-4`, `-6`.
    pub family: Family,
    /// `-H` fields.
    pub headers: Vec<(String, String)>,
    /// `--fail`: a status of 400 or more is a failure.
    pub fail: bool,
}

/// `sockdemo fetch`.
pub fn run(config: Config) -> anyhow::Result<()> {
    save::remove_partial_on_signal()?;
    let first = parse_target(&config.target)?;
    let mut url = first.clone();
    let mut redirects = 0;
    loop {
        match fetch_once(&url, &first, &config)? {
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
fn fetch_once(url: &Url, first: &Url, config: &Config) -> anyhow::Result<Outcome> {
    if url.scheme == Scheme::Https {
        return Err(anyhow::anyhow!(
            "cannot fetch {url}: https is not supported yet: sockdemo speaks plain HTTP over TCP (no TLS)"
        ))
        .tag(Kind::UnsupportedScheme);
    }
    let (mut stream, peer) = open(url, config)?;
    let mut conn = Conversation {
        stream: &mut stream,
        peer,
    };
    let headers = headers_for(url, first, &config.headers);
    conn.send(&request::get_request(&url.path, &url.authority(), &headers))?;
    let mut response = Response::new(url, config);
    conn.receive(config.recv_size, &mut response)?;
    response.finish()
}

/// Resolves the host and connects to its addresses in turn (`-4`/`-6` restrict them).
fn open(url: &Url, config: &Config) -> anyhow::Result<(std::net::TcpStream, SocketAddr)> {
    let addrs = net::resolve(&url.host, url.port, config.family).tag(Kind::Resolve)?;
    let timeout = net::optional(config.timeout);
    let stream = net::connect_any(&addrs, config.connect_timeout, timeout).tag(Kind::Connect)?;
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

/// `--fail`: a status of 400 or more is a failure, once the body is saved.
fn check_status(config: &Config, url: &Url, status: u16, reason: &str) -> anyhow::Result<()> {
    if config.fail && status >= 400 {
        return Err(anyhow::anyhow!(
            "cannot fetch {url}: the server answered {status} {reason}"
        ))
        .tag(Kind::HttpError);
    }
    Ok(())
}

/// One request and its response over any connected stream.
struct Conversation<'s, S> {
    stream: &'s mut S,
    peer: SocketAddr,
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
        self.stream
            .write_all(request)
            .io_context(|| format!("cannot send the request to {peer}"))
            .tag(Kind::Connect)
    }

    /// The tutorial's receive loop: `recv_size` bytes at a time until the server closes,
    /// or until the response is complete (or a redirect to follow has been seen).
    fn receive(&mut self, recv_size: usize, response: &mut Response) -> anyhow::Result<()> {
        let mut reader = ResponseReader::new();
        let mut buf = vec![0; recv_size];
        while !reader.is_done() && response.redirect.is_none() {
            let peer = self.peer;
            let n = net::recv(self.stream, &mut buf)
                .io_context(|| format!("cannot read from {peer}"))
                .tag(Kind::Receive)?;
            if n == 0 {
                return reader.finish().with_context(|| self.bad_response());
            }
            self.deliver(&mut reader, buf.get(..n).unwrap_or_default(), response)?;
        }
        Ok(())
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
    config: &'a Config,
    status: Option<(u16, String)>,
    output: Option<Output>,
    redirect: Option<String>,
}

impl<'a> Response<'a> {
    fn new(url: &'a Url, config: &'a Config) -> Self {
        Response {
            url,
            config,
            status: None,
            output: None,
            redirect: None,
        }
    }

    fn on_event(&mut self, event: Event) -> anyhow::Result<()> {
        match (event, &mut self.output) {
            (Event::Head(head), _) => self.on_head(head),
            (Event::Body(bytes), Some(output)) => output.write(bytes).tag(Kind::Write),
            (Event::Body(_), None) => Ok(()),
        }
    }

    /// Prints the block; for the final response, decides between following a redirect
    /// and opening the output.
    fn on_head(&mut self, head: Head) -> anyhow::Result<()> {
        print_head(head.raw(), self.destination() == Destination::Stdout).tag(Kind::Write)?;
        if head.is_interim() {
            return Ok(());
        }
        self.status = Some((head.status(), head.reason().to_string()));
        let location = head.field("Location");
        if let Some(location) = location.filter(|_| self.follows(head.status())) {
            self.redirect = Some(location.to_string());
            return Ok(());
        }
        self.output = Some(Output::open(&self.destination()).tag(Kind::Write)?);
        Ok(())
    }

    fn follows(&self, status: u16) -> bool {
        self.config.follow && REDIRECTS.contains(&status)
    }

    fn destination(&self) -> Destination {
        match &self.config.output {
            Some(path) if path.as_os_str() == "-" => Destination::Stdout,
            Some(path) => Destination::Given(path.clone()),
            None => Destination::Default(self.url.file_name().into()),
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
        let (bytes, name) = output.finish().tag(Kind::Write)?;
        info!("Saved {bytes} bytes to {name}");
        Ok(Outcome::Final { status, reason })
    }
}

/// A header block, byte for byte, on stdout (stderr when the body goes to stdout).
fn print_head(raw: &[u8], to_stderr: bool) -> anyhow::Result<()> {
    let (mut out, name): (Box<dyn Write>, _) = match to_stderr {
        true => (Box::new(io::stderr().lock()), "stderr"),
        false => (Box::new(io::stdout().lock()), "stdout"),
    };
    out.write_all(raw)
        .and_then(|()| out.flush())
        .io_context(|| format!("cannot write to {name}"))
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

//! `sockdemo fetch`: the first half of the tutorial, an HTTP/1.1 GET over a raw TCP socket,
//! done so that its file can be trusted. It connects, sends the request in one write, reads
//! the reply with `--recv-size` receives until the server closes (or the response is
//! complete), prints each header block and streams the body into an [`Output`]. The parsing
//! is [`http::ResponseReader`]'s, the URL work [`Target`]'s and the file handling
//! [`output`]'s: this module is only the conversation and the redirects.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{bail, Context};
use log::{debug, info};

use crate::cli::FetchArgs;
use crate::http::{self, Event, Head, ResponseReader};
use crate::net::{self, Family, IoContext};
use crate::output::{self, Destination, Output};
use crate::target::Target;

/// Statuses that `-L` follows (each with a Location).
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];
/// `-H` fields that are sent to the original host and port only: they identify or
/// authenticate the user there.
const ORIGIN_ONLY: [&str; 3] = ["Authorization", "Cookie", "Host"];

/// `sockdemo fetch`.
pub fn run(args: &FetchArgs) -> anyhow::Result<()> {
    output::remove_partial_on_signal()?;
    let first = Target::parse(&args.target)?;
    let mut target = first.clone();
    let mut redirects = 0;
    loop {
        match fetch_once(&target, &first, args)? {
            Outcome::Redirect(location) => {
                if redirects >= args.max_redirs {
                    bail!(
                        "cannot fetch {first}: more than {} redirects (--max-redirs)",
                        args.max_redirs
                    );
                }
                redirects += 1;
                target = target
                    .redirect(&location)
                    .with_context(|| format!("cannot follow the redirect from {target}"))?;
                debug!("Redirected to {target}");
            }
            Outcome::Final { status, reason } => {
                return check_status(args, &target, status, &reason)
            }
        }
    }
}

/// How one request ended.
enum Outcome {
    /// `-L` and a redirect to this Location.
    Redirect(String),
    /// A response saved in full.
    Final { status: u16, reason: String },
}

/// One connection, one request, one response.
fn fetch_once(target: &Target, first: &Target, args: &FetchArgs) -> anyhow::Result<Outcome> {
    let mut conn = Connection::open(target, args)?;
    let headers = headers_for(target, first, &args.headers);
    let request = http::get_request(&target.path, &target.host_header(), &headers);
    conn.send(&request)?;
    let mut response = Response::new(target, args);
    conn.receive(args.recv_size as usize, &mut response)?;
    response.finish()
}

/// The `-H` fields for `target`: all of them on the original host and port, and none of
/// [`ORIGIN_ONLY`] anywhere else.
fn headers_for(
    target: &Target,
    first: &Target,
    headers: &[(String, String)],
) -> Vec<(String, String)> {
    let keep = |(name, _): &&(String, String)| {
        target.same_origin(first) || !ORIGIN_ONLY.iter().any(|o| o.eq_ignore_ascii_case(name))
    };
    headers.iter().filter(keep).cloned().collect()
}

/// `--fail`: a status of 400 or more is a failure, once the body is saved.
fn check_status(
    args: &FetchArgs,
    target: &Target,
    status: u16,
    reason: &str,
) -> anyhow::Result<()> {
    if args.fail && status >= 400 {
        bail!("cannot fetch {target}: the server answered {status} {reason}");
    }
    Ok(())
}

/// A connected socket with the timeouts of the command line.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
}

impl Connection {
    /// Resolves the host and tries each address in turn (`-4`/`-6` restrict them).
    fn open(target: &Target, args: &FetchArgs) -> anyhow::Result<Connection> {
        let family = match (args.ipv4, args.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        };
        let addrs = net::resolve(&target.host, target.port, family)?;
        let stream = net::connect_any(&addrs, args.connect_timeout)?;
        let peer = stream
            .peer_addr()
            .io_context(|| format!("cannot connect to {}", target.host_header()))?;
        let timeout = net::optional(args.timeout);
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
            .io_context(|| format!("cannot set timeouts on the connection to {peer}"))?;
        debug!("Connected to {peer}");
        Ok(Connection { stream, peer })
    }

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
    }

    /// The tutorial's receive loop: `recv_size` bytes at a time until the server closes,
    /// or until the response is complete (or a redirect to follow has been seen).
    fn receive(&mut self, recv_size: usize, response: &mut Response) -> anyhow::Result<()> {
        let mut reader = ResponseReader::new();
        let mut buf = vec![0; recv_size];
        while !reader.is_done() && response.redirect.is_none() {
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return reader.finish().with_context(|| self.bad_response()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    let peer = self.peer;
                    return Err(err).io_context(|| format!("cannot read from {peer}"));
                }
            };
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
    target: &'a Target,
    args: &'a FetchArgs,
    status: Option<(u16, String)>,
    output: Option<Output>,
    redirect: Option<String>,
}

impl<'a> Response<'a> {
    fn new(target: &'a Target, args: &'a FetchArgs) -> Self {
        Response {
            target,
            args,
            status: None,
            output: None,
            redirect: None,
        }
    }

    fn on_event(&mut self, event: Event) -> anyhow::Result<()> {
        match (event, &mut self.output) {
            (Event::Head(head), _) => self.on_head(head),
            (Event::Body(bytes), Some(output)) => output.write(bytes),
            (Event::Body(_), None) => Ok(()),
        }
    }

    /// Prints the block; for the final response, decides between following a redirect
    /// and opening the output.
    fn on_head(&mut self, head: Head) -> anyhow::Result<()> {
        print_head(head.raw(), self.destination() == Destination::Stdout)?;
        if head.is_interim() {
            return Ok(());
        }
        self.status = Some((head.status(), head.reason().to_string()));
        let location = head.field("Location");
        if let Some(location) = location.filter(|_| self.follows(head.status())) {
            self.redirect = Some(location.to_string());
            return Ok(());
        }
        self.output = Some(Output::open(&self.destination())?);
        Ok(())
    }

    fn follows(&self, status: u16) -> bool {
        self.args.location && REDIRECTS.contains(&status)
    }

    fn destination(&self) -> Destination {
        match &self.args.output {
            Some(path) if path.as_os_str() == "-" => Destination::Stdout,
            Some(path) => Destination::Given(path.clone()),
            None => Destination::Default(self.target.file_name().into()),
        }
    }

    /// The response is over: where to go next, or the saved file.
    fn finish(self) -> anyhow::Result<Outcome> {
        if let Some(location) = self.redirect {
            return Ok(Outcome::Redirect(location));
        }
        let (Some((status, reason)), Some(output)) = (self.status, self.output) else {
            bail!("cannot fetch {}: no response", self.target);
        };
        let (bytes, name) = output.finish()?;
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
    fn credentials_stay_with_the_original_host_and_port() {
        let first = Target::parse("a:8080/x").unwrap();
        let given = pairs(&[
            ("authorization", "Bearer t"),
            ("Cookie", "c=1"),
            ("Host", "h"),
            ("X", "1"),
        ]);
        let same = Target::parse("A:8080/y").unwrap();
        assert_eq!(headers_for(&same, &first, &given), given);
        let other_port = Target::parse("a:8081/x").unwrap();
        assert_eq!(
            headers_for(&other_port, &first, &given),
            pairs(&[("X", "1")])
        );
        let other_host = Target::parse("b:8080/x").unwrap();
        assert_eq!(
            headers_for(&other_host, &first, &given),
            pairs(&[("X", "1")])
        );
    }
}

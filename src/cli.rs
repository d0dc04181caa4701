//! The command line: one `Cli`, one args struct per subcommand, and their conversion into
//! the library's configs. This is the only module that knows clap: the library takes
//! `fetch::Config`, `server::Config`, ... and can be used without it. Doc comments are the
//! help text; values are checked here (durations, sizes, headers) so the library gets them
//! whole.

// The doc comments here are help text for a terminal, where `[:port]` means "optional".
#![allow(rustdoc::broken_intra_doc_links)]

mod generate;

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::demo;
use crate::exit::{self, Numbering};
use crate::fetch;
use crate::hello::bench::{self, Rounds};
use crate::hello::client::{self, Mode};
use crate::hello::server;
use crate::net::tls::TlsOptions;
use crate::net::trace::{self, Tracer};
use crate::net::{self, Family};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(name = "sockdemo", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr: debug messages (the request sent, each connect attempt)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr; fetch prints no header block either
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        visible_short_alias = 's',
        visible_alias = "silent"
    )]
    pub quiet: bool,
    /// Show every socket event on stderr: connect, accept, close, and each send and receive
    /// with a dump of its bytes
    #[arg(long, global = true)]
    pub trace: bool,
    /// Bytes dumped per send or receive with --trace (0: all of them)
    #[arg(long, global = true, value_name = "N", default_value_t = trace::DEFAULT_LIMIT, requires = "trace")]
    pub trace_bytes: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch a web page with an HTTP/1.1 GET over a raw TCP socket
    ///
    /// https:// speaks TLS 1.2 or 1.3, verified against the system's trust store
    /// (SSL_CERT_FILE, SSL_CERT_DIR) and --cacert. With SSLKEYLOGFILE=FILE in the environment
    /// the TLS session keys are appended to FILE, so that Wireshark can decrypt a capture.
    #[command(after_help = format!("{}\n\n{FETCH_EXAMPLES}", crate::exit::CURL_TABLE))]
    Fetch(FetchArgs),
    /// Run the Hello server: `Welcome!`, then `Hello, <msg>!` for every message
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Talk to a Hello server: send each NAME and print the replies
    #[command(after_help = CLIENT_EXAMPLES)]
    Client(ClientArgs),
    /// Load a Hello server with concurrent clients and report throughput and latency
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Run the tutorial's lessons on loopback: fetch a page, the Hello server and client, threads
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Print a completion script for SHELL on stdout
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout
    #[command(after_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

// The examples that end each subcommand's --help: what a newcomer types first.
const FETCH_EXAMPLES: &str = "\
Examples:
  sockdemo fetch example.org                     # header on stdout, body saved as index.html
  sockdemo fetch -L -o page.html https://example.org/docs/
  sockdemo fetch -o - 127.0.0.1:8000/notes.txt   # body on stdout, header on stderr";
const SERVE_EXAMPLES: &str = "\
Examples:
  sockdemo serve                          # 127.0.0.1:9999, as the tutorial's server
  sockdemo serve --port 0 --delay 1s      # a free port; every reply after a second
  sockdemo serve --host :: --port 8080    # every interface, IPv6 and IPv4";
const CLIENT_EXAMPLES: &str = "\
Examples:
  sockdemo client Michael Tracy Sarah     # the tutorial's three names
  sockdemo client --host ::1 --port 8080  # names from stdin, one per line
  sockdemo client --lines < names.txt     # each name as a line";
const BENCH_EXAMPLES: &str = "\
Examples:
  sockdemo bench -c 10 -n 1000               # 10 clients, 1000 round trips each
  sockdemo bench --duration 30s --reconnect  # connections per second, for 30 s
  sockdemo bench -c 50 --json > run.json     # one JSON object for scripts";
const DEMO_EXAMPLES: &str = "\
Examples:
  sockdemo demo                  # the three lessons in the tutorial's order, about 4 s
  sockdemo demo threads          # a thread per connection against --serial, as a timeline
  sockdemo --trace demo hello    # every send and receive of both sides, on stderr";
const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  echo 'source <(sockdemo completions bash)' >> ~/.bashrc
  sockdemo completions zsh > ~/.zfunc/_sockdemo    # with fpath+=(~/.zfunc) before compinit
  sockdemo completions fish > ~/.config/fish/completions/sockdemo.fish";
const MAN_EXAMPLES: &str = "\
Examples:
  sockdemo man | man -l -      # read it now
  mkdir -p ~/.cargo/share/man/man1 && sockdemo man > ~/.cargo/share/man/man1/sockdemo.1";

/// `sockdemo serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (127.0.0.1 is local only; 0.0.0.0 or :: for every interface)
    #[arg(long, value_name = "ADDR", default_value = net::DEFAULT_HOST)]
    pub host: String,
    /// Port to listen on (0 lets the system pick a free one)
    #[arg(short, long, value_name = "PORT", default_value_t = net::DEFAULT_PORT)]
    pub port: u16,
    /// Open connections at most; at the cap, accepting pauses until one closes
    #[arg(long, value_name = "N", default_value_t = server::MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Close a connection that sends nothing for this long (0 turns it off)
    #[arg(long, value_name = "DUR", default_value = "300s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Wait this long before each reply, as the tutorial's time.sleep(1) does
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = parse_duration)]
    pub delay: Duration,
    /// Set SO_REUSEPORT: several servers may listen on this port, the kernel spreads clients
    #[arg(long)]
    pub reuse_port: bool,
    /// Expect a PROXY protocol header (v1 or v2, as HAProxy and nginx send it) on every
    /// connection, and log the client it names; only behind a balancer you trust
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Connections the kernel may queue before they are accepted (the tutorial's listen(5));
    /// the system caps it (net.core.somaxconn)
    #[arg(long, value_name = "N", default_value_t = server::LISTEN_BACKLOG, value_parser = clap::value_parser!(u32).range(0..=i32::MAX as i64))]
    pub backlog: u32,
    /// Serve one connection at a time on the accepting thread, as a server without threads
    /// would: the next client waits in the listen backlog
    #[arg(long)]
    pub serial: bool,
}

/// `sockdemo client`.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Names to send, one message each; without any, names are read from stdin, one per line
    #[arg(value_name = "NAME", value_parser = name_parser())]
    pub names: Vec<OsString>,
    /// Server to connect to (a name is resolved and every address tried in turn)
    #[arg(long, value_name = "ADDR", default_value = net::DEFAULT_HOST)]
    pub host: String,
    /// Server port
    #[arg(short, long, value_name = "PORT", default_value_t = net::DEFAULT_PORT)]
    pub port: u16,
    /// Give up on a connect or a reply after this long
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send each name as a line (NAME and a newline), not as a raw message: immune to how
    /// the network splits it, but the tutorial's server does not understand it
    #[arg(long)]
    pub lines: bool,
}

/// `sockdemo fetch`.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// host, host:port, host/path, http[s]://host[:port][/path][?query], [v6addr]:port
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Save the body here (`-` for stdout, the header then goes to stderr)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Follow redirects (301, 302, 303, 307, 308)
    #[arg(short = 'L', long)]
    pub location: bool,
    /// Redirects to follow at most with -L
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirs: u32,
    /// Bytes asked for by each receive
    #[arg(long, value_name = "BYTES", default_value_t = net::RECV_SIZE as u32, value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub recv_size: u32,
    /// Give up connecting to one address after this long
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Give up when no byte has arrived for this long
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Give up when the whole transfer (connects and redirects included) takes this long
    #[arg(short = 'm', long, value_name = "DUR", value_parser = parse_duration)]
    pub max_time: Option<Duration>,
    /// Use IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Extra request header, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Exit 22 on an HTTP status of 400 or more, saving nothing (an existing file stays as it was)
    #[arg(short = 'f', long, conflicts_with = "fail_with_body")]
    pub fail: bool,
    /// Like --fail, but save the body of the error response first
    #[arg(long)]
    pub fail_with_body: bool,
    /// No progress line, even when stderr is a terminal
    #[arg(long)]
    pub no_progress: bool,
    /// Trust the CA certificates in this PEM file too, besides the system's (https)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate (https; insecure: says so on stderr)
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

/// `sockdemo bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Server to load
    #[arg(long, value_name = "ADDR", default_value = net::DEFAULT_HOST)]
    pub host: String,
    /// Server port
    #[arg(short, long, value_name = "PORT", default_value_t = net::DEFAULT_PORT)]
    pub port: u16,
    /// Concurrent clients, one connection and one thread each
    #[arg(short = 'c', long, value_name = "CLIENTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,
    /// Round trips per client
    #[arg(short = 'n', long, value_name = "MESSAGES", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Run for this long instead of a fixed number of messages
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// A fresh connection for every round trip (measures connections per second)
    #[arg(long)]
    pub reconnect: bool,
    /// Send messages as lines (see `client --lines`): exact across networks that split them
    #[arg(long)]
    pub lines: bool,
    /// Give up on a connect or a reply after this long
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    pub json: bool,
}

/// `sockdemo demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The lesson to run; without one, all three in the tutorial's order
    #[arg(value_name = "LESSON")]
    pub lesson: Option<Lesson>,
}

/// `sockdemo demo LESSON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lesson {
    /// A web page over a raw socket: connect, send the request, the 1 KiB receive loop
    Fetch,
    /// The Hello server and its client, both sides shown
    Hello,
    /// Why every connection gets a thread: three clients, threads against --serial
    Threads,
}

impl Cli {
    /// The tracer `--trace` asks for, writing to stderr.
    pub fn tracer(&self) -> Option<Tracer> {
        self.trace.then(|| Tracer::new(self.trace_bytes))
    }
}

/// `sockdemo completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `sockdemo man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {}

impl Command {
    /// Which exit numbers the command speaks.
    pub fn numbering(&self) -> Numbering {
        match self {
            Command::Fetch(_) => Numbering::Curl,
            _ => Numbering::Plain,
        }
    }
}

/// Runs one subcommand to completion; `quiet` is the global `-q`, `trace` what `--trace`
/// asks for (see [`Cli::tracer`]).
pub fn run(command: Command, quiet: bool, trace: Option<Tracer>) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => server::run(server::Config {
            trace,
            ..args.into()
        }),
        Command::Client(args) => client::run(client::Config {
            trace,
            ..args.into()
        }),
        Command::Demo(args) => demo::run(demo::Config {
            trace,
            ..args.into()
        }),
        Command::Fetch(args) => {
            let config = fetch::Config::from(args);
            fetch::run(fetch::Config {
                // A progress line redrawn between trace lines would cut them up.
                progress: config.progress && trace.is_none(),
                quiet,
                trace,
                ..config
            })
        }
        Command::Bench(args) => bench::run(bench::Config {
            trace,
            ..args.into()
        }),
        Command::Completions(args) => to_stdout(|out| generate::completions(args.shell, out)),
        Command::Man(_) => to_stdout(generate::man),
    }
}

/// Runs `write` on a buffered stdout and flushes it.
fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    exit::output_write(write(&mut out).and_then(|()| out.flush()), "stdout")
}

impl From<ServeArgs> for server::Config {
    fn from(args: ServeArgs) -> Self {
        server::Config {
            host: args.host,
            port: args.port,
            max_connections: args.max_connections as usize,
            idle_timeout: net::optional(args.idle_timeout),
            delay: args.delay,
            thread_budget: thread_budget(),
            reuse_port: args.reuse_port,
            proxy_protocol: args.proxy_protocol,
            backlog: args.backlog,
            serial: args.serial,
            trace: None,
        }
    }
}

impl From<ClientArgs> for client::Config {
    fn from(args: ClientArgs) -> Self {
        client::Config {
            trace: None,
            names: args.names.into_iter().map(OsString::into_vec).collect(),
            host: args.host,
            port: args.port,
            timeout: args.timeout,
            mode: mode(args.lines),
        }
    }
}

impl From<FetchArgs> for fetch::Config {
    fn from(args: FetchArgs) -> Self {
        fetch::Config {
            target: args.target,
            output: args.output,
            follow: args.location,
            max_redirs: args.max_redirs,
            recv_size: args.recv_size as usize,
            connect_timeout: args.connect_timeout,
            timeout: args.timeout,
            max_time: args.max_time,
            family: match (args.ipv4, args.ipv6) {
                (true, _) => Family::V4,
                (_, true) => Family::V6,
                _ => Family::Any,
            },
            headers: args.headers,
            fail: match (args.fail, args.fail_with_body) {
                (true, _) => fetch::Fail::WithoutBody,
                (_, true) => fetch::Fail::WithBody,
                _ => fetch::Fail::Never,
            },
            quiet: false,
            progress: !args.no_progress,
            trace: None,
            tls: TlsOptions {
                cacert: args.cacert,
                insecure: args.insecure,
                keylog: keylog_file(),
            },
        }
    }
}

/// Where `SSLKEYLOGFILE` says the TLS session keys go, as curl and browsers read it.
fn keylog_file() -> Option<PathBuf> {
    std::env::var_os(KEYLOG_VARIABLE)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// The environment variable that asks for the TLS session keys.
const KEYLOG_VARIABLE: &str = "SSLKEYLOGFILE";

impl From<BenchArgs> for bench::Config {
    fn from(args: BenchArgs) -> Self {
        bench::Config {
            host: args.host,
            port: args.port,
            clients: args.clients as usize,
            rounds: match args.duration {
                Some(d) => Rounds::For(d),
                None => Rounds::Count(args.messages),
            },
            reconnect: args.reconnect,
            mode: mode(args.lines),
            timeout: args.timeout,
            json: args.json,
            thread_budget: thread_budget(),
            trace: None,
        }
    }
}

impl From<DemoArgs> for demo::Config {
    fn from(args: DemoArgs) -> Self {
        let lessons = match args.lesson {
            None => demo::Lesson::ALL.to_vec(),
            Some(Lesson::Fetch) => vec![demo::Lesson::Fetch],
            Some(Lesson::Hello) => vec![demo::Lesson::Hello],
            Some(Lesson::Threads) => vec![demo::Lesson::Threads],
        };
        demo::Config {
            lessons,
            trace: None,
        }
    }
}

/// Stands in for the system's thread limits when set to a number, so that tests can reach
/// them without thousands of threads. Not in `--help`: it is not for users.
pub const THREAD_BUDGET_ENV: &str = "SOCKDEMO_THREAD_BUDGET";

/// [`THREAD_BUDGET_ENV`]'s number, if it is set to one.
fn thread_budget() -> Option<usize> {
    std::env::var(THREAD_BUDGET_ENV).ok()?.trim().parse().ok()
}

fn mode(lines: bool) -> Mode {
    if lines {
        Mode::Lines
    } else {
        Mode::Raw
    }
}

/// `1s`, `250ms`, `2m`, `1h` or a plain number of seconds (fractions allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (try 1s, 250ms, 2m or 5)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration `{text}` is out of range"))
}

/// A NAME must be one message: not empty (an empty raw message cannot be sent) and without
/// a line ending (the server would take it for the end of a line). Bytes that are not UTF-8
/// are fine: they are sent as given.
fn name_parser() -> impl clap::builder::TypedValueParser<Value = OsString> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new()
        .try_map(|name: OsString| client::check_name(name.as_encoded_bytes()).map(|()| name))
}

/// `Name: value`, the way curl's -H takes it; the name must be a valid header token.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header `{text}` has no `:` (use 'Name: value')"))?;
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token) {
        return Err(format!("invalid header name `{name}`"));
    }
    let value = value.trim();
    if value.contains(['\r', '\n']) {
        return Err(format!("header `{name}` has a line break in its value"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_example_in_the_help_parses() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let after = sub
                .get_after_help()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let examples = after.split("Examples:\n").nth(1).unwrap_or_default();
            let typed: Vec<&str> = examples
                .lines()
                .filter_map(|line| line.split_once("sockdemo ").map(|(_, typed)| typed))
                .collect();
            assert!(
                (2..=3).contains(&typed.len()),
                "{}: {after}",
                sub.get_name()
            );
            for line in typed {
                // The command itself: up to a comment, a pipe, a redirection or a quote.
                let cut = ['#', '|', '<', '>', ')', '\'', '&', ';'];
                let line = line.split(cut).next().unwrap_or_default();
                let words = std::iter::once("sockdemo").chain(line.split_whitespace());
                if let Err(err) = Cli::try_parse_from(words) {
                    panic!("`sockdemo {line}` does not parse: {err}");
                }
            }
        }
    }

    #[test]
    fn durations_in_every_accepted_form() {
        let cases = [
            ("1s", 1000),
            ("250ms", 250),
            ("2m", 120_000),
            ("5", 5000),
            ("0.5", 500),
            ("1.5s", 1500),
            ("0", 0),
            ("1h", 3_600_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_are_rejected_with_a_hint() {
        for text in ["", "s", "1x", "-1s", "1.2.3", "ms5", "1e400"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_name_must_be_one_message() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["sockdemo", "client"], args].concat());
        assert!(parse(&["Michael", "Zoë"]).is_ok());
        for bad in ["", "a\nb", "a\r", "\n"] {
            let err = parse(&["Michael", bad]).expect_err(bad);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headers_split_on_the_first_colon() {
        assert_eq!(
            parse_header("X-A: b:c "),
            Ok(("X-A".to_string(), "b:c".to_string()))
        );
        assert_eq!(
            parse_header("Accept:*/*"),
            Ok(("Accept".to_string(), "*/*".to_string()))
        );
        for bad in ["NoColon", ": v", "Bad Name: v", "X: a\r\nInjected: 1"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }
}

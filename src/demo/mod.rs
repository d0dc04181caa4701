//! `sockdemo demo`: the tutorial's lessons, run on this machine with nothing to set up and no
//! network beyond loopback. Each lesson starts its own peers on free loopback ports and drives
//! the real code through the library's public API, the way the commands do:
//!
//! - [`fetch`](Lesson::Fetch): a small web server stands in for the tutorial's web site, and
//!   the real `fetch` gets a page from it, showing the header, the saved body and how many
//!   1 KiB receives it took;
//! - [`hello`](Lesson::Hello): the Hello server and its client with the tutorial's three
//!   names, both sides shown (the client's lines on stdout, the server's log on stderr);
//! - [`threads`](Lesson::Threads): three clients against a server that waits a second before
//!   each reply, with a thread per connection and then `--serial`, as a timeline.
//!
//! The lessons' words go to stdout, with the output of what they run; logs and `--trace` go
//! to stderr.

mod fetch;
mod hello;
mod page;
mod threads;

use std::io::{self, Write};
use std::time::Duration;

use crate::hello::server::{self, Server};
use crate::net::trace::Tracer;
use crate::net::IoContext;

/// The names the tutorial's client sends.
pub const NAMES: [&str; 3] = ["Michael", "Tracy", "Sarah"];
/// How long a lesson's client waits for a connect or a reply at most.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One lesson of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lesson {
    /// The first half of the tutorial: a web page over a raw socket.
    Fetch,
    /// The second half: the Hello server and its client.
    Hello,
    /// Why the server gives every connection a thread.
    Threads,
}

impl Lesson {
    /// Every lesson, in the tutorial's order.
    pub const ALL: [Lesson; 3] = [Lesson::Fetch, Lesson::Hello, Lesson::Threads];

    fn title(self) -> &'static str {
        match self {
            Lesson::Fetch => "fetch: a web page over a raw socket (客户端)",
            Lesson::Hello => "hello: the Hello server and its client (服务器)",
            Lesson::Threads => "threads: a thread for every connection (每个连接都必须创建新线程)",
        }
    }
}

/// What `sockdemo demo` is to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The lessons to run, in order.
    pub lessons: Vec<Lesson>,
    /// `--trace`: the socket events of every connection the lessons make.
    pub trace: Option<Tracer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lessons: Lesson::ALL.to_vec(),
            trace: None,
        }
    }
}

/// `sockdemo demo`.
pub fn run(config: Config) -> anyhow::Result<()> {
    let count = config.lessons.len();
    for (i, &lesson) in config.lessons.iter().enumerate() {
        if i > 0 {
            say("")?;
        }
        let title = lesson.title();
        if count > 1 {
            say(&format!("--- Lesson {} of {count}: {title} ---", i + 1))?;
        } else {
            say(&format!("--- {title} ---"))?;
        }
        match lesson {
            Lesson::Fetch => fetch::run(&config)?,
            Lesson::Hello => hello::run(&config)?,
            Lesson::Threads => threads::run(&config)?,
        }
    }
    Ok(())
}

/// One line of a lesson's words on stdout, after whatever the log has queued for stderr, so
/// that on a terminal both appear in the order things happened.
fn say(line: &str) -> anyhow::Result<()> {
    crate::console::global().flush(Duration::from_millis(200));
    let mut out = io::stdout().lock();
    crate::exit::output_write(writeln!(out, "{line}").and_then(|()| out.flush()), "stdout")
}

/// A Hello server running on a thread of the demo, on a free loopback port.
struct Running {
    addr: std::net::SocketAddr,
    handle: server::Handle,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Running {
    /// Binds `config` on a free loopback port (its `Listening on` line is logged) and runs it
    /// on a thread named `accept`, the thread that accepts (and with `--serial` serves).
    fn start(config: server::Config) -> anyhow::Result<Running> {
        let server = Server::bind(server::Config {
            host: crate::net::DEFAULT_HOST.to_string(),
            port: 0,
            ..config
        })?;
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("accept".to_string())
            .spawn(move || server.run())
            .io_context(|| "cannot start the server thread")?;
        Ok(Running {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// Shuts the server down and waits for it, so that its last log lines come before what
    /// the lesson says next.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! The fetch lesson, the tutorial's first half: a page fetched over a raw socket by the real
//! `fetch` code, from the `page` module's web server on loopback. The receives are
//! counted by a tracer whose sink keeps the size of every `<= recv` event (and passes the
//! events on to stderr when the user asked for `--trace`), so the lesson can say how many
//! turns the tutorial's `recv(1024)` loop took without a hook in `fetch`.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::page::{self, Site};
use super::{say, Config};
use crate::console::Console;
use crate::fetch;
use crate::net::trace::{Sink, Tracer};
use crate::net::{Family, IoContext, RECV_SIZE};

/// Runs the lesson.
pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    let site = Site::start(&page::page())?;
    let dir = Scratch::create()?;
    let file = dir.path().join("sina.html");
    let url = format!("http://{}/sina.html", site.addr());
    say(&format!(
        "A web server on {} stands in for the tutorial's www.sina.com.cn. sockdemo fetch",
        site.addr()
    ))?;
    say("connects to it, sends the tutorial's GET request, calls recv(1024) until the page")?;
    say("is complete, prints the header and saves the page, as the tutorial's code does:")?;
    say("")?;
    say(&format!("$ sockdemo fetch {url} -o {}", file.display()))?;
    let receives = Arc::new(Receives::new(config.trace.as_ref()));
    let limit = config.trace.as_ref().map_or(1, Tracer::limit);
    let fetched = fetch::run(fetch_config(
        &url,
        &file,
        Tracer::with_sink(limit, receives.clone()),
    ));
    let saved = fs::metadata(&file).map(|meta| meta.len());
    drop(dir);
    fetched?;
    let saved = saved.io_context(|| format!("cannot read {}", file.display()))?;
    let sizes = receives.sizes();
    say(&format!(
        "The header is everything before the first blank line (\\r\\n\\r\\n); the {saved} bytes"
    ))?;
    say(&format!(
        "after it, the page, were saved to {} (a temporary directory, removed again now).",
        file.display()
    ))?;
    say(&format!(
        "The loop took {} receives of at most {RECV_SIZE} bytes: {}.",
        sizes.len(),
        sum_line(&sizes)
    ))
}

/// `sockdemo fetch URL -o FILE`, traced into the counting sink.
fn fetch_config(url: &str, file: &Path, tracer: Tracer) -> fetch::Config {
    fetch::Config {
        target: url.to_string(),
        output: Some(file.to_path_buf()),
        follow: false,
        max_redirs: 0,
        recv_size: RECV_SIZE,
        connect_timeout: super::TIMEOUT,
        timeout: super::TIMEOUT,
        family: Family::Any,
        max_time: Some(super::TIMEOUT),
        headers: Vec::new(),
        fail: fetch::Fail::WithoutBody,
        quiet: false,
        progress: false,
        trace: Some(tracer),
        tls: Default::default(),
    }
}

/// `1024 + 1024 + 310 = 2358 bytes`.
fn sum_line(sizes: &[usize]) -> String {
    let terms: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let total: usize = sizes.iter().sum();
    format!("{} = {total} bytes", terms.join(" + "))
}

/// A trace sink that keeps the size of every receive, and hands every event on to stderr
/// when the user asked to see them.
struct Receives {
    sizes: Mutex<Vec<usize>>,
    forward: Option<Console>,
}

impl Receives {
    fn new(trace: Option<&Tracer>) -> Receives {
        Receives {
            sizes: Mutex::new(Vec::new()),
            forward: trace.map(|_| crate::console::global().clone()),
        }
    }

    fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Sink for Receives {
    fn write_event(&self, event: &[u8]) {
        if let Some(n) = received_bytes(event) {
            self.sizes.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        }
        if let Some(console) = &self.forward {
            console.write_event(event);
        }
    }
}

/// N from an event that starts `<= recv N bytes`.
fn received_bytes(event: &[u8]) -> Option<usize> {
    let first = event.split(|&b| b == b'\n').next()?;
    let n = first.strip_prefix(b"<= recv ")?.strip_suffix(b" bytes")?;
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// A private directory under the system's temporary directory, removed with everything in
/// it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Scratch> {
        let base = std::env::temp_dir();
        let mut last = None;
        for attempt in 0..100 {
            let path = base.join(format!("sockdemo-demo-{}-{attempt}", std::process::id()));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch(path)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => {
                    return Err(err).io_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        let err = last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into());
        Err(err).io_context(|| format!("cannot create a directory in {}", base.display()))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_are_read_back_from_the_tracers_own_events() {
        let receives = Arc::new(Receives::new(None));
        let tracer = Tracer::with_sink(1, receives.clone());
        tracer.event("connect 127.0.0.1:1 -> 127.0.0.1:2");
        tracer.sent(b"GET / HTTP/1.1\r\n\r\n");
        tracer.received(&[b'x'; 1024]);
        tracer.received(b"tail");
        assert_eq!(receives.sizes(), [1024, 4]);
        assert_eq!(sum_line(&receives.sizes()), "1024 + 4 = 1028 bytes");
    }

    #[test]
    fn the_scratch_directory_goes_away_with_its_files() {
        let dir = Scratch::create().unwrap();
        let path = dir.path().to_path_buf();
        fs::write(path.join("sina.html"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}

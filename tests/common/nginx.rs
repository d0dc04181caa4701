//! A real nginx (Debian's `nginx` with its dynamic `stream` module, `libnginx-mod-stream`)
//! as a child process for tests: the other load balancer people run in front of TCP servers.
//!
//! nginx cannot listen on port 0 either, so it is given its listeners the way it hands them
//! to a new binary during an upgrade: a python3 launcher binds each one on port 0, writes
//! the real addresses into the configuration (`{LISTEN0}`, `{LISTEN1}`, ...), puts the file
//! descriptors in the `NGINX` environment variable and `exec`s nginx, which takes the
//! inherited sockets for the `listen` lines that name their addresses. Clients may connect
//! at once (the sockets listen before nginx starts); "ready" is nginx saying it started its
//! worker process, a line on stderr, not a sleep.
//!
//! The configuration given is the body of a `stream { }` block ([`Nginx::start_in`]; the
//! module is loaded) or of an `http { }` block ([`Nginx::start_http`]: nginx as the HTTPS
//! server it mostly is); logs go to stderr and files to a temporary directory, here.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use sockdemo::testing::TempDir;

use super::{launcher, LogLines, STEP};

/// The Debian package that holds the stream module, and where it puts it.
const STREAM_PACKAGE: &str = "libnginx-mod-stream";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Binds the listeners named on the command line, fills their addresses into the
/// configuration template, prints `LISTEN <address>` for each, then becomes nginx (see
/// [`launcher`]).
const LAUNCHER: &str = r#"
template, config, listen = sys.argv[1], sys.argv[2], sys.argv[3:]
bound = listen_on(listen)
text = open(template).read()
for i, (_, address) in enumerate(bound):
    text = text.replace("{LISTEN%d}" % i, address)
open(config, "w").write(text)
os.environ["NGINX"] = "".join(str(s.fileno()) + ";" for s, _ in bound)
announce(bound)
prefix = os.path.dirname(config)
os.execvp("nginx", ["nginx", "-p", prefix, "-c", config, "-e", "stderr"])
"#;

/// True when nginx, its stream module and python3 are installed; see
/// [`require`](super::require) for what happens when one is not.
pub fn installed() -> bool {
    let checks: [(&str, &[&str]); 3] = [
        ("nginx", &["nginx", "-v"]),
        ("python3", &["python3", "--version"]),
        (STREAM_PACKAGE, &["dpkg", "-s", STREAM_PACKAGE]),
    ];
    for (what, argv) in checks {
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let found = status.is_ok_and(|status| status.success());
        if !super::require(found, &format!("{what} is not installed")) {
            return false;
        }
    }
    true
}

/// True when nginx and python3 are installed, for [`Nginx::start_http`] (which needs no
/// module); see [`super::have`] for what happens when one is not.
pub fn http_installed() -> bool {
    super::have("nginx") && super::have("python3")
}

/// A running nginx (master and one worker, in the foreground), stopped when dropped.
pub struct Nginx {
    /// An `Option` so that `drop` can hand it to a thread that waits for it.
    child: Option<Child>,
    /// The real addresses of the listeners asked for, in order (`{LISTEN0}`, ...).
    pub listeners: Vec<SocketAddr>,
    /// nginx's stderr, and the launcher's stdout in the same log.
    log: LogLines,
    _dir: TempDir,
}

impl Nginx {
    /// Starts nginx run through `prefix` (`&["ip", "netns", "exec", "ns1"]` or `&[]`) with
    /// `stream` (the body of its `stream` block) and a listener on each of `listen`
    /// (`10.0.0.2:0`, ...), and waits until its worker has started.
    pub fn start_in(prefix: &[&str], listen: &[&str], stream: &str) -> Nginx {
        let config = format!(
            "load_module {STREAM_MODULE};\n\
             daemon off;\n\
             worker_processes 1;\n\
             error_log stderr info;\n\
             pid nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             stream {{\n{stream}\n}}\n"
        );
        Nginx::launch(prefix, listen, &config)
    }

    /// Starts nginx on this machine with `http` (the body of its `http` block, where
    /// `{LISTEN0}`, ... stand for the listeners' addresses) and a listener on each of
    /// `listen` (`127.0.0.1:0`, ...), and waits until its worker has started.
    pub fn start_http(listen: &[&str], http: &str) -> Nginx {
        let config = format!(
            "daemon off;\n\
             worker_processes 1;\n\
             error_log stderr info;\n\
             pid nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n    access_log off;\n    default_type application/octet-stream;\n\
             {http}\n}}\n"
        );
        Nginx::launch(&[], listen, &config)
    }

    /// Writes `config` (with its `{LISTEN<i>}` placeholders) for the launcher and starts it.
    fn launch(prefix: &[&str], listen: &[&str], config: &str) -> Nginx {
        let dir = TempDir::new("nginx");
        let template = dir.join("nginx.conf.in");
        std::fs::write(&template, config).expect("write the nginx configuration");
        let config = dir.join("nginx.conf");
        let files = [template.as_path(), config.as_path()];
        let mut child = launcher::spawn(prefix, LAUNCHER, &files, listen, "nginx");
        // The launcher's lines on a channel of their own: waiting for them must not pass
        // over nginx's first lines.
        let stdout = child.stdout.take().expect("stdout");
        let log = LogLines::follow("nginx", &mut child);
        let out = log.also(stdout);
        let mut nginx = Nginx {
            child: Some(child),
            listeners: Vec::new(),
            log,
            _dir: dir,
        };
        for _ in listen {
            let line = out
                .recv_timeout(STEP)
                .unwrap_or_else(|_| panic!("no listener from the launcher: {:?}", nginx.log()));
            nginx.listeners.push(launcher::listener(&line));
        }
        nginx.wait_for_log("start worker process");
        nginx
    }

    /// The address of listener `index` (`{LISTEN<index>}` in the configuration).
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.listeners[index]
    }

    /// Waits (at most 20 s) for a line of nginx's stderr containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Every line nginx (and the launcher) wrote so far.
    pub fn log(&self) -> Vec<String> {
        self.log.all()
    }
}

impl Drop for Nginx {
    /// SIGTERM (nginx's fast shutdown: the master stops its worker, then itself), then a
    /// bounded wait; SIGKILL if it does not go.
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-s", "TERM", &pid]).status();
        super::wait_within(child, STEP);
    }
}

//! `sockdemo serve` and the terminating signals other than SIGINT and SIGTERM: the same clean
//! shutdown, then exit status 128 + the signal's number.

mod common;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{greeted, read_to_close, Server, STEP};

#[test]
fn serve_shuts_down_cleanly_and_exits_128_plus_n_on_other_terminating_signals() {
    for (name, number) in [("HUP", 1), ("QUIT", 3), ("USR1", 10), ("ALRM", 14)] {
        let mut server = Server::start(&[]);
        let mut client = greeted(&server);
        let pid = server.child.id().to_string();
        let sent = Command::new("kill").args(["-s", name, &pid]).status();
        assert!(sent.unwrap().success());
        server.wait_for_log(&format!("Received SIG{name}, shutting down"));
        assert_eq!(read_to_close(&mut client), b"", "the client reads EOF");
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after SIG{name}");
            thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(128 + number), "SIG{name}");
    }
}

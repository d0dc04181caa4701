//! `sockdemo serve` and the terminating signals other than SIGINT and SIGTERM: the same clean
//! shutdown, then exit status 128 + the signal's number.

use crate::common::{greeted, Server, STEP};

#[test]
fn serve_shuts_down_cleanly_and_exits_128_plus_n_on_other_terminating_signals() {
    for (name, number) in [("HUP", 1), ("QUIT", 3), ("USR1", 10), ("ALRM", 14)] {
        let mut server = Server::start(&[]);
        let client = greeted(&server);
        let local = client.local_addr().unwrap();
        server.wait_for_log(&format!("Accept new connection from {local}"));
        let status = server.signal_and_wait(name, STEP);
        assert_eq!(status.code(), Some(128 + number), "SIG{name}");
        server.wait_for_log(&format!("Received SIG{name}, shutting down"));
        // Its exit has closed the client's socket anyway: the log tells whether the server
        // closed it itself, while it still ran.
        server.wait_for_log("Server stopped");
        server.assert_closed_before_stopping(&[client]);
    }
}

//! Where a user is stuck, the message says what to type instead: a port already taken, a
//! port written into `--host`, and `client HOST PORT` typed as netcat takes it.

use std::net::TcpListener;

use crate::common::{run, sockdemo, stderr, stdout, Server, STEP};

#[test]
fn a_port_in_use_suggests_port_0_or_another_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(&mut sockdemo(["serve", "--port", &port]), STEP);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot listen on 127.0.0.1:{port}: address already in use (another program \
             listens there: --port 0 picks a free port, or choose another --port)\n"
        )
    );
}

#[test]
fn a_port_written_into_host_suggests_port() {
    let server = Server::start(&[]);
    let port = server.port();
    for (host, name) in [
        (format!("localhost:{port}"), "localhost"),
        (format!("127.0.0.1:{port}"), "127.0.0.1"),
        (format!("[::1]:{port}"), "::1"),
    ] {
        let output = run(&mut sockdemo(["client", "--host", &host, "Michael"]), STEP);
        assert_eq!(output.status.code(), Some(1), "{host}");
        let err = stderr(&output);
        assert!(err.starts_with("error: cannot resolve "), "{err}");
        assert!(
            err.ends_with(&format!(
                " (the port goes in --port: --host {name} --port {port})\n"
            )),
            "{err}"
        );
    }
}

#[test]
fn names_that_read_as_host_and_port_get_a_note_and_are_still_sent() {
    let server = Server::start(&[]);
    let port = server.port();
    let output = run(
        &mut sockdemo(["client", "--port", &port, "localhost", "9999"]),
        STEP,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Welcome!\nHello, localhost!\nHello, 9999!\n"
    );
    let note = "the names localhost 9999 are sent as messages; to connect to localhost port \
                9999, use --host localhost --port 9999";
    assert!(stderr(&output).contains(note), "{}", stderr(&output));

    let quiet = run(
        &mut sockdemo(["-q", "client", "--port", &port, "localhost", "9999"]),
        STEP,
    );
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");

    let names = run(
        &mut sockdemo(["client", "--port", &port, "Michael", "42"]),
        STEP,
    );
    assert!(names.status.success());
    assert_eq!(stderr(&names), "", "ordinary names get no note");
}

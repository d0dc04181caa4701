//! fetch's progress line: drawn and redrawn on a real terminal (a pseudo-terminal that
//! `script` gives the command), never on a stderr that is a file, and not with
//! `--no-progress` or `-q`. The body comes from a peer that sends it slowly, so that a
//! progress line has time to be redrawn.

use std::fs::{self, File};
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::common::http_peer::{Peer, Reply, TempDir};
use crate::common::{self, have, run, sockdemo, stderr, stdout, BIN, STEP};

const PIECE: usize = 1024;
const PIECES: usize = 8;
/// Between two pieces: the whole body takes about 1.2 s.
const PAUSE: Duration = Duration::from_millis(150);

/// A peer that sends an 8 KiB body a piece at a time, with or without its length.
fn slow_peer(with_length: bool) -> Peer {
    let head = if with_length {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            PIECE * PIECES
        )
    } else {
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
    };
    Peer::v4(vec![Reply::Custom(Box::new(move |stream| {
        let _ = stream.write_all(head.as_bytes());
        for _ in 0..PIECES {
            thread::sleep(PAUSE);
            let _ = stream.write_all(&[b'x'; PIECE]);
        }
    }))])
}

/// `sockdemo ARGS... >/dev/null` on a pseudo-terminal: what the terminal showed, which is
/// stderr alone.
fn on_a_terminal(args: &[&str], dir: &TempDir) -> String {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|arg| format!("'{arg}'"))
        .collect();
    let line = format!("{} >/dev/null", quoted.join(" "));
    let mut script = Command::new("script");
    script
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let output = run(&mut script, STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// How many times a line was redrawn: indicatif returns to the start of the line and
/// clears it before each redraw.
fn redraws(screen: &str) -> usize {
    screen.matches("\r\x1b[2K").count()
}

#[test]
fn a_terminal_shows_the_progress_line_redrawn_as_the_body_arrives() {
    if !have("script") {
        return;
    }
    let dir = TempDir::new("progress-tty");
    let peer = slow_peer(true);
    let screen = on_a_terminal(&["fetch", &peer.url("/body"), "-o", "body"], &dir);
    assert!(redraws(&screen) >= 3, "{screen:?}");
    for needle in ["8.00 KiB / 8.00 KiB", "100%", "KiB/s", "left"] {
        assert!(
            screen.contains(needle),
            "{needle:?} missing from {screen:?}"
        );
    }
    // Part-way figures were shown, not only the final one.
    assert!(screen.contains(" / 8.00 KiB"), "{screen:?}");
    let partial = screen
        .split("\r\x1b[2K")
        .filter(|line| line.contains("% ["))
        .any(|line| !line.contains("100%"));
    assert!(partial, "{screen:?}");
    // Finished neatly: the line ends before the log line that follows it.
    let last = screen.rfind("100%").unwrap();
    let saved = screen.find("Saved 8192 bytes to body").expect(&screen);
    assert!(
        last < saved && screen[last..saved].contains('\n'),
        "{screen:?}"
    );
    assert_eq!(
        fs::read(dir.join("body")).unwrap(),
        vec![b'x'; PIECE * PIECES]
    );
}

#[test]
fn without_a_length_the_line_shows_bytes_and_rate() {
    if !have("script") {
        return;
    }
    let dir = TempDir::new("progress-tty-unknown");
    let peer = slow_peer(false);
    let screen = on_a_terminal(&["fetch", &peer.url("/body"), "-o", "body"], &dir);
    assert!(redraws(&screen) >= 3, "{screen:?}");
    assert!(screen.contains("8.00 KiB"), "{screen:?}");
    assert!(screen.contains("KiB/s"), "{screen:?}");
    assert!(!screen.contains('%'), "{screen:?}");
}

#[test]
fn no_progress_quiet_and_trace_draw_nothing_on_a_terminal() {
    if !have("script") {
        return;
    }
    // --trace writes its own lines while the body arrives: a redrawn line would cut them up.
    for flag in ["--no-progress", "-q", "--trace"] {
        let dir = TempDir::new("progress-off");
        let peer = slow_peer(true);
        let screen = on_a_terminal(&["fetch", flag, &peer.url("/body"), "-o", "body"], &dir);
        assert_eq!(redraws(&screen), 0, "{flag}: {screen:?}");
        assert!(!screen.contains("KiB/s"), "{flag}: {screen:?}");
        assert_eq!(fs::read(dir.join("body")).unwrap().len(), PIECE * PIECES);
    }
}

#[test]
fn a_stderr_that_is_a_file_gets_no_progress_at_all() {
    let dir = TempDir::new("progress-file");
    let peer = slow_peer(true);
    let log = dir.join("stderr.log");
    let mut cmd = sockdemo(["fetch", &peer.url("/body"), "-o", "body"]);
    cmd.current_dir(dir.path())
        .env("TERM", "xterm")
        .stderr(Stdio::from(File::create(&log).unwrap()));
    let child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let output = common::wait_output(child, STEP);
    assert!(output.status.success());
    let written = fs::read_to_string(&log).unwrap();
    assert!(written.contains("Saved 8192 bytes to body"), "{written:?}");
    for mark in ["\r", "\x1b[", "KiB/s", "%"] {
        assert!(!written.contains(mark), "{mark:?} in {written:?}");
    }
}

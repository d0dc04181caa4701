//! What every user sees first: help, version, usage errors, and the demo.

use crate::common::{run, sockdemo, stderr, stdout, STEP};

const SUBCOMMANDS: [&str; 5] = ["fetch", "serve", "client", "bench", "demo"];

#[test]
fn help_and_version_everywhere() {
    let version = format!("sockdemo {}\n", env!("CARGO_PKG_VERSION"));
    for sub in std::iter::once(None).chain(SUBCOMMANDS.map(Some)) {
        let args: Vec<&str> = sub.into_iter().collect();
        let help = run(sockdemo(&args).arg("--help"), STEP);
        assert!(help.status.success(), "{sub:?} --help");
        assert!(stdout(&help).contains("Usage: sockdemo"), "{sub:?}");
        let ver = run(sockdemo(&args).arg("--version"), STEP);
        assert!(ver.status.success(), "{sub:?} --version");
        let want = match sub {
            Some(sub) => format!("sockdemo-{sub} {}\n", env!("CARGO_PKG_VERSION")),
            None => version.clone(),
        };
        assert_eq!(stdout(&ver), want);
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["serve", "--port", "99999"],
        vec!["serve", "--delay", "soon"],
        vec!["nosuch"],
        vec!["fetch"],
        vec!["serve", "-q", "-v"],
    ] {
        let output = run(&mut sockdemo(&args), STEP);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).starts_with("error:"), "{args:?}");
    }
}

#[test]
fn demo_hello_runs_the_tutorial_end_to_end() {
    let output = run(&mut sockdemo(["demo", "hello"]), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("\nWelcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"),
        "{}",
        stdout(&output)
    );
    let log = stderr(&output);
    for needle in [
        "Listening on 127.0.0.1:",
        "Accept new connection from",
        "closed.",
    ] {
        assert!(log.contains(needle), "{needle:?} missing from\n{log}");
    }
}

#[test]
fn quiet_silences_the_log_and_rust_log_overrides() {
    let quiet = run(&mut sockdemo(["-q", "demo", "hello"]), STEP);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");
    let overridden = run(
        sockdemo(["-q", "demo", "hello"]).env("RUST_LOG", "info"),
        STEP,
    );
    assert!(stderr(&overridden).contains("Listening on"));
}

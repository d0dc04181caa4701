//! What a user installs beside the binary: completion scripts that their shell accepts and
//! that complete subcommands and flags, and a man page that man and groff render without a
//! warning.

use std::process::{Command, Stdio};

use crate::common::{self, have, run, run_with_input, sockdemo, stderr, stdout, BIN, STEP};

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn every_shell_gets_a_completion_script() {
    for shell in SHELLS {
        let output = run(&mut sockdemo(["completions", shell]), STEP);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        assert!(stdout(&output).contains("sockdemo"), "{shell}");
        assert_eq!(stderr(&output), "", "{shell}");
    }
    let unknown = run(&mut sockdemo(["completions", "tcsh"]), STEP);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn bash_accepts_the_completion_script_and_completes_with_it() {
    if !have("bash") {
        return;
    }
    let script = run(&mut sockdemo(["completions", "bash"]), STEP);
    let syntax = run_with_input(Command::new("bash").arg("-n"), &script.stdout, STEP);
    assert!(syntax.status.success(), "bash -n: {}", stderr(&syntax));
    assert_eq!(stderr(&syntax), "");

    // Loaded as a user's ~/.bashrc would, then asked what `sockdemo fe<TAB>` and
    // `sockdemo fetch --no-p<TAB>` complete to.
    let session = format!(
        r#"source <('{BIN}' completions bash)
COMP_WORDS=(sockdemo fe); COMP_CWORD=1; _sockdemo sockdemo fe sockdemo
echo "[${{COMPREPLY[*]}}]"
COMP_WORDS=(sockdemo fetch --no-p); COMP_CWORD=2; _sockdemo sockdemo --no-p fetch
echo "[${{COMPREPLY[*]}}]""#
    );
    let completed = run(Command::new("bash").args(["-c", &session]), STEP);
    assert!(completed.status.success(), "{}", stderr(&completed));
    assert_eq!(stdout(&completed), "[fetch]\n[--no-progress]\n");
}

fn man_page() -> Vec<u8> {
    let output = run(&mut sockdemo(["man"]), STEP);
    assert!(output.status.success(), "{}", stderr(&output));
    output.stdout
}

#[test]
fn groff_renders_the_man_page_without_a_warning() {
    if !have("groff") {
        return;
    }
    let checked = run_with_input(
        Command::new("groff").args(["-man", "-ww", "-z"]),
        &man_page(),
        STEP,
    );
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert_eq!(stderr(&checked), "");
}

#[test]
fn man_shows_every_subcommand_with_its_options_and_examples() {
    if !have("man") {
        return;
    }
    let mut man = Command::new("man");
    man.args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env_remove("MANOPT");
    let shown = run_with_input(&mut man, &man_page(), STEP);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(stderr(&shown), "");
    let page = stdout(&shown);
    for needle in [
        "SUBCOMMANDS",
        "SOCKDEMO FETCH",
        "--connect-timeout <DUR>",
        "SOCKDEMO SERVE",
        "SOCKDEMO CLIENT",
        "SOCKDEMO BENCH",
        "SOCKDEMO COMPLETIONS",
        "22  -f/--fail-with-body and a 400+ status",
    ] {
        assert!(page.contains(needle), "{needle:?} missing from\n{page}");
    }
}

#[test]
fn a_stdout_closed_before_a_byte_ends_completions_and_man_quietly() {
    for args in [&["completions", "zsh"][..], &["man"]] {
        // The reading end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = sockdemo(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = common::wait_output(child, STEP);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

//! What `--help` shows: every subcommand ends with a few examples to type (fetch keeps its
//! exit-status table before them), and `-v` promises only log output that exists.

use crate::common::{run, sockdemo, stderr, stdout, STEP};

const SUBCOMMANDS: [&str; 7] = [
    "fetch",
    "serve",
    "client",
    "bench",
    "demo",
    "completions",
    "man",
];

#[test]
fn every_subcommand_help_ends_with_two_or_three_examples() {
    for sub in SUBCOMMANDS {
        let output = run(&mut sockdemo([sub, "--help"]), STEP);
        assert!(output.status.success(), "{sub}");
        let help = stdout(&output);
        let (_, examples) = help
            .rsplit_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{help}"));
        let lines: Vec<&str> = examples.lines().collect();
        assert!((2..=3).contains(&lines.len()), "{sub}:\n{examples}");
        for line in lines {
            assert!(
                line.starts_with("  ")
                    && line.contains("sockdemo ")
                    && line.split_whitespace().any(|word| word == sub),
                "{sub}: {line:?}"
            );
        }
    }
}

#[test]
fn fetch_help_keeps_its_exit_status_table_before_the_examples() {
    let help = stdout(&run(&mut sockdemo(["fetch", "--help"]), STEP));
    let table = help.find("Exit status (curl's numbers").expect(&help);
    let examples = help.find("\nExamples:\n").expect(&help);
    assert!(table < examples, "{help}");
    assert!(
        help.contains("  22  -f/--fail-with-body and a 400+ status"),
        "{help}"
    );
}

#[test]
fn verbose_promises_only_log_levels_that_exist() {
    let help = stdout(&run(&mut sockdemo(["--help"]), STEP));
    let verbose = help
        .lines()
        .find(|line| line.contains("--verbose"))
        .expect(&help);
    let vv = run(&mut sockdemo(["-vv", "demo"]), STEP);
    assert!(vv.status.success(), "{}", stderr(&vv));
    let traced = stderr(&vv).contains("TRACE");
    let promised = verbose.contains("-vv") || verbose.contains("trace");
    assert!(
        traced || !promised,
        "--help promises {verbose:?}, but -vv shows no trace-level line"
    );
}

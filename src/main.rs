//! The `sockdemo` binary: parse the command line, start logging, run, turn the outcome
//! into an exit status. Everything else lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sockdemo::cli::{self, Cli};
use sockdemo::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let numbering = cli.command.numbering();
    let Err(err) = cli::run(cli.command) else {
        return ExitCode::SUCCESS;
    };
    match exit::status(&err, numbering) {
        None => ExitCode::SUCCESS,
        Some(code) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::from(code)
        }
    }
}

/// Info by default (the server's `Listening on` line is info); `-v` debug, `-vv` trace,
/// `-q` errors only; `RUST_LOG` overrides all of them.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Info,
        (false, 1) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .format_target(false)
        .init();
}

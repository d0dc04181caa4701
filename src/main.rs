//! The `sockdemo` binary: parse the command line, start logging, run, turn the outcome
//! into an exit status. Everything else lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sockdemo::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match sockdemo::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`| head`) is how a pipeline ends, not a failure.
        Err(err) if sockdemo::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
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

//! The `sockdemo` binary: parse the command line, start logging, run, turn the outcome
//! into an exit status. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use sockdemo::cli::{self, Cli};
use sockdemo::{console, exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let numbering = cli.command.numbering();
    let tracer = cli.tracer();
    let status = match cli::run(cli.command, cli.quiet, tracer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match exit::status(&err, numbering) {
            None => ExitCode::SUCCESS,
            Some(code) => {
                console::print(format!("error: {err:#}\n"));
                ExitCode::from(code)
            }
        },
    };
    // What is still queued for stderr, for at most a second: a full pipe cannot hold us.
    console::finish();
    status
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
    console::init_logging(level);
}

//! The `tact` binary; everything but argument parsing lives in the library (src/lib.rs).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tact::cli::Cli::parse();
    match tact::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

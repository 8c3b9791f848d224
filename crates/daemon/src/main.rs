//! The `tact` binary; everything but argument parsing lives in the library (src/lib.rs).

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: planning and sending allocate small strings
/// and maps on several threads at once, where glibc's allocator spent about a sixth of
/// planning's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    exit_quietly_on_closed_stdout();
    let cli = tact::cli::Cli::parse();
    match tact::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ends the process with exit code 0 when standard output is closed early, as in
/// `tact explain ID | head -1`. Rust ignores SIGPIPE, so `println!` panics instead.
fn exit_quietly_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
}

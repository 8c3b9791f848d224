//! `tact import customers|contacts|signals FILE.csv`.

use anyhow::Context as _;
use std::process::ExitCode;
use tact_storage::import::{self, ImportReport};

use super::Context;
use crate::cli::ImportCommand;

/// Exit code when some rows were rejected and the others kept.
const SOME_REJECTED: u8 = 2;

/// Runs an import and prints its report: 0 when every row was accepted, 2 when some were
/// rejected.
///
/// # Errors
///
/// Fails when the file cannot be read, its header lacks a required column, or the
/// database fails.
pub fn run(context: &Context, command: ImportCommand) -> anyhow::Result<ExitCode> {
    let (what, path) = match &command {
        ImportCommand::Customers(file) => ("customers", &file.file),
        ImportCommand::Contacts(file) => ("contacts", &file.file),
        ImportCommand::Signals(file) => ("signals", &file.file),
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = std::io::BufReader::new(file);
    let store = context.open_store()?;
    let report = match command {
        ImportCommand::Customers(_) => import::import_customers(&store, reader),
        ImportCommand::Contacts(_) => import::import_contacts(&store, reader),
        ImportCommand::Signals(_) => import::import_signals(&store, reader),
    }
    .with_context(|| format!("importing {what} from {} failed", path.display()))?;
    print!(
        "{}",
        format_report(what, &path.display().to_string(), &report)
    );
    if report.rejected.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(SOME_REJECTED))
    }
}

fn format_report(what: &str, path: &str, report: &ImportReport) -> String {
    let mut text = format!(
        "{what} from {path}: {} inserted, {} updated, {} unchanged, {} rejected\n",
        report.inserted,
        report.updated,
        report.unchanged,
        report.rejected.len()
    );
    for rejection in &report.rejected {
        text.push_str(&format!("line {}: {}\n", rejection.line, rejection.reason));
    }
    text
}

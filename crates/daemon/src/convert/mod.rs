//! Converters from public data sets to tact's import format.
//!
//! Each converter reads the data set's own file and writes the CSV files that
//! `tact import customers|contacts|signals` reads, so a data set goes through the same
//! importers, checks and reports as any customer list. Rows that cannot be converted are
//! counted by cause and the first few are listed with their line numbers; none is dropped
//! silently.

pub mod bank_marketing;
pub mod online_retail;
mod places;

use std::fmt;
use std::path::{Path, PathBuf};

/// How many example line numbers a report keeps per cause.
const EXAMPLES_PER_CAUSE: usize = 5;

/// Errors that stop a conversion. Bad rows do not: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The input file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input has a header that is not the data set's.
    #[error("{path} is not a {dataset} file: expected the header {expected:?}, found {found:?}")]
    Header {
        /// The input file.
        path: PathBuf,
        /// The data set expected.
        dataset: &'static str,
        /// The expected header.
        expected: String,
        /// The header found.
        found: String,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV reader failed in a way that is not one row's fault.
    #[error("cannot parse {path}: {source}")]
    Csv {
        /// The input file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
}

/// Rows skipped for one cause: how many and the first few line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Number of rows.
    pub count: u64,
    /// Line numbers (1-based, the header is line 1) of the first rows.
    pub lines: Vec<u64>,
}

impl Skipped {
    fn add(&mut self, line: u64) {
        self.count += 1;
        if self.lines.len() < EXAMPLES_PER_CAUSE {
            self.lines.push(line);
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.count)?;
        if !self.lines.is_empty() {
            let lines: Vec<String> = self.lines.iter().map(u64::to_string).collect();
            let more = if self.count > self.lines.len() as u64 {
                ", …"
            } else {
                ""
            };
            write!(f, " (lines {}{more})", lines.join(", "))?;
        }
        Ok(())
    }
}

fn csv_writer(path: &Path) -> Result<csv::Writer<std::fs::File>, ConvertError> {
    let file = std::fs::File::create(path).map_err(|source| ConvertError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(csv::Writer::from_writer(file))
}

fn write_error(path: &Path, error: csv::Error) -> ConvertError {
    ConvertError::Write {
        path: path.to_owned(),
        source: std::io::Error::other(error),
    }
}

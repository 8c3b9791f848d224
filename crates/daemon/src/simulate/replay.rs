//! Replaying a data set's customers and signals in time order, through the importers.
//!
//! A customer is imported when their first signal is replayed, so nobody is in a campaign's
//! audience before they are known to the shop. Rows go through `tact import`'s own
//! importers, so the same checks apply and every rejected row is reported with its line
//! number in the original file.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use csv::StringRecord;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use tact_domain::{CustomerId, SignalKind};
use tact_storage::{Store, import};

/// Columns of the signals file that the signal importer reads; every other column updates
/// the customer's template field of the same name.
const SIGNAL_COLUMNS: [&str; 7] = [
    "external_id",
    "kind",
    "channel",
    "at",
    "topic",
    "value",
    "machine",
];
/// Columns of the customers file that are not template fields.
const CUSTOMER_COLUMNS: [&str; 7] = [
    "external_id",
    "name",
    "email",
    "phone",
    "timezone",
    "locale",
    "account",
];
/// Rejected rows kept, per file, with their reasons.
const REJECTIONS_KEPT: usize = 10;

/// Rows rejected from one file.
#[derive(Debug, Clone, Default)]
pub struct Rejected {
    /// How many.
    pub count: u64,
    /// The first few, as line number and reason.
    pub first: Vec<(u64, String)>,
}

impl Rejected {
    fn add(&mut self, line: u64, reason: String) {
        self.count += 1;
        if self.first.len() < REJECTIONS_KEPT {
            self.first.push((line, reason));
        }
    }
}

/// What one call to [`Replay::replay_until`] stored.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The signals stored: customer, kind and time.
    pub signals: Vec<(CustomerId, SignalKind, DateTime<Utc>)>,
}

/// A signal row read ahead, with its line number and time.
#[derive(Debug)]
struct Pending {
    line: u64,
    record: StringRecord,
    at: Option<DateTime<Utc>>,
}

/// The replay's position in both files.
#[derive(Debug)]
pub struct Replay {
    customer_header: StringRecord,
    customer_rows: HashMap<String, (u64, StringRecord)>,
    field_names: Vec<String>,
    signals: csv::Reader<File>,
    signals_path: std::path::PathBuf,
    signal_header: StringRecord,
    signal_external_id: usize,
    signal_kind: usize,
    signal_at: usize,
    /// (signal column, customer column) pairs of field updates.
    updates: Vec<(usize, usize)>,
    next: Option<Pending>,
    last_at: Option<(u64, DateTime<Utc>)>,
    customers: HashMap<String, CustomerId>,
    /// Customer rows rejected.
    pub rejected_customers: Rejected,
    /// Signal rows rejected.
    pub rejected_signals: Rejected,
    /// Signal rows stored.
    pub signals_stored: u64,
}

impl Replay {
    /// Opens both files and reads the customers into memory, keyed by external id.
    ///
    /// # Errors
    ///
    /// Fails when a file cannot be read or lacks a required column.
    pub fn open(customers: &Path, signals: &Path) -> anyhow::Result<Replay> {
        let mut reader = csv::Reader::from_path(customers)
            .with_context(|| format!("cannot read customers {}", customers.display()))?;
        let customer_header = reader.headers()?.clone();
        let Some(customer_id) = position(&customer_header, "external_id") else {
            bail!("{} has no external_id column", customers.display());
        };
        let mut customer_rows = HashMap::new();
        for record in reader.records() {
            let record =
                record.with_context(|| format!("cannot read customers {}", customers.display()))?;
            let line = record.position().map_or(0, |p| p.line());
            let external_id = record
                .get(customer_id)
                .unwrap_or_default()
                .trim()
                .to_owned();
            customer_rows.insert(external_id, (line, record));
        }
        let field_names = customer_header
            .iter()
            .filter(|name| !CUSTOMER_COLUMNS.contains(name))
            .map(str::to_owned)
            .collect();

        let mut signal_reader = csv::Reader::from_path(signals)
            .with_context(|| format!("cannot read signals {}", signals.display()))?;
        let signal_header = signal_reader.headers()?.clone();
        let column = |name: &str| {
            position(&signal_header, name)
                .with_context(|| format!("{} has no {name} column", signals.display()))
        };
        let updates = signal_header
            .iter()
            .enumerate()
            .filter(|(_, name)| !SIGNAL_COLUMNS.contains(name))
            .filter_map(|(index, name)| Some((index, position(&customer_header, name)?)))
            .collect();
        let mut replay = Replay {
            signal_external_id: column("external_id")?,
            signal_kind: column("kind")?,
            signal_at: column("at")?,
            customer_header,
            customer_rows,
            field_names,
            signals: signal_reader,
            signals_path: signals.to_owned(),
            signal_header,
            updates,
            next: None,
            last_at: None,
            customers: HashMap::new(),
            rejected_customers: Rejected::default(),
            rejected_signals: Rejected::default(),
            signals_stored: 0,
        };
        replay.read_ahead()?;
        Ok(replay)
    }

    /// The template fields the customers file provides.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    /// The customers imported so far, by external id.
    pub fn customers(&self) -> &HashMap<String, CustomerId> {
        &self.customers
    }

    fn read_ahead(&mut self) -> anyhow::Result<()> {
        let mut record = StringRecord::new();
        let path = &self.signals_path;
        if !self
            .signals
            .read_record(&mut record)
            .with_context(|| format!("cannot read signals {}", path.display()))?
        {
            self.next = None;
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        let at = record
            .get(self.signal_at)
            .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
            .map(|at| at.with_timezone(&Utc));
        if let (Some(at), Some((last_line, last_at))) = (at, self.last_at) {
            if at < last_at {
                bail!(
                    "the signals file is not sorted by `at`: line {line} ({at}) is earlier \
                     than line {last_line} ({last_at}); sort it by time"
                );
            }
        }
        if let Some(at) = at {
            self.last_at = Some((line, at));
        }
        self.next = Some(Pending { line, record, at });
        Ok(())
    }

    /// Imports every signal before `until`, and each customer at their first signal.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or is not sorted, or the store fails.
    pub fn replay_until(
        &mut self,
        store: &Store,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Replayed> {
        let mut customers: IndexMap<String, (u64, StringRecord)> = IndexMap::new();
        let mut signals: Vec<(u64, StringRecord)> = Vec::new();
        while let Some(pending) = self.next.take() {
            if pending.at.is_some_and(|at| at >= until) {
                self.next = Some(pending);
                break;
            }
            self.stage_customer(&pending.record, &mut customers);
            signals.push((pending.line, pending.record));
            self.read_ahead()?;
        }
        if signals.is_empty() {
            return Ok(Replayed::default());
        }
        self.import_customers(store, customers)?;
        self.import_signals(store, signals)
    }

    /// Queues the customer row of a signal: the first time the customer appears, or with
    /// updated fields.
    fn stage_customer(
        &mut self,
        signal: &StringRecord,
        staged: &mut IndexMap<String, (u64, StringRecord)>,
    ) {
        let external_id = signal
            .get(self.signal_external_id)
            .unwrap_or_default()
            .trim();
        let Some((line, row)) = self.customer_rows.get_mut(external_id) else {
            return;
        };
        let mut changed = false;
        for (signal_column, customer_column) in &self.updates {
            let value = signal.get(*signal_column).unwrap_or_default();
            if !value.is_empty() && row.get(*customer_column) != Some(value) {
                let mut cells: Vec<&str> = row.iter().collect();
                cells[*customer_column] = value;
                *row = StringRecord::from(cells);
                changed = true;
            }
        }
        if changed || !self.customers.contains_key(external_id) {
            staged.insert(external_id.to_owned(), (*line, row.clone()));
        }
    }

    fn import_customers(
        &mut self,
        store: &Store,
        staged: IndexMap<String, (u64, StringRecord)>,
    ) -> anyhow::Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let rows: Vec<(u64, StringRecord)> = staged.values().cloned().collect();
        let csv = to_csv(&self.customer_header, &rows)?;
        let report = import::import_customers(store, csv.as_slice())?;
        for rejection in report.rejected {
            let line = original_line(&rows, rejection.line);
            self.rejected_customers.add(line, rejection.reason);
        }
        for external_id in staged.keys() {
            if self.customers.contains_key(external_id) {
                continue;
            }
            match store.customer_by_external_id(external_id) {
                Ok(customer) => {
                    self.customers.insert(external_id.clone(), customer.id);
                }
                Err(tact_storage::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    fn import_signals(
        &mut self,
        store: &Store,
        rows: Vec<(u64, StringRecord)>,
    ) -> anyhow::Result<Replayed> {
        let csv = to_csv(&self.signal_header, &rows)?;
        let report = import::import_signals(store, csv.as_slice())?;
        let mut rejected_lines = Vec::with_capacity(report.rejected.len());
        for rejection in report.rejected {
            rejected_lines.push(rejection.line);
            let line = original_line(&rows, rejection.line);
            self.rejected_signals.add(line, rejection.reason);
        }
        let mut replayed = Replayed::default();
        for (index, (_, record)) in rows.iter().enumerate() {
            // The batch's header is line 1, so its rows start at line 2.
            if rejected_lines.contains(&(index as u64 + 2)) {
                continue;
            }
            self.signals_stored += 1;
            let external_id = record
                .get(self.signal_external_id)
                .unwrap_or_default()
                .trim();
            let kind = record
                .get(self.signal_kind)
                .and_then(|k| SignalKind::parse(k.trim()));
            let at = record
                .get(self.signal_at)
                .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok());
            if let (Some(customer), Some(kind), Some(at)) =
                (self.customers.get(external_id), kind, at)
            {
                replayed
                    .signals
                    .push((*customer, kind, at.with_timezone(&Utc)));
            }
        }
        Ok(replayed)
    }
}

fn position(header: &StringRecord, name: &str) -> Option<usize> {
    header.iter().position(|column| column.trim() == name)
}

fn to_csv(header: &StringRecord, rows: &[(u64, StringRecord)]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for (_, record) in rows {
        writer.write_record(record)?;
    }
    Ok(writer.into_inner()?)
}

/// Maps a line of a replay batch (header on line 1) to the line of the original file.
fn original_line(rows: &[(u64, StringRecord)], batch_line: u64) -> u64 {
    let index = batch_line.saturating_sub(2) as usize;
    rows.get(index).map_or(0, |(line, _)| *line)
}

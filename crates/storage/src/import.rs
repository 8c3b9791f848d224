//! Bulk import of customers, contacts and signals from CSV.
//!
//! Every function reads a CSV file with a header line from any [`std::io::Read`], writes
//! the good rows in transactions of [`BATCH_ROWS`] rows, and reports every rejected row
//! with its line number and the reason, without stopping. Importing the same file again
//! changes nothing: customers are matched by external id and left alone when no value
//! differs, and contacts and signals identical to a stored one are skipped.
//!
//! ```
//! use tact_storage::{Store, import};
//!
//! let store = Store::open_in_memory()?;
//! let csv = "external_id,name,email,timezone,plan\n\
//!            c1,Ann Lee,ann@example.com,Europe/Berlin,gold\n\
//!            c2,Bob,not-an-address,UTC,\n";
//! let report = import::import_customers(&store, csv.as_bytes())?;
//! assert_eq!(report.inserted, 1);
//! assert_eq!(report.rejected[0].line, 3);
//! # Ok::<(), tact_storage::Error>(())
//! ```

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use csv::StringRecord;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use tact_domain::{Channel, Contact, CustomerId, Outcome, Purpose, Signal, SignalKind, Topic};

use crate::codec::{outcome_text, parse_outcome, to_ms};
use crate::customers::{Upserted, upsert_account_in, upsert_customer_in};
use crate::{Error, NewCustomer, Result, Store};
use staging::Stage;

mod line_endings;
mod staging;

/// Rows written per transaction. Each commit writes every page it changed, so larger
/// transactions write far less, while other writers wait for a transaction to finish,
/// typically well under a second. Contacts are copied in transactions of whole customers,
/// so one of them may hold more rows when a customer has many.
pub const BATCH_ROWS: usize = 50_000;

/// The outcome of one import: row counts and rejections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows stored as new.
    pub inserted: u64,
    /// Customers whose stored values changed.
    pub updated: u64,
    /// Rows identical to what was already stored.
    pub unchanged: u64,
    /// Rows not stored, in file order.
    pub rejected: Vec<Rejection>,
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The line number in the file, counting the header as line 1.
    pub line: u64,
    /// The reason, naming the column and value.
    pub reason: String,
}

/// Imports customers from CSV with the header
/// `external_id,name,email,phone,timezone,locale,account`, in any order.
///
/// Only `external_id` is required; an empty cell means "not known". `timezone` defaults to
/// UTC and `locale` to `en`. `account` names an account, created when new. Every other
/// column is kept as a free-form template field, as a string, when its cell is not empty.
///
/// # Errors
///
/// [`Error::InvalidField`] when the header lacks `external_id`; [`Error::Csv`] when the file
/// cannot be read; [`Error::Sqlite`] or [`Error::Busy`] when a batch cannot be written (the
/// batches before it stay written).
pub fn import_customers(store: &Store, reader: impl Read) -> Result<ImportReport> {
    let mut accounts: HashMap<String, i64> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    run(store, reader, &["external_id"], |tx, columns, record| {
        let customer = customer_from_record(columns, record)?;
        if !seen.insert(customer.external_id.clone()) {
            return Err(format!(
                "duplicate external_id {:?}: it appears on an earlier line of this file",
                customer.external_id
            ));
        }
        let mut customer = customer;
        if let Some(name) = columns.get(record, "account") {
            crate::customers::check_text("account", name).map_err(|error| error.to_string())?;
            let id = match accounts.get(name) {
                Some(id) => *id,
                None => {
                    let id = upsert_account_in(tx, name)
                        .map_err(|error| error.to_string())?
                        .0;
                    accounts.insert(name.to_owned(), id);
                    id
                }
            };
            customer.account = Some(tact_domain::AccountId(id));
        }
        match upsert_customer_in(tx, &customer) {
            Ok((_, Upserted::Inserted)) => Ok(Counted::Inserted),
            Ok((_, Upserted::Updated)) => Ok(Counted::Updated),
            Ok((_, Upserted::Unchanged)) => Ok(Counted::Unchanged),
            Err(error) => Err(error.to_string()),
        }
    })
}

fn customer_from_record(
    columns: &Columns,
    record: &StringRecord,
) -> std::result::Result<NewCustomer, String> {
    let external_id = columns
        .get(record, "external_id")
        .ok_or("missing external_id")?;
    let mut customer = NewCustomer::new(external_id);
    customer.name = columns.get(record, "name").map(str::to_owned);
    customer.email = columns.get(record, "email").map(str::to_owned);
    customer.phone = columns.get(record, "phone").map(str::to_owned);
    if let Some(zone) = columns.get(record, "timezone") {
        customer.time_zone = zone.parse::<Tz>().map_err(|_| {
            format!("unknown time zone {zone:?}: use an IANA name such as Europe/Berlin")
        })?;
    }
    if let Some(locale) = columns.get(record, "locale") {
        customer.locale = locale.to_owned();
    }
    customer.fields = columns.extra_fields(record);
    customer.validate().map_err(|error| error.to_string())?;
    Ok(customer)
}

/// Imports contacts from CSV with the header
/// `external_id,channel,purpose,topic,at,duration_s,outcome`.
///
/// `external_id`, `channel`, `purpose` and `at` (RFC 3339, such as `2026-03-01T09:30:00Z`)
/// are required. `topic` may be empty, `duration_s` defaults to 0 and `outcome` to `sent`.
///
/// The rows are first checked and staged in a temporary table, and then copied into the
/// history in customer order. SQLite keeps the table in a temporary file, about 100 MB per
/// million rows with one-word topics. An import that stops during the copy leaves the customers copied so far; importing
/// the file again adds the rest. Of two rows with the same identity the earlier one is kept.
///
/// # Errors
///
/// As [`import_customers`], for a header without the required columns.
pub fn import_contacts(store: &Store, reader: impl Read) -> Result<ImportReport> {
    let required = ["external_id", "channel", "purpose", "at"];
    let mut customers = CustomerIds::new();
    let stage = Stage::contacts(&store.connection)?;
    let report = run(store, reader, &required, |tx, columns, record| {
        let customer = customers.find(tx, columns, record)?;
        let contact = contact_from_record(customer, columns, record)?;
        let staged = stage.push(params![
            contact.customer.0,
            to_ms(contact.at),
            line_of(record),
            contact.channel.as_str(),
            contact.purpose.as_str(),
            contact.topic.as_ref().map(|topic| topic.as_str()),
            contact.duration_s,
            outcome_text(contact.outcome),
        ]);
        staged
            .map(|()| Counted::Inserted)
            .map_err(|error| error.to_string())
    })?;
    copy_staged(store, &stage, report)
}

/// Copies the rows that `report` counts as inserted from `stage` into the history, and
/// counts those already stored as unchanged instead.
fn copy_staged(store: &Store, stage: &Stage<'_>, mut report: ImportReport) -> Result<ImportReport> {
    let staged = report.inserted;
    report.inserted = with_import_settings(store, || stage.copy_into_history(store))?;
    report.unchanged += staged - report.inserted;
    Ok(report)
}

/// Returns the line of the file on which `record` starts, counting the header as line 1.
fn line_of(record: &StringRecord) -> i64 {
    record
        .position()
        .map_or(0, |position| position.line() as i64)
}

fn contact_from_record(
    customer: CustomerId,
    columns: &Columns,
    record: &StringRecord,
) -> std::result::Result<Contact, String> {
    Ok(Contact {
        customer,
        channel: required_channel(columns, record)?,
        purpose: parse_purpose_cell(columns.get(record, "purpose").unwrap_or_default())?,
        topic: optional_topic(columns, record)?,
        campaign: None,
        at: parse_instant(columns, record, "at")?,
        duration_s: parse_duration(columns, record)?,
        outcome: match columns.get(record, "outcome") {
            Some(text) => parse_outcome("contact", 0, text.as_bytes()).map_err(|_| {
                format!(
                    "invalid outcome {text:?}: use pending, sent, delivered, answered, \
                     no_answer or failed"
                )
            })?,
            None => Outcome::Sent,
        },
    })
}

/// Imports signals from CSV with the header `external_id,kind,channel,at` and the optional
/// columns `topic`, `value` (a number) and `machine` (`true`, `false`, `1` or `0`).
///
/// The rows are staged and copied into the history in customer order, as
/// [`import_contacts`] does.
///
/// # Errors
///
/// As [`import_customers`], for a header without the required columns.
pub fn import_signals(store: &Store, reader: impl Read) -> Result<ImportReport> {
    let required = ["external_id", "kind", "at"];
    let mut customers = CustomerIds::new();
    let stage = Stage::signals(&store.connection)?;
    let report = run(store, reader, &required, |tx, columns, record| {
        let customer = customers.find(tx, columns, record)?;
        let kind_text = columns.get(record, "kind").unwrap_or_default();
        let kind = SignalKind::parse(kind_text).ok_or_else(|| {
            let names: Vec<&str> = SignalKind::ALL.iter().map(|kind| kind.as_str()).collect();
            format!(
                "invalid kind {kind_text:?}: use one of {}",
                names.join(", ")
            )
        })?;
        let mut signal = Signal::new(kind, parse_instant(columns, record, "at")?);
        signal.channel = match columns.get(record, "channel") {
            Some(text) => Some(parse_channel_cell(text)?),
            None => None,
        };
        signal.topic = optional_topic(columns, record)?;
        if let Some(text) = columns.get(record, "value") {
            let value: f64 = text
                .parse()
                .ok()
                .filter(|value: &f64| value.is_finite())
                .ok_or_else(|| format!("invalid value {text:?}: use a number such as 19.99"))?;
            signal.value = Some(value);
        }
        signal.machine = match columns.get(record, "machine") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(text) => return Err(format!("invalid machine {text:?}: use true or false")),
        };
        let staged = stage.push(params![
            customer.0,
            to_ms(signal.at),
            line_of(record),
            signal.kind.as_str(),
            signal.channel.as_ref().map(|channel| channel.as_str()),
            signal.topic.as_ref().map(|topic| topic.as_str()),
            signal.machine,
            signal.value,
        ]);
        staged
            .map(|()| Counted::Inserted)
            .map_err(|error| error.to_string())
    })?;
    copy_staged(store, &stage, report)
}

/// The outcome of one accepted row.
enum Counted {
    Inserted,
    Updated,
    Unchanged,
}

/// The header: column name to position.
struct Columns {
    positions: HashMap<String, usize>,
    names: Vec<String>,
}

const KNOWN_CUSTOMER_COLUMNS: [&str; 7] = [
    "external_id",
    "name",
    "email",
    "phone",
    "timezone",
    "locale",
    "account",
];

impl Columns {
    /// Returns the trimmed cell of `column`, or `None` when the column is missing or the cell
    /// is empty.
    fn get<'r>(&self, record: &'r StringRecord, column: &str) -> Option<&'r str> {
        let position = *self.positions.get(column)?;
        record
            .get(position)
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
    }

    /// Collects the non-empty cells of columns that are not customer columns, as JSON strings.
    fn extra_fields(&self, record: &StringRecord) -> Map<String, Value> {
        let mut fields = Map::new();
        for (position, name) in self.names.iter().enumerate() {
            if KNOWN_CUSTOMER_COLUMNS.contains(&name.as_str()) {
                continue;
            }
            if let Some(cell) = record
                .get(position)
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                fields.insert(name.clone(), Value::String(cell.to_owned()));
            }
        }
        fields
    }
}

/// Reads every record, hands it to `handle_row` inside a write transaction that is
/// committed every [`BATCH_ROWS`] rows, and collects the rejections.
fn run<F>(
    store: &Store,
    reader: impl Read,
    required: &[&str],
    mut handle_row: F,
) -> Result<ImportReport>
where
    F: FnMut(&Connection, &Columns, &StringRecord) -> std::result::Result<Counted, String>,
{
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(line_endings::UnixLineEndings::new(reader));
    let names: Vec<String> = csv
        .headers()?
        .iter()
        .map(|name| name.trim().to_owned())
        .collect();
    let positions: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(position, name)| (name.clone(), position))
        .collect();
    for column in required {
        if !positions.contains_key(*column) {
            let reason = format!("the header must name the columns {}", required.join(","));
            return Err(Error::invalid_field("CSV header", &names.join(","), reason));
        }
    }
    let columns = Columns { positions, names };
    with_import_settings(store, || {
        import_rows(store, &mut csv, &columns, &mut handle_row)
    })
}

/// Runs `work` with a larger page cache and fewer checkpoints, then restores both settings.
///
/// A large history import touches index pages all over the file. A larger page cache and
/// fewer checkpoints save writing the same pages again and again.
fn with_import_settings<T>(store: &Store, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let connection = &store.connection;
    let cache_size: i64 = connection.pragma_query_value(None, "cache_size", |row| row.get(0))?;
    let checkpoint: i64 =
        connection.pragma_query_value(None, "wal_autocheckpoint", |row| row.get(0))?;
    connection.pragma_update(None, "cache_size", IMPORT_CACHE_SIZE)?;
    store.set_autocheckpoint(IMPORT_CHECKPOINT / store.page_size()?)?;
    let result = work();
    connection.pragma_update(None, "cache_size", cache_size)?;
    connection.pragma_update(None, "wal_autocheckpoint", checkpoint)?;
    result
}

/// The log size after which a commit during an import checkpoints: 64 MiB, against
/// SQLite's default of 1,000 pages.
const IMPORT_CHECKPOINT: i64 = 64 * 1024 * 1024;

/// The page cache during an import: 64 MiB, as a negative number of KiB. SQLite also lets
/// the sort that orders staged rows hold as much memory as the page cache, so the import's
/// peak is about twice this size plus the external ids it remembers.
const IMPORT_CACHE_SIZE: i64 = -65_536;

fn import_rows<R: Read, F>(
    store: &Store,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    handle_row: &mut F,
) -> Result<ImportReport>
where
    F: FnMut(&Connection, &Columns, &StringRecord) -> std::result::Result<Counted, String>,
{
    let mut report = ImportReport::default();
    let mut record = StringRecord::new();
    let mut transaction = begin(store)?;
    let mut rows_in_batch = 0;
    loop {
        let start_line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) if is_row_error(&error) => {
                let line = error
                    .position()
                    .map_or(start_line, |position| position.line());
                let reason = row_error_reason(&error);
                report.rejected.push(Rejection { line, reason });
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        let line = record
            .position()
            .map_or(start_line, |position| position.line());
        match handle_row(&transaction, columns, &record) {
            Ok(Counted::Inserted) => report.inserted += 1,
            Ok(Counted::Updated) => report.updated += 1,
            Ok(Counted::Unchanged) => report.unchanged += 1,
            Err(reason) => report.rejected.push(Rejection { line, reason }),
        }
        rows_in_batch += 1;
        if rows_in_batch == BATCH_ROWS {
            transaction.commit()?;
            transaction = begin(store)?;
            rows_in_batch = 0;
        }
    }
    transaction.commit()?;
    Ok(report)
}

fn begin(store: &Store) -> Result<Transaction<'_>> {
    let transaction =
        Transaction::new_unchecked(&store.connection, TransactionBehavior::Immediate)?;
    transaction.pragma_update(None, "defer_foreign_keys", true)?;
    Ok(transaction)
}

/// Returns whether a CSV error concerns one row only, so the import can go on.
fn is_row_error(error: &csv::Error) -> bool {
    matches!(
        error.kind(),
        csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
    )
}

/// Describes a row that the CSV reader rejected, in the terms of the file's header.
fn row_error_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "the row has {len} fields but the header has {expected_len}; quote values that \
             contain commas"
        ),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        _ => error.to_string(),
    }
}

/// Looks up customers by external id, remembering up to [`CustomerIds::CAPACITY`] of them
/// because history files mention the same customers again and again.
struct CustomerIds {
    known: HashMap<String, CustomerId>,
}

impl CustomerIds {
    const CAPACITY: usize = 1_000_000;

    fn new() -> CustomerIds {
        CustomerIds {
            known: HashMap::new(),
        }
    }

    fn find(
        &mut self,
        tx: &Connection,
        columns: &Columns,
        record: &StringRecord,
    ) -> std::result::Result<CustomerId, String> {
        let external_id = columns
            .get(record, "external_id")
            .ok_or("missing external_id")?;
        if let Some(id) = self.known.get(external_id) {
            return Ok(*id);
        }
        let id: Option<i64> = tx
            .prepare_cached("SELECT id FROM customers WHERE external_id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([external_id], |row| row.get(0))
                    .optional()
            })
            .map_err(|error| error.to_string())?;
        let id = id.map(CustomerId).ok_or_else(|| {
            format!("unknown external_id {external_id:?}: import the customer first")
        })?;
        if self.known.len() == Self::CAPACITY {
            self.known.clear();
        }
        self.known.insert(external_id.to_owned(), id);
        Ok(id)
    }
}

fn required_channel(
    columns: &Columns,
    record: &StringRecord,
) -> std::result::Result<Channel, String> {
    let text = columns.get(record, "channel").ok_or("missing channel")?;
    parse_channel_cell(text)
}

fn parse_channel_cell(text: &str) -> std::result::Result<Channel, String> {
    Channel::parse(text).map_err(|error| error.to_string())
}

fn parse_purpose_cell(text: &str) -> std::result::Result<Purpose, String> {
    Purpose::parse(text).ok_or_else(|| {
        format!("invalid purpose {text:?}: use care, sales, value, survey or transactional")
    })
}

fn optional_topic(
    columns: &Columns,
    record: &StringRecord,
) -> std::result::Result<Option<Topic>, String> {
    columns
        .get(record, "topic")
        .map(|text| Topic::parse(text).map_err(|error| error.to_string()))
        .transpose()
}

fn parse_instant(
    columns: &Columns,
    record: &StringRecord,
    column: &str,
) -> std::result::Result<DateTime<Utc>, String> {
    let text = columns
        .get(record, column)
        .ok_or_else(|| format!("missing {column}"))?;
    parse_utc_seconds(text)
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        })
        .ok_or_else(|| format!("invalid date in column {column}: {text:?} is not RFC 3339, such as 2026-03-01T09:30:00Z"))
}

fn parse_duration(columns: &Columns, record: &StringRecord) -> std::result::Result<u32, String> {
    match columns.get(record, "duration_s") {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| format!("invalid duration_s {text:?}: use whole seconds such as 90")),
    }
}

/// Parses the most common RFC 3339 shape, `YYYY-MM-DDTHH:MM:SSZ`, without chrono's general
/// parser. Returns `None` for every other text, including valid RFC 3339 with fractions,
/// offsets or a leap second, which the general parser then reads.
fn parse_utc_seconds(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() != 20 || !separators_match(bytes) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0_u32, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    let time = NaiveTime::from_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?;
    Some(date.and_time(time).and_utc())
}

fn separators_match(bytes: &[u8]) -> bool {
    let expected = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ];
    expected
        .iter()
        .all(|&(index, separator)| bytes[index] == separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }

    #[test]
    fn utc_seconds_match_general_parser() {
        for text in [
            "2026-03-01T09:30:00Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_utc_seconds(text), general(text), "{text}");
            assert!(parse_utc_seconds(text).is_some(), "{text}");
        }
    }

    #[test]
    fn utc_seconds_leave_other_shapes() {
        for text in [
            "2026-03-01T09:30:00.5Z",
            "2026-03-01T09:30:00+01:00",
            "2026-03-01t09:30:00z",
            "2026-03-01 09:30:00Z",
            "2016-12-31T23:59:60Z",
        ] {
            assert_eq!(parse_utc_seconds(text), None, "{text}");
        }
    }

    #[test]
    fn utc_seconds_reject_invalid_fields() {
        for text in [
            "2026-02-30T09:30:00Z",
            "2026-13-01T09:30:00Z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T09:61:00Z",
            "2026-0a-01T09:30:00Z",
            "+026-03-01T09:30:00Z",
        ] {
            assert_eq!(parse_utc_seconds(text), None, "{text}");
            assert_eq!(general(text), None, "{text}");
        }
    }
}

//! The UCI "Bank Marketing" data set: a Portuguese bank's phone campaigns, 2008 to 2010.
//!
//! Input: `bank-full.csv`, semicolon-separated with quoted strings. Each row is one customer;
//! `campaign` is the number of calls to that customer during the campaign, including the
//! last one, `day` and `month` date the last call, `duration` is its length in seconds and
//! `y` says whether the customer subscribed a term deposit.
//!
//! Output, in the output folder:
//! - `customers.csv`: `external_id` = `bank-<row>` (row 1 is the first data row), time zone
//!   Europe/Lisbon, locale pt-PT, and the template fields `job` and `age`.
//! - `contacts.csv`: `campaign` phone calls per customer, purpose `sales`, topic
//!   `term-deposit`, outcome `answered`. The last call is dated from `day` and `month` at
//!   10:00 Lisbon time and carries `duration`; the data does not date the earlier calls, so
//!   they are placed one day apart before it with a duration of 0.
//! - `signals.csv`: one `purchase` signal with topic `term-deposit` one minute after the
//!   last call for every customer with `y` = `yes`.
//!
//! The file has no year. Its rows are in date order from May 2008 to November 2010, so the
//! year starts at 2008 and goes up by one whenever the month goes back.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Lisbon;
use std::fmt;
use std::path::Path;

use super::{ConvertError, Skipped, csv_writer, write_error};

const FIRST_YEAR: i32 = 2008;
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const REQUIRED: [&str; 6] = ["age", "job", "day", "month", "duration", "campaign"];

/// What a conversion read, wrote and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Data rows read.
    pub rows: u64,
    /// Customers written.
    pub customers: u64,
    /// Calls written.
    pub calls: u64,
    /// Customers who subscribed (`y` = `yes`).
    pub subscribed: u64,
    /// Rows that could not be parsed.
    pub malformed: Skipped,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rows read:          {}", self.rows)?;
        writeln!(f, "customers written:  {}", self.customers)?;
        writeln!(f, "calls written:      {}", self.calls)?;
        writeln!(f, "subscriptions:      {}", self.subscribed)?;
        write!(f, "malformed rows:     {}", self.malformed)
    }
}

struct Row {
    age: u32,
    job: String,
    month: u32,
    day: u32,
    duration_s: u32,
    calls: u32,
    subscribed: bool,
}

/// Converts `bank-full.csv` (or `bank.csv`) into `customers.csv`, `contacts.csv` and
/// `signals.csv` in `out_dir`, which must exist.
///
/// # Errors
///
/// [`ConvertError`] when the input cannot be read or lacks a required column, or an output
/// file cannot be written. Bad rows are counted in the [`Report`] instead.
pub fn convert(input: &Path, out_dir: &Path) -> Result<Report, ConvertError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_path(input)
        .map_err(|source| ConvertError::Csv {
            path: input.to_owned(),
            source,
        })?;
    let headers = reader
        .headers()
        .cloned()
        .map_err(|source| ConvertError::Csv {
            path: input.to_owned(),
            source,
        })?;
    let column = |name: &str| headers.iter().position(|h| h == name);
    let columns: Option<Vec<usize>> = REQUIRED.iter().chain(&["y"]).map(|n| column(n)).collect();
    let Some(columns) = columns else {
        return Err(ConvertError::Header {
            path: input.to_owned(),
            dataset: "UCI Bank Marketing",
            expected: "age;job;…;day;month;duration;campaign;…;y".to_owned(),
            found: headers.iter().collect::<Vec<_>>().join(";"),
        });
    };

    let customers_path = out_dir.join("customers.csv");
    let contacts_path = out_dir.join("contacts.csv");
    let signals_path = out_dir.join("signals.csv");
    let mut customers = csv_writer(&customers_path)?;
    let mut contacts = csv_writer(&contacts_path)?;
    let mut signals = csv_writer(&signals_path)?;
    write_headers(&mut customers, &mut contacts, &mut signals, out_dir)?;

    let mut report = Report::default();
    let mut year = FIRST_YEAR;
    let mut previous_month = 0;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) if error.is_io_error() => {
                return Err(ConvertError::Csv {
                    path: input.to_owned(),
                    source: error,
                });
            }
            Err(_) => {
                report.rows += 1;
                report.malformed.add(line);
                continue;
            }
        }
        report.rows += 1;
        let Some(row) = parse_row(&record, &columns) else {
            report.malformed.add(line);
            continue;
        };
        if row.month < previous_month {
            year += 1;
        }
        previous_month = row.month;
        let Some(last_call) = call_time(year, row.month, row.day) else {
            report.malformed.add(line);
            continue;
        };

        let id = format!("bank-{}", report.rows);
        customers
            .write_record([
                id.as_str(),
                "",
                "",
                "",
                "Europe/Lisbon",
                "pt-PT",
                "",
                &row.job,
                &row.age.to_string(),
            ])
            .map_err(|e| write_error(&customers_path, e))?;
        report.customers += 1;
        for call in 1..=row.calls {
            let days_before = i64::from(row.calls - call);
            let at = last_call - Duration::days(days_before);
            let duration = if call == row.calls { row.duration_s } else { 0 };
            contacts
                .write_record([
                    id.as_str(),
                    "phone",
                    "sales",
                    "term-deposit",
                    &rfc3339(at),
                    &duration.to_string(),
                    "answered",
                ])
                .map_err(|e| write_error(&contacts_path, e))?;
            report.calls += 1;
        }
        if row.subscribed {
            let at = last_call + Duration::minutes(1);
            signals
                .write_record([
                    id.as_str(),
                    "purchase",
                    "phone",
                    &rfc3339(at),
                    "term-deposit",
                    "",
                ])
                .map_err(|e| write_error(&signals_path, e))?;
            report.subscribed += 1;
        }
    }
    for (writer_path, result) in [
        (&customers_path, customers.flush()),
        (&contacts_path, contacts.flush()),
        (&signals_path, signals.flush()),
    ] {
        result.map_err(|source| ConvertError::Write {
            path: writer_path.clone(),
            source,
        })?;
    }
    Ok(report)
}

fn write_headers(
    customers: &mut csv::Writer<std::fs::File>,
    contacts: &mut csv::Writer<std::fs::File>,
    signals: &mut csv::Writer<std::fs::File>,
    out_dir: &Path,
) -> Result<(), ConvertError> {
    let customer_columns = [
        "external_id",
        "name",
        "email",
        "phone",
        "timezone",
        "locale",
        "account",
        "job",
        "age",
    ];
    customers
        .write_record(customer_columns)
        .map_err(|e| write_error(&out_dir.join("customers.csv"), e))?;
    let contact_columns = [
        "external_id",
        "channel",
        "purpose",
        "topic",
        "at",
        "duration_s",
        "outcome",
    ];
    contacts
        .write_record(contact_columns)
        .map_err(|e| write_error(&out_dir.join("contacts.csv"), e))?;
    signals
        .write_record(["external_id", "kind", "channel", "at", "topic", "value"])
        .map_err(|e| write_error(&out_dir.join("signals.csv"), e))
}

fn parse_row(record: &csv::StringRecord, columns: &[usize]) -> Option<Row> {
    let field = |index: usize| record.get(columns[index]).map(str::trim);
    let month = MONTHS.iter().position(|m| Some(*m) == field(3))? as u32 + 1;
    let subscribed = match field(6)? {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    let calls: u32 = field(5)?.parse().ok()?;
    if calls == 0 {
        return None;
    }
    Some(Row {
        age: field(0)?.parse().ok()?,
        job: field(1)?.to_owned(),
        day: field(2)?.parse().ok()?,
        month,
        duration_s: field(4)?.parse().ok()?,
        calls,
        subscribed,
    })
}

fn call_time(year: i32, month: u32, day: u32) -> Option<DateTime<Utc>> {
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(10, 0, 0)?;
    Some(
        Lisbon
            .from_local_datetime(&naive)
            .earliest()?
            .with_timezone(&Utc),
    )
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_LINE: &str = "\"age\";\"job\";\"marital\";\"education\";\"default\";\"balance\";\
\"housing\";\"loan\";\"contact\";\"day\";\"month\";\"duration\";\"campaign\";\"pdays\";\
\"previous\";\"poutcome\";\"y\"\n";

    #[test]
    fn convert_writes_calls_and_subscriptions() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("bank.csv");
        let rows = "58;\"management\";\"married\";\"tertiary\";\"no\";2143;\"yes\";\"no\";\
\"unknown\";5;\"may\";261;2;-1;0;\"unknown\";\"yes\"\n\
44;\"technician\";\"single\";\"secondary\";\"no\";29;\"yes\";\"no\";\"unknown\";5;\"jan\";151;\
1;-1;0;\"unknown\";\"no\"\n\
44;\"technician\";\"single\";\"secondary\";\"no\";29;\"yes\";\"no\";\"unknown\";5;\"mayo\";151;\
1;-1;0;\"unknown\";\"no\"\n";
        std::fs::write(&input, format!("{HEADER_LINE}{rows}")).unwrap();

        let report = convert(&input, dir.path()).unwrap();

        assert_eq!(report.rows, 3);
        assert_eq!(report.customers, 2);
        assert_eq!(report.calls, 3);
        assert_eq!(report.subscribed, 1);
        assert_eq!(
            report.malformed,
            Skipped {
                count: 1,
                lines: vec![4]
            }
        );
        let contacts = std::fs::read_to_string(dir.path().join("contacts.csv")).unwrap();
        // 10:00 in Lisbon is 09:00 UTC in May (summer time) and 10:00 UTC in January. The
        // second row's month goes back, so it falls in the next year.
        assert_eq!(
            contacts,
            "external_id,channel,purpose,topic,at,duration_s,outcome\n\
bank-1,phone,sales,term-deposit,2008-05-04T09:00:00Z,0,answered\n\
bank-1,phone,sales,term-deposit,2008-05-05T09:00:00Z,261,answered\n\
bank-2,phone,sales,term-deposit,2009-01-05T10:00:00Z,151,answered\n"
        );
        let signals = std::fs::read_to_string(dir.path().join("signals.csv")).unwrap();
        assert_eq!(
            signals,
            "external_id,kind,channel,at,topic,value\n\
bank-1,purchase,phone,2008-05-05T09:01:00Z,term-deposit,\n"
        );
    }
}

//! The UCI "Online Retail" data set: a year of invoice lines of a UK online shop.
//!
//! Input columns: `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,
//! Country`, as plain CSV or gzip. `InvoiceDate` is the shop's local time (Europe/London).
//!
//! Output, in the output folder:
//! - `customers.csv`: one row per customer, with `external_id` = `CustomerID`, an address
//!   `customer-<id>@example.com` under the reserved domain, the time zone and locale of the
//!   customer's country, and the template fields `country` and `last_item`.
//! - `signals.csv`: one `purchase` signal per invoice (invoices of one customer at the same
//!   minute are merged into one), at the invoice time in UTC, with the
//!   invoice total as `value` and the product of its largest line as `last_item`. The
//!   importer ignores that column; `tact simulate` uses it to update the customer's
//!   `last_item` field as each purchase is replayed.
//!
//! Skipped and counted, never silently dropped: cancellation lines (`InvoiceNo` starting with
//! `C`), lines without a customer, lines with a quantity or price of zero or less, and
//! malformed rows (wrong column count, invalid UTF-8, unparsable number or date).

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use super::places::place_of;
use super::{ConvertError, Skipped, csv_writer, write_error};

const HEADER: [&str; 8] = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
];

/// The shop's own time zone, used for invoice times and for customers of unknown country.
const SHOP_ZONE: Tz = chrono_tz::Europe::London;

/// What a conversion read, wrote and skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Invoice lines that became part of a purchase.
    pub sale_lines: u64,
    /// Cancellation lines (`InvoiceNo` starting with `C`).
    pub cancelled: Skipped,
    /// Lines with no `CustomerID`.
    pub no_customer: Skipped,
    /// Lines with a quantity or unit price of zero or less that are not cancellations.
    pub not_a_sale: Skipped,
    /// Rows that could not be parsed.
    pub malformed: Skipped,
    /// Customers written.
    pub customers: u64,
    /// Customers in the data with no line that is a sale, so not written.
    pub customers_without_sale: u64,
    /// Customers whose country has no known time zone; they get the shop's zone.
    pub customers_without_country: u64,
    /// Purchase signals written: one per invoice, after merging.
    pub purchases: u64,
    /// Invoices merged into another of the same customer and minute.
    pub invoices_merged: u64,
    /// Sum of all purchase values.
    pub revenue: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rows read:                  {}", self.rows)?;
        writeln!(f, "sale lines used:            {}", self.sale_lines)?;
        writeln!(f, "cancellation lines skipped: {}", self.cancelled)?;
        writeln!(f, "lines without customer:     {}", self.no_customer)?;
        writeln!(f, "lines with quantity or price <= 0: {}", self.not_a_sale)?;
        writeln!(f, "malformed rows:             {}", self.malformed)?;
        writeln!(
            f,
            "customers without a sale:   {}",
            self.customers_without_sale
        )?;
        writeln!(
            f,
            "customers written:          {} ({} of unknown country, given {})",
            self.customers,
            self.customers_without_country,
            SHOP_ZONE.name()
        )?;
        write!(
            f,
            "purchases written:          {} (total value {:.2}; {} invoices merged into \
             another of the same customer and minute)",
            self.purchases, self.revenue, self.invoices_merged
        )
    }
}

#[derive(Debug)]
struct Purchase {
    customer: u64,
    at: DateTime<Utc>,
    value: f64,
    top_item: String,
    top_line_value: f64,
}

#[derive(Debug, Default)]
struct CustomerSeen {
    countries: BTreeMap<String, u64>,
    last_item: String,
}

struct Line<'a> {
    invoice: &'a str,
    description: &'a str,
    quantity: i64,
    at: DateTime<Utc>,
    unit_price: f64,
    customer: Option<u64>,
    country: &'a str,
}

/// Converts `input` (CSV or gzip-compressed CSV) into `customers.csv` and `signals.csv` in
/// `out_dir`, which must exist.
///
/// # Errors
///
/// [`ConvertError`] when the input cannot be read or has another header, or an output file
/// cannot be written. Bad rows are counted in the [`Report`] instead.
pub fn convert(input: &Path, out_dir: &Path) -> Result<Report, ConvertError> {
    let reader = open_input(input)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(reader);
    let csv_error = |source| ConvertError::Csv {
        path: input.to_owned(),
        source,
    };

    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(csv_error)? || !header_matches(&record) {
        return Err(ConvertError::Header {
            path: input.to_owned(),
            dataset: "UCI Online Retail",
            expected: HEADER.join(","),
            found: record
                .iter()
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(","),
        });
    }

    let mut report = Report::default();
    let mut purchases: HashMap<(u64, String), Purchase> = HashMap::new();
    let mut customers: HashMap<u64, CustomerSeen> = HashMap::new();
    let mut all_customers: HashSet<u64> = HashSet::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) if error.is_io_error() => return Err(csv_error(error)),
            Err(error) => {
                report.rows += 1;
                let line = error.position().map_or(0, |p| p.line());
                report.malformed.add(line);
                continue;
            }
        }
        report.rows += 1;
        let line_number = record.position().map_or(0, |p| p.line());
        let Some(line) = parse_line(&record) else {
            report.malformed.add(line_number);
            continue;
        };
        if line.invoice.starts_with('C') {
            all_customers.extend(line.customer);
            report.cancelled.add(line_number);
            continue;
        }
        let Some(customer) = line.customer else {
            report.no_customer.add(line_number);
            continue;
        };
        all_customers.insert(customer);
        if line.quantity <= 0 || line.unit_price <= 0.0 {
            report.not_a_sale.add(line_number);
            continue;
        }
        report.sale_lines += 1;
        add_line(&mut purchases, &mut customers, customer, &line);
    }

    report.customers_without_sale = (all_customers.len() - customers.len()) as u64;
    let purchases = merge_invoices(purchases, &mut report);
    set_last_items(&purchases, &mut customers);
    write_customers(&out_dir.join("customers.csv"), &customers, &mut report)?;
    write_purchases(&out_dir.join("signals.csv"), purchases, &mut report)?;
    Ok(report)
}

fn open_input(input: &Path) -> Result<Box<dyn Read>, ConvertError> {
    let read_error = |source| ConvertError::Read {
        path: input.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(input).map_err(read_error)?;
    let mut magic = [0u8; 2];
    let gzip = file.read(&mut magic).map_err(read_error)? == 2 && magic == [0x1f, 0x8b];
    let file = std::fs::File::open(input).map_err(read_error)?;
    let buffered = std::io::BufReader::with_capacity(1 << 16, file);
    if gzip {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

fn header_matches(record: &csv::ByteRecord) -> bool {
    let found: Vec<&[u8]> = record.iter().collect();
    let first = found
        .first()
        .map(|field| field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field));
    found.len() == HEADER.len()
        && first == Some(HEADER[0].as_bytes())
        && found
            .iter()
            .zip(HEADER)
            .skip(1)
            .all(|(a, b)| *a == b.as_bytes())
}

fn parse_line(record: &csv::ByteRecord) -> Option<Line<'_>> {
    if record.len() != HEADER.len() {
        return None;
    }
    let field = |index: usize| std::str::from_utf8(&record[index]).ok().map(str::trim);
    let invoice = field(0)?;
    if invoice.is_empty() {
        return None;
    }
    let customer = match field(6)? {
        "" | "NA" => None,
        text => Some(parse_customer_id(text)?),
    };
    Some(Line {
        invoice,
        description: field(2)?,
        quantity: field(3)?.parse().ok()?,
        at: parse_shop_time(field(4)?)?,
        unit_price: field(5)?.parse::<f64>().ok().filter(|p| p.is_finite())?,
        customer,
        country: field(7)?,
    })
}

/// Parses `17850` or `17850.0` (R writes whole numbers either way).
fn parse_customer_id(text: &str) -> Option<u64> {
    let digits = text.strip_suffix(".0").unwrap_or(text);
    digits.parse().ok()
}

/// Reads `YYYY-MM-DD HH:MM[:SS]` as the shop's local time. An hour repeated when clocks go
/// back takes its first occurrence; a time skipped when clocks go forward is moved past the
/// gap.
fn parse_shop_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()?;
    let local = match SHOP_ZONE.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
        LocalResult::None => SHOP_ZONE
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()?,
    };
    Some(local.with_timezone(&Utc))
}

fn add_line(
    purchases: &mut HashMap<(u64, String), Purchase>,
    customers: &mut HashMap<u64, CustomerSeen>,
    customer: u64,
    line: &Line<'_>,
) {
    let line_value = line.quantity as f64 * line.unit_price;
    let purchase = purchases
        .entry((customer, line.invoice.to_owned()))
        .or_insert_with(|| Purchase {
            customer,
            at: line.at,
            value: 0.0,
            top_item: String::new(),
            top_line_value: f64::MIN,
        });
    purchase.value += line_value;
    purchase.at = purchase.at.min(line.at);
    if line_value > purchase.top_line_value && !line.description.is_empty() {
        purchase.top_line_value = line_value;
        purchase.top_item = readable_item(line.description);
    }

    let seen = customers.entry(customer).or_default();
    *seen.countries.entry(line.country.to_owned()).or_default() += 1;
}

/// Merges the invoices of one customer that start at the same minute into one purchase,
/// because a signal is identified by its customer, kind and time. The merged purchase sums
/// the values and keeps the product of the largest line. The result is ordered by time,
/// then customer, so the output is the same on every run.
fn merge_invoices(
    purchases: HashMap<(u64, String), Purchase>,
    report: &mut Report,
) -> BTreeMap<(DateTime<Utc>, u64), Purchase> {
    let mut invoices: Vec<((u64, String), Purchase)> = purchases.into_iter().collect();
    invoices.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: BTreeMap<(DateTime<Utc>, u64), Purchase> = BTreeMap::new();
    for ((customer, _), purchase) in invoices {
        match merged.entry((purchase.at, customer)) {
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(purchase);
            }
            std::collections::btree_map::Entry::Occupied(mut entry) => {
                report.invoices_merged += 1;
                let kept = entry.get_mut();
                kept.value += purchase.value;
                if purchase.top_line_value > kept.top_line_value {
                    kept.top_line_value = purchase.top_line_value;
                    kept.top_item = purchase.top_item;
                }
            }
        }
    }
    merged
}

/// Names each customer's last purchase by its largest line.
fn set_last_items(
    purchases: &BTreeMap<(DateTime<Utc>, u64), Purchase>,
    customers: &mut HashMap<u64, CustomerSeen>,
) {
    // Purchases are in time order, so the last one seen per customer is the latest.
    for ((_, customer), purchase) in purchases {
        if let Some(seen) = customers.get_mut(customer) {
            seen.last_item.clone_from(&purchase.top_item);
        }
    }
}

/// Turns the data set's upper-case descriptions into a sentence-case product name.
fn readable_item(description: &str) -> String {
    let words: Vec<&str> = description.split_whitespace().collect();
    let joined = words.join(" ");
    let lower = joined
        .trim_end_matches(|c: char| c.is_ascii_punctuation())
        .to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn write_customers(
    path: &Path,
    customers: &HashMap<u64, CustomerSeen>,
    report: &mut Report,
) -> Result<(), ConvertError> {
    let mut writer = csv_writer(path)?;
    let error = |e| write_error(path, e);
    writer
        .write_record([
            "external_id",
            "name",
            "email",
            "phone",
            "timezone",
            "locale",
            "account",
            "country",
            "last_item",
        ])
        .map_err(error)?;
    let mut ids: Vec<u64> = customers.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let seen = &customers[&id];
        // The country with most lines; ties go to the name first in alphabetical order.
        let country = seen
            .countries
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or("", |(name, _)| name.as_str());
        let place = place_of(country);
        if place.is_none() {
            report.customers_without_country += 1;
        }
        let time_zone = place.map_or(SHOP_ZONE, |p| p.time_zone);
        let locale = place.map_or("en-GB", |p| p.locale);
        let email = format!("customer-{id}@example.com");
        writer
            .write_record([
                id.to_string().as_str(),
                "",
                &email,
                "",
                time_zone.name(),
                locale,
                "",
                country,
                &seen.last_item,
            ])
            .map_err(error)?;
        report.customers += 1;
    }
    writer.flush().map_err(|source| ConvertError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_purchases(
    path: &Path,
    purchases: BTreeMap<(DateTime<Utc>, u64), Purchase>,
    report: &mut Report,
) -> Result<(), ConvertError> {
    let mut writer = csv_writer(path)?;
    let error = |e| write_error(path, e);
    writer
        .write_record([
            "external_id",
            "kind",
            "channel",
            "at",
            "topic",
            "value",
            "last_item",
        ])
        .map_err(error)?;
    for purchase in purchases.into_values() {
        let at = purchase
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let value = format!("{:.2}", purchase.value);
        writer
            .write_record([
                purchase.customer.to_string().as_str(),
                "purchase",
                "",
                &at,
                "",
                &value,
                &purchase.top_item,
            ])
            .map_err(error)?;
        report.purchases += 1;
        report.revenue += purchase.value;
    }
    writer.flush().map_err(|source| ConvertError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER_LINE: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

    fn convert_text(body: &[u8]) -> (Report, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.csv");
        let mut file = std::fs::File::create(&input).unwrap();
        file.write_all(HEADER_LINE.as_bytes()).unwrap();
        file.write_all(body).unwrap();
        drop(file);
        let report = convert(&input, dir.path()).unwrap();
        let customers = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
        let signals = std::fs::read_to_string(dir.path().join("signals.csv")).unwrap();
        (report, customers, signals)
    }

    #[test]
    fn convert_groups_lines_into_invoices() {
        let body = b"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n\
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom\n\
540001,22423,REGENCY CAKESTAND 3 TIER,1,2011-07-01 10:00:00,12.75,12347,Iceland\n";
        let (report, customers, signals) = convert_text(body);

        assert_eq!(report.rows, 3);
        assert_eq!(report.sale_lines, 3);
        assert_eq!(report.customers, 2);
        assert_eq!(report.purchases, 2);
        assert_eq!(
            customers,
            "external_id,name,email,phone,timezone,locale,account,country,last_item\n\
12347,,customer-12347@example.com,,Atlantic/Reykjavik,is-IS,,Iceland,Regency cakestand 3 tier\n\
17850,,customer-17850@example.com,,Europe/London,en-GB,,United Kingdom,White metal lantern\n"
        );
        // 08:26 in London in December is 08:26 UTC; 10:00 in July (BST) is 09:00 UTC.
        assert_eq!(
            signals,
            "external_id,kind,channel,at,topic,value,last_item\n\
17850,purchase,,2010-12-01T08:26:00Z,,35.64,White metal lantern\n\
12347,purchase,,2011-07-01T09:00:00Z,,12.75,Regency cakestand 3 tier\n"
        );
    }

    #[test]
    fn convert_counts_skipped_rows() {
        let body = b"C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom\n\
536414,22139,,56,2010-12-01 11:52:00,0,,United Kingdom\n\
536415,22139,BROKEN,1,2010-13-01 11:52:00,1.0,14527,United Kingdom\n\
536416,22139,SHORT,1\n\
536417,22139,\xff\xfe,1,2010-12-01 11:52:00,1.0,14527,United Kingdom\n\
536418,22139,FREE GIFT,1,2010-12-01 11:52:00,0,14527,United Kingdom\n";
        let (report, customers, signals) = convert_text(body);

        assert_eq!(report.rows, 6);
        assert_eq!(
            report.cancelled,
            Skipped {
                count: 1,
                lines: vec![2]
            }
        );
        assert_eq!(
            report.no_customer,
            Skipped {
                count: 1,
                lines: vec![3]
            }
        );
        assert_eq!(
            report.malformed,
            Skipped {
                count: 3,
                lines: vec![4, 5, 6]
            }
        );
        assert_eq!(
            report.not_a_sale,
            Skipped {
                count: 1,
                lines: vec![7]
            }
        );
        assert_eq!(report.customers, 0);
        assert_eq!(report.customers_without_sale, 1);
        assert_eq!(customers.lines().count(), 1);
        assert_eq!(signals.lines().count(), 1);
    }

    #[test]
    fn convert_reads_gzip_and_unknown_country() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.csv.gz");
        let file = std::fs::File::create(&input).unwrap();
        let mut gzip = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gzip.write_all(HEADER_LINE.as_bytes()).unwrap();
        gzip.write_all(b"550001,1,MUG,2,2011-03-27 01:30:00,1.25,15000,Unspecified\n")
            .unwrap();
        gzip.finish().unwrap();

        let report = convert(&input, dir.path()).unwrap();

        assert_eq!(report.customers, 1);
        assert_eq!(report.customers_without_country, 1);
        let customers = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
        assert!(
            customers.ends_with(",Europe/London,en-GB,,Unspecified,Mug\n"),
            "{customers}"
        );
        // 01:30 does not exist in London on 2011-03-27; it is moved past the gap.
        let signals = std::fs::read_to_string(dir.path().join("signals.csv")).unwrap();
        assert!(
            signals.ends_with("15000,purchase,,2011-03-27T01:30:00Z,,2.50,Mug\n"),
            "{signals}"
        );
    }

    #[test]
    fn convert_merges_invoices_of_one_minute() {
        let body = b"540001,1,SMALL MUG,1,2011-07-01 10:00:00,2.00,12347,Iceland\n\
540002,2,BIG   TEAPOT.,1,2011-07-01 10:00:00,9.50,12347,Iceland\n\
540003,3,SPOON,1,2011-07-01 10:01:00,0.50,12347,Iceland\n";
        let (report, customers, signals) = convert_text(body);

        assert_eq!(report.purchases, 2);
        assert_eq!(report.invoices_merged, 1);
        assert!(customers.ends_with(",Iceland,Spoon\n"), "{customers}");
        assert_eq!(
            signals,
            "external_id,kind,channel,at,topic,value,last_item\n\
12347,purchase,,2011-07-01T09:00:00Z,,11.50,Big teapot\n\
12347,purchase,,2011-07-01T09:01:00Z,,0.50,Spoon\n"
        );
    }

    #[test]
    fn convert_rejects_other_header() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.csv");
        std::fs::write(&input, "a,b,c\n1,2,3\n").unwrap();
        let error = convert(&input, dir.path()).unwrap_err();
        assert!(matches!(error, ConvertError::Header { ref found, .. } if found == "a,b,c"));
    }
}

//! Writing the workload: customers, their history, preference changes and care cases.

use anyhow::Context as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use csv::Writer;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::people::{FAMILY_NAMES, GIVEN_NAMES, PLANS, ZONES};
use crate::random::Random;

/// Customers per account.
pub const CUSTOMERS_PER_ACCOUNT: u64 = 20;
/// Past contacts per customer.
pub const CONTACTS_PER_CUSTOMER: usize = 20;
/// Signals per customer.
pub const SIGNALS_PER_CUSTOMER: usize = 5;
/// History reaches back this many days before "now".
const HISTORY_DAYS: i64 = 365;
/// The latest past contact is at least this many days before "now". A newsletter then
/// approves about half of the customers under the default policy, which leaves enough
/// messages for the delivery figures.
const QUIET_DAYS: i64 = 14;
/// One customer in three has stated preferences.
const PREFERENCES_PER_MILLE: u64 = 333;
/// Customers with an opt-out of some kind: 5,000 per million.
const OPT_OUTS_PER_MILLE: u64 = 5;
/// Customers with an open care case: 5,000 per million.
const CASES_PER_MILLE: u64 = 5;

/// The size, seed and reference time of one workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Number of customers; accounts are one per [`CUSTOMERS_PER_ACCOUNT`].
    pub customers: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// The benchmark's "now": every generated event lies before it.
    pub now: DateTime<Utc>,
}

/// Rows written to each file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows of customers.csv.
    pub customers: u64,
    /// Accounts that customers.csv assigns its customers to at random.
    pub accounts: u64,
    /// Rows of contacts.csv.
    pub contacts: u64,
    /// Rows of signals.csv.
    pub signals: u64,
    /// Rows of preferences.csv that state a wish (bucket, cadence, window, pause, topic or
    /// channel opt-out).
    pub preferences: u64,
    /// Rows of preferences.csv that opt out of marketing, of email or of all contact.
    pub opt_outs: u64,
    /// Rows of cases.csv.
    pub cases: u64,
}

/// The CSV writers of one run.
struct Files {
    customers: Writer<BufWriter<File>>,
    contacts: Writer<BufWriter<File>>,
    signals: Writer<BufWriter<File>>,
    preferences: Writer<BufWriter<File>>,
    cases: Writer<BufWriter<File>>,
}

impl Files {
    fn create(out: &Path) -> anyhow::Result<Files> {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create folder {}", out.display()))?;
        let open = |name: &str, header: &[&str]| -> anyhow::Result<Writer<BufWriter<File>>> {
            let path = out.join(name);
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
            writer.write_record(header)?;
            Ok(writer)
        };
        Ok(Files {
            customers: open(
                "customers.csv",
                &[
                    "external_id",
                    "name",
                    "email",
                    "phone",
                    "timezone",
                    "locale",
                    "account",
                    "plan",
                ],
            )?,
            contacts: open(
                "contacts.csv",
                &[
                    "external_id",
                    "channel",
                    "purpose",
                    "topic",
                    "at",
                    "duration_s",
                    "outcome",
                ],
            )?,
            signals: open(
                "signals.csv",
                &["external_id", "kind", "channel", "topic", "at"],
            )?,
            preferences: open("preferences.csv", &["external_id", "change", "value", "at"])?,
            cases: open("cases.csv", &["external_id", "opened_at"])?,
        })
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.customers.flush()?;
        self.contacts.flush()?;
        self.signals.flush()?;
        self.preferences.flush()?;
        self.cases.flush()?;
        Ok(())
    }
}

/// Writes customers.csv, contacts.csv and signals.csv in the format of `tact import`, and
/// preferences.csv and cases.csv for [`crate::apply`], into `out`, replacing files of the
/// same names.
///
/// Every customer's rows depend only on the seed and the customer's index, so the same
/// workload always gives byte-identical files. Rows are in customer order, and each
/// customer's history rows are in time order.
///
/// # Errors
///
/// Fails when the folder or a file cannot be written.
pub fn generate(workload: &Workload, out: &Path) -> anyhow::Result<Counts> {
    let mut files = Files::create(out)?;
    let mut counts = Counts {
        accounts: account_count(workload.customers),
        ..Counts::default()
    };
    for index in 1..=workload.customers {
        let mut random = Random::for_item(workload.seed, index);
        write_customer(&mut files, &mut random, workload, index, &mut counts)?;
    }
    files.flush()?;
    Ok(counts)
}

/// Number of accounts for `customers` customers: one per twenty, at least one.
pub fn account_count(customers: u64) -> u64 {
    (customers / CUSTOMERS_PER_ACCOUNT).max(1)
}

/// The external id of the customer with `index`, as written to every file.
pub fn external_id(index: u64) -> String {
    format!("c{index:07}")
}

fn write_customer(
    files: &mut Files,
    random: &mut Random,
    workload: &Workload,
    index: u64,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let id = external_id(index);
    let given = random.pick(GIVEN_NAMES);
    let family = random.pick(FAMILY_NAMES);
    let (zone, locale) = random.weighted(ZONES);
    let email = format!("{given}.{family}.{index}@example.com").to_ascii_lowercase();
    let phone = if random.chance(400) {
        format!("+1 555 {:07}", index % 10_000_000)
    } else {
        String::new()
    };
    let account = format!("Company {:06}", 1 + random.below(counts.accounts));
    let plan = random.weighted(PLANS);
    files.customers.write_record([
        id.as_str(),
        &format!("{given} {family}"),
        &email,
        &phone,
        zone,
        locale,
        &account,
        plan,
    ])?;
    counts.customers += 1;

    write_contacts(files, random, workload.now, &id)?;
    counts.contacts += CONTACTS_PER_CUSTOMER as u64;
    write_signals(files, random, workload.now, &id)?;
    counts.signals += SIGNALS_PER_CUSTOMER as u64;
    write_wishes(files, random, workload.now, &id, counts)
}

/// Instants spread uniformly between `days_back` days and `quiet_days` days before `now`,
/// to the second, oldest first.
fn past_instants(
    random: &mut Random,
    now: DateTime<Utc>,
    count: usize,
    days_back: i64,
    quiet_seconds: i64,
) -> Vec<DateTime<Utc>> {
    let range = (days_back * 86_400 - quiet_seconds) as u64;
    let mut instants: Vec<DateTime<Utc>> = (0..count)
        .map(|_| now - Duration::seconds(quiet_seconds + random.below(range) as i64))
        .collect();
    instants.sort_unstable();
    instants
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

const CHANNELS: &[(&str, u32)] = &[("email", 70), ("phone", 20), ("sms", 10)];

const PURPOSES: &[((&str, &[&str]), u32)] = &[
    (("care", &["support", "billing"]), 35),
    (("transactional", &["receipts"]), 25),
    (("value", &["newsletter", "tips"]), 25),
    (("sales", &["offers"]), 10),
    (("survey", &["feedback"]), 5),
];

fn write_contacts(
    files: &mut Files,
    random: &mut Random,
    now: DateTime<Utc>,
    id: &str,
) -> anyhow::Result<()> {
    let instants = past_instants(
        random,
        now,
        CONTACTS_PER_CUSTOMER,
        HISTORY_DAYS,
        QUIET_DAYS * 86_400,
    );
    for at in instants {
        let channel = *random.weighted(CHANNELS);
        let (purpose, topics) = *random.weighted(PURPOSES);
        let topic = *random.pick(topics);
        let (duration, outcome) = match channel {
            "phone" if random.chance(600) => (60 + random.below(840), "answered"),
            "phone" => (0, "no_answer"),
            "email" if random.chance(900) => (0, "delivered"),
            _ => (0, "sent"),
        };
        files.contacts.write_record([
            id,
            channel,
            purpose,
            topic,
            &rfc3339(at),
            &duration.to_string(),
            outcome,
        ])?;
    }
    Ok(())
}

const SIGNALS: &[((&str, &str), u32)] = &[
    (("opened", ""), 45),
    (("clicked", ""), 20),
    (("purchase", ""), 15),
    (("replied", ""), 5),
    (("declined", "offers"), 7),
    (("negative_tone", ""), 5),
    (("complaint", ""), 3),
];

fn write_signals(
    files: &mut Files,
    random: &mut Random,
    now: DateTime<Utc>,
    id: &str,
) -> anyhow::Result<()> {
    let instants = past_instants(random, now, SIGNALS_PER_CUSTOMER, HISTORY_DAYS, 3_600);
    for at in instants {
        let (kind, topic) = *random.weighted(SIGNALS);
        let channel = match kind {
            "declined" | "negative_tone" if random.chance(500) => "phone",
            _ => "email",
        };
        files
            .signals
            .write_record([id, kind, channel, topic, &rfc3339(at)])?;
    }
    Ok(())
}

/// What a customer with stated preferences asked for, as (change, value) pairs that
/// [`crate::apply::consent_change`] reads.
const WISHES: &[((&str, &str), u32)] = &[
    (("bucket", "monthly"), 6),
    (("bucket", "quarterly"), 15),
    (("bucket", "twice_a_year"), 9),
    (("bucket", "yearly"), 5),
    (("cadence", "1/14d"), 5),
    (("cadence", "2/30d"), 5),
    (("cadence", "1/60d"), 5),
    (("topic_opt_out", "offers"), 25),
    (("window", "08:00-21:00"), 10),
    (("window", "18:00-22:00"), 5),
    (("pause", ""), 5),
    (("channel_opt_out", "sms"), 5),
];

/// Opt-outs, which tact must obey at once.
const OPT_OUTS: &[((&str, &str), u32)] = &[
    (("marketing_opt_out", ""), 60),
    (("do_not_contact", ""), 20),
    (("channel_opt_out", "email"), 20),
];

fn write_wishes(
    files: &mut Files,
    random: &mut Random,
    now: DateTime<Utc>,
    id: &str,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let stated_at = now - Duration::seconds(3_600 + random.below(364 * 86_400) as i64);
    if random.chance(PREFERENCES_PER_MILLE) {
        let (change, value) = *random.weighted(WISHES);
        let value = match change {
            "pause" => rfc3339(now + Duration::days(1 + random.below(60) as i64)),
            _ => value.to_owned(),
        };
        files
            .preferences
            .write_record([id, change, &value, &rfc3339(stated_at)])?;
        counts.preferences += 1;
    }
    if random.chance(OPT_OUTS_PER_MILLE) {
        let (change, value) = *random.weighted(OPT_OUTS);
        files
            .preferences
            .write_record([id, change, value, &rfc3339(stated_at)])?;
        counts.opt_outs += 1;
    }
    if random.chance(CASES_PER_MILLE) {
        let opened_at = now - Duration::seconds(3_600 + random.below(14 * 86_400) as i64);
        files.cases.write_record([id, &rfc3339(opened_at)])?;
        counts.cases += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn workload(customers: u64, seed: u64) -> Workload {
        Workload {
            customers,
            seed,
            now: Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap(),
        }
    }

    fn read(folder: &Path, name: &str) -> String {
        std::fs::read_to_string(folder.join(name)).unwrap()
    }

    #[test]
    fn generate_counts_rows_per_file() -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;

        let counts = generate(&workload(200, 7), folder.path())?;

        assert_eq!(counts.customers, 200);
        assert_eq!(counts.accounts, 10);
        assert_eq!(counts.contacts, 4_000);
        assert_eq!(counts.signals, 1_000);
        let lines = |name| read(folder.path(), name).lines().count() as u64;
        assert_eq!(lines("customers.csv"), 201);
        assert_eq!(lines("contacts.csv"), 4_001);
        assert_eq!(lines("signals.csv"), 1_001);
        assert_eq!(
            lines("preferences.csv"),
            1 + counts.preferences + counts.opt_outs
        );
        assert_eq!(lines("cases.csv"), 1 + counts.cases);
        Ok(())
    }

    #[test]
    fn generate_same_seed_same_files() -> anyhow::Result<()> {
        let first = tempfile::tempdir()?;
        let second = tempfile::tempdir()?;
        let other = tempfile::tempdir()?;

        generate(&workload(50, 3), first.path())?;
        generate(&workload(50, 3), second.path())?;
        generate(&workload(50, 4), other.path())?;

        for name in [
            "customers.csv",
            "contacts.csv",
            "signals.csv",
            "preferences.csv",
        ] {
            assert_eq!(
                read(first.path(), name),
                read(second.path(), name),
                "{name}"
            );
        }
        assert_ne!(
            read(first.path(), "customers.csv"),
            read(other.path(), "customers.csv")
        );
        Ok(())
    }

    #[test]
    fn history_lies_in_year_before_now() -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;
        let workload = workload(100, 11);

        generate(&workload, folder.path())?;

        let mut reader = csv::Reader::from_path(folder.path().join("contacts.csv"))?;
        let earliest = workload.now - Duration::days(HISTORY_DAYS);
        let latest = workload.now - Duration::days(QUIET_DAYS);
        for row in reader.records() {
            let at = DateTime::parse_from_rfc3339(&row?[4])?.with_timezone(&Utc);
            assert!(at > earliest, "contact at {at} is too old");
            assert!(at <= latest, "contact at {at} is too recent");
        }
        Ok(())
    }

    #[test]
    fn first_customer_row_is_stable() -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;

        generate(&workload(1, 1), folder.path())?;

        let customers = read(folder.path(), "customers.csv");
        let row = customers.lines().nth(1).unwrap_or_default();
        assert!(row.starts_with("c0000001,"), "{row}");
        assert!(row.contains(".1@example.com,"), "{row}");
        assert!(row.contains(",Company 000001,"), "{row}");
        Ok(())
    }
}

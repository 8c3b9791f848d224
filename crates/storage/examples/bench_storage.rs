//! Measures bulk import and view streaming on a database file in a temporary folder.
//!
//! Run with `cargo run --release -p tact-storage --example bench_storage -- [customers]
//! [views|import]`. `customers` (default 1,000,000) is the number of customers streamed, each
//! with 20 history rows; the import imports the same number of contact rows. The second
//! argument runs one of the two measurements only, and a third names a folder in which the
//! filled database is kept and reused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rusqlite::params;
use std::fmt::Write as _;
use std::time::Instant;
use tact_domain::Policy;
use tact_storage::{Audience, Scan, Store, import};

const HISTORY_PER_CUSTOMER: usize = 20;
const CONTACTS_PER_CUSTOMER: usize = 14;
const BATCH_SIZE: usize = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let customers: usize = match std::env::args().nth(1) {
        Some(text) => text.replace([',', '_'], "").parse()?,
        None => 1_000_000,
    };
    // A third argument names a folder that keeps the filled database between runs.
    let kept_folder = std::env::args().nth(3).map(std::path::PathBuf::from);
    let folder = tempfile::tempdir()?;
    let views_path = match &kept_folder {
        Some(folder) => folder.join(format!("views-{customers}.db")),
        None => folder.path().join("views.db"),
    };
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();

    let only = std::env::args().nth(2).unwrap_or_default();

    println!("customers: {customers}, history rows per customer: {HISTORY_PER_CUSTOMER}");
    if only != "import" {
        bench_views(&views_path, customers, now)?;
    }
    if only != "views" {
        bench_import(&folder.path().join("import.db"), customers, now)?;
    }
    Ok(())
}

/// Fills a database with `customers` customers and their history, then streams every view.
fn bench_views(
    path: &std::path::Path,
    customers: usize,
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    if path.exists() {
        println!("fill: reusing {}", path.display());
    } else {
        fill(path, customers, now)?;
        let seconds = started.elapsed().as_secs_f64();
        println!("fill: {seconds:.1} s (direct inserts, not measured as import)");
    }

    let store = Store::open(path)?;
    let policy = Policy::default();
    let cores = Scan::new(&Audience::All, now, &policy).readers;
    for readers in [1, cores] {
        let scan = Scan {
            batch_size: BATCH_SIZE,
            readers,
            ..Scan::new(&Audience::All, now, &policy)
        };
        let started = Instant::now();
        let cpu_started = cpu_seconds();
        let mut views = 0_usize;
        let mut rows = 0_usize;
        store.scan_views(
            &scan,
            |_, batch| batch,
            |batch| -> Result<(), tact_storage::Error> {
                for view in batch {
                    views += 1;
                    rows += view.contacts.len() + view.signals.len() + view.account_contacts.len();
                }
                Ok(())
            },
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_started;
        println!(
            "stream views, {readers} reader(s): {views} views with {rows} history rows in \
             {seconds:.2} s ({cpu:.2} s CPU) = {:.0} views/s ({:.0} per CPU second); \
             peak memory so far {} kB",
            views as f64 / seconds,
            views as f64 / cpu,
            peak_memory_kb()
        );
        assert_eq!(views, customers);
        assert_eq!(rows, customers * HISTORY_PER_CUSTOMER);
    }
    Ok(())
}

/// Inserts customers, contacts and signals with plain prepared statements.
fn fill(
    path: &std::path::Path,
    customers: usize,
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    drop(Store::open(path)?);
    let mut connection = rusqlite::Connection::open(path)?;
    let transaction = connection.transaction()?;
    {
        let mut customer = transaction.prepare(
            "INSERT INTO customers (id, external_id, email, time_zone, locale) \
             VALUES (?1, ?2, ?3, 'Europe/Berlin', 'de-DE')",
        )?;
        let mut contact = transaction.prepare(
            "INSERT INTO contacts (customer_id, channel, purpose, at_ms, outcome) \
             VALUES (?1, 'email', ?2, ?3, 'sent')",
        )?;
        let mut signal = transaction.prepare(
            "INSERT INTO signals (customer_id, kind, at_ms, channel) VALUES (?1, ?2, ?3, 'email')",
        )?;
        for id in 1..=customers as i64 {
            let external = format!("c{id}");
            customer.execute(params![id, external, format!("{external}@example.com")])?;
            for index in 0..HISTORY_PER_CUSTOMER as i64 {
                let at = now - Duration::days(1 + index * 9) - Duration::seconds(id % 3_600);
                let at = at.timestamp_millis();
                if index < CONTACTS_PER_CUSTOMER as i64 {
                    let purpose = if index % 3 == 0 { "sales" } else { "value" };
                    contact.execute(params![id, purpose, at])?;
                } else {
                    let kind = if index % 2 == 0 { "opened" } else { "clicked" };
                    signal.execute(params![id, kind, at])?;
                }
            }
        }
    }
    transaction.commit()?;
    drop(connection);
    Store::open(path)?.rebuild_timelines()?;
    Ok(())
}

/// Imports `rows` contact rows from CSV for `rows / 20` customers.
fn bench_import(
    path: &std::path::Path,
    rows: usize,
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(path)?;
    let customers = rows.div_ceil(HISTORY_PER_CUSTOMER);
    let mut csv = String::from("external_id,email,timezone\n");
    for id in 0..customers {
        writeln!(csv, "c{id},c{id}@example.com,Europe/Berlin")?;
    }
    let started = Instant::now();
    let report = import::import_customers(&store, csv.as_bytes())?;
    println!(
        "import customers: {} rows in {:.2} s",
        report.inserted,
        started.elapsed().as_secs_f64()
    );

    let mut csv = String::from("external_id,channel,purpose,topic,at,duration_s,outcome\n");
    for row in 0..rows {
        let at = now - Duration::minutes(row as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        writeln!(
            csv,
            "c{},email,value,newsletter,{at},0,sent",
            row % customers
        )?;
    }
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let report = import::import_contacts(&store, csv.as_bytes())?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    println!(
        "import history: {} contact rows in {seconds:.2} s ({cpu:.2} s CPU) = {:.0} rows/s \
         ({:.0} per CPU second); peak memory {} kB",
        report.inserted,
        report.inserted as f64 / seconds,
        report.inserted as f64 / cpu,
        peak_memory_kb()
    );
    assert_eq!(report.inserted as usize, rows);
    assert!(report.rejected.is_empty());
    Ok(())
}

/// Reads the process's peak resident memory (VmHWM) in kB, or 0 where /proc is missing.
fn peak_memory_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads the user plus system CPU time of this process in seconds, from /proc/self/stat (clock ticks
/// of 1/100 s), or 0 where /proc is missing.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name in parentheses may contain spaces; the fields after it do not.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use tact_domain::{CampaignId, Channel, Contact, Outcome, Purpose};
use tact_storage::{Checkpointer, Error, SCHEMA_VERSION, Store};

use crate::common::{TestResult, campaign, customer, raw, temp_store, utc};

#[test]
fn open_migrates_new_file() -> TestResult {
    let (folder, store) = temp_store()?;
    drop(store);
    let connection = raw(&folder);

    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;

    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(mode, "wal");
    let expected = [
        "accounts",
        "campaigns",
        "care_cases",
        "consent_events",
        "contacts",
        "customers",
        "deliveries",
        "signals",
        "suppressions",
        "timelines",
    ];
    assert_eq!(tables, expected);
    Ok(())
}

#[test]
fn reopen_keeps_data() -> TestResult {
    let (folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    drop(store);

    let store = Store::open(folder.path().join("tact.db"))?;

    assert_eq!(store.customer(id)?.external_id, "c1");
    Ok(())
}

#[test]
fn newer_schema_rejected_and_unchanged() -> TestResult {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("future.db");
    {
        let connection = rusqlite::Connection::open(&path)?;
        connection.execute_batch("CREATE TABLE later (x); PRAGMA user_version = 99;")?;
    }
    let bytes = std::fs::read(&path)?;
    let modified = std::fs::metadata(&path)?.modified()?;
    std::thread::sleep(std::time::Duration::from_millis(20));

    let error = Store::open(&path).unwrap_err();

    assert!(matches!(
        error,
        Error::SchemaTooNew {
            found: 99,
            supported: SCHEMA_VERSION
        }
    ));
    assert_eq!(
        error.to_string(),
        "database schema version 99 is newer than this build supports (7); \
         upgrade tact or open a backup made by this version"
    );
    assert_eq!(std::fs::read(&path)?, bytes);
    assert_eq!(std::fs::metadata(&path)?.modified()?, modified);
    Ok(())
}

#[test]
fn two_stores_write_concurrently() -> TestResult {
    let (folder, store) = temp_store()?;
    let customer_id = store.upsert_customer(&customer("c1"))?;
    let path = folder.path().join("tact.db");
    let barrier = Arc::new(Barrier::new(2));

    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || -> Result<(), Error> {
                let store = Store::open(&path)?;
                barrier.wait();
                for index in 0..500 {
                    let contact = Contact {
                        customer: customer_id,
                        channel: Channel::EMAIL,
                        purpose: Purpose::Value,
                        topic: None,
                        campaign: None,
                        at: utc(2026, 1, 1, 0, 0)
                            + chrono::Duration::seconds(writer * 1000 + index),
                        duration_s: 0,
                        outcome: Outcome::Sent,
                    };
                    store.record_contact(&contact)?;
                    store.upsert_customer(&customer(&format!("w{writer}-{index}")))?;
                }
                Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread panicked")?;
    }

    assert_eq!(store.history(customer_id)?.contacts.len(), 1000);
    let count: i64 =
        raw(&folder).query_row("SELECT count(*) FROM customers", [], |row| row.get(0))?;
    assert_eq!(count, 1001);
    Ok(())
}

#[test]
fn concurrent_open_of_new_file() -> TestResult {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("fresh.db");
    let barrier = Arc::new(Barrier::new(4));

    let openers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                Store::open(&path).map(|_| ())
            })
        })
        .collect();

    for opener in openers {
        opener.join().expect("opener thread panicked")?;
    }
    Ok(())
}

#[test]
fn backup_copies_everything() -> TestResult {
    let (folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let copy = folder.path().join("copy.db");

    store.backup_to(&copy)?;

    let restored = Store::open(&copy)?;
    assert_eq!(restored.customer(id)?, store.customer(id)?);
    Ok(())
}

#[test]
fn store_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

#[cfg(unix)]
#[test]
fn new_files_are_private() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("tact.db");
    let store = Store::open(&path)?;
    store.upsert_customer(&crate::common::customer("c1"))?;
    let backup = folder.path().join("backup.db");
    store.backup_to(&backup)?;

    let mode = |name: &str| -> std::io::Result<u32> {
        let metadata = std::fs::metadata(folder.path().join(name))?;
        Ok(metadata.permissions().mode() & 0o777)
    };
    assert_eq!(mode("tact.db")?, 0o600);
    assert_eq!(mode("tact.db-wal")?, 0o600);
    assert_eq!(mode("tact.db-shm")?, 0o600);
    assert_eq!(mode("backup.db")?, 0o600);
    Ok(())
}

#[test]
fn checkpointer_copies_deferred_log() -> TestResult {
    let (folder, store) = temp_store()?;
    let database = folder.path().join("tact.db");
    store.defer_checkpoints()?;
    let notes = "x".repeat(900);
    let fields = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for index in 0..300 {
        let mut new = customer(&format!("c{index}"));
        for field in fields {
            new.fields
                .insert(field.to_owned(), serde_json::json!(notes));
        }
        store.upsert_customer(&new)?;
    }
    // Each upsert appends its row's pages of 4 KiB and a few index pages to the log, far
    // fewer than the deferred backstop of 4,096 pages in all.
    let before = std::fs::metadata(&database)?.len();
    assert!(before < 200_000, "the database file has {before} bytes");

    let checkpointer = Checkpointer::start(&database, Duration::from_millis(10))?;
    let mut after = before;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(10));
        after = std::fs::metadata(&database)?.len();
        if after > 2_000_000 {
            break;
        }
    }
    drop(checkpointer);
    assert!(after > 2_000_000, "the database file has {after} bytes");
    assert_eq!(store.customer_by_external_id("c299")?.external_id, "c299");
    Ok(())
}

#[test]
fn campaign_skipped_counts_survive_upgrade() -> TestResult {
    let (folder, store) = temp_store()?;
    let now = utc(2026, 6, 1, 9, 0);
    let old = store.create_campaign(&campaign("before the upgrade", now))?;
    drop(store);
    // A file of schema version 6 has no skipped count.
    raw(&folder).execute_batch(
        "ALTER TABLE campaigns DROP COLUMN skipped;
         PRAGMA user_version = 6;",
    )?;

    let store = Store::open(folder.path().join("tact.db"))?;
    let new = store.create_campaign(&campaign("after the upgrade", now))?;
    store.set_campaign_skipped(new, 3)?;

    assert_eq!(store.campaign_status(old)?.skipped, 0);
    assert_eq!(store.campaign_status(new)?.skipped, 3);
    let missing = store.set_campaign_skipped(CampaignId(99), 1).unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    Ok(())
}

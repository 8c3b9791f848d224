//! A writer process killed with SIGKILL at random points must leave the outbox consistent.
//!
//! The test binary runs itself again as the writer: `crash_writer_child` does the writing
//! when `TACT_CRASH_DB` names a database file, and returns at once otherwise.

use chrono::Duration;
use std::hash::{BuildHasher, Hasher};
use std::process::{Command, Stdio};
use std::time::Instant;
use tact_domain::CustomerId;
use tact_storage::Store;

use crate::common::{TestResult, campaign, customer, decide_delivery, utc};

const DATABASE_VARIABLE: &str = "TACT_CRASH_DB";
const RUNS: usize = 24;

#[test]
fn crash_writer_child() -> TestResult {
    let Ok(path) = std::env::var(DATABASE_VARIABLE) else {
        return Ok(());
    };
    let store = Store::open(&path)?;
    let now = utc(2026, 6, 1, 12, 0);
    let started = Instant::now();
    // Stops by itself after 20 seconds, in case the parent never kills it.
    for round in 0.. {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            break;
        }
        let campaign = store.create_campaign(&campaign(&format!("round {round}"), now))?;
        let customers: Vec<CustomerId> = (0..20)
            .map(|index| {
                store.upsert_customer(&customer(&format!(
                    "p{}-r{round}-{index}",
                    std::process::id()
                )))
            })
            .collect::<Result<_, _>>()?;
        let deliveries = store.plan_deliveries(campaign, &customers, now)?;
        for (delivery, customer) in deliveries.iter().zip(&customers) {
            let decision = decide_delivery(&store, *customer, campaign, now);
            store.record_decision(*delivery, &decision, now)?;
        }
        for claimed in store.claim_deliveries("crash", Duration::minutes(5), 10, now)? {
            store.mark_sent(claimed.id, &format!("<{}@tact>", claimed.id), now)?;
        }
    }
    Ok(())
}

/// A small pseudo-random generator (xorshift), seeded from the standard library's random
/// hasher keys.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn count(connection: &rusqlite::Connection, sql: &str) -> i64 {
    connection.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn killed_writer_leaves_outbox_consistent() -> TestResult {
    if std::env::var(DATABASE_VARIABLE).is_ok() {
        return Ok(());
    }
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("crash.db");
    Store::open(&path)?;
    let executable = std::env::current_exe()?;
    let mut seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    let mut approved_total = 0;

    for run in 0..RUNS {
        let mut child = Command::new(&executable)
            .args([
                "--exact",
                "crash::crash_writer_child",
                "--test-threads",
                "1",
            ])
            .env(DATABASE_VARIABLE, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let delay = 30 + next_random(&mut seed) % 400;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill()?;
        child.wait()?;

        let store = Store::open(&path)?;
        drop(store);
        let connection = rusqlite::Connection::open(&path)?;
        let integrity: String = connection.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(integrity, "ok", "run {run}");
        let booked_without_contact = count(
            &connection,
            "SELECT count(*) FROM deliveries WHERE state IN ('approved', 'sending', 'sent') \
             AND (contact_id IS NULL OR contact_id NOT IN (SELECT id FROM contacts))",
        );
        assert_eq!(booked_without_contact, 0, "run {run}");
        let contact_without_delivery = count(
            &connection,
            "SELECT count(*) FROM contacts WHERE campaign_id IS NOT NULL \
             AND id NOT IN (SELECT contact_id FROM deliveries WHERE contact_id IS NOT NULL)",
        );
        assert_eq!(contact_without_delivery, 0, "run {run}");
        let sent_but_pending = count(
            &connection,
            "SELECT count(*) FROM deliveries d JOIN contacts c ON c.id = d.contact_id \
             WHERE d.state = 'sent' AND c.outcome != 'sent'",
        );
        assert_eq!(sent_but_pending, 0, "run {run}");
        approved_total = count(&connection, "SELECT count(*) FROM contacts");
    }

    // The writer made progress, so the checks above looked at real rows.
    assert!(approved_total > 0, "no contact was ever written");
    Ok(())
}

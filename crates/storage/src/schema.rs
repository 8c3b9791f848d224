//! The schema and its migrations, and opening a connection with the right settings.

use rusqlite::Connection;
use rusqlite_migration::{HookError, M, Migrations};
use std::time::Duration;

use crate::error::BUSY_TIMEOUT_MS;
use crate::timeline::{self, Rebuild, Scope};
use crate::{Error, Result};

/// The first schema. Instants are milliseconds since the Unix epoch (UTC).
const SCHEMA_V1: &str = r#"
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT,
    email TEXT,
    phone TEXT,
    time_zone TEXT NOT NULL,
    locale TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts(id),
    bucket TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    preferences TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX customers_account ON customers(account_id, id);
CREATE INDEX customers_bucket ON customers(bucket, id);

CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    change TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX consent_events_customer ON consent_events(customer_id, id);
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only: rows cannot be updated');
END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only: rows cannot be deleted');
END;

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    topic TEXT,
    audience TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    offer INTEGER NOT NULL DEFAULT 0,
    template TEXT NOT NULL,
    send_at_ms INTEGER,
    relevant_until_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX campaigns_status ON campaigns(status, send_at_ms);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    topic TEXT,
    campaign_id INTEGER REFERENCES campaigns(id),
    at_ms INTEGER NOT NULL,
    duration_s INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_identity ON contacts(
    customer_id, at_ms, channel, purpose, ifnull(topic, ''), ifnull(campaign_id, 0)
);
-- Covers the history range queries, so loading views reads no table rows.
CREATE INDEX contacts_history ON contacts(
    customer_id, at_ms, channel, purpose, topic, campaign_id, duration_s, outcome
);

CREATE TABLE signals (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    channel TEXT,
    topic TEXT,
    delivery_id INTEGER,
    machine INTEGER NOT NULL DEFAULT 0,
    value REAL
);
CREATE UNIQUE INDEX signals_identity ON signals(
    customer_id, at_ms, kind, ifnull(channel, ''), ifnull(topic, ''), ifnull(delivery_id, 0)
);
CREATE INDEX signals_history ON signals(
    customer_id, at_ms, kind, channel, topic, delivery_id, machine, value
);

CREATE TABLE care_cases (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER
);
CREATE INDEX care_cases_customer ON care_cases(customer_id, opened_at_ms);

CREATE TABLE suppressions (
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_id, channel)
) WITHOUT ROWID;

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    state TEXT NOT NULL CHECK (
        state IN ('planned', 'deferred', 'approved', 'sending', 'sent', 'failed', 'denied')
    ),
    next_attempt_at_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    reasons TEXT NOT NULL DEFAULT '[]',
    decided_at_ms INTEGER,
    approval_expires_at_ms INTEGER,
    contact_id INTEGER REFERENCES contacts(id),
    lease_owner TEXT,
    lease_expires_at_ms INTEGER,
    message_id TEXT,
    last_error TEXT,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (campaign_id, customer_id),
    CHECK ((state IN ('approved', 'sending', 'sent', 'failed')) = (contact_id IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at_ms);
CREATE INDEX deliveries_lease ON deliveries(state, lease_expires_at_ms);
CREATE INDEX deliveries_customer ON deliveries(customer_id);
"#;

/// Makes a signal's value part of its identity: two purchases of one customer at the same
/// instant with different amounts are two events, and the second must not be dropped as a
/// repeat of the first.
const SCHEMA_V2: &str = r#"
DROP INDEX signals_identity;
CREATE UNIQUE INDEX signals_identity ON signals(
    customer_id, at_ms, kind, ifnull(channel, ''), ifnull(topic, ''), ifnull(delivery_id, 0),
    ifnull(value, '')
);
"#;

/// Rebuilds `deliveries` with the same columns, rows and indexes, but with its state checks
/// written as comparisons joined by `OR`. SQLite evaluates an `IN (…)` list in a `CHECK`
/// through a temporary table that it creates and drops for every row written, which cost
/// about a third of each insert or update of a delivery.
const SCHEMA_V3: &str = r#"
CREATE TABLE deliveries_v3 (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    state TEXT NOT NULL CHECK (
        state = 'planned' OR state = 'deferred' OR state = 'approved' OR state = 'sending'
        OR state = 'sent' OR state = 'failed' OR state = 'denied'
    ),
    next_attempt_at_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    reasons TEXT NOT NULL DEFAULT '[]',
    decided_at_ms INTEGER,
    approval_expires_at_ms INTEGER,
    contact_id INTEGER REFERENCES contacts(id),
    lease_owner TEXT,
    lease_expires_at_ms INTEGER,
    message_id TEXT,
    last_error TEXT,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (campaign_id, customer_id),
    CHECK (
        (state = 'approved' OR state = 'sending' OR state = 'sent' OR state = 'failed')
        = (contact_id IS NOT NULL)
    )
);
INSERT INTO deliveries_v3 SELECT * FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v3 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at_ms);
CREATE INDEX deliveries_lease ON deliveries(state, lease_expires_at_ms);
CREATE INDEX deliveries_customer ON deliveries(customer_id);
"#;

/// Adds each customer's timeline: their contacts and signals packed into one row, so that
/// a view reads one row per customer (crate::timeline). The hook fills it from the history
/// already stored.
///
/// Views no longer read history rows, so the covering history indexes go: the identity
/// indexes, which also begin with customer and instant, serve `tact history`, account caps
/// and the derivation of timelines, and every contact written updates one index fewer.
///
/// It also limits the outbox's two time indexes to the rows that have that time: only
/// deliveries waiting for an attempt have `next_attempt_at_ms`, and only `sending` ones a
/// lease. Every query on them compares the time, which lets SQLite prove that the partial index
/// contains every row it can match. Planned, sent, failed and denied deliveries then cost no
/// entry in the lease index, and finished ones none in either.
const SCHEMA_V4: &str = r#"
CREATE TABLE timelines (
    customer_id INTEGER PRIMARY KEY,
    contacts BLOB NOT NULL DEFAULT x'',
    signals BLOB NOT NULL DEFAULT x''
);
DROP INDEX contacts_history;
DROP INDEX signals_history;
DROP INDEX deliveries_due;
DROP INDEX deliveries_lease;
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at_ms)
    WHERE next_attempt_at_ms IS NOT NULL;
CREATE INDEX deliveries_lease ON deliveries(state, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;
"#;

/// Takes pending contacts out of timelines: views read them from `contacts` through
/// `contacts_pending` instead, so planning writes no timeline entry for the contacts it
/// books. Only customers with pending contacts have their timelines derived again.
const SCHEMA_V5: &str = r#"
CREATE INDEX contacts_pending ON contacts(customer_id, at_ms) WHERE outcome = 'pending';
"#;

/// Takes pending contacts out of the identity index too: `contacts_pending` becomes their
/// own unique identity index, and `contacts_identity` covers the other contacts only. A
/// contact moves from one to the other when its outcome is set, as when its message is
/// sent, and planning writes no entry in the larger index for the contacts it books.
const SCHEMA_V6: &str = r#"
DROP INDEX contacts_pending;
DROP INDEX contacts_identity;
CREATE UNIQUE INDEX contacts_identity ON contacts(
    customer_id, at_ms, channel, purpose, ifnull(topic, ''), ifnull(campaign_id, 0)
) WHERE outcome <> 'pending';
CREATE UNIQUE INDEX contacts_pending ON contacts(
    customer_id, at_ms, channel, purpose, ifnull(topic, ''), ifnull(campaign_id, 0)
) WHERE outcome = 'pending';
"#;

/// Counts the customers that the last planning of a campaign left out because the template
/// needs a field they lack. They get no delivery, so the outbox cannot count them.
const SCHEMA_V7: &str = r#"
ALTER TABLE campaigns ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
"#;

fn drop_pending_from_timelines(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let pending = "DROP TABLE IF EXISTS temp.pending_customers; \
                   CREATE TEMP TABLE pending_customers AS \
                   SELECT DISTINCT customer_id FROM contacts WHERE outcome = 'pending';";
    tx.execute_batch(pending)?;
    let scope = Scope::Staged {
        table: "pending_customers",
        after: 0,
        until: i64::MAX,
    };
    timeline::rebuild(tx, scope, Rebuild::Contacts).map_err(hook_error)?;
    tx.execute("DROP TABLE temp.pending_customers", [])?;
    Ok(())
}

fn hook_error(error: Error) -> HookError {
    match error {
        Error::Sqlite(error) => HookError::RusqliteError(error),
        other => HookError::Hook(other.to_string()),
    }
}

fn fill_timelines(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    timeline::rebuild(tx, Scope::All, Rebuild::Both).map_err(hook_error)
}

/// Lists the migrations, oldest first. A released migration is never edited, so a change
/// goes in a new migration appended here.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up(SCHEMA_V2),
        M::up(SCHEMA_V3),
        M::up_with_hook(SCHEMA_V4, fill_timelines),
        M::up_with_hook(SCHEMA_V5, drop_pending_from_timelines),
        M::up(SCHEMA_V6),
        M::up(SCHEMA_V7),
    ])
}

/// The newest schema version this build supports (`PRAGMA user_version` after all migrations).
pub const SCHEMA_VERSION: i64 = 7;

/// Prepared statements each connection keeps. The store prepares about 55 distinct
/// statements through the cache, and one pushed out of it is parsed again on its next use.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Opens a connection, refuses files from a newer schema, sets the pragmas and migrates.
pub(crate) fn open_connection(path: &std::path::Path) -> Result<Connection> {
    let mut connection = Connection::open(path)?;
    configure(&mut connection)?;
    Ok(connection)
}

pub(crate) fn configure(connection: &mut Connection) -> Result<()> {
    connection.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);

    // Check the version before any pragma that writes (journal_mode does), so a file from a
    // newer build is left exactly as it was.
    let found = user_version(connection)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }

    switch_to_wal(connection)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Up to 32 MiB of page cache per connection (the default is 2 MiB): bulk imports touch
    // index pages all over the file, and a cache that spills writes them more than once.
    connection.pragma_update(None, "cache_size", -32_768)?;
    migrate(connection)
}

/// Sets the journal mode to WAL. A new file starts in rollback mode. A connection that
/// needs the exclusive lock for the switch while another has a shared one gets
/// `SQLITE_BUSY` at once, because SQLite does not call the busy handler where waiting
/// could deadlock. Connections opening a new file at once therefore try again, a bounded
/// number of times.
fn switch_to_wal(connection: &Connection) -> Result<()> {
    let mut attempts = 0;
    loop {
        let switched = connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        });
        match switched {
            Ok(_) => return Ok(()),
            Err(error)
                if attempts < 50
                    && error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn user_version(connection: &Connection) -> Result<i64> {
    Ok(connection.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Runs the pending migrations. Several connections may open a new file at once: a migration
/// that loses the race fails, so each failure re-reads the version and tries again, a bounded
/// number of times.
fn migrate(connection: &mut Connection) -> Result<()> {
    let migrations = migrations();
    let mut attempts = 0;
    loop {
        if user_version(connection)? == SCHEMA_VERSION {
            return Ok(());
        }
        match migrations.to_latest(connection) {
            Ok(()) => return Ok(()),
            // A hook fails on the data, which waiting does not change.
            Err(error @ rusqlite_migration::Error::Hook(_)) => {
                return Err(Error::Migration(error));
            }
            Err(_) if attempts < 50 && user_version(connection)? <= SCHEMA_VERSION => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(Error::Migration(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn version_three_keeps_deliveries() -> Result<(), Box<dyn std::error::Error>> {
        let mut connection = Connection::open_in_memory()?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        Migrations::new(vec![M::up(SCHEMA_V1), M::up(SCHEMA_V2)]).to_latest(&mut connection)?;
        connection.execute_batch(
            "INSERT INTO customers (id, external_id, time_zone, locale) VALUES (1, 'c1', 'UTC', 'en');
             INSERT INTO campaigns (id, name, channel, purpose, audience, template, created_at_ms, status)
                 VALUES (1, 'News', 'email', 'value', '{}', '{}', 0, 'running');
             INSERT INTO contacts (id, customer_id, channel, purpose, at_ms, outcome)
                 VALUES (5, 1, 'email', 'value', 10, 'sent');
             INSERT INTO deliveries (id, campaign_id, customer_id, state, contact_id, message_id,
                     updated_at_ms)
                 VALUES (7, 1, 1, 'sent', 5, '<m@x>', 20);",
        )?;

        migrations().to_latest(&mut connection)?;

        let row: (i64, String, i64, String) = connection.query_row(
            "SELECT id, state, contact_id, message_id FROM deliveries",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?;
        assert_eq!(row, (7, "sent".to_owned(), 5, "<m@x>".to_owned()));
        let indexes: i64 = connection.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'deliveries' \
             AND name IN ('deliveries_due', 'deliveries_lease', 'deliveries_customer')",
            [],
            |row| row.get(0),
        )?;
        assert_eq!(indexes, 3);
        let violated = Err(Some(rusqlite::ErrorCode::ConstraintViolation));
        let unknown_state =
            connection.execute("UPDATE deliveries SET state = 'lost' WHERE id = 7", []);
        assert_eq!(
            unknown_state.map_err(|error| error.sqlite_error_code()),
            violated
        );
        let sent_without_contact =
            connection.execute("UPDATE deliveries SET contact_id = NULL WHERE id = 7", []);
        assert_eq!(
            sent_without_contact.map_err(|error| error.sqlite_error_code()),
            violated
        );
        let planned_with_contact =
            connection.execute("UPDATE deliveries SET state = 'planned' WHERE id = 7", []);
        assert_eq!(
            planned_with_contact.map_err(|error| error.sqlite_error_code()),
            violated
        );
        Ok(())
    }

    #[test]
    fn version_four_fills_timelines() -> Result<(), Box<dyn std::error::Error>> {
        let mut connection = Connection::open_in_memory()?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        Migrations::new(vec![M::up(SCHEMA_V1), M::up(SCHEMA_V2), M::up(SCHEMA_V3)])
            .to_latest(&mut connection)?;
        connection.execute_batch(
            "INSERT INTO customers (id, external_id, time_zone, locale)
                 VALUES (1, 'c1', 'UTC', 'en'), (2, 'c2', 'UTC', 'en'), (3, 'c3', 'UTC', 'en');
             INSERT INTO contacts (id, customer_id, channel, purpose, topic, at_ms, outcome)
                 VALUES (5, 1, 'email', 'value', 'news', 30, 'sent'),
                        (6, 1, 'phone', 'care', NULL, 10, 'answered'),
                        (7, 3, 'sms', 'sales', NULL, 20, 'failed');
             INSERT INTO signals (id, customer_id, kind, at_ms, channel, value)
                 VALUES (9, 2, 'purchase', 15, NULL, 12.5), (8, 2, 'opened', 15, 'email', NULL);",
        )?;

        migrations().to_latest(&mut connection)?;

        let span = timeline::Span {
            since_ms: 0,
            until_ms: 100,
            excluded_contact: None,
        };
        let columns = |customer: i64| -> rusqlite::Result<(Vec<u8>, Vec<u8>)> {
            connection.query_row(
                "SELECT contacts, signals FROM timelines WHERE customer_id = ?1",
                [customer],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        };
        let (contacts, signals) = columns(1)?;
        let contacts =
            timeline::contacts_in(tact_domain::CustomerId(1), &contacts, span, Vec::new())?;
        let described: Vec<(&str, i64, &str)> = contacts
            .iter()
            .map(|c| {
                (
                    c.channel.as_str(),
                    c.at.timestamp_millis(),
                    crate::codec::outcome_text(c.outcome),
                )
            })
            .collect();
        assert_eq!(
            described,
            [("phone", 10, "answered"), ("email", 30, "sent")]
        );
        assert!(signals.is_empty());
        let (contacts, signals) = columns(2)?;
        let signals = timeline::signals_in(tact_domain::CustomerId(2), &signals, span)?;
        let described: Vec<(&str, Option<f64>)> =
            signals.iter().map(|s| (s.kind.as_str(), s.value)).collect();
        assert_eq!(described, [("opened", None), ("purchase", Some(12.5))]);
        assert!(contacts.is_empty());
        let (contacts, _) = columns(3)?;
        let contacts =
            timeline::contacts_in(tact_domain::CustomerId(3), &contacts, span, Vec::new())?;
        assert_eq!(contacts.len(), 1);
        Ok(())
    }

    #[test]
    fn outbox_time_queries_use_the_partial_indexes() -> Result<(), Box<dyn std::error::Error>> {
        let mut connection = Connection::open_in_memory()?;
        migrations().to_latest(&mut connection)?;
        let queries = [
            (
                "SELECT id FROM deliveries WHERE state = 'sending' AND lease_expires_at_ms <= 5 \
                 ORDER BY lease_expires_at_ms, id LIMIT 10",
                "SEARCH deliveries USING COVERING INDEX deliveries_lease \
                 (state=? AND lease_expires_at_ms<?)",
            ),
            (
                "SELECT id FROM deliveries WHERE state = 'approved' AND next_attempt_at_ms <= 5 \
                 ORDER BY next_attempt_at_ms, id LIMIT 10",
                "SEARCH deliveries USING COVERING INDEX deliveries_due \
                 (state=? AND next_attempt_at_ms<?)",
            ),
        ];
        for (query, expected) in queries {
            let plan: Vec<String> = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {query}"))?
                .query_map([], |row| row.get(3))?
                .collect::<Result<_, _>>()?;
            assert_eq!(plan, [expected], "{query}");
        }
        Ok(())
    }
}

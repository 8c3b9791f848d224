//! A temporary table that contains imported contacts until they are copied into `contacts`
//! in customer order.
//!
//! History files are usually in time order, so consecutive rows belong to different
//! customers and land on index pages all over `contacts`. Written directly, every commit
//! rewrites most of both history indexes, so a million rows in 20 transactions write each
//! index page an estimated ten times. Copied in customer order, each transaction changes one contiguous stretch of the
//! indexes, so each page is written about once.

use rusqlite::{Connection, OptionalExtension, params};
use tact_domain::Contact;

use super::{BATCH_ROWS, begin};
use crate::codec::{outcome_text, to_ms};
use crate::{Result, Store};

/// The staging table lives in SQLite's temporary database, which is private to the
/// connection and kept in a temporary file, not in memory (SQLite's default temp store).
const CREATE_TABLE: &str = "DROP TABLE IF EXISTS temp.import_contacts;
    CREATE TEMP TABLE import_contacts (
        customer_id INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        line INTEGER NOT NULL,
        channel TEXT NOT NULL,
        purpose TEXT NOT NULL,
        topic TEXT,
        duration_s INTEGER NOT NULL,
        outcome TEXT NOT NULL
    );";

/// Sorting on `line` last keeps file order among rows of the same customer and instant, so
/// of two rows with the same identity the earlier one is stored, as in a direct insert.
/// The index covers every column, so the copy reads no table rows.
const CREATE_INDEX: &str = "CREATE INDEX temp.import_contacts_order ON import_contacts (
    customer_id, at_ms, line, channel, purpose, topic, duration_s, outcome
)";

const INSERT: &str = "INSERT INTO temp.import_contacts \
    (customer_id, at_ms, line, channel, purpose, topic, duration_s, outcome) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Finds the customer of the `?2`-th staged row after customer `?1`, in customer order.
const CHUNK_END: &str = "SELECT customer_id FROM temp.import_contacts \
    WHERE customer_id > ?1 ORDER BY customer_id LIMIT 1 OFFSET ?2";

const COPY: &str = "INSERT OR IGNORE INTO main.contacts \
    (customer_id, channel, purpose, topic, campaign_id, at_ms, duration_s, outcome) \
    SELECT customer_id, channel, purpose, topic, NULL, at_ms, duration_s, outcome \
    FROM temp.import_contacts WHERE customer_id > ?1 AND customer_id <= ?2 \
    ORDER BY customer_id, at_ms, line";

/// Contacts read from a file and not yet copied into `contacts`.
///
/// Dropping the stage drops its table, so an import that fails halfway leaves nothing
/// behind in the temporary database.
pub(super) struct ContactStage<'c> {
    connection: &'c Connection,
}

impl<'c> ContactStage<'c> {
    /// Creates an empty staging table, replacing one a failed import may have left.
    pub(super) fn create(connection: &'c Connection) -> Result<ContactStage<'c>> {
        connection.execute_batch(CREATE_TABLE)?;
        Ok(ContactStage { connection })
    }

    /// Adds a contact read on `line` of the file. Its customer must exist.
    pub(super) fn push(&self, contact: &Contact, line: u64) -> rusqlite::Result<()> {
        self.connection.prepare_cached(INSERT)?.execute(params![
            contact.customer.0,
            to_ms(contact.at),
            line as i64,
            contact.channel.as_str(),
            contact.purpose.as_str(),
            contact.topic.as_ref().map(|topic| topic.as_str()),
            contact.duration_s,
            outcome_text(contact.outcome),
        ])?;
        Ok(())
    }

    /// Copies the staged contacts into `contacts` in customer order, in transactions of
    /// about [`BATCH_ROWS`] rows that each hold whole customers, and returns how many were
    /// new. A contact identical to a stored one, or to an earlier line, is skipped.
    pub(super) fn copy_into_contacts(&self, store: &Store) -> Result<u64> {
        self.connection.execute_batch(CREATE_INDEX)?;
        let mut inserted = 0;
        let mut after = i64::MIN;
        loop {
            let chunk_end = self.chunk_end(after)?;
            let transaction = begin(store)?;
            let copied = transaction
                .prepare_cached(COPY)?
                .execute(params![after, chunk_end.unwrap_or(i64::MAX)])?;
            transaction.commit()?;
            inserted += copied as u64;
            match chunk_end {
                Some(customer) => after = customer,
                None => return Ok(inserted),
            }
        }
    }

    /// Returns the last customer of the next transaction after customer `after`, or `None`
    /// when the rest fits in one.
    fn chunk_end(&self, after: i64) -> Result<Option<i64>> {
        let end = self
            .connection
            .prepare_cached(CHUNK_END)?
            .query_row(params![after, BATCH_ROWS as i64 - 1], |row| row.get(0))
            .optional()?;
        Ok(end)
    }
}

impl Drop for ContactStage<'_> {
    fn drop(&mut self) {
        // NOTE: a failure here only leaves the table until the next import replaces it or
        // the connection closes, so it is ignored.
        let _ = self
            .connection
            .execute_batch("DROP TABLE IF EXISTS temp.import_contacts");
    }
}

//! Contacts, signals, care cases and suppressed addresses.

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSqlError, ValueRef};
use rusqlite::{OptionalExtension, Row, params};
use tact_domain::{
    CampaignId, CareCase, Channel, Contact, CustomerId, DeliveryId, Outcome, Signal, Suppression,
    SuppressionReason,
};

use crate::codec::{
    from_ms, outcome_text, parse_channel, parse_enum, parse_outcome, parse_purpose,
    parse_signal_kind, parse_topic, to_ms,
};
use crate::customers::is_foreign_key_error;
use crate::{CaseId, ContactId, Error, Result, Store, timeline};

/// Whether a write added a row or found the same row already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The row is new.
    New,
    /// An identical row was already stored, so nothing changed.
    Duplicate,
}

/// Everything stored about one customer's past, for `tact history` and `tact explain`.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Every contact with its id, oldest first.
    pub contacts: Vec<(ContactId, Contact)>,
    /// Every signal, oldest first.
    pub signals: Vec<Signal>,
    /// Every care case with its id, oldest first.
    pub cases: Vec<(CaseId, CareCase)>,
    /// Suppressed addresses.
    pub suppressions: Vec<Suppression>,
}

/// The columns [`contact_from_row`] reads, in order.
pub(crate) const CONTACT_COLUMNS: &str =
    "id, customer_id, channel, purpose, topic, campaign_id, at_ms, duration_s, outcome";

/// [`CONTACT_COLUMNS`] of the table alias `c`, for queries that join `contacts`.
pub(crate) fn qualified_contact_columns() -> String {
    CONTACT_COLUMNS
        .split(", ")
        .map(|column| format!("c.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn contact_from_row(row: &Row<'_>) -> Result<(ContactId, Contact)> {
    let id: i64 = row.get(0)?;
    let contact = Contact {
        customer: CustomerId(row.get(1)?),
        channel: parse_channel("contact", id, name_at(row, 2)?)?,
        purpose: parse_purpose("contact", id, name_at(row, 3)?)?,
        topic: parse_topic("contact", id, optional_text_at(row, 4)?)?,
        campaign: row.get::<_, Option<i64>>(5)?.map(CampaignId),
        at: from_ms("contact", id, row.get(6)?)?,
        duration_s: row.get(7)?,
        outcome: parse_outcome("contact", id, name_at(row, 8)?)?,
    };
    Ok((ContactId(id), contact))
}

/// Borrows the text in column `index` from the row, so that no string is allocated.
pub(crate) fn text_at<'r>(row: &'r Row<'_>, index: usize) -> Result<&'r str> {
    let value = row.get_ref(index)?;
    value
        .as_str()
        .map_err(|error| conversion_error(index, error))
}

/// Borrows the bytes of the text in column `index` from the row, for names that are
/// matched against known ones before any UTF-8 check.
pub(crate) fn name_at<'r>(row: &'r Row<'_>, index: usize) -> Result<&'r [u8]> {
    match row.get_ref(index)? {
        ValueRef::Text(bytes) => Ok(bytes),
        _ => Err(conversion_error(index, FromSqlError::InvalidType)),
    }
}

/// Borrows the bytes of the text or NULL in column `index` from the row.
pub(crate) fn optional_name_at<'r>(row: &'r Row<'_>, index: usize) -> Result<Option<&'r [u8]>> {
    match row.get_ref(index)? {
        ValueRef::Text(bytes) => Ok(Some(bytes)),
        ValueRef::Null => Ok(None),
        _ => Err(conversion_error(index, FromSqlError::InvalidType)),
    }
}

/// Borrows the text or NULL in column `index` from the row.
pub(crate) fn optional_text_at<'r>(row: &'r Row<'_>, index: usize) -> Result<Option<&'r str>> {
    let value = row.get_ref(index)?;
    value
        .as_str_or_null()
        .map_err(|error| conversion_error(index, error))
}

fn conversion_error(index: usize, error: rusqlite::types::FromSqlError) -> Error {
    let error = rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        Box::new(error),
    );
    Error::Sqlite(error)
}

/// The columns [`signal_from_row`] reads, in order.
pub(crate) const SIGNAL_COLUMNS: &str =
    "id, customer_id, kind, at_ms, channel, topic, delivery_id, machine, value";

pub(crate) fn signal_from_row(row: &Row<'_>) -> Result<Signal> {
    let id: i64 = row.get(0)?;
    let channel = optional_name_at(row, 4)?;
    Ok(Signal {
        kind: parse_signal_kind("signal", id, name_at(row, 2)?)?,
        at: from_ms("signal", id, row.get(3)?)?,
        channel: channel
            .map(|text| parse_channel("signal", id, text))
            .transpose()?,
        topic: parse_topic("signal", id, optional_text_at(row, 5)?)?,
        delivery: row.get::<_, Option<i64>>(6)?.map(DeliveryId),
        machine: row.get(7)?,
        value: row.get(8)?,
    })
}

/// The columns [`case_from_row`] reads, in order.
pub(crate) const CASE_COLUMNS: &str = "id, customer_id, opened_at_ms, closed_at_ms";

pub(crate) fn case_from_row(row: &Row<'_>) -> Result<(CaseId, CareCase)> {
    let id: i64 = row.get(0)?;
    let closed_at: Option<i64> = row.get(3)?;
    let case = CareCase {
        opened_at: from_ms("care case", id, row.get(2)?)?,
        closed_at: closed_at
            .map(|ms| from_ms("care case", id, ms))
            .transpose()?,
    };
    Ok((CaseId(id), case))
}

/// The columns [`suppression_from_row`] reads, in order.
pub(crate) const SUPPRESSION_COLUMNS: &str = "customer_id, channel, reason, at_ms";

pub(crate) fn suppression_from_row(row: &Row<'_>) -> Result<Suppression> {
    let customer: i64 = row.get(0)?;
    let channel: String = row.get(1)?;
    let reason: String = row.get(2)?;
    Ok(Suppression {
        channel: parse_channel("suppression of customer", customer, channel.as_bytes())?,
        reason: parse_enum("suppression of customer", customer, &reason)?,
        at: from_ms("suppression of customer", customer, row.get(3)?)?,
    })
}

/// Inserts a contact unless an identical one exists; returns the id of the stored row.
pub(crate) fn insert_contact(
    tx: &rusqlite::Connection,
    contact: &Contact,
) -> Result<(ContactId, Recorded)> {
    // Pending contacts and the others have a unique index each, so the other part is
    // checked first: a booked contact reported again with its outcome, or a contact booked
    // when it had been recorded already, is the one stored.
    let pending = contact.outcome == Outcome::Pending;
    if let Some(id) = identical_contact(tx, contact, !pending)? {
        return Ok((id, Recorded::Duplicate));
    }
    // `changes` and `last_insert_rowid` instead of `RETURNING`, which makes SQLite open a
    // temporary table for every row.
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO contacts \
                 (customer_id, channel, purpose, topic, campaign_id, at_ms, duration_s, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            contact.customer.0,
            contact.channel.as_str(),
            contact.purpose.as_str(),
            contact.topic.as_ref().map(|topic| topic.as_str()),
            contact.campaign.map(|campaign| campaign.0),
            to_ms(contact.at),
            contact.duration_s,
            outcome_text(contact.outcome),
        ]);
    match inserted {
        Ok(1) => {
            let id = ContactId(tx.last_insert_rowid());
            timeline::add_contact(tx, id, contact)?;
            return Ok((id, Recorded::New));
        }
        Ok(_) => {}
        Err(error) if is_foreign_key_error(&error) => {
            return Err(Error::not_found(
                "customer or campaign of contact",
                contact.customer,
            ));
        }
        Err(error) => return Err(error.into()),
    }
    // The insert was ignored, so the identical row is in the same part of the history.
    let id = identical_contact(tx, contact, pending)?
        .ok_or_else(|| Error::not_found("identical contact", contact.customer))?;
    Ok((id, Recorded::Duplicate))
}

/// Returns the stored contact identical to `contact` (same customer, instant, channel,
/// purpose, topic and campaign) among the pending contacts, or among the others.
fn identical_contact(
    tx: &rusqlite::Connection,
    contact: &Contact,
    pending: bool,
) -> Result<Option<ContactId>> {
    // Each condition on the outcome names the partial index that the lookup reads.
    let sql = if pending {
        "SELECT id FROM contacts WHERE customer_id = ?1 AND channel = ?2 AND purpose = ?3 \
         AND ifnull(topic, '') = ifnull(?4, '') AND ifnull(campaign_id, 0) = ifnull(?5, 0) \
         AND at_ms = ?6 AND outcome = 'pending'"
    } else {
        "SELECT id FROM contacts WHERE customer_id = ?1 AND channel = ?2 AND purpose = ?3 \
         AND ifnull(topic, '') = ifnull(?4, '') AND ifnull(campaign_id, 0) = ifnull(?5, 0) \
         AND at_ms = ?6 AND outcome <> 'pending'"
    };
    let id = tx
        .prepare_cached(sql)?
        .query_row(
            params![
                contact.customer.0,
                contact.channel.as_str(),
                contact.purpose.as_str(),
                contact.topic.as_ref().map(|topic| topic.as_str()),
                contact.campaign.map(|campaign| campaign.0),
                to_ms(contact.at),
            ],
            |row| row.get(0),
        )
        .optional()?;
    Ok(id.map(ContactId))
}

/// Sets the outcome of a stored contact of `customer`, and its instant when `at` is given,
/// in `contacts` and in the customer's timeline. `stored` is the contact as stored before,
/// when the caller read it already.
pub(crate) fn update_contact(
    tx: &rusqlite::Connection,
    customer: CustomerId,
    contact: ContactId,
    outcome: Outcome,
    at: Option<DateTime<Utc>>,
    stored: Option<&Contact>,
) -> Result<()> {
    let sql = "UPDATE contacts SET outcome = ?2, at_ms = coalesce(?3, at_ms) WHERE id = ?1";
    let mut statement = tx.prepare_cached(sql)?;
    let mut at = at;
    let mut updated = statement.execute(params![contact.0, outcome_text(outcome), at.map(to_ms)]);
    // An identical contact is stored at the new instant already, such as the same message
    // recorded by hand: this one keeps its instant.
    if matches!(&updated, Err(error) if at.is_some() && is_unique_error(error)) {
        at = None;
        updated = statement.execute(params![contact.0, outcome_text(outcome), None::<i64>]);
    }
    match updated {
        Ok(_) => {}
        Err(error) if is_unique_error(&error) => {
            at = Some(next_free_instant(tx, contact, outcome)?);
        }
        Err(error) => return Err(error.into()),
    }
    timeline::update_contact(tx, customer, contact, outcome, at, stored)
}

/// The maximum shift of a contact by [`next_free_instant`], in milliseconds.
const MAX_SHIFT_MS: i64 = 1_000;

/// Sets the outcome of `contact` and moves it to the first millisecond after its instant
/// where no identical contact with a pending outcome, or with another outcome, is stored.
///
/// Pending contacts and the others have a unique index each. A contact that changes between
/// the two can therefore meet an identical one at its own instant, such as a booked message
/// recorded by hand at the instant it was booked.
fn next_free_instant(
    tx: &rusqlite::Connection,
    contact: ContactId,
    outcome: Outcome,
) -> Result<DateTime<Utc>> {
    let booked: i64 = tx
        .prepare_cached("SELECT at_ms FROM contacts WHERE id = ?1")?
        .query_row([contact.0], |row| row.get(0))?;
    let sql = "UPDATE contacts SET outcome = ?2, at_ms = ?3 WHERE id = ?1";
    let mut statement = tx.prepare_cached(sql)?;
    for shift in 1..=MAX_SHIFT_MS {
        let at_ms = booked.saturating_add(shift);
        match statement.execute(params![contact.0, outcome_text(outcome), at_ms]) {
            Ok(_) => return from_ms("contact", contact.0, at_ms),
            Err(error) if is_unique_error(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::invalid_field(
        "outcome",
        outcome_text(outcome),
        format!(
            "contact {contact} has identical contacts in each of the {MAX_SHIFT_MS} ms after \
             its instant"
        ),
    ))
}

fn is_unique_error(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Inserts a signal unless an identical one exists.
pub(crate) fn insert_signal(
    tx: &rusqlite::Connection,
    customer: CustomerId,
    signal: &Signal,
) -> Result<Recorded> {
    let changed = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO signals \
                 (customer_id, kind, at_ms, channel, topic, delivery_id, machine, value) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            customer.0,
            signal.kind.as_str(),
            to_ms(signal.at),
            signal.channel.as_ref().map(|channel| channel.as_str()),
            signal.topic.as_ref().map(|topic| topic.as_str()),
            signal.delivery.map(|delivery| delivery.0),
            signal.machine,
            signal.value,
        ]);
    match changed {
        Ok(0) => Ok(Recorded::Duplicate),
        Ok(_) => {
            timeline::add_signal(tx, customer, tx.last_insert_rowid(), signal)?;
            Ok(Recorded::New)
        }
        Err(error) if is_foreign_key_error(&error) => Err(Error::not_found("customer", customer)),
        Err(error) => Err(error.into()),
    }
}

impl Store {
    /// Records a contact that happened, or returns the id of the identical one already
    /// stored (same customer, instant to the millisecond, channel, purpose, topic and
    /// campaign), whatever the outcome of either.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer or campaign does not exist.
    pub fn record_contact(&self, contact: &Contact) -> Result<ContactId> {
        self.write(|tx| insert_contact(tx, contact).map(|(id, _)| id))
    }

    /// Sets what became of a contact, such as `Answered` for a call. Setting `Failed` takes
    /// the contact out of every budget.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the contact does not exist.
    pub fn set_contact_outcome(&self, contact: ContactId, outcome: Outcome) -> Result<()> {
        self.write(|tx| {
            let sql = "SELECT customer_id FROM contacts WHERE id = ?1";
            let customer = tx
                .prepare_cached(sql)?
                .query_row([contact.0], |row| row.get(0))
                .optional()?
                .ok_or_else(|| Error::not_found("contact", contact))?;
            update_contact(tx, CustomerId(customer), contact, outcome, None, None)
        })
    }

    /// Derives every customer's timeline again from the `contacts` and `signals` tables,
    /// in one transaction, and returns how many customers have history. Every write through
    /// the store keeps timelines up to date; this is for rows written to those tables by
    /// other means. A customer with a row that cannot be read keeps a timeline that names
    /// the row, so their views fail until the row is fixed and timelines are derived again.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the database fails.
    pub fn rebuild_timelines(&self) -> Result<u64> {
        self.write(|tx| {
            timeline::rebuild(tx, timeline::Scope::All, timeline::Rebuild::Both)?;
            // Customers whose only contacts are pending have history, and no timeline
            // entries.
            let sql = "SELECT count(*) FROM ( \
                           SELECT customer_id FROM timelines \
                           WHERE length(contacts) > 0 OR length(signals) > 0 \
                           UNION SELECT customer_id FROM contacts WHERE outcome = 'pending')";
            Ok(tx.query_row(sql, [], |row| row.get(0))?)
        })
    }

    /// Returns the customers whose history has a row that cannot be read, in id order, each
    /// with the reason their timeline records. Their views fail until the row is fixed or
    /// deleted and timelines are derived again.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the database fails.
    pub fn unreadable_timelines(&self) -> Result<Vec<(CustomerId, String)>> {
        self.read(|tx| {
            let sql = "SELECT customer_id, contacts, signals FROM timelines \
                       WHERE substr(contacts, 1, 1) = x'00' OR substr(signals, 1, 1) = x'00' \
                       ORDER BY customer_id";
            let mut statement = tx.prepare(sql)?;
            let mut rows = statement.query([])?;
            let mut unreadable = Vec::new();
            while let Some(row) = rows.next()? {
                let customer = CustomerId(row.get(0)?);
                let columns: [Vec<u8>; 2] = [row.get(1)?, row.get(2)?];
                let reasons = columns
                    .iter()
                    .filter_map(|column| timeline::unreadable_reason(column))
                    .collect::<Vec<_>>();
                unreadable.push((customer, reasons.join("; ")));
            }
            Ok(unreadable)
        })
    }

    /// Records a signal. An identical signal (same customer, instant to the millisecond,
    /// kind, channel, topic and delivery) is stored once.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn record_signal(&self, customer: CustomerId, signal: &Signal) -> Result<Recorded> {
        self.write(|tx| insert_signal(tx, customer, signal))
    }

    /// Opens a care case at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn open_case(&self, customer: CustomerId, at: DateTime<Utc>) -> Result<CaseId> {
        let result = self.write(|tx| {
            let sql = "INSERT INTO care_cases (customer_id, opened_at_ms) VALUES (?1, ?2)";
            tx.prepare_cached(sql)?
                .execute(params![customer.0, to_ms(at)])?;
            Ok(CaseId(tx.last_insert_rowid()))
        });
        match result {
            Err(Error::Sqlite(error)) if is_foreign_key_error(&error) => {
                Err(Error::not_found("customer", customer))
            }
            other => other,
        }
    }

    /// Closes a care case at `at`. Closing a closed case keeps the first closing time.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the case does not exist.
    pub fn close_case(&self, case: CaseId, at: DateTime<Utc>) -> Result<()> {
        let changed = self.write(|tx| {
            let sql = "UPDATE care_cases SET closed_at_ms = coalesce(closed_at_ms, ?2) \
                       WHERE id = ?1";
            Ok(tx
                .prepare_cached(sql)?
                .execute(params![case.0, to_ms(at)])?)
        })?;
        if changed == 0 {
            return Err(Error::not_found("care case", case));
        }
        Ok(())
    }

    /// Suppresses the customer's address on `channel` from `at` on. A channel already
    /// suppressed keeps its first reason and time.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn suppress(
        &self,
        customer: CustomerId,
        channel: &Channel,
        reason: SuppressionReason,
        at: DateTime<Utc>,
    ) -> Result<Recorded> {
        let result = self.write(|tx| {
            let sql = "INSERT OR IGNORE INTO suppressions (customer_id, channel, reason, at_ms) \
                       VALUES (?1, ?2, ?3, ?4)";
            let changed = tx.prepare_cached(sql)?.execute(params![
                customer.0,
                channel.as_str(),
                reason.as_str(),
                to_ms(at)
            ])?;
            Ok(if changed == 0 {
                Recorded::Duplicate
            } else {
                Recorded::New
            })
        });
        match result {
            Err(Error::Sqlite(error)) if is_foreign_key_error(&error) => {
                Err(Error::not_found("customer", customer))
            }
            other => other,
        }
    }

    /// Returns the customer's suppressed addresses, by channel name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRow`] when a stored row cannot be read back.
    pub fn suppressions(&self, customer: CustomerId) -> Result<Vec<Suppression>> {
        let sql = format!(
            "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE customer_id = ?1 ORDER BY channel"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([customer.0])?;
        let mut suppressions = Vec::new();
        while let Some(row) = rows.next()? {
            suppressions.push(suppression_from_row(row)?);
        }
        Ok(suppressions)
    }

    /// Returns everything stored about the customer's past, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn history(&self, customer: CustomerId) -> Result<History> {
        self.read(|tx| {
            self.customer(customer)?;
            let contacts = collect(tx, &customer_contacts_sql(), customer, contact_from_row)?;
            let signals = collect(
                tx,
                &format!(
                    "SELECT {SIGNAL_COLUMNS} FROM signals WHERE customer_id = ?1 \
                     ORDER BY at_ms, id"
                ),
                customer,
                signal_from_row,
            )?;
            let cases = collect(
                tx,
                &format!(
                    "SELECT {CASE_COLUMNS} FROM care_cases WHERE customer_id = ?1 \
                     ORDER BY opened_at_ms, id"
                ),
                customer,
                case_from_row,
            )?;
            let suppressions = self.suppressions(customer)?;
            Ok(History {
                contacts,
                signals,
                cases,
                suppressions,
            })
        })
    }
}

/// Selects a customer's contacts, oldest first and by id among equal instants. Pending
/// contacts have an index of their own, so each part of the union reads its index.
pub(crate) fn customer_contacts_sql() -> String {
    format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = ?1 AND outcome <> 'pending' \
         UNION ALL \
         SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = ?1 AND outcome = 'pending' \
         ORDER BY at_ms, id"
    )
}

fn collect<T>(
    connection: &rusqlite::Connection,
    sql: &str,
    customer: CustomerId,
    parse: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query([customer.0])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(parse(row)?);
    }
    Ok(items)
}

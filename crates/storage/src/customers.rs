//! Accounts, customers, preferences and the consent log.

use chrono_tz::Tz;
use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value};
use tact_domain::{
    AccountId, Bucket, ConsentChange, ConsentMark, Customer, CustomerId, Preferences,
};

use crate::codec::{enum_text, from_json, from_ms, parse_enum, to_json, to_ms};
use crate::history::text_at;
use crate::{ConsentEventId, Error, Result, Store};

/// Maximum length of an external id, name, locale or free-form field value, in characters.
pub const MAX_TEXT_LEN: usize = 1_000;

/// A customer to insert or update, keyed by its external id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    /// The id the company's own systems use. Required and unique.
    pub external_id: String,
    /// Full name.
    pub name: Option<String>,
    /// Email address, checked against RFC 5322.
    pub email: Option<String>,
    /// Phone number: digits, spaces and `+-().`.
    pub phone: Option<String>,
    /// IANA time zone. Default UTC.
    pub time_zone: Tz,
    /// BCP 47 language tag. Default `en`.
    pub locale: String,
    /// The account the customer belongs to.
    pub account: Option<AccountId>,
    /// Free-form fields for templates, such as `{"plan": "gold"}`.
    pub fields: Map<String, Value>,
}

impl NewCustomer {
    /// Creates a customer with only an external id, in UTC with locale `en`.
    pub fn new(external_id: impl Into<String>) -> NewCustomer {
        NewCustomer {
            external_id: external_id.into(),
            name: None,
            email: None,
            phone: None,
            time_zone: Tz::UTC,
            locale: "en".to_owned(),
            account: None,
            fields: Map::new(),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] naming the first invalid field. Invalid are an empty external
    /// id, and text with control characters (CR, LF, NUL, …) or longer than
    /// [`MAX_TEXT_LEN`]. So are an email address that is not valid, a phone number with
    /// other characters than digits, spaces and `+-().`, and a locale that is not a
    /// language tag.
    pub fn validate(&self) -> Result<()> {
        if self.external_id.trim().is_empty() {
            return Err(Error::invalid_field(
                "external_id",
                &self.external_id,
                "it is required",
            ));
        }
        check_text("external_id", &self.external_id)?;
        if let Some(name) = &self.name {
            check_text("name", name)?;
        }
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        if let Some(phone) = &self.phone {
            check_phone(phone)?;
        }
        check_locale(&self.locale)?;
        for (key, value) in &self.fields {
            check_text("field name", key)?;
            if let Value::String(text) = value {
                check_text("field value", text)?;
            }
        }
        Ok(())
    }
}

/// Rejects text with control characters or over the length limit.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<()> {
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        let reason = format!("it contains the control character {bad:?}; remove it");
        return Err(Error::invalid_field(field, text, reason));
    }
    if text.chars().count() > MAX_TEXT_LEN {
        let reason = format!("it is longer than {MAX_TEXT_LEN} characters");
        return Err(Error::invalid_field(field, text, reason));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<()> {
    check_text("email", email)?;
    // A display name ("Ann <ann@example.com>") is not the bare address that the SMTP
    // envelope needs.
    let options = email_address::Options::default().without_display_text();
    if email_address::EmailAddress::parse_with_options(email, options).is_err() {
        let reason = "it is not a valid email address such as ann@example.com";
        return Err(Error::invalid_field("email", email, reason));
    }
    Ok(())
}

fn check_phone(phone: &str) -> Result<()> {
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !allowed || !(3..=20).contains(&digits) {
        let reason = "use 3 to 20 digits with optional spaces and + - ( ) .";
        return Err(Error::invalid_field("phone", phone, reason));
    }
    Ok(())
}

fn check_locale(locale: &str) -> Result<()> {
    let valid = !locale.is_empty()
        && locale.len() <= 35
        && locale.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !valid {
        let reason = "use a BCP 47 language tag such as en or en-GB";
        return Err(Error::invalid_field("locale", locale, reason));
    }
    Ok(())
}

/// One row of the append-only consent log.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentEvent {
    /// The row id; ids grow in the order events were recorded.
    pub id: ConsentEventId,
    /// Whose preferences changed.
    pub customer: CustomerId,
    /// What changed.
    pub change: ConsentChange,
    /// The actor, source and time of the change.
    pub mark: ConsentMark,
}

/// The columns [`customer_from_row`] reads, in order.
pub(crate) const CUSTOMER_COLUMNS: &str =
    "id, external_id, name, email, phone, time_zone, locale, account_id, bucket";

/// Reads a customer from the columns of [`CUSTOMER_COLUMNS`], starting at column 0.
pub(crate) fn customer_from_row(row: &Row<'_>) -> Result<Customer> {
    let id: i64 = row.get(0)?;
    let time_zone = text_at(row, 5)?;
    let time_zone = time_zone.parse::<Tz>().map_err(|_| Error::InvalidRow {
        entity: "customer",
        id,
        reason: format!("unknown time zone {time_zone:?}"),
    })?;
    let bucket: Option<String> = row.get(8)?;
    let bucket = match bucket {
        Some(text) => Some(Bucket::parse(&text).ok_or_else(|| Error::InvalidRow {
            entity: "customer",
            id,
            reason: format!("unknown bucket {text:?}"),
        })?),
        None => None,
    };
    Ok(Customer {
        id: CustomerId(id),
        external_id: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        phone: row.get(4)?,
        time_zone,
        locale: row.get(6)?,
        account: row.get::<_, Option<i64>>(7)?.map(AccountId),
        bucket,
    })
}

impl Store {
    /// Returns the id of the account called `name`, creating it when it is new.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] when the name is empty or has control characters.
    pub fn upsert_account(&self, name: &str) -> Result<AccountId> {
        if name.trim().is_empty() {
            return Err(Error::invalid_field("account", name, "it is required"));
        }
        check_text("account", name)?;
        self.write(|tx| upsert_account_in(tx, name))
    }

    /// Inserts a customer, or updates the one with the same external id. The bucket,
    /// preferences and consent log of an existing customer are kept.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] as [`NewCustomer::validate`]; [`Error::NotFound`] when the
    /// account does not exist.
    pub fn upsert_customer(&self, customer: &NewCustomer) -> Result<CustomerId> {
        customer.validate()?;
        self.write(|tx| upsert_customer_in(tx, customer).map(|(id, _)| id))
    }

    /// Returns the customer with `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when there is none.
    pub fn customer(&self, id: CustomerId) -> Result<Customer> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1");
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([id.0])?;
        match rows.next()? {
            Some(row) => customer_from_row(row),
            None => Err(Error::not_found("customer", id)),
        }
    }

    /// Returns the customer whose external id is `external_id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when there is none.
    pub fn customer_by_external_id(&self, external_id: &str) -> Result<Customer> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE external_id = ?1");
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([external_id])?;
        match rows.next()? {
            Some(row) => customer_from_row(row),
            None => Err(Error::not_found("customer with external id", external_id)),
        }
    }

    /// Returns the template fields of each customer of `ids`, in the same order, with one
    /// range query over the ids from the first to the last. `ids` must be in strictly
    /// ascending order. An id that does not exist, or whose fields cannot be read, gets the error that
    /// [`Store::customer_fields`] gives for it.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub fn customer_fields_each(
        &self,
        ids: &[CustomerId],
    ) -> Result<Vec<Result<Map<String, Value>>>> {
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        let mut fields = Vec::with_capacity(ids.len());
        let mut pending = ids.iter().copied().peekable();
        let sql = "SELECT id, fields FROM customers WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
        let mut statement = self.connection.prepare_cached(sql)?;
        let mut rows = statement.query([first.0, last.0])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            while let Some(requested) = pending.next_if(|requested| requested.0 < id) {
                fields.push(Err(Error::not_found("customer", requested)));
            }
            if pending.next_if(|requested| requested.0 == id).is_some() {
                fields.push(text_at(row, 1).and_then(|text| from_json("customer", id, text)));
            }
        }
        fields.extend(pending.map(|requested| Err(Error::not_found("customer", requested))));
        Ok(fields)
    }

    /// Returns the customer's free-form template fields as a JSON object.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn customer_fields(&self, id: CustomerId) -> Result<Map<String, Value>> {
        let text: Option<String> = self
            .connection
            .prepare_cached("SELECT fields FROM customers WHERE id = ?1")?
            .query_row([id.0], |row| row.get(0))
            .optional()?;
        let text = text.ok_or_else(|| Error::not_found("customer", id))?;
        from_json("customer", id.0, &text)
    }

    /// Sets the bucket assigned from the customer's behaviour; `None` clears it. A bucket
    /// the customer chose in their preferences still wins over this one.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn set_bucket(&self, id: CustomerId, bucket: Option<Bucket>) -> Result<()> {
        let changed = self.write(|tx| {
            let sql = "UPDATE customers SET bucket = ?2 WHERE id = ?1";
            Ok(tx.execute(sql, params![id.0, bucket.map(Bucket::as_str)])?)
        })?;
        if changed == 0 {
            return Err(Error::not_found("customer", id));
        }
        Ok(())
    }

    /// Returns the customer's preferences.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn preferences(&self, id: CustomerId) -> Result<Preferences> {
        preferences_in(&self.connection, id)
    }

    /// Applies one consent or preference change and appends it to the consent log, in one
    /// transaction. Returns the preferences after the change.
    ///
    /// The domain's precedence rules apply: an opt-out the customer set can only be lifted
    /// by the customer.
    ///
    /// # Errors
    ///
    /// [`Error::Domain`] with [`tact_domain::Error::ConsentLocked`] when the change would
    /// override the customer's own opt-out; nothing is written. [`Error::NotFound`] when the
    /// customer does not exist.
    pub fn apply_consent(
        &self,
        customer: CustomerId,
        change: &ConsentChange,
        mark: ConsentMark,
    ) -> Result<Preferences> {
        self.apply_consents(customer, std::slice::from_ref(change), mark)
    }

    /// Applies consent or preference changes in order and appends each to the consent log,
    /// all in one transaction, so either every change is applied and logged or none is.
    /// Returns the preferences after the last change.
    ///
    /// # Errors
    ///
    /// [`Error::Domain`] with [`tact_domain::Error::ConsentLocked`] when a change would
    /// override the customer's own opt-out, after the changes before it; nothing is written.
    /// [`Error::NotFound`] when the customer does not exist.
    pub fn apply_consents(
        &self,
        customer: CustomerId,
        changes: &[ConsentChange],
        mark: ConsentMark,
    ) -> Result<Preferences> {
        self.write(|tx| {
            let mut preferences = preferences_in(tx, customer)?;
            let mut log = tx.prepare_cached(
                "INSERT INTO consent_events (customer_id, actor, source, change, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for change in changes {
                preferences.apply(change, mark)?;
                log.execute(params![
                    customer.0,
                    enum_text(&mark.actor),
                    enum_text(&mark.source),
                    to_json(change),
                    to_ms(mark.at),
                ])?;
            }
            tx.prepare_cached("UPDATE customers SET preferences = ?2 WHERE id = ?1")?
                .execute(params![customer.0, to_json(&preferences)])?;
            Ok(preferences)
        })
    }

    /// Returns the customer's consent log, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRow`] when a stored row cannot be read back.
    pub fn consent_log(&self, customer: CustomerId) -> Result<Vec<ConsentEvent>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT id, actor, source, change, at_ms FROM consent_events \
             WHERE customer_id = ?1 ORDER BY id",
        )?;
        let mut rows = statement.query([customer.0])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let actor: String = row.get(1)?;
            let source: String = row.get(2)?;
            let change: String = row.get(3)?;
            events.push(ConsentEvent {
                id: ConsentEventId(id),
                customer,
                change: from_json("consent event", id, &change)?,
                mark: ConsentMark {
                    actor: parse_enum("consent event", id, &actor)?,
                    source: parse_enum("consent event", id, &source)?,
                    at: from_ms("consent event", id, row.get(4)?)?,
                },
            });
        }
        Ok(events)
    }
}

pub(crate) fn upsert_account_in(tx: &rusqlite::Connection, name: &str) -> Result<AccountId> {
    let id = tx
        .prepare_cached(
            "INSERT INTO accounts (name) VALUES (?1) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )?
        .query_row([name], |row| row.get(0))?;
    Ok(AccountId(id))
}

/// The outcome of an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upserted {
    Inserted,
    Updated,
    Unchanged,
}

/// Upserts a validated customer inside a transaction. A row whose values are all the same
/// is not written at all.
pub(crate) fn upsert_customer_in(
    tx: &rusqlite::Connection,
    customer: &NewCustomer,
) -> Result<(CustomerId, Upserted)> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM customers WHERE external_id = ?1")?
        .query_row([&customer.external_id], |row| row.get(0))
        .optional()?;
    let values = params![
        customer.external_id,
        customer.name,
        customer.email,
        customer.phone,
        customer.time_zone.name(),
        customer.locale,
        customer.account.map(|account| account.0),
        to_json(&customer.fields),
    ];
    let result = match existing {
        None => tx
            .prepare_cached(
                "INSERT INTO customers \
                     (external_id, name, email, phone, time_zone, locale, account_id, fields) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(values)
            .map(|_| (CustomerId(tx.last_insert_rowid()), Upserted::Inserted)),
        Some(id) => tx
            .prepare_cached(
                "UPDATE customers SET name = ?2, email = ?3, phone = ?4, time_zone = ?5, \
                     locale = ?6, account_id = ?7, fields = ?8 \
                 WHERE external_id = ?1 AND (name IS NOT ?2 OR email IS NOT ?3 \
                     OR phone IS NOT ?4 OR time_zone IS NOT ?5 OR locale IS NOT ?6 \
                     OR account_id IS NOT ?7 OR fields IS NOT ?8)",
            )?
            .execute(values)
            .map(|changed| {
                let outcome = if changed == 0 {
                    Upserted::Unchanged
                } else {
                    Upserted::Updated
                };
                (CustomerId(id), outcome)
            }),
    };
    match result {
        Ok(upserted) => Ok(upserted),
        Err(error) if is_foreign_key_error(&error) => {
            let account = customer.account.map(|a| a.0).unwrap_or_default();
            Err(Error::not_found("account", account))
        }
        Err(error) => Err(error.into()),
    }
}

pub(crate) fn is_foreign_key_error(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}

fn preferences_in(connection: &rusqlite::Connection, id: CustomerId) -> Result<Preferences> {
    let text: Option<String> = connection
        .prepare_cached("SELECT preferences FROM customers WHERE id = ?1")?
        .query_row([id.0], |row| row.get(0))
        .optional()?;
    let text = text.ok_or_else(|| Error::not_found("customer", id))?;
    from_json("customer", id.0, &text)
}

/// Parses the preferences column of customer `id`.
pub(crate) fn parse_preferences(id: i64, text: &str) -> Result<Preferences> {
    // Most customers state no wishes; skip the JSON parser for them.
    if text == "{}" {
        return Ok(Preferences::default());
    }
    from_json("customer", id, text)
}

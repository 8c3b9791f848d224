//! The outbox: one delivery per campaign and customer, from planning to sending.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;
use tact_domain::{CampaignId, Contact, CustomerId, Decision, DeliveryId, Outcome, Reason};

use crate::codec::{from_json, from_ms, parse_enum, to_json, to_ms};
use crate::history::{contact_from_row, insert_contact, qualified_contact_columns, update_contact};
use crate::{ContactId, Error, Result, Store};

/// The state of a delivery in the outbox. docs/storage.md lists the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Created for a customer of the audience, not decided yet.
    Planned,
    /// Held back until its next attempt time.
    Deferred,
    /// Approved, with its contact booked; waiting for a worker.
    Approved,
    /// Claimed by a worker that holds a lease on it.
    Sending,
    /// Handed to the channel.
    Sent,
    /// Failed for good; its contact no longer counts against budgets.
    Failed,
    /// Denied by a rule.
    Denied,
}

impl DeliveryState {
    /// Returns the stored name, such as `approved`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Planned => "planned",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Approved => "approved",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Denied => "denied",
        }
    }

    /// Returns the state a delivery takes when `decision` is stored on it.
    fn decided(decision: &Decision) -> DeliveryState {
        match decision {
            Decision::Approve(_) => DeliveryState::Approved,
            Decision::Defer { .. } => DeliveryState::Deferred,
            Decision::Deny { .. } => DeliveryState::Denied,
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The campaign.
    pub campaign: CampaignId,
    /// The customer.
    pub customer: CustomerId,
    /// Its state.
    pub state: DeliveryState,
    /// When it is next due: decided again when deferred, sent when approved.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Failed send attempts so far.
    pub attempts: u32,
    /// The reasons of the last deferral or denial; empty otherwise.
    pub reasons: Vec<Reason>,
    /// When it was last decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// When the approval expires, for an approved delivery.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// The contact booked by its approval.
    pub contact: Option<ContactId>,
    /// The worker holding the lease, while sending.
    pub lease_owner: Option<String>,
    /// When the lease runs out, while sending.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The channel's message id, once sent.
    pub message_id: Option<String>,
    /// The last send error.
    pub last_error: Option<String>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "id, campaign_id, customer_id, state, next_attempt_at_ms, \
     attempts, reasons, decided_at_ms, approval_expires_at_ms, contact_id, lease_owner, \
     lease_expires_at_ms, message_id, last_error, updated_at_ms";

fn delivery_from_row(row: &Row<'_>) -> Result<Delivery> {
    let id: i64 = row.get(0)?;
    let instant = |index: usize| -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = row.get(index)?;
        ms.map(|ms| from_ms("delivery", id, ms)).transpose()
    };
    let state: String = row.get(3)?;
    let reasons: String = row.get(6)?;
    Ok(Delivery {
        id: DeliveryId(id),
        campaign: CampaignId(row.get(1)?),
        customer: CustomerId(row.get(2)?),
        state: parse_enum("delivery", id, &state)?,
        next_attempt_at: instant(4)?,
        attempts: row.get(5)?,
        reasons: from_json("delivery", id, &reasons)?,
        decided_at: instant(7)?,
        approval_expires_at: instant(8)?,
        contact: row.get::<_, Option<i64>>(9)?.map(ContactId),
        lease_owner: row.get(10)?,
        lease_expires_at: instant(11)?,
        message_id: row.get(12)?,
        last_error: row.get(13)?,
        updated_at: from_ms("delivery", id, row.get(14)?)?,
    })
}

/// A delivery a worker claimed, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its campaign.
    pub campaign: CampaignId,
    /// The customer to send to.
    pub customer: CustomerId,
    /// The contact its approval booked.
    pub contact: ContactId,
    /// Failed attempts before this one.
    pub attempts: u32,
    /// When the approval expires.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// The worker must finish (mark sent, retry, failed or release) before this instant,
    /// or another worker may claim the delivery again.
    pub lease_expires_at: DateTime<Utc>,
}

/// Counts of a campaign's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignReport {
    /// Deliveries per state; states with none are left out.
    pub by_state: BTreeMap<DeliveryState, u64>,
    /// Deferred and denied deliveries per rule id (such as `min_gap`) of their reasons. A
    /// delivery held back by two rules counts once for each.
    pub by_rule: BTreeMap<String, u64>,
    /// Customers the last planning left out because the template needs a field they lack;
    /// they have no delivery.
    pub skipped: u64,
}

impl Store {
    /// Creates a planned delivery for each customer of `customers` that has none for this
    /// campaign yet, due at `now`. Returns the delivery id of every customer, new or
    /// existing, in the order given. Planning twice changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign or a customer does not exist; then nothing is
    /// planned.
    pub fn plan_deliveries(
        &self,
        campaign: CampaignId,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> Result<Vec<DeliveryId>> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO deliveries \
                     (campaign_id, customer_id, state, next_attempt_at_ms, updated_at_ms) \
                 VALUES (?1, ?2, 'planned', ?3, ?3)",
            )?;
            let mut select = tx.prepare_cached(
                "SELECT id FROM deliveries WHERE campaign_id = ?1 AND customer_id = ?2",
            )?;
            let mut ids = Vec::with_capacity(customers.len());
            for customer in customers {
                let inserted = insert.execute(params![campaign.0, customer.0, to_ms(now)]);
                match inserted {
                    Ok(_) => {}
                    Err(error) if crate::customers::is_foreign_key_error(&error) => {
                        return Err(missing_target(tx, campaign, *customer));
                    }
                    Err(error) => return Err(error.into()),
                }
                ids.push(DeliveryId(
                    select.query_row(params![campaign.0, customer.0], |row| row.get(0))?,
                ));
            }
            Ok(ids)
        })
    }

    /// Stores a campaign's decisions, one per customer, in one transaction, as
    /// [`Store::plan_deliveries`] followed by [`Store::record_decisions`] would: a customer
    /// without a delivery for the campaign gets one, written in its decided state at once.
    /// A customer whose delivery is still planned has the decision recorded on it; one whose
    /// delivery was already decided keeps that delivery unchanged.
    ///
    /// Returns, for each decision in the order given, the delivery it was stored on, or
    /// `None` where the customer's delivery had been decided before.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign or a customer does not exist;
    /// [`Error::InvalidField`] when an approval is for another customer or campaign. Then
    /// nothing is stored.
    pub fn record_planned(
        &self,
        campaign: CampaignId,
        decisions: &[(CustomerId, Decision)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<DeliveryId>>> {
        let now_ms = to_ms(now);
        // SQLite's own foreign key checks took a tenth of storing a batch: two to five
        // lookups per customer, on the one thread that sets planning's pace. The batch
        // checks its campaign once and its customers in one pass instead, inside the same
        // write transaction, so no other writer can remove them before it commits. The
        // contacts it books are inserted in that transaction too.
        self.without_foreign_keys(|| {
            self.write(|tx| record_planned_in(tx, campaign, decisions, now, now_ms))
        })
    }

    /// Stores the decision on a planned or deferred delivery, decided at `now`.
    ///
    /// An approval books its contact (outcome pending, so it counts against budgets at
    /// once) and marks the delivery approved and due at `now`, in the same transaction. A
    /// deferral sets the next attempt to its `until`; a denial ends the delivery. Both keep
    /// their reasons.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the delivery does not exist; [`Error::InvalidState`] when it
    /// is no longer planned or deferred (then nothing is written); [`Error::InvalidField`]
    /// when an approval is for another customer or campaign.
    pub fn record_decision(
        &self,
        delivery: DeliveryId,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| record_decision_in(tx, delivery, decision, now))
    }

    /// Stores several decisions in one transaction, as [`Store::record_decision`] does for
    /// one. Either all are stored or, on the first error, none.
    ///
    /// # Errors
    ///
    /// As [`Store::record_decision`].
    pub fn record_decisions(
        &self,
        decisions: &[(DeliveryId, Decision)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            for (delivery, decision) in decisions {
                record_decision_in(tx, *delivery, decision, now)?;
            }
            Ok(())
        })
    }

    /// Returns up to `limit` deliveries that are due to be decided at `now`: deferred ones
    /// whose time has come, and planned ones, earliest first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRow`] when a stored row cannot be read back.
    pub fn deferred_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE state IN ('planned', 'deferred') AND next_attempt_at_ms <= ?1 \
             ORDER BY next_attempt_at_ms, id LIMIT ?2"
        );
        self.query_deliveries(&sql, params![to_ms(now), limit as i64])
    }

    /// Claims up to `limit` deliveries for `worker` until `now + lease`: first the ones left
    /// `sending` by a worker whose lease ran out, earliest lease end first, then approved ones
    /// that are due, earliest first. They become `sending` and are returned in id order.
    /// Claims run in one `BEGIN IMMEDIATE` transaction, so two workers never claim the same
    /// delivery while its lease lasts.
    ///
    /// A delivery whose worker died after handing the message to the channel but before
    /// [`Store::mark_sent`] is sent again when claimed again: the in-flight window is the
    /// lease. The `mark_*` methods and [`Store::release`] do not check the lease owner, so a
    /// worker that outlived its lease can still record the outcome of its send.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] when another writer held the lock for longer than the busy timeout.
    pub fn claim_deliveries(
        &self,
        worker: &str,
        lease: Duration,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now_ms = to_ms(now);
        let expires_ms = to_ms(now + lease);
        self.write(|tx| {
            let mut statement = tx.prepare_cached(
                "UPDATE deliveries SET state = 'sending', lease_owner = ?1, \
                     lease_expires_at_ms = ?2, updated_at_ms = ?3 \
                 WHERE id IN ( \
                     SELECT id FROM ( \
                         SELECT id FROM deliveries WHERE state = 'sending' \
                             AND lease_expires_at_ms <= ?3 \
                         ORDER BY lease_expires_at_ms, id LIMIT ?4) \
                     UNION ALL \
                     SELECT id FROM ( \
                         SELECT id FROM deliveries WHERE state = 'approved' \
                             AND next_attempt_at_ms <= ?3 \
                         ORDER BY next_attempt_at_ms, id LIMIT ?4) \
                     LIMIT ?4) \
                 RETURNING id, campaign_id, customer_id, contact_id, attempts, \
                     approval_expires_at_ms",
            )?;
            let mut rows = statement.query(params![worker, expires_ms, now_ms, limit as i64])?;
            let mut claimed = Vec::new();
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let expires: Option<i64> = row.get(5)?;
                claimed.push((
                    id,
                    CampaignId(row.get(1)?),
                    CustomerId(row.get(2)?),
                    ContactId(row.get::<_, Option<i64>>(3)?.unwrap_or_default()),
                    row.get::<_, u32>(4)?,
                    expires.map(|ms| from_ms("delivery", id, ms)).transpose()?,
                ));
            }
            drop(rows);
            claimed.sort_by_key(|item| item.0);

            let lease_expires_at = from_ms("delivery", 0, expires_ms)?;
            claimed
                .into_iter()
                .map(
                    |(id, campaign, customer, contact, attempts, approval_expires_at)| {
                        Ok(ClaimedDelivery {
                            id: DeliveryId(id),
                            campaign,
                            customer,
                            contact,
                            attempts,
                            approval_expires_at,
                            lease_expires_at,
                        })
                    },
                )
                .collect()
        })
    }

    /// Extends the lease of `worker` on a claimed delivery to `now + lease`, right before
    /// the worker hands the message to its channel. Returns `false`, and changes nothing,
    /// when the delivery is no longer `sending` under a lease of `worker` that is still
    /// running at `now`: another worker may have claimed it after the lease ran out, so this
    /// one must not send it.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] or [`Error::Busy`] when the update fails.
    pub fn renew_lease(
        &self,
        delivery: DeliveryId,
        worker: &str,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let renewed = self.renew_leases(&[delivery], worker, lease, now)?;
        Ok(renewed.first().copied().unwrap_or(false))
    }

    /// Extends the leases of `worker` on several claimed deliveries as
    /// [`Store::renew_lease`] does for one, in one transaction. Returns, per delivery in the
    /// order given, whether its lease was renewed.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] or [`Error::Busy`] when the update fails; then nothing is renewed.
    pub fn renew_leases(
        &self,
        deliveries: &[DeliveryId],
        worker: &str,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let until = now.checked_add_signed(lease).unwrap_or(now);
        self.write(|tx| {
            let mut update = tx.prepare_cached(
                "UPDATE deliveries SET lease_expires_at_ms = ?3, updated_at_ms = ?4 \
                 WHERE id = ?1 AND state = 'sending' AND lease_owner = ?2 \
                   AND lease_expires_at_ms > ?4",
            )?;
            deliveries
                .iter()
                .map(|delivery| {
                    let updated =
                        update.execute(params![delivery.0, worker, to_ms(until), to_ms(now)])?;
                    Ok(updated == 1)
                })
                .collect()
        })
    }

    /// Marks a claimed delivery as sent with the channel's message id, and its contact as
    /// sent at `now`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the delivery is not `sending`; [`Error::NotFound`] when
    /// it does not exist.
    pub fn mark_sent(
        &self,
        delivery: DeliveryId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sent = [(delivery, message_id.to_owned(), now)];
        let mut results = self.mark_sent_each(&sent, now)?;
        results.pop().unwrap_or(Ok(()))
    }

    /// Marks several claimed deliveries as sent, as [`Store::mark_sent`] does for one, in
    /// one transaction: each item is a delivery, its message id and the instant the channel
    /// accepted it. Returns one result per item, in the order given; an item that fails
    /// its check changes nothing and does not stop the others.
    ///
    /// # Errors
    ///
    /// The outer error when the transaction fails, and then nothing is marked. Per item,
    /// [`Error::InvalidState`] when the delivery is not `sending` and [`Error::NotFound`]
    /// when it does not exist.
    pub fn mark_sent_each(
        &self,
        sent: &[(DeliveryId, String, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<()>>> {
        self.write(|tx| {
            let mut results = Vec::with_capacity(sent.len());
            for (delivery, message_id, at) in sent {
                let booking = match sending_booking(tx, *delivery) {
                    Ok(found) => found,
                    Err(error) => {
                        results.push(Err(error));
                        continue;
                    }
                };
                tx.prepare_cached(
                    "UPDATE deliveries SET state = 'sent', message_id = ?2, lease_owner = NULL, \
                         lease_expires_at_ms = NULL, next_attempt_at_ms = NULL, \
                         updated_at_ms = ?3 \
                     WHERE id = ?1",
                )?
                .execute(params![delivery.0, message_id, to_ms(now)])?;
                let Booking {
                    customer,
                    contact,
                    stored,
                } = booking;
                update_contact(
                    tx,
                    customer,
                    contact,
                    Outcome::Sent,
                    Some(*at),
                    stored.as_ref(),
                )?;
                results.push(Ok(()));
            }
            Ok(results)
        })
    }

    /// Gives a claimed delivery back for another attempt at `next_at`, counting one failed
    /// attempt and keeping `error`. Its contact stays booked.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the delivery is not `sending`; [`Error::NotFound`] when
    /// it does not exist.
    pub fn mark_retry(
        &self,
        delivery: DeliveryId,
        next_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            sending_booking(tx, delivery)?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'approved', attempts = attempts + 1, \
                     last_error = ?2, next_attempt_at_ms = ?3, lease_owner = NULL, \
                     lease_expires_at_ms = NULL, updated_at_ms = ?4 \
                 WHERE id = ?1",
            )?
            .execute(params![delivery.0, error, to_ms(next_at), to_ms(now)])?;
            Ok(())
        })
    }

    /// Marks a claimed delivery as failed for good, keeping `error`, and its contact as
    /// failed so that it stops counting against budgets.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the delivery is not `sending`; [`Error::NotFound`] when
    /// it does not exist.
    pub fn mark_failed(&self, delivery: DeliveryId, error: &str, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let Booking {
                customer,
                contact,
                stored,
            } = sending_booking(tx, delivery)?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, \
                     last_error = ?2, next_attempt_at_ms = NULL, lease_owner = NULL, \
                     lease_expires_at_ms = NULL, updated_at_ms = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![delivery.0, error, to_ms(now)])?;
            update_contact(
                tx,
                customer,
                contact,
                Outcome::Failed,
                None,
                stored.as_ref(),
            )
        })
    }

    /// Gives a claimed delivery back unsent, for example on shutdown, so any worker can
    /// claim it at once. Attempts are not counted.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the delivery is not `sending`; [`Error::NotFound`] when
    /// it does not exist.
    pub fn release(&self, delivery: DeliveryId, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            sending_booking(tx, delivery)?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'approved', lease_owner = NULL, \
                     lease_expires_at_ms = NULL, updated_at_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![delivery.0, to_ms(now)])?;
            Ok(())
        })
    }

    /// Returns the delivery with `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when there is none.
    pub fn delivery(&self, id: DeliveryId) -> Result<Delivery> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1");
        self.query_deliveries(&sql, [id.0])?
            .pop()
            .ok_or_else(|| Error::not_found("delivery", id))
    }

    /// Returns every delivery to the customer, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRow`] when a stored row cannot be read back.
    pub fn deliveries_for(&self, customer: CustomerId) -> Result<Vec<Delivery>> {
        let sql =
            format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE customer_id = ?1 ORDER BY id");
        self.query_deliveries(&sql, [customer.0])
    }

    /// Counts the campaign's deliveries by state, and its deferrals and denials by rule.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign does not exist.
    pub fn campaign_status(&self, campaign: CampaignId) -> Result<CampaignReport> {
        self.read(|tx| {
            self.campaign(campaign)?;
            let mut report = CampaignReport {
                skipped: tx
                    .prepare_cached("SELECT skipped FROM campaigns WHERE id = ?1")?
                    .query_row([campaign.0], |row| row.get(0))?,
                ..CampaignReport::default()
            };
            let mut statement = tx.prepare_cached(
                "SELECT state, count(*) FROM deliveries WHERE campaign_id = ?1 GROUP BY state",
            )?;
            let mut rows = statement.query([campaign.0])?;
            while let Some(row) = rows.next()? {
                let state: String = row.get(0)?;
                let state = parse_enum("campaign deliveries of", campaign.0, &state)?;
                report.by_state.insert(state, row.get(1)?);
            }
            let mut statement = tx.prepare_cached(
                "SELECT json_extract(reason.value, '$.rule'), count(*) \
                 FROM deliveries, json_each(deliveries.reasons) AS reason \
                 WHERE campaign_id = ?1 AND state IN ('deferred', 'denied') GROUP BY 1",
            )?;
            let mut rows = statement.query([campaign.0])?;
            while let Some(row) = rows.next()? {
                let rule: Option<String> = row.get(0)?;
                report.by_rule.insert(rule.unwrap_or_default(), row.get(1)?);
            }
            Ok(report)
        })
    }

    fn query_deliveries(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Delivery>> {
        let mut statement = self.connection.prepare_cached(sql)?;
        let mut rows = statement.query(params)?;
        let mut deliveries = Vec::new();
        while let Some(row) = rows.next()? {
            deliveries.push(delivery_from_row(row)?);
        }
        Ok(deliveries)
    }
}

fn record_decision_in(
    tx: &Connection,
    delivery: DeliveryId,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Result<()> {
    let (state, campaign, customer) = delivery_target(tx, delivery)?;
    if !matches!(state, DeliveryState::Planned | DeliveryState::Deferred) {
        return Err(Error::InvalidState {
            delivery: delivery.0,
            state: state.to_string(),
            expected: "planned or deferred",
        });
    }
    let now_ms = to_ms(now);
    match decision {
        Decision::Approve(approval) => {
            let contact = book_approval(tx, approval, campaign, customer, Some(delivery), now)?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'approved', contact_id = ?2, reasons = '[]', \
                     decided_at_ms = ?3, next_attempt_at_ms = ?3, approval_expires_at_ms = ?4, \
                     updated_at_ms = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![
                delivery.0,
                contact.0,
                now_ms,
                to_ms(approval.expires_at())
            ])?;
        }
        Decision::Defer { until, reasons } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'deferred', reasons = ?2, decided_at_ms = ?3, \
                     next_attempt_at_ms = ?4, updated_at_ms = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![delivery.0, to_json(reasons), now_ms, to_ms(*until)])?;
        }
        Decision::Deny { reasons } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'denied', reasons = ?2, decided_at_ms = ?3, \
                     next_attempt_at_ms = NULL, updated_at_ms = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![delivery.0, to_json(reasons), now_ms])?;
        }
    }
    Ok(())
}

/// Returns the id and state of the deliveries of `campaign` that the customers of
/// `decisions` have already, by customer id.
///
/// Customers close together in id, as in planning's batches, are looked up with one range
/// query. Scattered ones are looked up one by one, so that a range never reads far more
/// rows than requested.
fn existing_deliveries(
    tx: &Connection,
    campaign: CampaignId,
    decisions: &[(CustomerId, Decision)],
) -> Result<HashMap<i64, (i64, String)>> {
    let mut existing = HashMap::new();
    let read = |row: &Row<'_>| Ok((row.get(0)?, (row.get(1)?, row.get(2)?)));
    match CustomerRange::of(decisions) {
        None => {}
        Some(CustomerRange::Close(first, last)) => {
            let sql = "SELECT customer_id, id, state FROM deliveries \
                       WHERE campaign_id = ?1 AND customer_id BETWEEN ?2 AND ?3";
            let mut statement = tx.prepare_cached(sql)?;
            for row in statement.query_map(params![campaign.0, first, last], read)? {
                let (customer, found) = row?;
                existing.insert(customer, found);
            }
        }
        Some(CustomerRange::Scattered) => {
            let sql = "SELECT customer_id, id, state FROM deliveries \
                       WHERE campaign_id = ?1 AND customer_id = ?2";
            let mut statement = tx.prepare_cached(sql)?;
            for (customer, _) in decisions {
                if let Some((customer, found)) = statement
                    .query_row(params![campaign.0, customer.0], read)
                    .optional()?
                {
                    existing.insert(customer, found);
                }
            }
        }
    }
    Ok(existing)
}

/// The way a batch's customer ids are read: as one range when they lie close together, as
/// a planning batch's do, or one by one.
enum CustomerRange {
    /// The smallest and the largest id.
    Close(i64, i64),
    Scattered,
}

impl CustomerRange {
    /// Classifies the customer ids of `decisions`, or returns `None` when there are none.
    fn of(decisions: &[(CustomerId, Decision)]) -> Option<CustomerRange> {
        let ids = decisions.iter().map(|(customer, _)| customer.0);
        let (first, last) = (ids.clone().min()?, ids.max()?);
        let close = last.abs_diff(first) <= 4 * decisions.len() as u64 + 1_000;
        Some(if close {
            CustomerRange::Close(first, last)
        } else {
            CustomerRange::Scattered
        })
    }
}

/// Books the contact of an approval for `customer` in `campaign`, outcome pending, at `now`.
/// `delivery` is the existing delivery the approval is stored on, `None` for a new one; the
/// error names it when the approval is for someone else.
fn book_approval(
    tx: &Connection,
    approval: &tact_domain::Approval,
    campaign: CampaignId,
    customer: CustomerId,
    delivery: Option<DeliveryId>,
    now: DateTime<Utc>,
) -> Result<ContactId> {
    let proposal = approval.proposal();
    if proposal.customer != customer || proposal.campaign != Some(campaign) {
        let value = format!(
            "customer {} campaign {:?}",
            proposal.customer, proposal.campaign
        );
        let delivery = match delivery {
            Some(delivery) => format!("delivery {delivery}"),
            None => format!("the new delivery of customer {customer}"),
        };
        let reason = format!("{delivery} is for customer {customer} of campaign {campaign}");
        return Err(Error::invalid_field("approval", &value, reason));
    }
    let (contact, _) = insert_contact(tx, &proposal.booking(now))?;
    Ok(contact)
}

/// Stores a planning batch in the open transaction `tx`; see [`Store::record_planned`].
fn record_planned_in(
    tx: &Connection,
    campaign: CampaignId,
    decisions: &[(CustomerId, Decision)],
    now: DateTime<Utc>,
    now_ms: i64,
) -> Result<Vec<Option<DeliveryId>>> {
    let mut existing = existing_deliveries(tx, campaign, decisions)?;
    let known = known_customers(tx, campaign, decisions)?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (campaign_id, customer_id, state, reasons, \
             decided_at_ms, next_attempt_at_ms, approval_expires_at_ms, contact_id, \
             updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?5)",
    )?;
    let mut stored = Vec::with_capacity(decisions.len());
    for (customer, decision) in decisions {
        if let Some((id, state)) = existing.get_mut(&customer.0) {
            let delivery = DeliveryId(*id);
            if state == DeliveryState::Planned.as_str() {
                record_decision_in(tx, delivery, decision, now)?;
                // Decided now, so a repeat of the customer in `decisions` keeps it.
                *state = DeliveryState::decided(decision).as_str().to_owned();
                stored.push(Some(delivery));
            } else {
                stored.push(None);
            }
            continue;
        }
        if !known.contains(&customer.0) {
            return Err(Error::not_found("customer", customer));
        }
        let state = DeliveryState::decided(decision).as_str();
        let (reasons, next_ms, expires_ms, contact) = match decision {
            Decision::Approve(approval) => {
                let contact = book_approval(tx, approval, campaign, *customer, None, now)?;
                let expires_ms = to_ms(approval.expires_at());
                (
                    "[]".to_owned(),
                    Some(now_ms),
                    Some(expires_ms),
                    Some(contact.0),
                )
            }
            Decision::Defer { until, reasons } => {
                (to_json(reasons), Some(to_ms(*until)), None, None)
            }
            Decision::Deny { reasons } => (to_json(reasons), None, None, None),
        };
        insert.execute(params![
            campaign.0, customer.0, state, reasons, now_ms, next_ms, expires_ms, contact
        ])?;
        let id = tx.last_insert_rowid();
        existing.insert(customer.0, (id, state.to_owned()));
        stored.push(Some(DeliveryId(id)));
    }
    Ok(stored)
}

/// Returns which customers of `decisions` exist, after checking that `campaign` exists.
fn known_customers(
    tx: &Connection,
    campaign: CampaignId,
    decisions: &[(CustomerId, Decision)],
) -> Result<HashSet<i64>> {
    if !campaign_exists(tx, campaign)? {
        return Err(Error::not_found("campaign", campaign));
    }
    let mut known = HashSet::with_capacity(decisions.len());
    match CustomerRange::of(decisions) {
        None => {}
        Some(CustomerRange::Close(first, last)) => {
            let sql = "SELECT id FROM customers WHERE id BETWEEN ?1 AND ?2";
            let mut statement = tx.prepare_cached(sql)?;
            for id in statement.query_map([first, last], |row| row.get(0))? {
                known.insert(id?);
            }
        }
        Some(CustomerRange::Scattered) => {
            let mut statement = tx.prepare_cached("SELECT 1 FROM customers WHERE id = ?1")?;
            for (customer, _) in decisions {
                if statement.exists([customer.0])? {
                    known.insert(customer.0);
                }
            }
        }
    }
    Ok(known)
}

fn campaign_exists(tx: &Connection, campaign: CampaignId) -> Result<bool> {
    let sql = "SELECT count(*) FROM campaigns WHERE id = ?1";
    let count: i64 = tx
        .prepare_cached(sql)?
        .query_row([campaign.0], |row| row.get(0))?;
    Ok(count > 0)
}

/// Names the campaign or customer that a delivery could not be planned for.
fn missing_target(tx: &Connection, campaign: CampaignId, customer: CustomerId) -> Error {
    if campaign_exists(tx, campaign).unwrap_or(false) {
        Error::not_found("customer", customer)
    } else {
        Error::not_found("campaign", campaign)
    }
}

fn delivery_target(
    tx: &Connection,
    delivery: DeliveryId,
) -> Result<(DeliveryState, CampaignId, CustomerId)> {
    let row: Option<(String, i64, i64)> = tx
        .prepare_cached("SELECT state, campaign_id, customer_id FROM deliveries WHERE id = ?1")?
        .query_row([delivery.0], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let (state, campaign, customer) = row.ok_or_else(|| Error::not_found("delivery", delivery))?;
    let state = parse_enum("delivery", delivery.0, &state)?;
    Ok((state, CampaignId(campaign), CustomerId(customer)))
}

/// A delivery that is `sending`: its customer, its booked contact, and that contact as
/// stored, or `None` when the row cannot be read.
struct Booking {
    customer: CustomerId,
    contact: ContactId,
    stored: Option<Contact>,
}

/// Returns the booking of a delivery that is `sending`, or [`Error::InvalidState`] when it
/// is in another state. A booked contact row that cannot be read does not stop a sent or
/// failed mark, which then derives the customer's timeline again.
fn sending_booking(tx: &Connection, delivery: DeliveryId) -> Result<Booking> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, d.state, d.contact_id, d.customer_id FROM deliveries d \
             LEFT JOIN contacts c ON c.id = d.contact_id WHERE d.id = ?1",
            qualified_contact_columns()
        )
    });
    let mut statement = tx.prepare_cached(&SQL)?;
    let mut rows = statement.query([delivery.0])?;
    let row = rows
        .next()?
        .ok_or_else(|| Error::not_found("delivery", delivery))?;
    let state: String = row.get(9)?;
    let contact: Option<i64> = row.get(10)?;
    match (state.as_str(), contact) {
        ("sending", Some(contact)) => Ok(Booking {
            customer: CustomerId(row.get(11)?),
            contact: ContactId(contact),
            stored: contact_from_row(row).ok().map(|(_, stored)| stored),
        }),
        _ => Err(Error::InvalidState {
            delivery: delivery.0,
            state,
            expected: "sending",
        }),
    }
}

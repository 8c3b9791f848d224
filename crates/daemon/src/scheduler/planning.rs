//! Deciding campaign deliveries: planning a whole audience, and deciding again the
//! deliveries whose deferral has run out.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tact_domain::{
    AccountId, CampaignId, Contact, CustomerId, CustomerView, Decision, DeliveryId, Policy, Reason,
    RuleId,
};
use tact_storage::{
    Campaign, CampaignStatus, Checkpointer, Delivery, SCAN_CHECKPOINT_EVERY, Scan, Store,
};

use super::content::{Mailer, campaign_proposal};
use crate::ops::count_decision;

/// Customers loaded and decided per batch.
pub const PLAN_BATCH: usize = 1_000;

/// Customers whose decisions are stored in one transaction when the policy sets no account
/// caps. Each commit writes every page it changed to the log, and the entries of deferrals
/// in the due index land all over it, so larger transactions write fewer pages. At
/// 1,000,000 customers, planning wrote a quarter fewer bytes than with one transaction per
/// batch. One this size holds the write lock for about a tenth of a second.
pub const PLAN_COMMIT: usize = 10_000;

/// Counts of one planning run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanReport {
    /// Customers whose delivery was approved and queued.
    pub approved: u64,
    /// Customers whose delivery was deferred.
    pub deferred: u64,
    /// Customers whose delivery was denied.
    pub denied: u64,
    /// Customers left out because their message could not be rendered.
    pub skipped: u64,
}

impl PlanReport {
    fn count(&mut self, decision: &Decision) {
        match decision {
            Decision::Approve(_) => self.approved += 1,
            Decision::Defer { .. } => self.deferred += 1,
            Decision::Deny { .. } => self.denied += 1,
        }
    }

    /// Customers decided or skipped.
    pub fn total(&self) -> u64 {
        self.approved + self.deferred + self.denied + self.skipped
    }
}

/// Decides the campaign for every member of its audience and stores the decisions:
/// approvals book their contact and queue the delivery, deferrals wait in the outbox.
///
/// Views stream from storage in batches of [`PLAN_BATCH`] through [`Store::scan_views`], so
/// memory stays bounded: reader threads load, render and decide batches while a writing
/// thread, with a connection of its own, stores the decisions of earlier ones,
/// [`PLAN_COMMIT`] customers per transaction. A policy with account caps reads one batch at
/// a time instead and stores each batch on this thread in its own transaction, so each
/// batch is loaded after the bookings of the batches before it are stored. A store in
/// memory does the same, because no second connection can open it. Running it again for a campaign that
/// stopped half-way decides only the customers not decided yet. `progress` is called as
/// batches are handed over and stored, with the number of customers done so far.
///
/// # Errors
///
/// Fails when the template is invalid or the store fails; decisions stored before the
/// failure stay stored.
pub fn plan_campaign(
    store: &Store,
    mailer: &Mailer,
    policy: &Policy,
    campaign: &Campaign,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<PlanReport> {
    let plan = Plan {
        mailer,
        policy,
        campaign,
        now,
        commit: PLAN_COMMIT,
    };
    plan.run(store, progress)
}

/// What one planning run decides with, and the customers it stores per transaction when
/// a writing thread stores them.
struct Plan<'a> {
    mailer: &'a Mailer,
    policy: &'a Policy,
    campaign: &'a Campaign,
    now: DateTime<Utc>,
    commit: usize,
}

impl Plan<'_> {
    /// Plans the whole audience, as [`plan_campaign`] describes.
    fn run(&self, store: &Store, progress: &mut dyn FnMut(u64)) -> anyhow::Result<PlanReport> {
        let (policy, campaign, now) = (self.policy, self.campaign, self.now);
        self.mailer.template(campaign)?;
        store.set_campaign_status(campaign.id, CampaignStatus::Running, now)?;

        let mut scan = Scan {
            batch_size: PLAN_BATCH,
            ..Scan::new(&campaign.audience, now, policy)
        };
        let report = match store.path() {
            Some(path) if !has_account_caps(policy) => {
                self.with_writer(store, path, &scan, progress)?
            }
            _ => {
                if has_account_caps(policy) {
                    scan.readers = 1;
                }
                self.in_batches(store, &scan, progress)?
            }
        };
        store.set_campaign_skipped(campaign.id, report.skipped)?;
        store.set_campaign_status(campaign.id, CampaignStatus::Done, now)?;
        tracing::info!(
            campaign.id = campaign.id.0,
            approved = report.approved,
            deferred = report.deferred,
            denied = report.denied,
            skipped = report.skipped,
            "planned campaign"
        );
        Ok(report)
    }

    fn decide(&self, reader: &Store, views: Vec<CustomerView>) -> anyhow::Result<DecidedBatch> {
        decide_batch(
            reader,
            self.mailer,
            self.policy,
            self.campaign,
            views,
            self.now,
        )
    }

    /// Stores each batch on the calling thread, in its own transaction.
    fn in_batches(
        &self,
        store: &Store,
        scan: &Scan<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<PlanReport> {
        let mut report = PlanReport::default();
        store.scan_views(
            scan,
            |reader, views| self.decide(reader, views),
            |decided| -> anyhow::Result<()> {
                let decided = decided?;
                self.warn_skipped(&decided);
                report.skipped += decided.skipped;
                self.store(store, &decided.decisions, &mut report)?;
                progress(report.total());
                Ok(())
            },
        )?;
        Ok(report)
    }

    /// Hands the decisions over to a thread that stores them through a second connection to
    /// the file at `path`: all decided so far whenever it waits for work, and otherwise
    /// `commit` customers or more at a time. Readers go on loading and deciding while a
    /// transaction is written, instead of waiting for it with their queues full.
    fn with_writer(
        &self,
        store: &Store,
        path: &Path,
        scan: &Scan<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<PlanReport> {
        let writer = Store::open(path)?;
        // The scan's checkpointer copies the log that this connection fills.
        writer.defer_checkpoints_for_large_commits()?;
        let stored = AtomicU64::new(0);
        // Without a buffer, a send succeeds only while the thread waits for work, so at most
        // two transactions' decisions are in memory: one being stored and one being filled.
        let (sender, receiver) = mpsc::sync_channel::<Vec<(CustomerId, Decision)>>(0);
        std::thread::scope(|scope| {
            let stored = &stored;
            let thread = std::thread::Builder::new()
                .name("tact-plan-write".to_owned())
                .spawn_scoped(scope, move || -> anyhow::Result<PlanReport> {
                    let mut report = PlanReport::default();
                    for decisions in receiver {
                        self.store(&writer, &decisions, &mut report)?;
                        stored.store(report.total(), Ordering::Relaxed);
                    }
                    Ok(report)
                })?;
            let mut skipped = 0;
            let mut pending = Vec::new();
            let scanned = store.scan_views(
                scan,
                |reader, views| self.decide(reader, views),
                |decided| -> anyhow::Result<()> {
                    let decided = decided?;
                    self.warn_skipped(&decided);
                    skipped += decided.skipped;
                    pending.extend(decided.decisions);
                    let ready = std::mem::take(&mut pending);
                    // A send fails only when the writing thread has stopped, on an error or
                    // a panic, which the join below returns.
                    if ready.len() >= self.commit {
                        if sender.send(ready).is_err() {
                            anyhow::bail!("planning's writing thread stopped");
                        }
                    } else {
                        match sender.try_send(ready) {
                            Ok(()) => {}
                            Err(mpsc::TrySendError::Full(ready)) => pending = ready,
                            Err(mpsc::TrySendError::Disconnected(_)) => {
                                anyhow::bail!("planning's writing thread stopped");
                            }
                        }
                    }
                    progress(stored.load(Ordering::Relaxed) + skipped);
                    Ok(())
                },
            );
            // The scan's checkpointer has stopped, and the thread may still have transactions
            // to store. This one copies them as they commit, so that little is left to copy
            // when the last connection closes.
            let checkpointer = Checkpointer::start(path, SCAN_CHECKPOINT_EVERY).ok();
            if scanned.is_ok() && !pending.is_empty() {
                // As above: a failed send leaves the error to the join.
                let _ = sender.send(pending);
            }
            drop(sender);
            let written = thread
                .join()
                .map_err(|_| anyhow::anyhow!("planning's writing thread panicked"))?;
            drop(checkpointer);
            let mut report = written?;
            scanned?;
            report.skipped = skipped;
            progress(report.total());
            Ok(report)
        })
    }

    /// Stores decisions in one transaction and counts the ones stored.
    fn store(
        &self,
        store: &Store,
        decisions: &[(CustomerId, Decision)],
        report: &mut PlanReport,
    ) -> anyhow::Result<()> {
        let stored = store.record_planned(self.campaign.id, decisions, self.now)?;
        for ((customer, decision), delivery) in decisions.iter().zip(stored) {
            // A delivery decided before, by an earlier run, keeps its decision.
            let Some(delivery) = delivery else { continue };
            count_decision(decision);
            tracing::debug!(
                delivery.id = delivery.0,
                customer.id = customer.0,
                decision = decision.kind(),
                "decided a campaign delivery"
            );
            report.count(decision);
        }
        Ok(())
    }

    fn warn_skipped(&self, decided: &DecidedBatch) {
        if let Some(first) = &decided.first_skipped {
            tracing::warn!(
                campaign.id = self.campaign.id.0,
                customer.id = first.customer.0,
                customer.external_id = first.external_id,
                skipped = decided.skipped,
                error = first.error,
                "customers left out of a batch because their message cannot be rendered; \
                 the first is named"
            );
        }
    }
}

/// Returns whether the policy caps contacts per account, so that one customer's booking
/// changes the decisions of the other people of their account.
fn has_account_caps(policy: &Policy) -> bool {
    policy.account.contacts.is_some() || policy.account.call_minutes.is_some()
}

/// The decisions of one batch of a campaign's audience.
struct DecidedBatch {
    decisions: Vec<(CustomerId, Decision)>,
    /// Customers left out because their message could not be rendered.
    skipped: u64,
    /// The first customer left out.
    first_skipped: Option<Skipped>,
}

/// A customer left out of planning, and why.
struct Skipped {
    customer: CustomerId,
    external_id: String,
    error: String,
}

/// Describes the campaign's message for each customer of a batch and decides it, reading
/// the customers' imported fields through `reader`.
///
/// An approval in the batch counts against the account caps of the customers after it in
/// the same account, as the booking it makes will once stored.
fn decide_batch(
    reader: &Store,
    mailer: &Mailer,
    policy: &Policy,
    campaign: &Campaign,
    views: Vec<CustomerView>,
    now: DateTime<Utc>,
) -> anyhow::Result<DecidedBatch> {
    // A template that does not compile fails the whole batch, not each customer.
    mailer.template(campaign)?;
    // Fields are read even for a template that lists none: a field read only on the right
    // of a `set` is not listed, and sending reads them all anyway.
    let ids: Vec<_> = views.iter().map(|view| view.customer.id).collect();
    let fields = reader.customer_fields_each(&ids)?;
    let mut booked = AccountBookings::new(policy);
    let mut decided = DecidedBatch {
        decisions: Vec::with_capacity(views.len()),
        skipped: 0,
        first_skipped: None,
    };
    for (mut view, fields) in views.into_iter().zip(fields) {
        let customer = &view.customer;
        let content = fields
            .map_err(anyhow::Error::from)
            .and_then(|fields| mailer.content_with(campaign, customer, fields));
        let content = match content {
            Ok(content) => content,
            Err(error) => {
                // A planning that resumes keeps the deliveries decided before it stopped, so
                // a customer who lost a field since then is not left out.
                let decided_before = reader
                    .deliveries_for(customer.id)?
                    .iter()
                    .any(|delivery| delivery.campaign == campaign.id);
                if decided_before {
                    continue;
                }
                let error = format!("{error:#}");
                tracing::debug!(customer.id = customer.id.0, error, "skipped");
                decided.skipped += 1;
                decided.first_skipped.get_or_insert_with(|| Skipped {
                    customer: customer.id,
                    external_id: customer.external_id.clone(),
                    error,
                });
                continue;
            }
        };
        let proposal = campaign_proposal(campaign, customer, Some(content));
        booked.add_to(&mut view);
        let decision = decide_planned(&proposal, &mut view, policy, now);
        booked.record(&view, &decision, now);
        decided.decisions.push((view.customer.id, decision));
    }
    Ok(decided)
}

/// The contacts that approvals not stored yet will book, per account, so that they count
/// against the account caps of the account's other people. Empty when the policy sets no
/// account cap.
struct AccountBookings {
    enabled: bool,
    booked: HashMap<AccountId, Vec<Contact>>,
}

impl AccountBookings {
    fn new(policy: &Policy) -> AccountBookings {
        AccountBookings {
            enabled: has_account_caps(policy),
            booked: HashMap::new(),
        }
    }

    /// Adds the bookings of the view's account to its account contacts. They are at the
    /// decision time, after all stored history, so the list stays in time order.
    fn add_to(&self, view: &mut CustomerView) {
        let Some(account) = view.customer.account.filter(|_| self.enabled) else {
            return;
        };
        if let Some(contacts) = self.booked.get(&account) {
            view.account_contacts.extend(contacts.iter().cloned());
        }
    }

    /// Remembers the contact that `decision`, when it is an approval, books at `now`.
    fn record(&mut self, view: &CustomerView, decision: &Decision, now: DateTime<Utc>) {
        let Some(account) = view.customer.account.filter(|_| self.enabled) else {
            return;
        };
        let Decision::Approve(approval) = decision else {
            return;
        };
        let booking = approval.proposal().booking(now);
        self.booked.entry(account).or_default().push(booking);
    }
}

/// Decides one customer's campaign proposal through the domain's batch planner.
///
/// Campaigns due at the same time are planned one after another, highest priority first
/// as storage returns them, and each stores its bookings before the next loads its views,
/// so their proposals count against each other.
fn decide_planned(
    proposal: &tact_domain::Proposal,
    view: &mut CustomerView,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    let mut decisions = tact_domain::plan(std::slice::from_ref(proposal), view, policy, now);
    decisions
        .pop()
        .unwrap_or_else(|| tact_domain::decide(proposal, view, policy, now))
}

/// Decides again up to `limit` deliveries that are due at `now`: deferred ones whose time
/// has come and planned ones left undecided. Returns how many were decided.
///
/// A customer's due deliveries are decided together through the domain's batch planner,
/// highest priority first, so two campaigns whose deferrals end at the same instant cannot
/// both take the customer's last slot.
///
/// # Errors
///
/// Fails when the store fails.
pub fn redecide_due(
    store: &Store,
    mailer: &Mailer,
    policy: &Policy,
    now: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<usize> {
    let due = store.deferred_due(now, limit)?;
    let mut campaigns: HashMap<CampaignId, Campaign> = HashMap::new();
    for delivery in &due {
        if let Entry::Vacant(entry) = campaigns.entry(delivery.campaign) {
            entry.insert(store.campaign(delivery.campaign)?);
        }
    }
    let mut by_customer: Vec<(CustomerId, Vec<&Delivery>)> = Vec::new();
    let mut position: HashMap<CustomerId, usize> = HashMap::new();
    for delivery in &due {
        let index = *position.entry(delivery.customer).or_insert_with(|| {
            by_customer.push((delivery.customer, Vec::new()));
            by_customer.len() - 1
        });
        by_customer[index].1.push(delivery);
    }

    let mut decisions: Vec<(DeliveryId, Decision)> = Vec::with_capacity(due.len());
    let round = Round {
        store,
        mailer,
        policy,
        campaigns: &campaigns,
        now,
    };
    let mut booked = AccountBookings::new(policy);
    for (customer, deliveries) in by_customer {
        let decided = redecide_customer(&round, &mut booked, customer, &deliveries)?;
        for (delivery, decision) in deliveries.iter().zip(decided) {
            count_decision(&decision);
            tracing::debug!(
                delivery.id = delivery.id.0,
                customer.id = customer.0,
                decision = decision.kind(),
                "decided a deferred delivery again"
            );
            decisions.push((delivery.id, decision));
        }
    }
    store.record_decisions(&decisions, now)?;
    Ok(decisions.len())
}

/// The store, mailer, policy, campaigns and time that one round of [`redecide_due`] decides
/// its deliveries with.
struct Round<'a> {
    store: &'a Store,
    mailer: &'a Mailer,
    policy: &'a Policy,
    campaigns: &'a HashMap<CampaignId, Campaign>,
    now: DateTime<Utc>,
}

/// Decides one customer's due deliveries together; returns one decision per delivery, in
/// the order given. The approvals of the round so far count against the customer's account
/// caps, because the round stores its decisions only at its end.
fn redecide_customer(
    round: &Round<'_>,
    booked: &mut AccountBookings,
    customer: CustomerId,
    deliveries: &[&Delivery],
) -> anyhow::Result<Vec<Decision>> {
    let Round {
        store,
        mailer,
        policy,
        campaigns,
        now,
    } = *round;
    let mut view = store.load_view(customer, now, policy)?;
    booked.add_to(&mut view);
    let mut decisions: Vec<Option<Decision>> = vec![None; deliveries.len()];
    let mut proposals = Vec::with_capacity(deliveries.len());
    let mut planned = Vec::with_capacity(deliveries.len());
    for (index, delivery) in deliveries.iter().enumerate() {
        let campaign = &campaigns[&delivery.campaign];
        if campaign.status == CampaignStatus::Cancelled {
            decisions[index] = Some(stopped("the campaign was cancelled"));
            continue;
        }
        match mailer.content(store, campaign, &view.customer) {
            Ok(content) => {
                proposals.push(campaign_proposal(campaign, &view.customer, Some(content)));
                planned.push(index);
            }
            Err(error) => {
                let message = format!("the message cannot be rendered: {error:#}");
                decisions[index] = Some(stopped(&message));
            }
        }
    }
    let decided = tact_domain::plan(&proposals, &mut view, policy, now);
    for (index, decision) in planned.into_iter().zip(decided) {
        booked.record(&view, &decision, now);
        decisions[index] = Some(decision);
    }
    Ok(decisions
        .into_iter()
        .map(|decision| decision.unwrap_or_else(|| stopped("no decision was made")))
        .collect())
}

/// Builds a denial for a delivery that can no longer go out for a reason outside the rules,
/// so the outbox row ends instead of waiting forever.
fn stopped(message: &str) -> Decision {
    Decision::Deny {
        reasons: vec![Reason {
            rule: RuleId::Stale,
            message: format!("{message}; the delivery is dropped"),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::content::StoredTemplate;
    use crate::scheduler::content::tests::{mailer, value_campaign};
    use tact_delivery::TemplateSource;
    use tact_storage::NewCustomer;

    const CUSTOMERS: usize = 2_500;

    /// Creates a database file with `CUSTOMERS` customers and a value campaign to all of them.
    fn seeded(folder: &Path) -> (Store, Campaign) {
        let store = Store::open(folder.join("tact.db")).unwrap();
        for n in 1..=CUSTOMERS {
            let mut customer = NewCustomer::new(format!("c{n}"));
            customer.name = Some(format!("Customer {n}"));
            customer.email = Some(format!("c{n}@example.org"));
            store.upsert_customer(&customer).unwrap();
        }
        let template = StoredTemplate {
            source: TemplateSource {
                subject: "News".to_owned(),
                text: "Hello {{ name }},\n{{ unsubscribe_url }}\n".to_owned(),
                html: None,
            },
            fields: Vec::new(),
        };
        let campaign = value_campaign(&store, &template);
        (store, campaign)
    }

    /// Returns a plan at [`noon`] with transactions of 700 customers or more, below the batch size
    /// of 1,000.
    fn plan_of<'a>(mailer: &'a Mailer, policy: &'a Policy, campaign: &'a Campaign) -> Plan<'a> {
        Plan {
            mailer,
            policy,
            campaign,
            now: noon(),
            commit: 700,
        }
    }

    /// Midday in UTC, inside the default contact hours of the customers, who live in UTC.
    fn noon() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::days(20_000) + chrono::Duration::hours(12)
    }

    /// Counts the stored deliveries, and those of them that are approved.
    fn stored_deliveries(folder: &Path) -> (i64, i64) {
        let connection = rusqlite::Connection::open(folder.join("tact.db")).unwrap();
        let sql = "SELECT count(*), count(*) FILTER (WHERE state = 'approved') FROM deliveries";
        connection
            .query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
    }

    /// With a commit size of 700, below the batch size of 1,000, each batch goes to the
    /// writing thread as a transaction of its own: 1,000, 1,000 and 500 customers.
    #[test]
    fn writing_thread_stores_every_transaction() {
        let folder = tempfile::tempdir().unwrap();
        let (store, campaign) = seeded(folder.path());
        let (mailer, policy) = (mailer(), Policy::default());
        let plan = plan_of(&mailer, &policy, &campaign);
        let mut seen = Vec::new();

        let report = plan.run(&store, &mut |done| seen.push(done)).unwrap();

        let expected = PlanReport {
            approved: CUSTOMERS as u64,
            ..PlanReport::default()
        };
        assert_eq!(report, expected);
        assert_eq!(seen.last(), Some(&(CUSTOMERS as u64)));
        assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "{seen:?}");
        let all = CUSTOMERS as i64;
        assert_eq!(stored_deliveries(folder.path()), (all, all));
        assert_eq!(
            store.campaign(campaign.id).unwrap().status,
            CampaignStatus::Done
        );
    }

    /// A transaction that fails stops planning with its error. The transactions stored
    /// before it stay stored and the campaign stays running, so running it again goes on
    /// from there.
    #[test]
    fn failed_transaction_stops_planning() {
        let folder = tempfile::tempdir().unwrap();
        let (store, campaign) = seeded(folder.path());
        let connection = rusqlite::Connection::open(folder.path().join("tact.db")).unwrap();
        connection
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON deliveries WHEN NEW.customer_id = 1800
                 BEGIN SELECT RAISE(ABORT, 'customer 1800 refused'); END;",
            )
            .unwrap();
        let (mailer, policy) = (mailer(), Policy::default());
        let plan = plan_of(&mailer, &policy, &campaign);

        let error = plan.run(&store, &mut |_| {}).unwrap_err();

        assert!(
            format!("{error:#}").contains("customer 1800 refused"),
            "{error:#}"
        );
        assert_eq!(stored_deliveries(folder.path()), (1_000, 1_000));
        assert_eq!(
            store.campaign(campaign.id).unwrap().status,
            CampaignStatus::Running
        );

        connection.execute_batch("DROP TRIGGER refuse").unwrap();
        let report = plan.run(&store, &mut |_| {}).unwrap();
        let expected = PlanReport {
            approved: (CUSTOMERS - 1_000) as u64,
            ..PlanReport::default()
        };
        assert_eq!(report, expected);
        let all = CUSTOMERS as i64;
        assert_eq!(stored_deliveries(folder.path()), (all, all));
    }
}

//! The outbox worker: claims approved deliveries, decides each again right before sending,
//! sends it through the configured channel and records the outcome.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Instant;
use tact_delivery::{Channel, Outgoing, Recipient, RetryPolicy, SendError};
use tact_domain::{
    CampaignId, CustomerId, CustomerView, Decision, DeliveryId, Policy, Signal, SignalKind,
    SuppressionReason,
};
use tact_storage::{Campaign, ClaimedDelivery, Store};
use tokio::sync::{mpsc, oneshot};

use super::Scheduler;
use super::content::campaign_proposal;

/// The outcome of one claimed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The channel accepted the message.
    Sent,
    /// A transient failure; another attempt is scheduled.
    Retried,
    /// Failed for good, held back by a rule at send time, or bounced.
    Failed,
    /// Given back unsent because the daemon is stopping.
    Released,
}

/// The result of deciding a claimed delivery again right before sending.
enum Prepared {
    Send(Box<Outgoing>),
    Held(Held),
}

/// A decision at send time to defer or deny the delivery, with the rules that made it.
enum Held {
    Deferred { until: DateTime<Utc>, rules: String },
    Denied { rules: String },
}

fn rule_list(decision: &Decision) -> String {
    let rules: Vec<&str> = decision
        .reasons()
        .iter()
        .map(|reason| reason.rule.as_str())
        .collect();
    rules.join(", ")
}

/// The data from the store that deciding a claimed delivery again needs: its campaign, the
/// customer's current view without the delivery's own booked contact (which must not count
/// against itself), and the customer's imported fields.
pub(super) struct Loaded {
    campaign: Arc<Campaign>,
    view: CustomerView,
    fields: Map<String, Value>,
}

/// Loads what [`prepare`] needs for one claimed delivery. `campaigns` keeps the campaigns
/// read so far.
fn load(
    store: &Store,
    campaigns: &mut HashMap<CampaignId, Arc<Campaign>>,
    claimed: &ClaimedDelivery,
    policy: &Policy,
    now: DateTime<Utc>,
) -> anyhow::Result<Loaded> {
    let campaign = match campaigns.entry(claimed.campaign) {
        Entry::Occupied(entry) => entry.get().clone(),
        Entry::Vacant(entry) => entry
            .insert(Arc::new(store.campaign(claimed.campaign)?))
            .clone(),
    };
    let view = store.load_view_without(claimed.customer, claimed.contact, now, policy)?;
    let fields = store.customer_fields(claimed.customer)?;
    Ok(Loaded {
        campaign,
        view,
        fields,
    })
}

/// Renders the delivery's message and decides it again with the customer's current
/// preferences and history, so an unsubscribe or a suppression that arrived after planning
/// always wins.
fn prepare(
    scheduler: &Scheduler,
    claimed: &ClaimedDelivery,
    loaded: Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<Prepared> {
    let policy = &scheduler.settings.policy;
    let Loaded {
        campaign,
        view,
        fields,
    } = loaded;
    let (rendered, content) =
        scheduler
            .mailer
            .render_fields(&campaign, &view.customer, fields, now)?;
    let proposal = campaign_proposal(&campaign, &view.customer, Some(content));
    let decision = tact_domain::decide(&proposal, &view, policy, now);
    crate::ops::count_decision(&decision);
    match decision {
        Decision::Approve(approval) => {
            let recipient = Recipient::email(&view.customer)?;
            let outgoing = Outgoing::new(approval, claimed.id, recipient, rendered)?;
            Ok(Prepared::Send(Box::new(outgoing)))
        }
        Decision::Defer { until, .. } => Ok(Prepared::Held(Held::Deferred {
            until,
            rules: rule_list(&decision),
        })),
        Decision::Deny { .. } => Ok(Prepared::Held(Held::Denied {
            rules: rule_list(&decision),
        })),
    }
}

/// A claimed delivery once its send slot is free.
pub(super) enum Ready {
    /// Its lease is renewed and what deciding it again needs is loaded: the send task
    /// decides it and sends it when the rules still approve.
    Decide(ClaimedDelivery, Box<Loaded>, DateTime<Utc>),
    /// Failed or released; the outcome is recorded.
    Done(SendOutcome),
}

/// Loads what deciding a chunk of claimed deliveries again needs, with one hold of the
/// reading connection, and renews the leases older than a twentieth of their time.
/// Rendering and the rules run afterwards in each delivery's own send task, on every core,
/// through [`decide_and_send`].
///
/// The leases are renewed right before the sends start, so each send, including its wait
/// for an SMTP connection, has at least nineteen twentieths of a lease. A delivery whose
/// lease ran out while it waited for its slot may have been claimed by another daemon
/// meanwhile, so only the worker that still holds the lease sends it. A delivery that the
/// rules then hold back is recorded as held, whatever its lease.
pub(super) async fn prepare_chunk(
    scheduler: &Arc<Scheduler>,
    chunk: Vec<ClaimedDelivery>,
) -> anyhow::Result<Vec<Ready>> {
    let now = scheduler.clock.now();
    let for_load = scheduler.clone();
    let loaded = scheduler
        .with_reader(move |store| {
            let policy = &for_load.settings.policy;
            let mut campaigns = HashMap::new();
            Ok(chunk
                .into_iter()
                .map(|claimed| {
                    let loaded = load(store, &mut campaigns, &claimed, policy, now);
                    (claimed, loaded)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    // A lease claimed within the last twentieth of its time covers the send about as well
    // as a renewed one, and no other worker can take the delivery before it runs out, so
    // only older leases are renewed. Claims run right before their deliveries' slots free
    // up, so on a busy outbox most leases are that fresh.
    let lease = scheduler.settings.config.delivery.lease.duration();
    let stale = |claimed: &ClaimedDelivery| claimed.lease_expires_at - now < lease - lease / 20;
    let ids: Vec<_> = loaded
        .iter()
        .filter(|(claimed, loaded)| loaded.is_ok() && stale(claimed))
        .map(|(claimed, _)| claimed.id)
        .collect();
    let renewed = if ids.is_empty() {
        Vec::new()
    } else {
        let worker = scheduler.worker.clone();
        scheduler
            .with_store(move |store| Ok(store.renew_leases(&ids, &worker, lease, now)?))
            .await?
    };
    let mut renewed = renewed.into_iter();
    let mut ready = Vec::with_capacity(loaded.len());
    for (claimed, loaded) in loaded {
        let outcome = match loaded {
            Ok(loaded) => {
                if !stale(&claimed) || renewed.next().unwrap_or(false) {
                    ready.push(Ready::Decide(claimed, Box::new(loaded), now));
                    continue;
                }
                tracing::warn!(
                    delivery.id = claimed.id.0,
                    customer.id = claimed.customer.0,
                    "lease ran out before sending; the delivery is left to the worker that claimed it"
                );
                Ok(SendOutcome::Released)
            }
            Err(error) => {
                let message = format!("cannot prepare the message: {error:#}");
                finish_failed(scheduler, &claimed, message).await
            }
        };
        ready.push(Ready::Done(counted(&claimed, outcome)));
    }
    Ok(ready)
}

/// Decides a loaded delivery again at `now`, the time its view is for, and sends it when
/// the rules still approve. Otherwise it records the delivery as held back or failed.
pub(super) async fn decide_and_send(
    scheduler: Arc<Scheduler>,
    claimed: ClaimedDelivery,
    loaded: Box<Loaded>,
    now: DateTime<Utc>,
    accepted: mpsc::UnboundedSender<Accepted>,
) -> SendOutcome {
    let outcome = match prepare(&scheduler, &claimed, *loaded, now) {
        Ok(Prepared::Send(outgoing)) => {
            return send(scheduler, claimed, outgoing, accepted).await;
        }
        Ok(Prepared::Held(held)) => settle_held(&scheduler, &claimed, held, now).await,
        Err(error) => {
            let message = format!("cannot prepare the message: {error:#}");
            finish_failed(&scheduler, &claimed, message).await
        }
    };
    counted(&claimed, outcome)
}

/// Records a delivery that the rules held back at send time.
async fn settle_held(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    held: Held,
    now: DateTime<Utc>,
) -> anyhow::Result<SendOutcome> {
    match held {
        Held::Deferred { until, rules } => {
            let message = format!("deferred at send time by {rules}");
            tracing::info!(delivery.id = claimed.id.0, customer.id = claimed.customer.0, %until, rules, "delivery deferred at send time");
            let id = claimed.id;
            scheduler
                .with_store(move |store| Ok(store.mark_retry(id, until, &message, now)?))
                .await?;
            Ok(SendOutcome::Retried)
        }
        Held::Denied { rules } => {
            let message = format!("denied at send time by {rules}");
            finish_failed(scheduler, claimed, message).await
        }
    }
}

/// Counts an outcome in the metrics, or logs why it could not be recorded.
fn counted(claimed: &ClaimedDelivery, outcome: anyhow::Result<SendOutcome>) -> SendOutcome {
    match outcome {
        Ok(outcome) => {
            let state = match outcome {
                SendOutcome::Sent => "sent",
                SendOutcome::Retried => "retry",
                SendOutcome::Failed => "failed",
                SendOutcome::Released => "released",
            };
            metrics::counter!("tact_deliveries_total", "state" => state).increment(1);
            outcome
        }
        Err(error) => {
            tracing::error!(
                delivery.id = claimed.id.0,
                customer.id = claimed.customer.0,
                error = format!("{error:#}"),
                "recording a delivery outcome failed; the lease will expire and it is retried"
            );
            SendOutcome::Failed
        }
    }
}

/// A message the channel accepted, waiting to be marked sent.
#[derive(Debug)]
pub(super) struct Accepted {
    id: DeliveryId,
    customer: CustomerId,
    message_id: String,
    at: DateTime<Utc>,
    /// Signalled once the mark is written or has failed.
    marked: oneshot::Sender<()>,
}

/// The most accepted messages marked sent in one transaction. Each mark frees the send
/// slots of its messages at once. With 256, the slots came back in large bursts, and the
/// connections waited while the sends of a burst were loaded and composed.
const MARK_BATCH: usize = 64;

/// Marks accepted messages as sent until every sender of `accepted` is gone, with one
/// transaction for all the messages that arrived while the previous one ran, and signals
/// each message's send once its mark is written.
///
/// A message accepted by the channel stays `sending` until its transaction commits. If the
/// daemon dies before that, the delivery is sent again once its lease runs out, as it is
/// when the daemon dies during the send itself. Each send keeps its slot until signalled,
/// so at most `delivery.concurrency` accepted messages lack their mark at any time.
pub(super) async fn mark_accepted(
    scheduler: Arc<Scheduler>,
    mut accepted: mpsc::UnboundedReceiver<Accepted>,
) {
    let mut batch = Vec::with_capacity(MARK_BATCH);
    while accepted.recv_many(&mut batch, MARK_BATCH).await > 0 {
        let items: Vec<_> = batch
            .iter()
            .map(|item| (item.id, item.message_id.clone(), item.at))
            .collect();
        let now = scheduler.clock.now();
        let marked = scheduler
            .with_store(move |store| Ok(store.mark_sent_each(&items, now)?))
            .await;
        match marked {
            Ok(results) => {
                for (item, result) in batch.iter().zip(results) {
                    if let Err(error) = result {
                        log_unmarked(item, &anyhow::Error::from(error));
                    }
                }
            }
            Err(error) => batch.iter().for_each(|item| log_unmarked(item, &error)),
        }
        for item in batch.drain(..) {
            // A send that was aborted no longer waits.
            let _ = item.marked.send(());
        }
    }
}

fn log_unmarked(item: &Accepted, error: &anyhow::Error) {
    tracing::error!(
        delivery.id = item.id.0,
        customer.id = item.customer.0,
        error = format!("{error:#}"),
        "marking a sent delivery failed; if it is still sending, it is sent again once its lease runs out"
    );
}

/// Sends one prepared delivery and hands its outcome on: an accepted message to
/// [`mark_accepted`] through `accepted`, any other outcome to the store. Never returns an
/// error: every failure is recorded on the delivery and logged.
#[tracing::instrument(
    name = "delivery",
    skip_all,
    fields(delivery.id = claimed.id.0, customer.id = claimed.customer.0)
)]
pub(super) async fn send(
    scheduler: Arc<Scheduler>,
    claimed: ClaimedDelivery,
    outgoing: Box<Outgoing>,
    accepted: mpsc::UnboundedSender<Accepted>,
) -> SendOutcome {
    let outcome = send_inner(&scheduler, &claimed, &outgoing, &accepted).await;
    counted(&claimed, outcome)
}

async fn send_inner(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    outgoing: &Outgoing,
    accepted: &mpsc::UnboundedSender<Accepted>,
) -> anyhow::Result<SendOutcome> {
    let now = scheduler.clock.now();
    if scheduler.shutdown.is_cancelled() {
        let id = claimed.id;
        scheduler
            .with_store(move |store| Ok(store.release(id, now)?))
            .await?;
        return Ok(SendOutcome::Released);
    }
    let started = Instant::now();
    let result = scheduler.channel.send(outgoing, now).await;
    metrics::histogram!("tact_send_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(receipt) => {
            tracing::debug!(reply = receipt.reply, "sent");
            let (marked, wait) = oneshot::channel();
            let item = Accepted {
                id: claimed.id,
                customer: claimed.customer,
                message_id: receipt.message_id,
                at: scheduler.clock.now(),
                marked,
            };
            match accepted.send(item) {
                // A closed `wait` means the marker stopped; it logged why.
                Ok(()) => {
                    let _ = wait.await;
                }
                Err(unsent) => {
                    // The marker stopped, which happens only when the step is ending; mark
                    // this one on its own.
                    let item = unsent.0;
                    scheduler
                        .with_store(move |store| {
                            Ok(store.mark_sent(item.id, &item.message_id, item.at)?)
                        })
                        .await?;
                }
            }
            Ok(SendOutcome::Sent)
        }
        Err(error) => finish_error(scheduler, claimed, error).await,
    }
}

async fn finish_failed(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    message: String,
) -> anyhow::Result<SendOutcome> {
    tracing::warn!(
        delivery.id = claimed.id.0,
        customer.id = claimed.customer.0,
        error = message,
        "delivery failed"
    );
    let id = claimed.id;
    let now = scheduler.clock.now();
    scheduler
        .with_store(move |store| Ok(store.mark_failed(id, &message, now)?))
        .await?;
    Ok(SendOutcome::Failed)
}

async fn finish_error(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    error: SendError,
) -> anyhow::Result<SendOutcome> {
    let id = claimed.id;
    let customer = claimed.customer;
    let now = scheduler.clock.now();
    let reply = error.reply().unwrap_or_default().to_owned();
    let message = error.to_string();

    if error.is_bounce() {
        tracing::warn!(
            delivery.id = id.0,
            customer.id = customer.0,
            code = error.code(),
            reply,
            "delivery bounced; suppressing the address"
        );
        let channel = scheduler.channel.kind().clone();
        scheduler
            .with_store(move |store| {
                let mut signal = Signal::new(SignalKind::Bounced, now);
                signal.channel = Some(channel.clone());
                signal.delivery = Some(id);
                store.record_signal(customer, &signal)?;
                store.suppress(customer, &channel, SuppressionReason::HardBounce, now)?;
                store.mark_failed(id, &message, now)?;
                Ok(())
            })
            .await?;
        return Ok(SendOutcome::Failed);
    }

    let attempt = claimed.attempts + 1;
    let delay = if error.is_transient() {
        scheduler.retry.delay_for(attempt)
    } else {
        None
    };
    let Some(delay) = delay else {
        return finish_failed(scheduler, claimed, message).await;
    };
    let next_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    tracing::warn!(
        delivery.id = id.0,
        customer.id = customer.0,
        attempt,
        code = error.code(),
        reply,
        error = message,
        next_attempt_at = %next_at,
        "delivery failed; retrying"
    );
    scheduler
        .with_store(move |store| Ok(store.mark_retry(id, next_at, &message, now)?))
        .await?;
    Ok(SendOutcome::Retried)
}

/// Builds the retry policy of the configuration.
pub fn retry_policy(settings: &crate::config::Settings) -> RetryPolicy {
    let delivery = &settings.config.delivery;
    RetryPolicy {
        base: delivery.retry_base.duration().to_std().unwrap_or_default(),
        max_delay: delivery
            .retry_max_delay
            .duration()
            .to_std()
            .unwrap_or_default(),
        max_attempts: delivery.max_attempts,
    }
}

/// Opens the channel the configuration chooses.
///
/// # Errors
///
/// Fails when the channel's settings are invalid or the Maildir cannot be created.
pub fn configured_channel(settings: &crate::config::Settings) -> anyhow::Result<Arc<dyn Channel>> {
    let message = crate::config::message_config(settings)?;
    match settings.config.delivery.channel {
        crate::config::DeliveryChannel::Maildir => Ok(Arc::new(
            tact_delivery::MaildirChannel::open(&settings.maildir, &message)?,
        )),
        crate::config::DeliveryChannel::Smtp => {
            let smtp = crate::config::smtp_config(settings);
            Ok(Arc::new(tact_delivery::EmailChannel::new(smtp, &message)?))
        }
    }
}

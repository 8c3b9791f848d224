//! The outbox worker: claims approved deliveries, decides each again right before sending,
//! sends it through the configured channel and records the outcome.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;
use tact_delivery::{Channel, Outgoing, Receipt, Recipient, RetryPolicy, SendError};
use tact_domain::{Decision, Signal, SignalKind, SuppressionReason};
use tact_storage::{ClaimedDelivery, Store};

use super::Scheduler;
use super::content::{campaign_proposal, content_of};

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

/// Decides the delivery again with the customer's current preferences and history, so an
/// unsubscribe or a suppression that arrived after planning always wins.
///
/// The delivery's own booked contact is left out of the view, because it must not count
/// against itself.
fn prepare(
    scheduler: &Scheduler,
    store: &Store,
    claimed: &ClaimedDelivery,
    now: DateTime<Utc>,
) -> anyhow::Result<Prepared> {
    let policy = &scheduler.settings.policy;
    let campaign = store.campaign(claimed.campaign)?;
    let view = store.load_view_without(claimed.customer.id, claimed.contact, now, policy)?;

    let rendered = scheduler
        .mailer
        .render(store, &campaign, &view.customer, now)?;
    let template = scheduler.mailer.template(&campaign)?;
    let content = content_of(&rendered, &view.customer, &template);
    let proposal = campaign_proposal(&campaign, &view.customer, Some(content));
    let decision = tact_domain::decide(&proposal, &view, policy, now);
    crate::ops::count_decision(&decision);
    match decision {
        Decision::Approve(approval) => {
            let recipient = Recipient::email(&view.customer)?;
            let outgoing = Outgoing::new(approval, claimed.id, recipient, rendered)?;
            Ok(Prepared::Send(Box::new(outgoing)))
        }
        Decision::Defer { until, .. } => Ok(Prepared::Deferred {
            until,
            rules: rule_list(&decision),
        }),
        Decision::Deny { .. } => Ok(Prepared::Denied {
            rules: rule_list(&decision),
        }),
    }
}

/// Sends one claimed delivery and records the outcome. Never returns an error: every failure
/// is recorded on the delivery and logged.
#[tracing::instrument(
    name = "delivery",
    skip_all,
    fields(delivery.id = claimed.id.0, customer.id = claimed.customer.id.0)
)]
pub async fn process(scheduler: Arc<Scheduler>, claimed: ClaimedDelivery) -> SendOutcome {
    let delivery = claimed.id.0;
    let customer = claimed.customer.id.0;
    match process_inner(&scheduler, &claimed).await {
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
                delivery.id = delivery,
                customer.id = customer,
                error = format!("{error:#}"),
                "recording a delivery outcome failed; the lease will expire and it is retried"
            );
            SendOutcome::Failed
        }
    }
}

async fn process_inner(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
) -> anyhow::Result<SendOutcome> {
    let now = scheduler.clock.now();
    let prepared = {
        let claimed = claimed.clone();
        let scheduler_for_prepare = scheduler.clone();
        scheduler
            .with_store(move |store| prepare(&scheduler_for_prepare, store, &claimed, now))
            .await
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            let message = format!("cannot prepare the message: {error:#}");
            return finish_failed(scheduler, claimed, message).await;
        }
    };
    let outgoing = match prepared {
        Prepared::Send(outgoing) => outgoing,
        Prepared::Deferred { until, rules } => {
            let message = format!("deferred at send time by {rules}");
            tracing::info!(delivery.id = claimed.id.0, customer.id = claimed.customer.id.0, %until, rules, "delivery deferred at send time");
            let id = claimed.id;
            scheduler
                .with_store(move |store| Ok(store.mark_retry(id, until, &message, now)?))
                .await?;
            return Ok(SendOutcome::Retried);
        }
        Prepared::Denied { rules } => {
            let message = format!("denied at send time by {rules}");
            return finish_failed(scheduler, claimed, message).await;
        }
    };

    if scheduler.shutdown.is_cancelled() {
        let id = claimed.id;
        scheduler
            .with_store(move |store| Ok(store.release(id, now)?))
            .await?;
        return Ok(SendOutcome::Released);
    }
    // A delivery that waited for a send slot longer than its lease may have been claimed by
    // another daemon meanwhile; only the worker that still holds the lease sends it.
    let (id, worker) = (claimed.id, scheduler.worker.clone());
    let lease = scheduler.settings.config.delivery.lease.duration();
    let renewed_at = scheduler.clock.now();
    let renewed = scheduler
        .with_store(move |store| Ok(store.renew_lease(id, &worker, lease, renewed_at)?))
        .await?;
    if !renewed {
        tracing::warn!(
            delivery.id = id.0,
            customer.id = claimed.customer.id.0,
            "lease ran out before sending; the delivery is left to the worker that claimed it"
        );
        return Ok(SendOutcome::Released);
    }
    let started = Instant::now();
    let result = scheduler.channel.send(&outgoing, now).await;
    metrics::histogram!("tact_send_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(receipt) => finish_sent(scheduler, claimed, receipt).await,
        Err(error) => finish_error(scheduler, claimed, error).await,
    }
}

async fn finish_sent(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    receipt: Receipt,
) -> anyhow::Result<SendOutcome> {
    let id = claimed.id;
    let now = scheduler.clock.now();
    tracing::debug!(
        delivery.id = id.0,
        customer.id = claimed.customer.id.0,
        reply = receipt.reply,
        "sent"
    );
    scheduler
        .with_store(move |store| Ok(store.mark_sent(id, &receipt.message_id, now)?))
        .await?;
    Ok(SendOutcome::Sent)
}

async fn finish_failed(
    scheduler: &Arc<Scheduler>,
    claimed: &ClaimedDelivery,
    message: String,
) -> anyhow::Result<SendOutcome> {
    tracing::warn!(
        delivery.id = claimed.id.0,
        customer.id = claimed.customer.id.0,
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
    let customer = claimed.customer.id;
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

//! The scheduler: starts due campaigns, decides deferred deliveries again when their time
//! comes, and runs the outbox worker.
//!
//! [`Scheduler::step`] does one round of all three at the clock's current time and never
//! sleeps. `tact serve` calls it in a loop with the system clock, and a simulation calls it
//! with a simulated clock that it moves forward between steps.

pub mod content;
pub mod planning;
mod worker;

pub use worker::{configured_channel, retry_policy};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tact_delivery::{Channel, RetryPolicy};
use tact_storage::{Campaign, CampaignStatus, Checkpointer, ClaimedDelivery, Store};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Settings;
use content::Mailer;
use worker::SendOutcome;

/// The counts of one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Campaigns planned; a due campaign whose template is invalid is not counted.
    pub campaigns: usize,
    /// Deferred or planned deliveries decided again.
    pub redecided: usize,
    /// Deliveries sent.
    pub sent: usize,
    /// Deliveries scheduled for another attempt.
    pub retried: usize,
    /// Deliveries that failed for good.
    pub failed: usize,
    /// Deliveries given back because of shutdown.
    pub released: usize,
}

impl StepReport {
    /// Returns whether the step found nothing to do.
    pub fn is_idle(&self) -> bool {
        *self == StepReport::default()
    }

    /// Counts the outcome of a joined send task, or logs its panic.
    fn count_task(&mut self, joined: Result<SendOutcome, tokio::task::JoinError>) {
        match joined {
            Ok(outcome) => self.count(outcome),
            Err(error) => tracing::error!(error = %error, "send task panicked"),
        }
    }

    fn count(&mut self, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Sent => self.sent += 1,
            SendOutcome::Retried => self.retried += 1,
            SendOutcome::Failed => self.failed += 1,
            SendOutcome::Released => self.released += 1,
        }
    }
}

/// The scheduler and outbox worker of one daemon.
#[derive(Debug)]
pub struct Scheduler {
    settings: Settings,
    clock: SharedClock,
    channel: Arc<dyn Channel>,
    mailer: Mailer,
    retry: RetryPolicy,
    store: Arc<Mutex<Store>>,
    /// A second connection that loads what deciding a delivery again at send time needs,
    /// so those reads run beside the claims and sent marks of `store`.
    reader: Arc<Mutex<Store>>,
    /// Copies the write-ahead log into the database file while `store` writes, so that the
    /// worker's claims and sent marks rarely stop for it.
    _checkpointer: Checkpointer,
    shutdown: CancellationToken,
    worker: String,
    /// Campaigns whose planning failed, with the time from which they are planned again.
    plan_retries: Mutex<HashMap<tact_domain::CampaignId, DateTime<Utc>>>,
}

/// How long a campaign whose planning failed waits before it is planned again, so that a
/// failure that lasts does not make every round scan the whole audience.
const PLAN_RETRY_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The maximum number of deliveries loaded with one hold of the reading connection. Send slots free up
/// in groups, one per sent mark, and a group loaded, decided and composed as a whole
/// reaches the SMTP connections all at once, after they have run out of messages. Smaller
/// groups keep messages flowing to them.
const PREPARE_CHUNK: usize = 32;

/// How often the scheduler's checkpointer copies the write-ahead log.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Scheduler {
    /// Creates a scheduler with its own connection to the database.
    ///
    /// # Errors
    ///
    /// Fails when the database cannot be opened or the message settings are invalid.
    pub fn new(
        settings: Settings,
        clock: SharedClock,
        channel: Arc<dyn Channel>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Scheduler> {
        let cannot_open = || format!("cannot open database {}", settings.database.display());
        let store = Store::open(&settings.database).with_context(cannot_open)?;
        let reader = Store::open_reader(&settings.database).with_context(cannot_open)?;
        let checkpointer =
            Checkpointer::start(&settings.database, CHECKPOINT_EVERY).with_context(cannot_open)?;
        store.defer_checkpoints().with_context(cannot_open)?;
        // A daemon or `tact campaign send` that stopped while planning left its campaign
        // running, and only scheduled campaigns are due.
        let rescheduled = store.reschedule_running(clock.now())?;
        for campaign in rescheduled {
            tracing::warn!(
                campaign.id = campaign.0,
                "campaign was left running by a process that stopped while planning it; \
                 it is planned again, and customers decided before keep their deliveries"
            );
        }
        let composer = tact_delivery::Composer::new(&crate::config::message_config(&settings)?)?;
        Ok(Scheduler {
            retry: retry_policy(&settings),
            mailer: Mailer::new(composer),
            worker: format!("tact-{}", std::process::id()),
            store: Arc::new(Mutex::new(store)),
            reader: Arc::new(Mutex::new(reader)),
            _checkpointer: checkpointer,
            settings,
            clock,
            channel,
            shutdown,
            plan_retries: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` with the store on a blocking thread.
    async fn with_store<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        Self::on_blocking_thread(self.store.clone(), work).await
    }

    /// Runs `work` with the reading connection on a blocking thread.
    async fn with_reader<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        Self::on_blocking_thread(self.reader.clone(), work).await
    }

    async fn on_blocking_thread<T, F>(store: Arc<Mutex<Store>>, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let store = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&store)
        })
        .await
        .context("store task failed")?
    }

    /// Does one round at the clock's current time: plans due campaigns, decides due
    /// deferrals again, and sends approved deliveries with at most `delivery.concurrency`
    /// at once. It claims `delivery.batch_size` deliveries at a time, and claims the next
    /// batch as soon as the last of the previous one has started, as long as each claim
    /// fills its batch and for at most `delivery.poll_interval` by the clock.
    ///
    /// # Errors
    ///
    /// Fails when the store fails; deliveries whose outcome was recorded stay recorded.
    pub async fn step(self: &Arc<Self>) -> anyhow::Result<StepReport> {
        let mut report = StepReport::default();
        let now = self.clock.now();
        let batch = self.settings.config.delivery.batch_size;

        let scheduler = self.clone();
        report.campaigns = self
            .with_store(move |store| {
                let due = store.campaigns_due(now)?;
                let mut planned = 0;
                for campaign in &due {
                    if scheduler.waits_to_plan_again(campaign, now) {
                        continue;
                    }
                    // A campaign whose template no longer compiles would fail every round, so
                    // it goes back to draft until someone fixes and schedules it again.
                    if let Err(error) = scheduler.mailer.template(campaign) {
                        tracing::error!(
                            campaign.id = campaign.id.0,
                            error = format!("{error:#}"),
                            "campaign template is invalid; the campaign is set back to draft"
                        );
                        store.set_campaign_status(campaign.id, CampaignStatus::Draft, now)?;
                        continue;
                    }
                    let plan = planning::plan_campaign(
                        store,
                        &scheduler.mailer,
                        &scheduler.settings.policy,
                        campaign,
                        now,
                        &mut |_| {},
                    );
                    match plan {
                        Ok(_) => planned += 1,
                        Err(error) => scheduler.plan_failed(store, campaign, &error, now)?,
                    }
                }
                Ok(planned)
            })
            .await?;

        let scheduler = self.clone();
        report.redecided = self
            .with_store(move |store| {
                planning::redecide_due(
                    store,
                    &scheduler.mailer,
                    &scheduler.settings.policy,
                    now,
                    batch,
                )
            })
            .await?;

        if self.shutdown.is_cancelled() {
            return Ok(report);
        }
        self.send_batch(&mut report).await?;
        Ok(report)
    }

    /// Returns whether `campaign` failed to plan less than [`PLAN_RETRY_AFTER`] before
    /// `now`.
    fn waits_to_plan_again(&self, campaign: &Campaign, now: DateTime<Utc>) -> bool {
        let retries = self
            .plan_retries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        retries.get(&campaign.id).is_some_and(|retry| now < *retry)
    }

    /// Sets a campaign whose planning failed back to scheduled, to be planned again after
    /// [`PLAN_RETRY_AFTER`], and logs why. The other campaigns and the sends of the round
    /// go on.
    fn plan_failed(
        &self,
        store: &Store,
        campaign: &Campaign,
        error: &anyhow::Error,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let retry = now + PLAN_RETRY_AFTER;
        tracing::error!(
            campaign.id = campaign.id.0,
            error = format!("{error:#}"),
            retry_at = %retry,
            "planning the campaign failed; the customers decided so far keep their \
             deliveries, and the rest are planned again at retry_at"
        );
        store.set_campaign_status(campaign.id, CampaignStatus::Scheduled, now)?;
        self.plan_retries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(campaign.id, retry);
        Ok(())
    }

    async fn send_batch(self: &Arc<Self>, report: &mut StepReport) -> anyhow::Result<()> {
        let delivery = &self.settings.config.delivery;
        let (lease, batch) = (delivery.lease.duration(), delivery.batch_size);
        let until = self.clock.now() + delivery.poll_interval.duration();
        let permits = Arc::new(Semaphore::new(delivery.concurrency));
        let (accepted, marking) = tokio::sync::mpsc::unbounded_channel();
        let marker = tokio::spawn(worker::mark_accepted(self.clone(), marking));
        let mut tasks = JoinSet::new();
        let mut ids = Vec::new();
        // Each claim runs while the sends of the previous batch are still in flight, so
        // the connections do not wait for it.
        let started = loop {
            let (worker, now) = (self.worker.clone(), self.clock.now());
            let claim =
                move |store: &Store| Ok(store.claim_deliveries(&worker, lease, batch, now)?);
            let claimed = match self.with_store(claim).await {
                Ok(claimed) => claimed,
                Err(error) => break Err(error),
            };
            if claimed.is_empty() {
                break Ok(());
            }
            tracing::debug!(count = claimed.len(), "claimed deliveries");
            let full = claimed.len() == batch;
            ids.extend(claimed.iter().map(|claimed| claimed.id));
            let sending = self.send_claimed(claimed, &permits, &mut tasks, &accepted, report);
            if let Err(error) = sending.await {
                break Err(error);
            }
            if !full || self.shutdown.is_cancelled() || self.clock.now() >= until {
                break Ok(());
            }
        };
        drop(accepted);
        // The sends already started finish even when starting the others failed. The marker
        // ends once every send has handed over its message, so the deliveries still
        // `sending` after it are exactly those not sent.
        let grace_ran_out = self.drain(tasks, report).await?;
        marker.await.context("marking sent deliveries failed")?;
        if grace_ran_out {
            tracing::warn!("shutdown grace ran out; giving back deliveries still in flight");
            report.released += self.release_all(ids).await?;
        }
        started
    }

    /// Starts the sends of the claimed deliveries in claim order, each once it gets one of
    /// the `permits` (`delivery.concurrency` in all), and returns when the last has started.
    /// Each delivery is decided again only once its send slot is free, so an unsubscribe
    /// that arrives while it waits still wins. The deliveries whose slots freed up together
    /// are loaded with one hold of the reading connection, at most [`PREPARE_CHUNK`] at a
    /// time. After shutdown starts, gives back the deliveries not started.
    ///
    /// # Errors
    ///
    /// Fails when the store fails while deciding a chunk; the deliveries not started then
    /// stay claimed until their lease runs out.
    async fn send_claimed(
        self: &Arc<Self>,
        claimed: Vec<ClaimedDelivery>,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<SendOutcome>,
        accepted: &tokio::sync::mpsc::UnboundedSender<worker::Accepted>,
        report: &mut StepReport,
    ) -> anyhow::Result<()> {
        let mut pending = claimed.into_iter();
        while pending.len() > 0 {
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => permit?,
                () = self.shutdown.cancelled() => {
                    let unsent: Vec<_> = pending.map(|item| item.id).collect();
                    report.released += self.release_all(unsent).await?;
                    break;
                }
            };
            // A finished task keeps its memory until it is joined, and a round may start
            // tens of thousands, so the finished ones are counted as the round goes.
            while let Some(finished) = tasks.try_join_next() {
                report.count_task(finished);
            }
            let mut slots = vec![first];
            while slots.len() < pending.len().min(PREPARE_CHUNK) {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                slots.push(permit);
            }
            let chunk: Vec<_> = pending.by_ref().take(slots.len()).collect();
            for (item, permit) in worker::prepare_chunk(self, chunk)
                .await?
                .into_iter()
                .zip(slots)
            {
                match item {
                    worker::Ready::Decide(claimed, loaded, now) => {
                        let (scheduler, accepted) = (self.clone(), accepted.clone());
                        tasks.spawn(async move {
                            let _permit = permit;
                            worker::decide_and_send(scheduler, claimed, loaded, now, accepted).await
                        });
                    }
                    worker::Ready::Done(outcome) => report.count(outcome),
                }
            }
        }
        Ok(())
    }

    /// Waits for the sends; after shutdown starts, waits at most `delivery.shutdown_grace`
    /// and then aborts the sends still in flight. Returns whether it aborted any.
    async fn drain(
        &self,
        mut tasks: JoinSet<SendOutcome>,
        report: &mut StepReport,
    ) -> anyhow::Result<bool> {
        let grace = self
            .settings
            .config
            .delivery
            .shutdown_grace
            .duration()
            .to_std()?;
        let shutdown = self.shutdown.clone();
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => {
                    let Some(result) = next else { return Ok(false) };
                    report.count_task(result);
                }
                () = &mut deadline => break,
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        Ok(true)
    }

    /// Gives back the deliveries of `ids` that are still `sending` and returns how many.
    /// Rows already finished are no longer `sending`, so release rejects them.
    async fn release_all(&self, ids: Vec<tact_domain::DeliveryId>) -> anyhow::Result<usize> {
        let now = self.clock.now();
        self.with_store(move |store| {
            Ok(ids
                .into_iter()
                .filter(|id| store.release(*id, now).is_ok())
                .count())
        })
        .await
    }

    /// Steps until `shutdown` is cancelled, sleeping `delivery.poll_interval` whenever a step
    /// finds nothing to do.
    pub async fn run(self: Arc<Self>) {
        let poll = self
            .settings
            .config
            .delivery
            .poll_interval
            .duration()
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(2));
        tracing::info!(worker = self.worker, "scheduler started");
        while !self.shutdown.is_cancelled() {
            let report = match self.step().await {
                Ok(report) => report,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "scheduler step failed");
                    StepReport::default()
                }
            };
            if !report.is_idle() {
                tracing::info!(
                    campaigns = report.campaigns,
                    redecided = report.redecided,
                    sent = report.sent,
                    retried = report.retried,
                    failed = report.failed,
                    released = report.released,
                    "scheduler step"
                );
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = self.shutdown.cancelled() => {}
            }
        }
        tracing::info!(worker = self.worker, "scheduler stopped");
    }
}

//! `tact simulate`: the daemon's own scheduler over a stretch of past time, on a simulated
//! clock.
//!
//! The simulation replays a data set's customers and signals in time order, as a live shop
//! would send them to tact, and moves a [`SimulatedClock`] forward one step at a time. At
//! every step it does what `tact serve` does at that instant, through the same
//! [`Scheduler::step`]: it plans the campaigns that are due, decides deferred deliveries
//! again and sends the approved ones through the configured channel. Around that, it adds
//! what a marketing team would do over the period: recurring campaigns created from the
//! plan, follow-ups planned after each triggering signal, and buckets assigned again from
//! behaviour at the start of every month.

mod plan;
mod replay;
mod report;

pub use plan::{Plan, PlannedCampaign, Schedule, load_plan};
pub use report::Report;

use anyhow::Context as _;
use chrono::{DateTime, Datelike, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tact_domain::{CampaignId, CustomerId, Span, assign_bucket};
use tact_storage::{Audience, NewCampaign, Store};
use tokio_util::sync::CancellationToken;

use crate::clock::SimulatedClock;
use crate::config::Settings;
use crate::scheduler::content::StoredTemplate;
use crate::scheduler::{Scheduler, StepReport, configured_channel};
use replay::{Replay, Replayed};

/// The period, plan and data of one simulation.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// First instant simulated.
    pub from: DateTime<Utc>,
    /// The simulation stops here.
    pub to: DateTime<Utc>,
    /// How far the clock moves per step.
    pub step: Span,
    /// The campaign plan.
    pub plan: Plan,
    /// Customers CSV, as `tact import customers` reads it.
    pub customers: PathBuf,
    /// Signals CSV, sorted by `at`, as `tact import signals` reads it. Extra columns update
    /// the customer's template field of the same name when the signal is replayed.
    pub signals: PathBuf,
}

/// A campaign the simulation created, with the month it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub id: CampaignId,
    pub plan_index: usize,
    pub month: (i32, u32),
}

/// A follow-up waiting for its send time; ordered by due time first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PendingFollowUp {
    due: DateTime<Utc>,
    customer: CustomerId,
    plan_index: usize,
}

/// Runs the simulation to its end and reports.
///
/// # Errors
///
/// Fails when a file cannot be read, the store fails or the scheduler fails. Rows the
/// importers reject do not stop it; they are counted in the report.
pub async fn run(
    settings: Settings,
    simulation: Simulation,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Report> {
    let clock = Arc::new(SimulatedClock::new(simulation.from));
    let channel = configured_channel(&settings)?;
    let scheduler = Arc::new(Scheduler::new(
        settings.clone(),
        clock.clone(),
        channel,
        CancellationToken::new(),
    )?);
    let store = Store::open(&settings.database)
        .with_context(|| format!("cannot open database {}", settings.database.display()))?;
    let mut replay = Replay::open(&simulation.customers, &simulation.signals)?;
    let mut campaigns = create_recurring(&store, &simulation, replay.field_names())?;

    let triggers: Vec<(usize, tact_domain::SignalKind, Span)> = (simulation.plan.campaigns)
        .iter()
        .enumerate()
        .filter_map(|(index, campaign)| match campaign.schedule {
            Schedule::AfterSignal { kind, delay } => Some((index, kind, delay)),
            _ => None,
        })
        .collect();
    let mut follow_ups: BinaryHeap<Reverse<PendingFollowUp>> = BinaryHeap::new();
    let mut follow_up_campaigns: HashMap<(usize, (i32, u32)), CampaignId> = HashMap::new();
    let mut steps = StepReport::default();
    let mut next_buckets = simulation.from;
    let mut month = month_of(simulation.from);

    let mut now = simulation.from;
    while now < simulation.to {
        let next = (now + simulation.step.duration()).min(simulation.to);
        let replayed: Replayed = replay.replay_until(&store, next)?;
        for (customer, kind, at) in &replayed.signals {
            for (plan_index, trigger, delay) in &triggers {
                if trigger == kind {
                    let due = *at + delay.duration();
                    follow_ups.push(Reverse(PendingFollowUp {
                        due,
                        customer: *customer,
                        plan_index: *plan_index,
                    }));
                }
            }
        }
        clock.advance_to(next);

        plan_follow_ups(
            &store,
            &simulation,
            replay.field_names(),
            &mut follow_ups,
            &mut follow_up_campaigns,
            &mut campaigns,
            next,
        )?;
        if next >= next_buckets {
            assign_buckets(&store, &simulation.plan, replay.customers(), next)?;
            next_buckets = plan::next_month_start(next);
        }
        run_scheduler(&scheduler, &mut steps).await?;

        if month_of(next) != month {
            progress(&format!(
                "{}-{:02}: {} customers, {} sent so far",
                month.0,
                month.1,
                replay.customers().len(),
                steps.sent
            ));
            month = month_of(next);
        }
        now = next;
    }
    run_scheduler(&scheduler, &mut steps).await?;
    // Buckets as they stand at the end, including customers who arrived this month.
    assign_buckets(&store, &simulation.plan, replay.customers(), simulation.to)?;

    report::build(&store, &settings, &simulation, &replay, &campaigns, steps)
}

fn month_of(at: DateTime<Utc>) -> (i32, u32) {
    (at.year(), at.month())
}

/// Steps the scheduler until it finds nothing more to do at this instant.
async fn run_scheduler(scheduler: &Arc<Scheduler>, total: &mut StepReport) -> anyhow::Result<()> {
    loop {
        let step = scheduler.step().await?;
        total.campaigns += step.campaigns;
        total.redecided += step.redecided;
        total.sent += step.sent;
        total.retried += step.retried;
        total.failed += step.failed;
        total.released += step.released;
        if step.is_idle() {
            return Ok(());
        }
    }
}

fn template_json(campaign: &PlannedCampaign, fields: &[String]) -> anyhow::Result<String> {
    let stored = StoredTemplate {
        source: campaign.template.clone(),
        fields: fields.to_vec(),
    };
    // Fail here, not at the first send, when the template uses an unknown field.
    stored
        .compile()
        .with_context(|| format!("invalid template in campaign {:?}", campaign.name))?;
    Ok(serde_json::to_string(&stored)?)
}

fn new_campaign(
    campaign: &PlannedCampaign,
    name: String,
    template: String,
    send_at: Option<DateTime<Utc>>,
    relevant_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> NewCampaign {
    NewCampaign {
        name,
        channel: campaign.channel.clone(),
        purpose: campaign.purpose,
        topic: campaign.topic.clone(),
        audience: Audience::All,
        priority: campaign.priority,
        offer: campaign.offer,
        template,
        send_at,
        relevant_until: Some(relevant_until),
        created_at,
    }
}

/// Creates one scheduled campaign per send time of every recurring campaign of the plan.
fn create_recurring(
    store: &Store,
    simulation: &Simulation,
    fields: &[String],
) -> anyhow::Result<Vec<Created>> {
    let mut created = Vec::new();
    for (plan_index, campaign) in simulation.plan.campaigns.iter().enumerate() {
        let times = campaign.send_times(simulation.from, simulation.to);
        if times.is_empty() {
            continue;
        }
        let template = template_json(campaign, fields)?;
        for at in times {
            let name = format!("{} {}", campaign.name, at.format("%Y-%m-%d"));
            let until = at + campaign.relevant_for.duration();
            let new = new_campaign(
                campaign,
                name,
                template.clone(),
                Some(at),
                until,
                simulation.from,
            );
            let id = store.create_campaign(&new)?;
            created.push(Created {
                id,
                plan_index,
                month: month_of(at),
            });
        }
    }
    Ok(created)
}

/// Plans the follow-ups that are due by `now`, in one campaign per plan entry and month, so
/// a customer gets at most one follow-up of each kind a month.
#[allow(clippy::too_many_arguments)]
fn plan_follow_ups(
    store: &Store,
    simulation: &Simulation,
    fields: &[String],
    pending: &mut BinaryHeap<Reverse<PendingFollowUp>>,
    by_month: &mut HashMap<(usize, (i32, u32)), CampaignId>,
    created: &mut Vec<Created>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    // Ordered, so delivery ids and with them the order of later decisions repeat exactly.
    let mut due: BTreeMap<CampaignId, Vec<CustomerId>> = BTreeMap::new();
    while pending.peek().is_some_and(|next| next.0.due <= now) {
        let Some(Reverse(follow_up)) = pending.pop() else {
            break;
        };
        let month = month_of(follow_up.due);
        let key = (follow_up.plan_index, month);
        let id = match by_month.get(&key) {
            Some(id) => *id,
            None => {
                let campaign = &simulation.plan.campaigns[follow_up.plan_index];
                let name = format!("{} {}-{:02}", campaign.name, month.0, month.1);
                let until =
                    plan::next_month_start(follow_up.due) + campaign.relevant_for.duration();
                let template = template_json(campaign, fields)?;
                let new = new_campaign(campaign, name, template, None, until, now);
                let id = store.create_campaign(&new)?;
                by_month.insert(key, id);
                created.push(Created {
                    id,
                    plan_index: follow_up.plan_index,
                    month,
                });
                id
            }
        };
        due.entry(id).or_default().push(follow_up.customer);
    }
    for (campaign, customers) in due {
        store.plan_deliveries(campaign, &customers, now)?;
    }
    Ok(())
}

/// Assigns every customer seen so far a bucket from their behaviour up to `now`.
fn assign_buckets(
    store: &Store,
    plan: &Plan,
    customers: &HashMap<String, CustomerId>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    for customer in customers.values() {
        let history = store.history(*customer)?;
        let signals: Vec<_> = history
            .signals
            .into_iter()
            .filter(|s| s.at <= now)
            .collect();
        let bucket = assign_bucket(&signals, now, &plan.buckets);
        store.set_bucket(*customer, Some(bucket))?;
    }
    Ok(())
}

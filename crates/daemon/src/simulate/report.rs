//! The simulation report: buckets, decisions by purpose and rule, contacts per customer
//! per month, and the check that every approved email reached the Maildir.

use chrono::{DateTime, Datelike, Utc};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use tact_domain::{Bucket, Channel, Purpose};
use tact_storage::{DeliveryState, Store};

use super::replay::{Rejected, Replay};
use super::{Created, Simulation};
use crate::config::{DeliveryChannel, Settings};
use crate::scheduler::StepReport;

/// Deliveries of one purpose, by final state and by the rules that held them back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurposeCounts {
    /// Deliveries proposed: one per campaign and customer.
    pub proposed: u64,
    /// Deliveries per final state.
    pub by_state: BTreeMap<DeliveryState, u64>,
    /// Deferred and denied deliveries per rule id of their last reasons.
    pub by_rule: BTreeMap<String, u64>,
}

/// Median, 90th percentile and maximum of a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    /// The median.
    pub median: u64,
    /// The 90th percentile (nearest rank).
    pub p90: u64,
    /// The maximum.
    pub max: u64,
}

impl Spread {
    fn of(mut values: Vec<u64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_unstable();
        let rank = |share: f64| {
            let index = ((share * values.len() as f64).ceil() as usize).max(1) - 1;
            values[index.min(values.len() - 1)]
        };
        Spread {
            median: rank(0.5),
            p90: rank(0.9),
            max: values[values.len() - 1],
        }
    }
}

/// Everything `tact simulate` prints at the end.
#[derive(Debug, Clone)]
pub struct Report {
    /// First and last instant simulated.
    pub period: (DateTime<Utc>, DateTime<Utc>),
    /// Customers imported.
    pub customers: u64,
    /// Signals stored.
    pub signals: u64,
    /// Customer rows rejected by the importer.
    pub rejected_customers: Rejected,
    /// Signal rows rejected by the importer.
    pub rejected_signals: Rejected,
    /// Customers per bucket at the end.
    pub buckets: BTreeMap<Bucket, u64>,
    /// Campaigns created.
    pub campaigns: u64,
    /// Deliveries by purpose.
    pub purposes: BTreeMap<Purpose, PurposeCounts>,
    /// Contacts made per customer and month.
    pub contacts_per_month: Spread,
    /// Contacts proposed per customer and month, as if every proposal had been sent.
    pub proposed_per_month: Spread,
    /// Customer-months counted.
    pub customer_months: u64,
    /// Emails sent, by the outbox.
    pub emails_sent: u64,
    /// Message files in the Maildir, when delivery goes to a Maildir.
    pub maildir_files: Option<u64>,
    /// Totals of the scheduler steps.
    pub steps: StepReport,
}

pub(super) fn build(
    store: &Store,
    settings: &Settings,
    simulation: &Simulation,
    replay: &Replay,
    campaigns: &[Created],
    steps: StepReport,
) -> anyhow::Result<Report> {
    let month_of_campaign: HashMap<_, _> = campaigns.iter().map(|c| (c.id, c.month)).collect();
    let mut purposes: BTreeMap<Purpose, PurposeCounts> = BTreeMap::new();
    let mut emails_sent = 0;
    for created in campaigns {
        let planned = &simulation.plan.campaigns[created.plan_index];
        let status = store.campaign_status(created.id)?;
        let counts = purposes.entry(planned.purpose).or_default();
        for (state, count) in &status.by_state {
            counts.proposed += count;
            *counts.by_state.entry(*state).or_default() += count;
            if planned.channel == Channel::EMAIL && *state == DeliveryState::Sent {
                emails_sent += count;
            }
        }
        for (rule, count) in status.by_rule {
            *counts.by_rule.entry(rule).or_default() += count;
        }
    }

    let end_month = month_index(simulation.to - chrono::Duration::seconds(1));
    let mut buckets: BTreeMap<Bucket, u64> = BTreeMap::new();
    let mut contacts_per_month = Vec::new();
    let mut proposed_per_month = Vec::new();
    for customer in replay.customers().values() {
        if let Some(bucket) = store.customer(*customer)?.bucket {
            *buckets.entry(bucket).or_default() += 1;
        }
        let history = store.history(*customer)?;
        let Some(first) = history.signals.first().map(|signal| month_index(signal.at)) else {
            continue;
        };
        let months = (end_month - first + 1).max(1) as usize;
        let mut contacts = vec![0u64; months];
        for (_, contact) in &history.contacts {
            let index = month_index(contact.at) - first;
            if contact.outcome.counts() && (0..months as i64).contains(&index) {
                contacts[index as usize] += 1;
            }
        }
        let mut proposed = vec![0u64; months];
        for delivery in store.deliveries_for(*customer)? {
            if let Some((year, month)) = month_of_campaign.get(&delivery.campaign) {
                let index = i64::from(*year) * 12 + i64::from(*month) - 1 - first;
                if (0..months as i64).contains(&index) {
                    proposed[index as usize] += 1;
                }
            }
        }
        contacts_per_month.extend(contacts);
        proposed_per_month.extend(proposed);
    }

    let maildir_files = match settings.config.delivery.channel {
        DeliveryChannel::Maildir => Some(count_files(&settings.maildir)?),
        DeliveryChannel::Smtp => None,
    };
    Ok(Report {
        period: (simulation.from, simulation.to),
        customers: replay.customers().len() as u64,
        signals: replay.signals_stored,
        rejected_customers: replay.rejected_customers.clone(),
        rejected_signals: replay.rejected_signals.clone(),
        buckets,
        campaigns: campaigns.len() as u64,
        purposes,
        customer_months: contacts_per_month.len() as u64,
        contacts_per_month: Spread::of(contacts_per_month),
        proposed_per_month: Spread::of(proposed_per_month),
        emails_sent,
        maildir_files,
        steps,
    })
}

fn month_index(at: DateTime<Utc>) -> i64 {
    i64::from(at.year()) * 12 + i64::from(at.month()) - 1
}

/// Counts the message files in a Maildir's `new` and `cur` folders.
fn count_files(maildir: &std::path::Path) -> anyhow::Result<u64> {
    let mut count = 0;
    for folder in ["new", "cur"] {
        let path = maildir.join(folder);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error.into()),
        };
        for entry in entries {
            if entry?.file_type()?.is_file() {
                count += 1;
            }
        }
    }
    Ok(count)
}

fn write_rejected(f: &mut fmt::Formatter<'_>, file: &str, rejected: &Rejected) -> fmt::Result {
    writeln!(f, "  {file} rows rejected: {}", rejected.count)?;
    for (line, reason) in &rejected.first {
        writeln!(f, "    line {line}: {reason}")?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = self.period;
        writeln!(
            f,
            "Simulated {} to {}",
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        )?;
        writeln!(f)?;
        writeln!(f, "Data")?;
        writeln!(f, "  customers imported: {}", self.customers)?;
        writeln!(f, "  signals stored:     {}", self.signals)?;
        write_rejected(f, "customer", &self.rejected_customers)?;
        write_rejected(f, "signal", &self.rejected_signals)?;
        writeln!(f)?;
        writeln!(f, "Customers per bucket at the end")?;
        for bucket in Bucket::ALL {
            let count = self.buckets.get(&bucket).copied().unwrap_or(0);
            writeln!(f, "  {:<14} {count:>7}", bucket.as_str())?;
        }
        writeln!(f)?;
        self.write_purposes(f)?;
        writeln!(f)?;
        writeln!(
            f,
            "Contacts per customer per month ({} customer-months)",
            self.customer_months
        )?;
        writeln!(f, "                          median    p90    max")?;
        for (label, spread) in [
            ("sent by tact", self.contacts_per_month),
            ("every proposal sent", self.proposed_per_month),
        ] {
            writeln!(
                f,
                "  {label:<22} {:>7} {:>6} {:>6}",
                spread.median, spread.p90, spread.max
            )?;
        }
        writeln!(f)?;
        writeln!(f, "Delivery")?;
        writeln!(f, "  emails sent:        {}", self.emails_sent)?;
        match self.maildir_files {
            Some(files) => {
                let check = if files == self.emails_sent {
                    "equal"
                } else {
                    "NOT EQUAL"
                };
                write!(f, "  files in Maildir:   {files} ({check} to emails sent)")
            }
            None => write!(f, "  delivered over SMTP"),
        }
    }
}

impl Report {
    fn write_purposes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Proposed contacts by purpose and final state")?;
        writeln!(
            f,
            "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "purpose", "proposed", "sent", "deferred", "denied", "failed"
        )?;
        for (purpose, counts) in &self.purposes {
            let state = |state: DeliveryState| counts.by_state.get(&state).copied().unwrap_or(0);
            let sent = state(DeliveryState::Sent)
                + state(DeliveryState::Approved)
                + state(DeliveryState::Sending);
            let deferred = state(DeliveryState::Deferred) + state(DeliveryState::Planned);
            writeln!(
                f,
                "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                purpose.as_str(),
                counts.proposed,
                sent,
                deferred,
                state(DeliveryState::Denied),
                state(DeliveryState::Failed)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "Held back by rule (deferred or denied; a delivery counts once per rule)"
        )?;
        for (purpose, counts) in &self.purposes {
            if counts.by_rule.is_empty() {
                continue;
            }
            writeln!(f, "  {}", purpose.as_str())?;
            let mut rules: Vec<_> = counts.by_rule.iter().collect();
            rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (rule, count) in rules {
                writeln!(f, "    {rule:<22} {count:>8}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_nearest_rank() {
        let spread = Spread::of(vec![0, 0, 1, 1, 1, 2, 2, 3, 4, 9]);
        assert_eq!(
            spread,
            Spread {
                median: 1,
                p90: 4,
                max: 9
            }
        );
        assert_eq!(Spread::of(Vec::new()), Spread::default());
    }
}

//! The simulation plan: which campaigns run when, and the bucket thresholds.
//!
//! ```toml
//! [buckets]            # the domain's BucketThresholds; every key optional
//! weekly_purchases = 6
//!
//! [[campaign]]
//! name = "Weekly newsletter"
//! channel = "email"
//! purpose = "value"
//! topic = "newsletter"
//! priority = 10
//! every = "week"                       # or "month"
//! first = 2010-12-06T09:00:00Z
//! relevant_for = "6d"
//! subject = "…"
//! text = "…"
//! html = "…"                           # optional
//!
//! [[campaign]]
//! name = "Purchase follow-up"
//! after_signal = "purchase"            # a follow-up: planned per customer
//! delay = "2d"
//! …
//! ```

use anyhow::{Context as _, bail};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Deserialize;
use std::path::Path;
use tact_delivery::TemplateSource;
use tact_domain::{BucketThresholds, Channel, Purpose, SignalKind, Span, Topic};

/// The plan file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    buckets: BucketThresholds,
    #[serde(rename = "campaign", default)]
    campaigns: Vec<CampaignFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    channel: Channel,
    purpose: String,
    topic: Option<Topic>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    offer: bool,
    every: Option<String>,
    first: Option<toml::value::Datetime>,
    after_signal: Option<String>,
    delay: Option<Span>,
    relevant_for: Span,
    subject: String,
    text: String,
    html: Option<String>,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Thresholds for assigning buckets from behaviour.
    pub buckets: BucketThresholds,
    /// The campaigns, in file order.
    pub campaigns: Vec<PlannedCampaign>,
}

/// When a planned campaign sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every week from `first`.
    Weekly {
        /// The first send.
        first: DateTime<Utc>,
    },
    /// Every month from `first`, on the same day of the month (or the month's last day).
    Monthly {
        /// The first send.
        first: DateTime<Utc>,
    },
    /// `delay` after each signal of `kind`, at most once per customer and calendar month.
    AfterSignal {
        /// The signal that triggers it.
        kind: SignalKind,
        /// Time between the signal and the send.
        delay: Span,
    },
}

/// One campaign of the plan.
#[derive(Debug, Clone)]
pub struct PlannedCampaign {
    /// A name for people; each send adds its date.
    pub name: String,
    /// The channel.
    pub channel: Channel,
    /// The purpose.
    pub purpose: Purpose,
    /// The topic.
    pub topic: Option<Topic>,
    /// Higher goes first when campaigns compete.
    pub priority: i32,
    /// Whether the message carries an offer.
    pub offer: bool,
    /// When it sends.
    pub schedule: Schedule,
    /// How long after its send time a message is still worth sending.
    pub relevant_for: Span,
    /// The message template.
    pub template: TemplateSource,
}

impl PlannedCampaign {
    /// The send times of a recurring campaign in `[from, to)`; empty for a follow-up.
    pub fn send_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let (first, monthly) = match self.schedule {
            Schedule::Weekly { first } => (first, false),
            Schedule::Monthly { first } => (first, true),
            Schedule::AfterSignal { .. } => return Vec::new(),
        };
        let mut times = Vec::new();
        for step in 0u32.. {
            let at = if monthly {
                first.checked_add_months(Months::new(step))
            } else {
                first.checked_add_signed(chrono::Duration::weeks(i64::from(step)))
            };
            match at {
                Some(at) if at < to => {
                    if at >= from {
                        times.push(at);
                    }
                }
                _ => break,
            }
        }
        times
    }
}

/// Reads and checks a plan file.
///
/// # Errors
///
/// Fails when the file cannot be read or parsed, naming the campaign and key at fault.
pub fn load_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read simulation plan {}", path.display()))?;
    let file: PlanFile = toml::from_str(&text)
        .with_context(|| format!("invalid simulation plan {}", path.display()))?;
    let campaigns = file
        .campaigns
        .into_iter()
        .map(|campaign| {
            let name = campaign.name.clone();
            check_campaign(campaign)
                .with_context(|| format!("invalid campaign {name:?} in {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Plan {
        buckets: file.buckets,
        campaigns,
    })
}

fn check_campaign(file: CampaignFile) -> anyhow::Result<PlannedCampaign> {
    let Some(purpose) = Purpose::parse(&file.purpose) else {
        bail!(
            "unknown purpose {:?} in `purpose`: use care, sales, value, survey or transactional",
            file.purpose
        );
    };
    let schedule = match (file.every.as_deref(), file.after_signal.as_deref()) {
        (Some(every), None) => {
            let Some(first) = file.first else {
                bail!("`first` is missing: a recurring campaign needs its first send time");
            };
            let first = parse_instant(&first)?;
            match every {
                "week" => Schedule::Weekly { first },
                "month" => Schedule::Monthly { first },
                other => bail!("invalid `every` {other:?}: use week or month"),
            }
        }
        (None, Some(kind)) => {
            let Some(kind) = SignalKind::parse(kind) else {
                bail!("unknown signal kind {kind:?} in `after_signal`");
            };
            let Some(delay) = file.delay else {
                bail!("`delay` is missing: a follow-up needs the time after its signal");
            };
            Schedule::AfterSignal { kind, delay }
        }
        _ => bail!("set exactly one of `every` (with `first`) and `after_signal` (with `delay`)"),
    };
    Ok(PlannedCampaign {
        name: file.name,
        channel: file.channel,
        purpose,
        topic: file.topic,
        priority: file.priority,
        offer: file.offer,
        schedule,
        relevant_for: file.relevant_for,
        template: TemplateSource {
            subject: file.subject,
            text: file.text,
            html: file.html,
        },
    })
}

fn parse_instant(value: &toml::value::Datetime) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&value.to_string())
        .map(|at| at.with_timezone(&Utc))
        .with_context(|| format!("invalid `first` {value}: write an RFC 3339 time with offset"))
}

/// The first instant of the calendar month (UTC) after the one holding `at`.
pub fn next_month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map_or(at, |naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn campaign(schedule: Schedule) -> PlannedCampaign {
        PlannedCampaign {
            name: "c".to_owned(),
            channel: Channel::EMAIL,
            purpose: Purpose::Value,
            topic: None,
            priority: 0,
            offer: false,
            schedule,
            relevant_for: Span::days(1),
            template: TemplateSource {
                subject: "s".to_owned(),
                text: "t".to_owned(),
                html: None,
            },
        }
    }

    #[test]
    fn monthly_send_times_clamp_day() {
        let first = Utc.with_ymd_and_hms(2011, 1, 31, 10, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2011, 4, 1, 0, 0, 0).unwrap();
        let times = campaign(Schedule::Monthly { first }).send_times(first, to);
        let days: Vec<String> = times
            .iter()
            .map(|t| t.format("%m-%d").to_string())
            .collect();
        assert_eq!(days, ["01-31", "02-28", "03-31"]);
    }

    #[test]
    fn weekly_send_times_inside_range() {
        let first = Utc.with_ymd_and_hms(2010, 12, 6, 9, 0, 0).unwrap();
        let from = Utc.with_ymd_and_hms(2010, 12, 10, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2010, 12, 27, 9, 0, 0).unwrap();
        let times = campaign(Schedule::Weekly { first }).send_times(from, to);
        assert_eq!(
            times,
            [
                Utc.with_ymd_and_hms(2010, 12, 13, 9, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2010, 12, 20, 9, 0, 0).unwrap(),
            ]
        );
    }

    #[test]
    fn next_month_start_wraps_year() {
        let at = Utc.with_ymd_and_hms(2010, 12, 9, 12, 0, 0).unwrap();
        assert_eq!(
            next_month_start(at),
            Utc.with_ymd_and_hms(2011, 1, 1, 0, 0, 0).unwrap()
        );
    }
}

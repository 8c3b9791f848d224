//! Assigning a cadence bucket from behaviour, for customers who stated no preference.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Bucket, Signal, SignalKind, Span};

/// Thresholds for [`assign_bucket`]. Every field has a default, so an empty table is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketThresholds {
    /// Weekly needs a purchase within this span. Default 30 days.
    pub weekly_recency: Span,
    /// Weekly also needs this many purchases in the last 365 days. Default 6.
    pub weekly_purchases: u32,
    /// Monthly needs a purchase within this span. Default 90 days.
    pub monthly_recency: Span,
    /// Monthly also needs this many purchases in the last 365 days. Default 3.
    pub monthly_purchases: u32,
    /// Monthly is also reached by this much spend in the last 365 days, in the company's
    /// currency, with a purchase within `monthly_recency`. Default 500.
    pub monthly_spend: f64,
    /// Quarterly needs a purchase within this span. Default 180 days.
    pub quarterly_recency: Span,
    /// Human opens, clicks and replies within this span count as engagement. Default 90 days.
    pub engagement_within: Span,
    /// Engagement moves a customer up from twice a year to quarterly, or from yearly to
    /// twice a year, when they made at least this many engagements. Default 3.
    pub engagement_count: u32,
}

impl Default for BucketThresholds {
    fn default() -> Self {
        BucketThresholds {
            weekly_recency: Span::days(30),
            weekly_purchases: 6,
            monthly_recency: Span::days(90),
            monthly_purchases: 3,
            monthly_spend: 500.0,
            quarterly_recency: Span::days(180),
            engagement_within: Span::days(90),
            engagement_count: 3,
        }
    }
}

/// Assigns a bucket from purchase recency, frequency and spend over the last 365 days, and
/// from human engagement.
///
/// The first matching line wins:
///
/// - weekly: a purchase within `weekly_recency` and `weekly_purchases` purchases a year;
/// - monthly: a purchase within `monthly_recency`, and `monthly_purchases` purchases or
///   `monthly_spend` spend a year;
/// - quarterly: a purchase within `quarterly_recency`;
/// - twice a year: any purchase in the last 365 days;
/// - yearly: no purchase in the last 365 days.
///
/// `engagement_count` or more human opens, clicks or replies within `engagement_within`
/// lift twice a year to quarterly and yearly to twice a year. Signals marked `machine` are
/// not engagement. `signals` may be in any order, and those after `now` are ignored.
pub fn assign_bucket(
    signals: &[Signal],
    now: DateTime<Utc>,
    thresholds: &BucketThresholds,
) -> Bucket {
    let year_ago = now - chrono::Duration::days(365);
    let purchases: Vec<&Signal> = signals
        .iter()
        .filter(|signal| {
            signal.kind == SignalKind::Purchase && signal.at > year_ago && signal.at <= now
        })
        .collect();
    let count = purchases.len() as u64;
    let spend: f64 = purchases.iter().filter_map(|signal| signal.value).sum();
    let latest = purchases.iter().map(|signal| signal.at).max();
    let within = |span: Span| latest.is_some_and(|at| now - at < span.duration());

    let engagement_start = now - thresholds.engagement_within.duration();
    let engagements = signals
        .iter()
        .filter(|signal| {
            matches!(
                signal.kind,
                SignalKind::Opened | SignalKind::Clicked | SignalKind::Replied
            ) && !signal.machine
                && signal.at > engagement_start
                && signal.at <= now
        })
        .count() as u64;
    let engaged = engagements >= u64::from(thresholds.engagement_count);

    if within(thresholds.weekly_recency) && count >= u64::from(thresholds.weekly_purchases) {
        Bucket::Weekly
    } else if within(thresholds.monthly_recency)
        && (count >= u64::from(thresholds.monthly_purchases) || spend >= thresholds.monthly_spend)
    {
        Bucket::Monthly
    } else if within(thresholds.quarterly_recency) || (latest.is_some() && engaged) {
        Bucket::Quarterly
    } else if latest.is_some() || engaged {
        Bucket::TwiceAYear
    } else {
        Bucket::Yearly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::utc;

    fn purchases(days_ago: &[i64], value: f64) -> Vec<Signal> {
        let now = utc(2026, 6, 30, 12, 0);
        days_ago
            .iter()
            .map(|days| {
                let mut signal =
                    Signal::new(SignalKind::Purchase, now - chrono::Duration::days(*days));
                signal.value = Some(value);
                signal
            })
            .collect()
    }

    fn bucket_of(signals: &[Signal]) -> Bucket {
        assign_bucket(
            signals,
            utc(2026, 6, 30, 12, 0),
            &BucketThresholds::default(),
        )
    }

    #[test]
    fn frequent_recent_buyer_weekly() {
        assert_eq!(
            bucket_of(&purchases(&[2, 40, 80, 120, 200, 300], 20.0)),
            Bucket::Weekly
        );
    }

    #[test]
    fn three_purchases_monthly() {
        assert_eq!(
            bucket_of(&purchases(&[60, 100, 200], 20.0)),
            Bucket::Monthly
        );
        assert_eq!(bucket_of(&purchases(&[60], 600.0)), Bucket::Monthly);
    }

    #[test]
    fn older_buyers_step_down() {
        assert_eq!(bucket_of(&purchases(&[150], 20.0)), Bucket::Quarterly);
        assert_eq!(bucket_of(&purchases(&[300], 20.0)), Bucket::TwiceAYear);
        assert_eq!(bucket_of(&purchases(&[366], 20.0)), Bucket::Yearly);
        assert_eq!(bucket_of(&[]), Bucket::Yearly);
    }

    #[test]
    fn engagement_lifts_one_step() {
        let now = utc(2026, 6, 30, 12, 0);
        let mut signals = purchases(&[300], 20.0);
        for days in [5, 10, 20] {
            signals.push(Signal::new(
                SignalKind::Clicked,
                now - chrono::Duration::days(days),
            ));
        }
        let mut proxy_opens: Vec<Signal> = (1..=3)
            .map(|days| Signal::new(SignalKind::Opened, now - chrono::Duration::days(days)))
            .collect();
        for open in &mut proxy_opens {
            open.machine = true;
        }

        assert_eq!(bucket_of(&signals), Bucket::Quarterly);
        assert_eq!(bucket_of(&signals[1..]), Bucket::TwiceAYear);
        assert_eq!(bucket_of(&proxy_opens), Bucket::Yearly);
    }
}

//! Company policy: defaults and ceilings for every rule, loaded from TOML.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{Bucket, Channel, Error, Limit, LocalWindow, Period, Purpose, Span, Topic};

/// Company-wide defaults and ceilings. Every field has a documented default, so an empty
/// TOML table is a valid policy.
///
/// Load it with [`Policy::from_toml`], which rejects unknown keys and caps set to 0 by
/// accident, naming the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// How long an approval stays valid. Default 15 minutes.
    pub approval_ttl: Span,
    /// Overall budget across channels, counted in channel weights. Default 8 per 30 days.
    pub overall: Option<Limit>,
    /// Weight of one contact on each channel in the overall budget, from 1 to 1000.
    /// Channels not listed weigh 1. Default: email 1, sms 2, phone 3.
    pub channel_weights: BTreeMap<Channel, u32>,
    /// Caps per channel, counted in contacts. Default none.
    pub channel_caps: BTreeMap<Channel, Limit>,
    /// Caps per purpose, counted in contacts. Default sales 4 per 30 days.
    pub purpose_caps: BTreeMap<Purpose, Limit>,
    /// Minimum time between any two non-transactional contacts. Default 24 hours.
    pub min_gap: Option<Span>,
    /// Cadence of each bucket.
    pub buckets: BucketCadences,
    /// Bucket for customers with neither a stated cadence nor an assigned bucket.
    /// Default `monthly`.
    pub default_bucket: Bucket,
    /// Share of the overall budget kept for care and value contacts.
    pub reserved: Reserved,
    /// Caps shared by all people of one account.
    pub account: AccountCaps,
    /// No sales contact until this long after a care case closes. Default 7 days.
    pub care_grace: Span,
    /// After a declined offer, no pitch on that topic for this long. Default 90 days.
    pub declined_cooling: Span,
    /// Back-off after complaints and negative replies.
    pub negative: NegativeBackoff,
    /// A run of ignored emails lowers the bucket.
    pub ignored: IgnoredRun,
    /// Company quiet hours: contact only inside this local window. Default 08:00 to 20:00.
    pub quiet_hours: Option<LocalWindow>,
    /// At most this share of recent contacts may be sales.
    pub sales_share: Option<SalesShare>,
    /// An open within this span of its delivery counts as a machine open. Default 10 seconds.
    pub machine_open_within: Span,
    /// Greetings treated as generic, compared ignoring case and spacing. The built-in list
    /// ("dear valued customer", "dear customer", "dear sir or madam", …) always applies.
    pub generic_greetings: Vec<String>,
    /// Topics customers can choose in the preference centre.
    pub topics: Vec<Topic>,
}

/// Cadence of each bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketCadences {
    /// Default 1 per 7 days.
    pub weekly: Limit,
    /// Default 1 per 30 days.
    pub monthly: Limit,
    /// Default 1 per 91 days.
    pub quarterly: Limit,
    /// Default 1 per 182 days.
    pub twice_a_year: Limit,
    /// Default 1 per 365 days.
    pub yearly: Limit,
}

/// The part of the overall budget that sales cannot use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reserved {
    /// Weight units of the overall budget kept free for care and value contacts. Default 2.
    pub care_and_value: u32,
}

/// Caps shared by all people of one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountCaps {
    /// Contacts with anyone at the account. Default none.
    pub contacts: Option<Limit>,
    /// Call minutes with anyone at the account. Default none.
    pub call_minutes: Option<Limit>,
}

/// Back-off after negative signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegativeBackoff {
    /// No non-transactional contact for this long after a complaint or negative reply.
    /// Default 30 days.
    pub backoff: Span,
    /// Window in which repeats are counted. Default 180 days.
    pub window: Span,
    /// This many negative signals within `window` lower the bucket by one step, and each
    /// further one by another. Default 2.
    pub repeats_to_lower: u32,
}

/// A run of ignored emails lowers the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IgnoredRun {
    /// This many emails in a row with no human open, click or reply lower the bucket by one
    /// step. Default 5; 0 turns the rule off.
    pub emails: u32,
}

/// At most `max_share` of the last `over_last` contacts sent within `within` may be sales.
///
/// The proposal counts as one of the `over_last`, so a sales proposal is allowed while the
/// sales among the other `over_last - 1` most recent contacts number fewer than
/// `floor(max_share * over_last)`. Default: 0.5 of the last 10 within 180 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesShare {
    /// Share between 0 and 1.
    pub max_share: f64,
    /// Number of most recent contacts looked at, the proposal included.
    pub over_last: u32,
    /// Contacts older than this drop out of the count. Default 180 days.
    #[serde(default = "default_share_within")]
    pub within: Span,
}

fn default_share_within() -> Span {
    Span::days(180)
}

impl Default for Policy {
    fn default() -> Self {
        let weights = [(Channel::EMAIL, 1), (Channel::SMS, 2), (Channel::PHONE, 3)];
        let sales_cap = rolling(4, 30);
        Policy {
            approval_ttl: Span::seconds(15 * 60),
            overall: Some(rolling(8, 30)),
            channel_weights: weights.into_iter().collect(),
            channel_caps: BTreeMap::new(),
            purpose_caps: [(Purpose::Sales, sales_cap)].into_iter().collect(),
            min_gap: Some(Span::seconds(24 * 3_600)),
            buckets: BucketCadences::default(),
            default_bucket: Bucket::Monthly,
            reserved: Reserved::default(),
            account: AccountCaps::default(),
            care_grace: Span::days(7),
            declined_cooling: Span::days(90),
            negative: NegativeBackoff::default(),
            ignored: IgnoredRun::default(),
            quiet_hours: Some(default_quiet_hours()),
            sales_share: Some(SalesShare::default()),
            machine_open_within: Span::seconds(10),
            generic_greetings: Vec::new(),
            topics: Vec::new(),
        }
    }
}

impl Default for BucketCadences {
    fn default() -> Self {
        BucketCadences {
            weekly: rolling(1, 7),
            monthly: rolling(1, 30),
            quarterly: rolling(1, 91),
            twice_a_year: rolling(1, 182),
            yearly: rolling(1, 365),
        }
    }
}

impl Default for SalesShare {
    fn default() -> Self {
        SalesShare {
            max_share: 0.5,
            over_last: 10,
            within: Span::days(180),
        }
    }
}

/// "At most `max` per `days` days", rolling.
fn rolling(max: u32, days: i64) -> Limit {
    Limit {
        max,
        per: Period::Rolling(Span::days(days)),
    }
}

impl Default for Reserved {
    fn default() -> Self {
        Reserved { care_and_value: 2 }
    }
}

impl Default for NegativeBackoff {
    fn default() -> Self {
        NegativeBackoff {
            backoff: Span::days(30),
            window: Span::days(180),
            repeats_to_lower: 2,
        }
    }
}

impl Default for IgnoredRun {
    fn default() -> Self {
        IgnoredRun { emails: 5 }
    }
}

impl Policy {
    /// Parses a policy from TOML text (the contents of a `[policy]` table).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPolicy`] naming the key and value: unknown keys, malformed spans,
    /// a share outside 0..=1, and a cap whose `max` is missing or empty. A cap of 0 must be
    /// written as `max = 0`, which means "never".
    pub fn from_toml(text: &str) -> Result<Policy, Error> {
        crate::policy_toml::parse(text)
    }

    /// Returns the maximum span of history any rule of this policy looks at, so storage can
    /// load only that much.
    ///
    /// It covers every period, span and bucket cadence of the policy (all buckets, because
    /// signals can lower a customer's bucket). A customer's own cadence over a longer period
    /// sees only this much history, unless storage loads more for that customer.
    pub fn lookback(&self) -> chrono::Duration {
        let limits = [
            self.overall,
            self.account.contacts,
            self.account.call_minutes,
        ];
        let limit_periods = limits
            .into_iter()
            .flatten()
            .chain(self.channel_caps.values().copied())
            .chain(self.purpose_caps.values().copied())
            .chain(Bucket::ALL.map(|bucket| self.bucket_cadence(bucket)))
            .map(|limit| limit.per.lookback());
        let spans = [
            self.min_gap,
            Some(self.care_grace),
            Some(self.declined_cooling),
            Some(self.negative.backoff),
            Some(self.negative.window),
            self.sales_share.as_ref().map(|share| share.within),
        ];
        let span_lengths = spans.into_iter().flatten().map(Span::duration);
        limit_periods
            .chain(span_lengths)
            .max()
            .unwrap_or_else(chrono::Duration::zero)
    }

    /// The cadence of a bucket.
    pub fn bucket_cadence(&self, bucket: Bucket) -> Limit {
        match bucket {
            Bucket::Weekly => self.buckets.weekly,
            Bucket::Monthly => self.buckets.monthly,
            Bucket::Quarterly => self.buckets.quarterly,
            Bucket::TwiceAYear => self.buckets.twice_a_year,
            Bucket::Yearly => self.buckets.yearly,
        }
    }

    /// Weight of one contact on `channel` in the overall budget.
    pub fn channel_weight(&self, channel: &Channel) -> u32 {
        self.channel_weights.get(channel).copied().unwrap_or(1)
    }
}

fn default_quiet_hours() -> LocalWindow {
    LocalWindow {
        start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        end: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
        days: Vec::new(),
    }
}

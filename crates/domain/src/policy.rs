//! Company policy: defaults and ceilings for every rule, loaded from TOML.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{Bucket, Channel, Error, Limit, LocalWindow, Purpose, Span, Topic};

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
    /// Weight of one contact on each channel in the overall budget. Channels not listed
    /// weigh 1. Default: email 1, sms 2, phone 3.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// At most `max_share` of the last `over_last` contacts may be sales.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesShare {
    /// Share between 0 and 1.
    pub max_share: f64,
    /// Number of most recent contacts looked at.
    pub over_last: u32,
}

impl Default for Policy {
    fn default() -> Self {
        todo!("defaults as documented on each field")
    }
}

impl Default for BucketCadences {
    fn default() -> Self {
        todo!("defaults as documented on each field")
    }
}

impl Default for Reserved {
    fn default() -> Self {
        Reserved { care_and_value: 2 }
    }
}

impl Default for AccountCaps {
    fn default() -> Self {
        AccountCaps { contacts: None, call_minutes: None }
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
        todo!("{text}")
    }

    /// The longest stretch of history any rule of this policy looks at, so storage can load
    /// only that much.
    pub fn lookback(&self) -> chrono::Duration {
        todo!()
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

#[allow(dead_code)]
fn default_quiet_hours() -> LocalWindow {
    LocalWindow {
        start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        end: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
        days: Vec::new(),
    }
}

//! Proposals, decisions and the reasons behind them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

use crate::{CampaignId, Channel, Contact, CustomerId, Outcome, Topic};

/// Why a contact is made. Purposes are fixed because rules treat each one differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Customer care: answering or following up a case.
    Care,
    /// Selling: promotions, offers, pitches.
    Sales,
    /// Value for the customer: advice, tips, newsletters.
    Value,
    /// A survey or follow-up that asks the customer for something.
    Survey,
    /// Receipts, password resets and other messages the customer's own action caused.
    Transactional,
}

impl Purpose {
    /// All purposes, in declaration order.
    pub const ALL: [Purpose; 5] = [
        Purpose::Care,
        Purpose::Sales,
        Purpose::Value,
        Purpose::Survey,
        Purpose::Transactional,
    ];

    /// The configuration and API name, such as `sales`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Care => "care",
            Purpose::Sales => "sales",
            Purpose::Value => "value",
            Purpose::Survey => "survey",
            Purpose::Transactional => "transactional",
        }
    }

    /// Parses the API name.
    pub fn parse(text: &str) -> Option<Purpose> {
        Purpose::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == text)
    }

    /// Whether a marketing opt-out covers this purpose (sales, value and survey).
    pub fn is_marketing(self) -> bool {
        matches!(self, Purpose::Sales | Purpose::Value | Purpose::Survey)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content of a proposed message, as far as rules look at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// The opening line as rendered for this customer, such as "Dear Ann,".
    pub greeting: Option<String>,
    /// Whether the body uses anything specific to this customer beyond the greeting.
    pub personalised: bool,
}

/// A proposed contact: who, how, why and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who.
    pub customer: CustomerId,
    /// How.
    pub channel: Channel,
    /// Why.
    pub purpose: Purpose,
    /// About what, when known.
    pub topic: Option<Topic>,
    /// The campaign it belongs to, if any.
    pub campaign: Option<CampaignId>,
    /// Higher goes first when proposals compete in a batch.
    pub priority: i32,
    /// The message carries an offer (a price, a discount, a product pitch).
    pub offer: bool,
    /// The rendered content, when there is any; calls have none.
    pub content: Option<Content>,
    /// After this instant the contact is pointless; a deferral past it becomes a denial.
    pub relevant_until: Option<DateTime<Utc>>,
    /// Expected length of a call, in seconds; 0 for messages.
    pub duration_s: u32,
}

impl Proposal {
    /// A proposal with no topic, campaign, content, deadline or duration, and priority 0.
    pub fn new(customer: CustomerId, channel: Channel, purpose: Purpose) -> Proposal {
        Proposal {
            customer,
            channel,
            purpose,
            topic: None,
            campaign: None,
            priority: 0,
            offer: false,
            content: None,
            relevant_until: None,
            duration_s: 0,
        }
    }

    /// Returns the contact that approving this proposal books at `at`: pending, so that it
    /// counts against budgets before its outcome is known.
    pub fn booking(&self, at: DateTime<Utc>) -> Contact {
        Contact {
            customer: self.customer,
            channel: self.channel.clone(),
            purpose: self.purpose,
            topic: self.topic.clone(),
            campaign: self.campaign,
            at,
            duration_s: self.duration_s,
            outcome: Outcome::Pending,
        }
    }
}

/// The stable id of a rule, as shown in reasons, logs, metrics and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// The customer asked for no contact at all.
    DoNotContact,
    /// The customer opted out of marketing.
    MarketingOptOut,
    /// The customer opted out of this channel.
    ChannelOptOut,
    /// The customer opted out of this topic.
    TopicOptOut,
    /// The customer paused contact.
    Paused,
    /// The address on this channel is suppressed.
    Suppressed,
    /// The channel has no address for this customer.
    NoAddress,
    /// The customer's own overall cadence.
    CustomerCadence,
    /// The customer's own cadence on this channel.
    ChannelCadence,
    /// The cadence of the customer's bucket.
    BucketCadence,
    /// The company cap on this channel.
    ChannelCap,
    /// The company cap on this purpose.
    PurposeCap,
    /// The company cap across all channels, by channel weight.
    OverallCap,
    /// Part of the budget is kept for care and value contacts.
    ReservedBudget,
    /// The minimum gap between any two contacts.
    MinGap,
    /// The account's cap on contacts.
    AccountContacts,
    /// The account's cap on call minutes.
    AccountMinutes,
    /// An open care case, or one closed within the grace period.
    OpenCareCase,
    /// A care message must not carry an offer.
    CareOffer,
    /// The customer declined an offer on this topic recently.
    DeclinedTopic,
    /// Recent complaints or negative replies.
    NegativeBackoff,
    /// The customer's own contact window.
    ContactWindow,
    /// The company's quiet hours.
    QuietHours,
    /// Too large a share of recent contacts were sales.
    SalesShare,
    /// The message opens with a generic greeting.
    GenericGreeting,
    /// The message is not personalised.
    Unpersonalised,
    /// The earliest allowed time is after the proposal's relevance deadline.
    Stale,
}

impl RuleId {
    /// The snake_case id.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::DoNotContact => "do_not_contact",
            RuleId::MarketingOptOut => "marketing_opt_out",
            RuleId::ChannelOptOut => "channel_opt_out",
            RuleId::TopicOptOut => "topic_opt_out",
            RuleId::Paused => "paused",
            RuleId::Suppressed => "suppressed",
            RuleId::NoAddress => "no_address",
            RuleId::CustomerCadence => "customer_cadence",
            RuleId::ChannelCadence => "channel_cadence",
            RuleId::BucketCadence => "bucket_cadence",
            RuleId::ChannelCap => "channel_cap",
            RuleId::PurposeCap => "purpose_cap",
            RuleId::OverallCap => "overall_cap",
            RuleId::ReservedBudget => "reserved_budget",
            RuleId::MinGap => "min_gap",
            RuleId::AccountContacts => "account_contacts",
            RuleId::AccountMinutes => "account_minutes",
            RuleId::OpenCareCase => "open_care_case",
            RuleId::CareOffer => "care_offer",
            RuleId::DeclinedTopic => "declined_topic",
            RuleId::NegativeBackoff => "negative_backoff",
            RuleId::ContactWindow => "contact_window",
            RuleId::QuietHours => "quiet_hours",
            RuleId::SalesShare => "sales_share",
            RuleId::GenericGreeting => "generic_greeting",
            RuleId::Unpersonalised => "unpersonalised",
            RuleId::Stale => "stale",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule's objection, in one sentence with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Which rule.
    pub rule: RuleId,
    /// Why, for people: "3 contacts in the last 30 days; the customer's limit is 3 per 30 days".
    pub message: String,
}

/// Permission to make exactly the proposed contact until `expires_at`.
///
/// Only this crate can create one, so code that requires an `Approval` can only act on what
/// the rules allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub(crate) proposal: Proposal,
    pub(crate) decided_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

impl Approval {
    pub(crate) fn new(
        proposal: Proposal,
        decided_at: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Self {
        Approval {
            proposal,
            decided_at,
            expires_at: decided_at + ttl,
        }
    }

    /// The approved contact.
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }

    /// When the decision was made.
    pub fn decided_at(&self) -> DateTime<Utc> {
        self.decided_at
    }

    /// After this instant the approval no longer allows the contact.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Whether the approval has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// The answer to a proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Contact now.
    Approve(Approval),
    /// Not now; `until` is the earliest instant at which every rule allows the contact.
    Defer {
        /// The earliest allowed instant.
        until: DateTime<Utc>,
        /// The rules that hold the contact back, in rule order.
        reasons: Vec<Reason>,
    },
    /// Never, as things stand.
    Deny {
        /// The rules that forbid the contact, in rule order.
        reasons: Vec<Reason>,
    },
}

impl Decision {
    /// `approve`, `defer` or `deny`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Approve(_) => "approve",
            Decision::Defer { .. } => "defer",
            Decision::Deny { .. } => "deny",
        }
    }

    /// The reasons; empty for an approval.
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Decision::Approve(_) => &[],
            Decision::Defer { reasons, .. } | Decision::Deny { reasons } => reasons,
        }
    }

    /// The deferral instant, for a deferral.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Decision::Defer { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// Serialises as `{"decision": "approve"|"defer"|"deny", "until": RFC 3339 or null,
/// "reasons": [{"rule", "message"}]}`, with `until` in UTC to the second.
impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let until = self
            .until()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let mut state = serializer.serialize_struct("Decision", 3)?;
        state.serialize_field("decision", self.kind())?;
        state.serialize_field("until", &until)?;
        state.serialize_field("reasons", self.reasons())?;
        state.end()
    }
}

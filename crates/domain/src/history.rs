//! Customer history: contacts made, signals received, care cases and suppressions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CampaignId, Channel, CustomerId, DeliveryId, Purpose, Topic};

/// The result of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Approved and booked, not yet handed over.
    Pending,
    /// Handed to the channel (for email: accepted by the SMTP server).
    Sent,
    /// Known to have arrived.
    Delivered,
    /// A call that the customer answered.
    Answered,
    /// A call that nobody answered.
    NoAnswer,
    /// Failed for good; a failed contact does not count against any budget.
    Failed,
}

impl Outcome {
    /// Whether the contact counts against budgets. Every outcome but `Failed` does.
    pub fn counts(self) -> bool {
        self != Outcome::Failed
    }
}

/// One past contact with a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Who was contacted.
    pub customer: CustomerId,
    /// How.
    pub channel: Channel,
    /// Why.
    pub purpose: Purpose,
    /// About what, when known.
    pub topic: Option<Topic>,
    /// The campaign it belonged to, if any.
    pub campaign: Option<CampaignId>,
    /// When it was sent or the call started.
    pub at: DateTime<Utc>,
    /// Length of a call in seconds; 0 for messages.
    pub duration_s: u32,
    /// What became of it.
    pub outcome: Outcome,
}

/// The kind of a signal received from or about a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A spam complaint or a formal complaint about contact.
    Complaint,
    /// An annoyed reply or call, as judged by staff or a classifier.
    NegativeTone,
    /// The customer declined an offer ("no").
    Declined,
    /// The customer unsubscribed.
    Unsubscribed,
    /// A message bounced.
    Bounced,
    /// A message was opened.
    Opened,
    /// A link in a message was clicked.
    Clicked,
    /// The customer replied.
    Replied,
    /// A care case was opened.
    CaseOpened,
    /// A care case was closed.
    CaseClosed,
    /// The customer bought something; `value` is the amount.
    Purchase,
}

impl SignalKind {
    /// All kinds, in declaration order.
    pub const ALL: [SignalKind; 11] = [
        SignalKind::Complaint,
        SignalKind::NegativeTone,
        SignalKind::Declined,
        SignalKind::Unsubscribed,
        SignalKind::Bounced,
        SignalKind::Opened,
        SignalKind::Clicked,
        SignalKind::Replied,
        SignalKind::CaseOpened,
        SignalKind::CaseClosed,
        SignalKind::Purchase,
    ];

    /// The configuration and API name, such as `negative_tone`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Complaint => "complaint",
            SignalKind::NegativeTone => "negative_tone",
            SignalKind::Declined => "declined",
            SignalKind::Unsubscribed => "unsubscribed",
            SignalKind::Bounced => "bounced",
            SignalKind::Opened => "opened",
            SignalKind::Clicked => "clicked",
            SignalKind::Replied => "replied",
            SignalKind::CaseOpened => "case_opened",
            SignalKind::CaseClosed => "case_closed",
            SignalKind::Purchase => "purchase",
        }
    }

    /// Parses the API name.
    pub fn parse(text: &str) -> Option<SignalKind> {
        SignalKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// Whether the signal counts as a negative reaction that backs contact off.
    pub fn is_negative(self) -> bool {
        matches!(self, SignalKind::Complaint | SignalKind::NegativeTone)
    }
}

/// Something the customer did or that happened to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What happened.
    pub kind: SignalKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The channel it came through, when known.
    pub channel: Option<Channel>,
    /// The topic it concerns (the topic of a declined offer), when known.
    pub topic: Option<Topic>,
    /// The delivery it reacts to, when known.
    pub delivery: Option<DeliveryId>,
    /// Reported by a machine rather than a person, such as an open fetched by a mail-privacy
    /// proxy. Machine signals never count as engagement.
    pub machine: bool,
    /// An amount, for purchases.
    pub value: Option<f64>,
}

impl Signal {
    /// A signal of `kind` at `at` with every optional field empty.
    pub fn new(kind: SignalKind, at: DateTime<Utc>) -> Signal {
        Signal {
            kind,
            at,
            channel: None,
            topic: None,
            delivery: None,
            machine: false,
            value: None,
        }
    }
}

/// A customer-care case. While one is open, and for a grace period after it closes, no sales
/// contact goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareCase {
    /// When the case was opened.
    pub opened_at: DateTime<Utc>,
    /// When it was closed; `None` while open.
    pub closed_at: Option<DateTime<Utc>>,
}

/// The reason an address may no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The address is permanently dead.
    HardBounce,
    /// Several soft bounces within a window.
    SoftBounces,
    /// The customer reported a message as spam.
    Complaint,
    /// Suppressed by staff.
    Manual,
}

impl SuppressionReason {
    /// The API name, such as `hard_bounce`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::SoftBounces => "soft_bounces",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
        }
    }
}

/// A customer's address on one channel that must not be used, not even for transactional
/// messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The channel whose address is suppressed.
    pub channel: Channel,
    /// Why.
    pub reason: SuppressionReason,
    /// Since when.
    pub at: DateTime<Utc>,
}

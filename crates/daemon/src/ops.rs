//! Operations on the store that the command line and the HTTP API share, so both decide,
//! record and change preferences the same way.
//!
//! Decisions come only from [`tact_domain::decide`]; this module parses the request, loads
//! the customer's view and stores the outcome.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tact_domain::{
    Actor, Channel, ConsentChange, ConsentMark, ConsentSource, Contact, Customer, CustomerId,
    Decision, Outcome, Policy, Preferences, Proposal, Purpose, Signal, SignalKind, Topic,
};
use tact_storage::{Recorded, Store};

/// Errors of the shared operations.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The customer, campaign or case does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A value in the request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The change is not allowed.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Storage(tact_storage::Error),
}

impl From<tact_storage::Error> for OpError {
    fn from(error: tact_storage::Error) -> Self {
        match error {
            tact_storage::Error::NotFound { entity, id } => {
                OpError::NotFound(format!("{entity} {id}"))
            }
            tact_storage::Error::InvalidField { .. } => OpError::Invalid(error.to_string()),
            tact_storage::Error::Domain(domain) => match domain {
                tact_domain::Error::ConsentLocked { .. } => OpError::Conflict(domain.to_string()),
                other => OpError::Invalid(other.to_string()),
            },
            other => OpError::Storage(other),
        }
    }
}

/// A proposed contact as written by a person or another system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalInput {
    /// The customer's external id.
    pub customer: String,
    /// The channel name, such as `email`.
    pub channel: String,
    /// The purpose name, such as `sales`.
    pub purpose: String,
    /// The topic name.
    #[serde(default)]
    pub topic: Option<String>,
    /// The contact carries an offer.
    #[serde(default)]
    pub offer: bool,
    /// Expected length of a call, in seconds.
    #[serde(default)]
    pub duration_s: u32,
}

/// Looks a customer up by external id.
///
/// # Errors
///
/// [`OpError::NotFound`] naming the external id.
pub fn customer(store: &Store, external_id: &str) -> Result<Customer, OpError> {
    store
        .customer_by_external_id(external_id)
        .map_err(OpError::from)
}

/// Parses a channel name, naming the field on error.
///
/// # Errors
///
/// [`OpError::Invalid`] for a name that is not a valid channel.
pub fn parse_channel(text: &str) -> Result<Channel, OpError> {
    Channel::parse(text).map_err(|error| OpError::Invalid(format!("channel: {error}")))
}

/// Parses a topic name, naming the field on error.
///
/// # Errors
///
/// [`OpError::Invalid`] for a name that is not a valid topic.
pub fn parse_topic(text: &str) -> Result<Topic, OpError> {
    Topic::parse(text).map_err(|error| OpError::Invalid(format!("topic: {error}")))
}

/// Parses a purpose name.
///
/// # Errors
///
/// [`OpError::Invalid`] listing the valid purposes.
pub fn parse_purpose(text: &str) -> Result<Purpose, OpError> {
    Purpose::parse(text).ok_or_else(|| {
        OpError::Invalid(format!(
            "purpose: unknown purpose {text:?}; use care, sales, value, survey or transactional"
        ))
    })
}

/// Parses a signal kind.
///
/// # Errors
///
/// [`OpError::Invalid`] listing the valid kinds.
pub fn parse_signal_kind(text: &str) -> Result<SignalKind, OpError> {
    SignalKind::parse(text).ok_or_else(|| {
        let kinds: Vec<&str> = SignalKind::ALL.iter().map(|kind| kind.as_str()).collect();
        OpError::Invalid(format!(
            "kind: unknown signal kind {text:?}; use one of {}",
            kinds.join(", ")
        ))
    })
}

/// Builds the domain proposal for `input` and the customer it names.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown customer and [`OpError::Invalid`] for a bad name.
pub fn proposal(store: &Store, input: &ProposalInput) -> Result<(Customer, Proposal), OpError> {
    let channel = parse_channel(&input.channel)?;
    let purpose = parse_purpose(&input.purpose)?;
    let topic = input.topic.as_deref().map(parse_topic).transpose()?;
    let customer = customer(store, &input.customer)?;
    let mut proposal = Proposal::new(customer.id, channel, purpose);
    proposal.topic = topic;
    proposal.offer = input.offer;
    proposal.duration_s = input.duration_s;
    Ok((customer, proposal))
}

/// Decides `input` as of `at`, and with `record` books an approved contact at once.
///
/// The caller must hold the store exclusively between deciding and recording, as the HTTP
/// server does, so two concurrent bookings cannot both take the last slot of a cap.
///
/// # Errors
///
/// As [`proposal`], plus [`OpError::Storage`] when loading or recording fails.
pub fn decide(
    store: &Store,
    policy: &Policy,
    input: &ProposalInput,
    at: DateTime<Utc>,
    record: bool,
) -> Result<Decision, OpError> {
    let (customer, proposal) = proposal(store, input)?;
    let view = store.load_view(customer.id, at, policy)?;
    let decision = tact_domain::decide(&proposal, &view, policy, at);
    count_decision(&decision);
    tracing::debug!(
        customer.id = customer.id.0,
        decision = decision.kind(),
        "decided a proposal"
    );
    if record && matches!(decision, Decision::Approve(_)) {
        let contact = Contact {
            customer: customer.id,
            channel: proposal.channel,
            purpose: proposal.purpose,
            topic: proposal.topic,
            campaign: None,
            at,
            duration_s: proposal.duration_s,
            outcome: Outcome::Sent,
        };
        store.record_contact(&contact)?;
    }
    Ok(decision)
}

/// Counts a decision in the `tact_decisions_total` metric, by outcome and by rule.
pub fn count_decision(decision: &Decision) {
    let outcome = decision.kind();
    if decision.reasons().is_empty() {
        metrics::counter!("tact_decisions_total", "outcome" => outcome, "rule" => "none")
            .increment(1);
    }
    for reason in decision.reasons() {
        let rule = reason.rule.as_str();
        metrics::counter!("tact_decisions_total", "outcome" => outcome, "rule" => rule)
            .increment(1);
    }
}

/// A past or booked contact as written by a person or another system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// The customer's external id.
    pub customer: String,
    /// The channel name.
    pub channel: String,
    /// The purpose name.
    pub purpose: String,
    /// The topic name.
    #[serde(default)]
    pub topic: Option<String>,
    /// When it happened; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Length of a call in seconds.
    #[serde(default)]
    pub duration_s: u32,
    /// The outcome; default `sent`.
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// Records a contact and returns its id.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown customer and [`OpError::Invalid`] for a bad name.
pub fn record_contact(
    store: &Store,
    input: &ContactInput,
    now: DateTime<Utc>,
) -> Result<i64, OpError> {
    let customer = customer(store, &input.customer)?;
    let contact = Contact {
        customer: customer.id,
        channel: parse_channel(&input.channel)?,
        purpose: parse_purpose(&input.purpose)?,
        topic: input.topic.as_deref().map(parse_topic).transpose()?,
        campaign: None,
        at: input.at.unwrap_or(now),
        duration_s: input.duration_s,
        outcome: input.outcome.unwrap_or(Outcome::Sent),
    };
    Ok(store.record_contact(&contact)?.0)
}

/// A signal as written by a person or another system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalInput {
    /// The customer's external id.
    pub customer: String,
    /// The signal kind, such as `declined`.
    pub kind: String,
    /// The channel it came through.
    #[serde(default)]
    pub channel: Option<String>,
    /// The topic it concerns.
    #[serde(default)]
    pub topic: Option<String>,
    /// When it happened; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Reported by a machine, such as a mail-privacy proxy's open.
    #[serde(default)]
    pub machine: bool,
    /// An amount, for purchases.
    #[serde(default)]
    pub value: Option<f64>,
}

/// Records a signal; care-case signals also open or close the customer's case.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown customer and [`OpError::Invalid`] for a bad name.
pub fn record_signal(
    store: &Store,
    input: &SignalInput,
    now: DateTime<Utc>,
) -> Result<Recorded, OpError> {
    let customer = customer(store, &input.customer)?;
    let mut signal = Signal::new(parse_signal_kind(&input.kind)?, input.at.unwrap_or(now));
    signal.channel = input.channel.as_deref().map(parse_channel).transpose()?;
    signal.topic = input.topic.as_deref().map(parse_topic).transpose()?;
    signal.machine = input.machine;
    signal.value = input.value;
    let recorded = store.record_signal(customer.id, &signal)?;
    if recorded == Recorded::New {
        match signal.kind {
            SignalKind::CaseOpened => open_case(store, customer.id, signal.at)?,
            SignalKind::CaseClosed => close_case(store, customer.id, signal.at)?,
            _ => {}
        }
    }
    Ok(recorded)
}

/// Opens a care case unless one is already open.
///
/// # Errors
///
/// [`OpError::Storage`] when the store fails.
pub fn open_case(store: &Store, customer: CustomerId, at: DateTime<Utc>) -> Result<(), OpError> {
    let history = store.history(customer)?;
    if history
        .cases
        .iter()
        .any(|(_, case)| case.closed_at.is_none())
    {
        return Ok(());
    }
    store.open_case(customer, at)?;
    Ok(())
}

/// Closes the customer's open care cases.
///
/// # Errors
///
/// [`OpError::NotFound`] when the customer has no open case.
pub fn close_case(store: &Store, customer: CustomerId, at: DateTime<Utc>) -> Result<(), OpError> {
    let history = store.history(customer)?;
    let open: Vec<_> = history
        .cases
        .iter()
        .filter(|(_, case)| case.closed_at.is_none())
        .map(|(id, _)| *id)
        .collect();
    if open.is_empty() {
        return Err(OpError::NotFound(format!(
            "open care case of customer {customer}"
        )));
    }
    for case in open {
        store.close_case(case, at)?;
    }
    Ok(())
}

/// Applies consent changes in order, each written to the consent log with `mark`, and
/// returns the resulting preferences. Either every change is saved or none is.
///
/// # Errors
///
/// [`OpError::Conflict`] when a change would lift an opt-out only the customer may lift;
/// then no change is saved.
pub fn apply_changes(
    store: &Store,
    customer: CustomerId,
    changes: &[ConsentChange],
    mark: ConsentMark,
) -> Result<Preferences, OpError> {
    Ok(store.apply_consents(customer, changes, mark)?)
}

/// Opts the customer out of marketing as the customer's own unsubscribe request through a
/// link in a message (the one-click page or the `mailto:` of `List-Unsubscribe`), and
/// records an `unsubscribed` email signal. Returns false, and changes nothing, when the
/// customer had already opted out of marketing.
///
/// # Errors
///
/// The store's errors; [`tact_storage::Error::NotFound`] when the customer does not exist.
pub fn unsubscribe_from_marketing(
    store: &Store,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> tact_storage::Result<bool> {
    let preferences = store.preferences(customer)?;
    if preferences.marketing_opt_out.is_some() {
        return Ok(false);
    }
    let mark = ConsentMark {
        actor: Actor::Customer,
        source: ConsentSource::Link,
        at: now,
    };
    store.apply_consent(customer, &ConsentChange::Marketing { allowed: false }, mark)?;
    let mut signal = Signal::new(SignalKind::Unsubscribed, now);
    signal.channel = Some(Channel::EMAIL);
    store.record_signal(customer, &signal)?;
    Ok(true)
}

//! The cadence rules engine of tact.
//!
//! Given a proposed contact, everything known about the customer and the company policy,
//! [`decide`] answers "approve now", "defer until exactly this instant" or "deny", with a
//! reason per rule. The crate is pure: no I/O, no clock (the time is an argument), no async
//! and no storage types.
//!
//! Main types:
//!
//! - [`Proposal`]: who, channel, [`Purpose`], topic, priority and content flags.
//! - [`CustomerView`]: the [`Customer`], their [`Preferences`] and their history of
//!   [`Contact`]s, [`Signal`]s, [`CareCase`]s and [`Suppression`]s.
//! - [`Policy`]: company defaults and ceilings, loaded with [`Policy::from_toml`].
//! - [`Decision`]: [`Approval`] (only this crate can make one), a deferral with its exact
//!   `until`, or a denial, each with [`Reason`]s named by a stable [`RuleId`].
//! - [`plan`] decides competing proposals for one customer in priority order, and
//!   [`assign_bucket`] sorts customers into cadence [`Bucket`]s from their behaviour.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tact_domain::{
//!     Channel, Customer, CustomerId, CustomerView, Decision, Policy, Preferences, Proposal,
//!     Purpose, RuleId,
//! };
//!
//! let customer = Customer {
//!     id: CustomerId(1),
//!     external_id: "c-1".into(),
//!     name: Some("Ann Example".into()),
//!     email: Some("ann@example.com".into()),
//!     phone: None,
//!     time_zone: chrono_tz::Europe::Berlin,
//!     locale: "de-DE".into(),
//!     account: None,
//!     bucket: None,
//! };
//! let view = CustomerView {
//!     customer,
//!     preferences: Preferences::default(),
//!     contacts: vec![],
//!     account_contacts: vec![],
//!     signals: vec![],
//!     cases: vec![],
//!     suppressions: vec![],
//! };
//! let newsletter = Proposal::new(CustomerId(1), Channel::EMAIL, Purpose::Value);
//! let policy = Policy::default();
//!
//! // 10:00 in Berlin: inside the default contact hours of 08:00 to 20:00.
//! let morning = Utc.with_ymd_and_hms(2026, 6, 10, 8, 0, 0).unwrap();
//! assert!(matches!(decide(&newsletter, &view, &policy, morning), Decision::Approve(_)));
//!
//! // 22:00 in Berlin: deferred to 08:00 local time the next morning.
//! let night = Utc.with_ymd_and_hms(2026, 6, 10, 20, 0, 0).unwrap();
//! let decision = tact_domain::decide(&newsletter, &view, &policy, night);
//! assert_eq!(decision.until(), Some(Utc.with_ymd_and_hms(2026, 6, 11, 6, 0, 0).unwrap()));
//! assert_eq!(decision.reasons()[0].rule, RuleId::QuietHours);
//! # use tact_domain::decide;
//! ```

#![warn(missing_docs)]

mod bucket;
mod counting;
mod customer;
mod decision;
mod engine;
mod history;
mod ids;
mod name;
mod plan;
mod policy;
mod policy_toml;
mod preferences;
mod rules;
#[cfg(test)]
mod testing;
mod time;
mod zone;

pub use bucket::{BucketThresholds, assign_bucket};
pub use customer::{Bucket, Customer};
pub use decision::{Approval, Content, Decision, Proposal, Purpose, Reason, RuleId};
pub use history::{CareCase, Contact, Outcome, Signal, SignalKind, Suppression, SuppressionReason};
pub use ids::{AccountId, CampaignId, CustomerId, DeliveryId};
pub use name::{Channel, Topic};
pub use plan::plan;
pub use policy::{
    AccountCaps, BucketCadences, IgnoredRun, NegativeBackoff, Policy, Reserved, SalesShare,
};
pub use preferences::{Actor, ConsentChange, ConsentMark, ConsentSource, Preferences};
pub use time::{CalendarUnit, Limit, LocalWindow, Period, Span};

use chrono::{DateTime, Utc};

/// Everything the rules need to know about one customer.
///
/// Storage loads it with only the history that [`Policy::lookback`] asks for. Contacts and
/// signals are sorted by time, oldest first, and none lies after the decision time.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerView {
    /// The customer.
    pub customer: Customer,
    /// Their stated wishes.
    pub preferences: Preferences,
    /// Their contacts, oldest first.
    pub contacts: Vec<Contact>,
    /// Contacts with other people of the same account, oldest first.
    pub account_contacts: Vec<Contact>,
    /// Their signals, oldest first.
    pub signals: Vec<Signal>,
    /// Their care cases.
    pub cases: Vec<CareCase>,
    /// Their suppressed addresses.
    pub suppressions: Vec<Suppression>,
}

/// Errors of the domain: invalid names, spans and policies, and consent changes that are
/// not allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel or topic name is invalid.
    #[error(
        "invalid {kind} name {value:?}: use 1 to 64 lower-case ASCII letters, digits, '_' or '-'"
    )]
    InvalidName {
        /// `channel` or `topic`.
        kind: &'static str,
        /// The rejected name (at most 80 characters of it).
        value: String,
    },
    /// A span of time is invalid.
    #[error("invalid span {value:?}: write a whole number and a unit s, m, h, d or w, as in 30d")]
    InvalidSpan {
        /// The rejected text.
        value: String,
    },
    /// A policy key has an invalid value.
    #[error("invalid policy value for `{key}` ({value}): {reason}")]
    InvalidPolicy {
        /// The dotted key, such as `purpose_caps.sales.max`.
        key: String,
        /// The rejected value as written.
        value: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A consent change would undo an opt-out that only the customer may undo.
    #[error(
        "{setting} was set by the customer at {}; only the customer can change it",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    ConsentLocked {
        /// What the change tried to lift, such as `marketing opt-out`.
        setting: String,
        /// When the customer set it.
        at: DateTime<Utc>,
    },
}

/// Decides whether the proposed contact may happen at `now`.
///
/// Rules run in a fixed order (see docs/rules.md). A denial from any rule wins over
/// deferrals. A deferral's `until` is the earliest instant at or after `now` at which every
/// rule allows the contact, computed exactly in the customer's time zone. Its reasons are
/// the rules that moved it, in rule order. Transactional proposals are checked only for
/// suppressed addresses, a missing address and staleness. A proposal whose earliest
/// allowed instant is after its `relevant_until` is denied with [`RuleId::Stale`].
/// Contact windows that never overlap the company's hours, or a deferral more than ten
/// years out, are denials too.
pub fn decide(
    proposal: &Proposal,
    view: &CustomerView,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    engine::decide(proposal, view, policy, now)
}

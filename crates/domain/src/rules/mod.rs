//! The rules, each a function from a candidate instant to a verdict, in evaluation order.

mod account;
mod address;
mod cadence;
mod caps;
mod care;
mod consent;
mod content;
mod limits;
mod share;
mod signals;
mod windows;

pub(crate) use limits::stamp;

use std::cell::OnceCell;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::counting::{Room, room_from, window_floor};
use crate::{Bucket, Contact, CustomerView, Limit, Period, Policy, Proposal, Purpose, RuleId};

/// One rule's verdict for one candidate instant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The rule allows the contact at the candidate instant.
    Allow,
    /// The rule allows the contact from `until` on, the earliest such instant at or after the
    /// candidate.
    Defer {
        until: DateTime<Utc>,
        message: String,
    },
    /// The rule forbids the contact at any time.
    Deny(String),
}

impl Verdict {
    /// Returns the deferral instant, for a deferral.
    #[cfg(test)]
    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Verdict::Defer { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// Everything a rule reads, with the values several rules need computed once.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub proposal: &'a Proposal,
    pub view: &'a CustomerView,
    pub policy: &'a Policy,
    pub zone: Tz,
    /// Weight of the proposal's channel in the overall budget.
    pub weight: u32,
    /// Whether rules write their messages. The engine searches without them, then reruns only
    /// the rules named in the decision to write theirs.
    pub explain: bool,
    /// Bucket steps lost to a run of ignored emails, which does not change with the
    /// candidate instant, computed on first use.
    ignored_steps: OnceCell<usize>,
    /// Whether any signal is negative, computed on first use. Most customers have none, and
    /// then the negative-signal rules skip their scans of the signals.
    any_negative: OnceCell<bool>,
}

impl<'a> Context<'a> {
    pub fn new(proposal: &'a Proposal, view: &'a CustomerView, policy: &'a Policy) -> Self {
        Context {
            proposal,
            view,
            policy,
            zone: view.customer.time_zone,
            weight: policy.channel_weight(&proposal.channel),
            explain: true,
            ignored_steps: OnceCell::new(),
            any_negative: OnceCell::new(),
        }
    }

    /// Returns the message when the context explains, and an empty string otherwise.
    pub fn say(&self, message: impl FnOnce() -> String) -> String {
        if self.explain {
            message()
        } else {
            String::new()
        }
    }

    /// Returns a denial, with its message only when the context explains.
    pub fn deny(&self, message: impl FnOnce() -> String) -> Verdict {
        Verdict::Deny(self.say(message))
    }

    /// Contacts that count against budgets: neither failed nor transactional. Oldest first.
    pub fn counted(&self) -> impl DoubleEndedIterator<Item = &'a Contact> + Clone + use<'a> {
        self.view.contacts.iter().filter(|contact| counts(contact))
    }

    /// Counted contacts that can fall inside `period` at `at`, oldest first. Finds the first
    /// by binary search, because contacts are sorted by time.
    pub fn counted_in(
        &self,
        period: Period,
        at: DateTime<Utc>,
    ) -> impl DoubleEndedIterator<Item = &'a Contact> + Clone + use<'a> {
        let floor = window_floor(self.zone, period, at);
        let contacts = &self.view.contacts;
        let first = contacts.partition_point(|contact| contact.at < floor);
        contacts[first..].iter().filter(|contact| counts(contact))
    }

    /// Finds the room in `limit` at `at` for `amount` more, counting the counted contacts
    /// that `keep` selects, each weighing `weight`.
    pub fn room(
        &self,
        limit: &Limit,
        amount: u64,
        at: DateTime<Utc>,
        keep: impl Fn(&Contact) -> bool,
        weight: impl Fn(&Contact) -> u64,
    ) -> Room {
        let floor = window_floor(self.zone, limit.per, at);
        let contacts = &self.view.contacts;
        let first = contacts.partition_point(|contact| contact.at < floor);
        let uses = contacts[first..]
            .iter()
            .filter(|contact| counts(contact) && keep(contact))
            .map(|contact| (contact.at, weight(contact)));
        room_from(self.zone, limit, floor, uses, amount, at)
    }

    /// Returns the channel weight of a contact in the overall budget. Contacts on the
    /// proposal's channel use the weight looked up once, which skips the map search.
    pub fn weight_of(&self, contact: &Contact) -> u64 {
        if contact.channel == self.proposal.channel {
            return u64::from(self.weight);
        }
        u64::from(self.policy.channel_weight(&contact.channel))
    }

    /// Bucket steps lost to a run of ignored emails: 1 or 0.
    pub fn ignored_steps(&self) -> usize {
        *self
            .ignored_steps
            .get_or_init(|| usize::from(signals::ignored_run(self).is_some()))
    }

    /// Tells whether any of the customer's signals is negative.
    pub fn any_negative(&self) -> bool {
        *self.any_negative.get_or_init(|| {
            let signals = &self.view.signals;
            signals.iter().any(|signal| signal.kind.is_negative())
        })
    }

    /// Returns the bucket before lowering: stated, else assigned, else the policy default.
    pub fn base_bucket(&self) -> Bucket {
        self.view
            .preferences
            .bucket
            .or(self.view.customer.bucket)
            .unwrap_or(self.policy.default_bucket)
    }

    /// Tells whether the proposal is a pitch: a sales contact, or any contact carrying an offer.
    pub fn is_pitch(&self) -> bool {
        self.proposal.purpose == Purpose::Sales || self.proposal.offer
    }
}

/// Tells whether a contact counts against budgets: neither failed nor transactional.
fn counts(contact: &Contact) -> bool {
    contact.outcome.counts() && contact.purpose != Purpose::Transactional
}

/// A rule in the evaluation table.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: RuleId,
    /// Whether the rule also checks transactional messages.
    pub transactional: bool,
    /// Whether the verdict is the same at every candidate instant, so the search runs the
    /// rule in its first round only.
    pub fixed: bool,
    pub check: fn(&Context<'_>, DateTime<Utc>) -> Verdict,
}

type Check = fn(&Context<'_>, DateTime<Utc>) -> Verdict;

/// Builds a rule that depends on the candidate instant and skips transactional messages.
const fn rule(id: RuleId, check: Check) -> Rule {
    Rule {
        id,
        transactional: false,
        fixed: false,
        check,
    }
}

/// Builds a rule whose verdict does not depend on the candidate instant.
const fn fixed(id: RuleId, check: Check) -> Rule {
    Rule {
        id,
        transactional: false,
        fixed: true,
        check,
    }
}

/// Builds a fixed rule that also checks transactional messages.
const fn always(id: RuleId, check: Check) -> Rule {
    Rule {
        id,
        transactional: true,
        fixed: true,
        check,
    }
}

/// The rules in evaluation order, which is also the order of [`RuleId`].
pub(crate) const RULES: &[Rule] = &[
    fixed(RuleId::DoNotContact, consent::do_not_contact),
    fixed(RuleId::MarketingOptOut, consent::marketing_opt_out),
    fixed(RuleId::ChannelOptOut, consent::channel_opt_out),
    fixed(RuleId::TopicOptOut, consent::topic_opt_out),
    rule(RuleId::Paused, consent::paused),
    always(RuleId::Suppressed, address::suppressed),
    always(RuleId::NoAddress, address::no_address),
    rule(RuleId::CustomerCadence, cadence::customer_cadence),
    rule(RuleId::ChannelCadence, cadence::channel_cadence),
    rule(RuleId::BucketCadence, cadence::bucket_cadence),
    rule(RuleId::ChannelCap, caps::channel_cap),
    rule(RuleId::PurposeCap, caps::purpose_cap),
    rule(RuleId::OverallCap, caps::overall_cap),
    rule(RuleId::ReservedBudget, caps::reserved_budget),
    rule(RuleId::MinGap, caps::min_gap),
    rule(RuleId::AccountContacts, account::account_contacts),
    rule(RuleId::AccountMinutes, account::account_minutes),
    rule(RuleId::OpenCareCase, care::open_care_case),
    fixed(RuleId::CareOffer, care::care_offer),
    rule(RuleId::DeclinedTopic, care::declined_topic),
    rule(RuleId::NegativeBackoff, signals::negative_backoff),
    rule(RuleId::ContactWindow, windows::contact_window),
    rule(RuleId::QuietHours, windows::quiet_hours),
    rule(RuleId::SalesShare, share::sales_share),
    fixed(RuleId::GenericGreeting, content::generic_greeting),
    fixed(RuleId::Unpersonalised, content::unpersonalised),
];

// The search keeps one bit per rule in a u64.
const _: () = assert!(RULES.len() < 64);

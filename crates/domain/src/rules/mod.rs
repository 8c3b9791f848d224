//! The rules, each a function from a candidate instant to a verdict, in evaluation order.

mod address;
mod consent;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{CustomerView, Policy, Proposal, RuleId};

/// One rule's answer for one candidate instant.
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

/// Everything a rule reads, with the values several rules need computed once.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub proposal: &'a Proposal,
    pub view: &'a CustomerView,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    pub zone: Tz,
}

impl<'a> Context<'a> {
    pub fn new(
        proposal: &'a Proposal,
        view: &'a CustomerView,
        policy: &'a Policy,
        now: DateTime<Utc>,
    ) -> Self {
        Context {
            proposal,
            view,
            policy,
            now,
            zone: view.customer.time_zone,
        }
    }
}

/// A rule in the evaluation table.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: RuleId,
    /// Whether the rule also checks transactional messages.
    pub transactional: bool,
    pub check: fn(&Context<'_>, DateTime<Utc>) -> Verdict,
}

const fn rule(id: RuleId, check: fn(&Context<'_>, DateTime<Utc>) -> Verdict) -> Rule {
    Rule {
        id,
        transactional: false,
        check,
    }
}

const fn always(id: RuleId, check: fn(&Context<'_>, DateTime<Utc>) -> Verdict) -> Rule {
    Rule {
        id,
        transactional: true,
        check,
    }
}

/// The rules in evaluation order, which is also the order of [`RuleId`].
pub(crate) const RULES: &[Rule] = &[
    rule(RuleId::DoNotContact, consent::do_not_contact),
    rule(RuleId::MarketingOptOut, consent::marketing_opt_out),
    rule(RuleId::ChannelOptOut, consent::channel_opt_out),
    rule(RuleId::TopicOptOut, consent::topic_opt_out),
    rule(RuleId::Paused, consent::paused),
    always(RuleId::Suppressed, address::suppressed),
    always(RuleId::NoAddress, address::no_address),
];

//! The decision loop: runs every rule, then moves the candidate time forward until all of
//! them allow the contact.

use chrono::{DateTime, Duration, Utc};

use crate::rules::{Context, RULES, Verdict, stamp};
use crate::{Approval, CustomerView, Decision, Policy, Proposal, Purpose, Reason, RuleId};

/// Rounds of the fixed-point search before the engine gives up and denies. Periodic windows
/// and monotone caps settle within a few rounds; only windows that never overlap use them up.
const MAX_ROUNDS: usize = 64;

/// A deferral further away than this is treated as never.
const HORIZON_DAYS: i64 = 10 * 366;

/// The rules that skip transactional messages, a bit per index into [`RULES`].
const NOT_TRANSACTIONAL: u64 = rule_bits(false);

/// The rules whose verdict does not change with the candidate, a bit per index into [`RULES`].
const FIXED: u64 = rule_bits(true);

/// Collects a bit per rule: the fixed rules when `fixed` is true, else the rules that skip
/// transactional messages.
const fn rule_bits(fixed: bool) -> u64 {
    let mut bits = 0;
    let mut index = 0;
    while index < RULES.len() {
        let rule = &RULES[index];
        let selected = if fixed {
            rule.fixed
        } else {
            !rule.transactional
        };
        if selected {
            bits |= 1 << index;
        }
        index += 1;
    }
    bits
}

pub(crate) fn decide(
    proposal: &Proposal,
    view: &CustomerView,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    if !is_sorted(view) {
        let mut sorted = view.clone();
        sorted.contacts.sort_by_key(|contact| contact.at);
        sorted.signals.sort_by_key(|signal| signal.at);
        return decide(proposal, &sorted, policy, now);
    }
    let mut context = Context::new(proposal, view, policy);
    context.explain = false;
    let search = search(&context, now);

    // Only the rules named in the decision write messages, at the instant they objected.
    context.explain = true;
    let explain = |objections: &[(usize, DateTime<Utc>)]| -> Vec<Reason> {
        let mut reasons: Vec<Reason> = objections
            .iter()
            .map(|&(index, at)| reason(&context, index, at))
            .collect();
        reasons.sort_by_key(|reason| reason.rule);
        reasons
    };
    match search {
        Search::Denied(objections) => Decision::Deny {
            reasons: explain(&objections),
        },
        Search::Unsettled(objections) => Decision::Deny {
            reasons: explain(&objections),
        },
        Search::Settled { at, moved } => {
            if let Some(deadline) = proposal.relevant_until.filter(|deadline| at > *deadline) {
                let mut reasons = explain(&moved);
                reasons.push(stale_reason(at, deadline, now));
                return Decision::Deny { reasons };
            }
            if at == now {
                let ttl = policy.approval_ttl.duration();
                return Decision::Approve(Approval::new(proposal.clone(), now, ttl));
            }
            Decision::Defer {
                until: at,
                reasons: explain(&moved),
            }
        }
    }
}

/// Tells whether contacts and signals are oldest first, as the rules' searches assume.
fn is_sorted(view: &CustomerView) -> bool {
    view.contacts.is_sorted_by_key(|contact| contact.at)
        && view.signals.is_sorted_by_key(|signal| signal.at)
}

/// The outcome of the search, with objections as (index into [`RULES`], instant).
enum Search {
    /// Some rules deny.
    Denied(Vec<(usize, DateTime<Utc>)>),
    /// Every rule allows the contact at `at`; `moved` are the rules that moved it there.
    Settled {
        at: DateTime<Utc>,
        moved: Vec<(usize, DateTime<Utc>)>,
    },
    /// No instant within the round and horizon limits satisfies every rule.
    Unsettled(Vec<(usize, DateTime<Utc>)>),
}

/// Moves the candidate instant to the latest earliest-allowed instant of all rules until
/// every rule allows it. Each rule returns an instant at or after the candidate, so the candidate
/// never moves back, and the first candidate every rule allows is the earliest such instant.
fn search(context: &Context<'_>, now: DateTime<Utc>) -> Search {
    let transactional = context.proposal.purpose == Purpose::Transactional;
    let mut candidate = now;
    let mut moved: Vec<(usize, DateTime<Utc>)> = Vec::new();
    // Rules skipped in the first round and in later rounds, a bit per rule index.
    let first = if transactional { NOT_TRANSACTIONAL } else { 0 };
    let later = first | FIXED;
    // A bit per rule index; the table has fewer than 64 rules.
    let mut movers: u64 = 0;

    for round in 0..MAX_ROUNDS {
        let mut latest = candidate;
        // The rules that moved the candidate here deferred to exactly this instant, which
        // by the rules' contract they allow, so this round skips them.
        let settled = movers;
        movers = 0;
        let mut denials: Vec<(usize, DateTime<Utc>)> = Vec::new();
        let skipped = if round == 0 { first } else { later | settled };
        for (index, rule) in RULES.iter().enumerate() {
            if skipped & (1 << index) != 0 {
                if settled & (1 << index) != 0 {
                    debug_assert_eq!((rule.check)(context, candidate), Verdict::Allow);
                }
                continue;
            }
            match (rule.check)(context, candidate) {
                Verdict::Allow => {}
                Verdict::Deny(_) => denials.push((index, candidate)),
                Verdict::Defer { until, .. } if until > candidate && until >= latest => {
                    if until > latest {
                        latest = until;
                        movers = 0;
                    }
                    movers |= 1 << index;
                }
                Verdict::Defer { .. } => {}
            }
        }
        if !denials.is_empty() {
            return Search::Denied(denials);
        }
        for index in (0..RULES.len()).filter(|index| movers & (1 << index) != 0) {
            if !moved.iter().any(|(known, _)| *known == index) {
                moved.push((index, candidate));
            }
        }
        if latest == candidate {
            return Search::Settled {
                at: candidate,
                moved,
            };
        }
        candidate = latest;
        if candidate - now > Duration::days(HORIZON_DAYS) {
            break;
        }
    }
    Search::Unsettled(moved)
}

/// Reruns rule `index` at `at` for its reason, with the message.
fn reason(context: &Context<'_>, index: usize, at: DateTime<Utc>) -> Reason {
    let rule = &RULES[index];
    let message = match (rule.check)(context, at) {
        Verdict::Deny(message) | Verdict::Defer { message, .. } => message,
        Verdict::Allow => String::new(),
    };
    Reason {
        rule: rule.id,
        message,
    }
}

fn stale_reason(candidate: DateTime<Utc>, deadline: DateTime<Utc>, now: DateTime<Utc>) -> Reason {
    let message = if deadline < now {
        format!(
            "the proposal was relevant only until {}, which has passed",
            deadline.to_rfc3339()
        )
    } else {
        format!(
            "the earliest allowed time {} is after the proposal's deadline {}",
            stamp(candidate),
            stamp(deadline)
        )
    };
    Reason {
        rule: RuleId::Stale,
        message,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

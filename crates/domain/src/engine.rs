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

pub(crate) fn decide(
    proposal: &Proposal,
    view: &CustomerView,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    let context = Context::new(proposal, view, policy);
    let transactional = proposal.purpose == Purpose::Transactional;
    let mut candidate = now;
    let mut pushed: Vec<Reason> = Vec::new();
    let mut converged = false;

    for _ in 0..MAX_ROUNDS {
        let mut latest = candidate;
        let mut movers: Vec<Reason> = Vec::new();
        let mut denials: Vec<Reason> = Vec::new();
        for rule in RULES {
            if transactional && !rule.transactional {
                continue;
            }
            match (rule.check)(&context, candidate) {
                Verdict::Allow => {}
                Verdict::Deny(message) => denials.push(Reason {
                    rule: rule.id,
                    message,
                }),
                Verdict::Defer { until, message } if until > candidate && until >= latest => {
                    if until > latest {
                        latest = until;
                        movers.clear();
                    }
                    movers.push(Reason {
                        rule: rule.id,
                        message,
                    });
                }
                Verdict::Defer { .. } => {}
            }
        }
        for reason in movers {
            if !pushed.iter().any(|known| known.rule == reason.rule) {
                pushed.push(reason);
            }
        }
        if !denials.is_empty() {
            return Decision::Deny { reasons: denials };
        }
        if latest == candidate {
            converged = true;
            break;
        }
        candidate = latest;
        if candidate - now > Duration::days(HORIZON_DAYS) {
            break;
        }
    }
    pushed.sort_by_key(|reason| reason.rule);

    if !converged {
        return Decision::Deny { reasons: pushed };
    }
    if let Some(deadline) = proposal.relevant_until {
        if candidate > deadline {
            pushed.push(stale_reason(candidate, deadline, now));
            return Decision::Deny { reasons: pushed };
        }
    }
    if candidate == now {
        let ttl = policy.approval_ttl.duration();
        return Decision::Approve(Approval::new(proposal.clone(), now, ttl));
    }
    Decision::Defer {
        until: candidate,
        reasons: pushed,
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

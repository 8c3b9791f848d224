//! The decision loop: runs every rule, then moves the candidate time forward until all of
//! them allow the contact.

use chrono::{DateTime, Duration, Utc};

use crate::rules::{Context, RULES, Verdict};
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
                Verdict::Defer { until, message } => {
                    if until > candidate {
                        latest = latest.max(until);
                        if !pushed.iter().any(|reason| reason.rule == rule.id) {
                            pushed.push(Reason {
                                rule: rule.id,
                                message,
                            });
                        }
                    }
                }
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
            candidate.to_rfc3339(),
            deadline.to_rfc3339()
        )
    };
    Reason {
        rule: RuleId::Stale,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{Actor, Channel, ConsentMark, ConsentSource, Suppression, SuppressionReason};

    fn mark() -> ConsentMark {
        ConsentMark {
            actor: Actor::Customer,
            source: ConsentSource::Link,
            at: utc(2026, 1, 5, 9, 0),
        }
    }

    #[test]
    fn empty_history_approves() {
        let now = utc(2026, 6, 10, 10, 0);
        let sales = proposal(Channel::EMAIL, Purpose::Sales);

        let decision = decide(&sales, &view(), &Policy::default(), now);

        let Decision::Approve(approval) = decision else {
            panic!("expected an approval, got {decision:?}");
        };
        assert_eq!(approval.proposal(), &sales);
        assert_eq!(approval.decided_at(), now);
        assert_eq!(approval.expires_at(), utc(2026, 6, 10, 10, 15));
    }

    #[test]
    fn marketing_opt_out_denies_sales() {
        let mut customer = view();
        customer.preferences.marketing_opt_out = Some(mark());
        let sales = proposal(Channel::EMAIL, Purpose::Sales);

        let decision = decide(
            &sales,
            &customer,
            &Policy::default(),
            utc(2026, 6, 10, 10, 0),
        );

        let rules: Vec<RuleId> = decision.reasons().iter().map(|r| r.rule).collect();
        assert_eq!(decision.kind(), "deny");
        assert_eq!(rules, [RuleId::MarketingOptOut]);
    }

    #[test]
    fn suppression_denies_transactional() {
        let mut customer = view();
        customer.suppressions.push(Suppression {
            channel: Channel::EMAIL,
            reason: SuppressionReason::HardBounce,
            at: utc(2026, 2, 1, 0, 0),
        });
        let receipt = proposal(Channel::EMAIL, Purpose::Transactional);

        let decision = decide(
            &receipt,
            &customer,
            &Policy::default(),
            utc(2026, 6, 10, 10, 0),
        );

        let rules: Vec<RuleId> = decision.reasons().iter().map(|r| r.rule).collect();
        assert_eq!(decision.kind(), "deny");
        assert_eq!(rules, [RuleId::Suppressed]);
    }
}

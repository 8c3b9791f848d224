//! Batch planning: several proposals competing for one customer's budget.

use chrono::{DateTime, Utc};

use crate::{CustomerView, Decision, Policy, Proposal, decide};

/// Decides competing proposals for the customer of `view`, highest priority first (ties in
/// input order), and returns the decisions in input order.
///
/// Each approval is booked into `view.contacts` as a [`crate::Outcome::Pending`] contact at `now`,
/// so it counts against the budgets of the proposals decided after it, and the caller can
/// store the same contacts. Every proposal must be for `view.customer`; to plan for many
/// customers, group the proposals by customer and call this once per customer.
pub fn plan(
    proposals: &[Proposal],
    view: &mut CustomerView,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut order: Vec<usize> = (0..proposals.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(proposals[index].priority));

    let mut decisions: Vec<Option<Decision>> = vec![None; proposals.len()];
    for index in order {
        let proposal = &proposals[index];
        let decision = decide(proposal, view, policy, now);
        if let Decision::Approve(_) = decision {
            view.contacts.push(proposal.booking(now));
        }
        decisions[index] = Some(decision);
    }
    decisions.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{Channel, Outcome, Purpose, RuleId};

    #[test]
    fn plan_honours_priority_order() {
        // The minimum gap of 24 hours lets only one of three proposals through now: the one
        // with the highest priority, even though it comes last. The others wait a day.
        let mut customer = view();
        let now = utc(2026, 6, 10, 10, 0);
        let newsletter = proposal(Channel::EMAIL, Purpose::Value);
        let mut survey = proposal(Channel::EMAIL, Purpose::Survey);
        survey.priority = 1;
        let mut care = proposal(Channel::PHONE, Purpose::Care);
        care.priority = 5;

        let decisions = plan(
            &[newsletter, survey, care],
            &mut customer,
            &Policy::default(),
            now,
        );

        let kinds: Vec<&str> = decisions.iter().map(Decision::kind).collect();
        assert_eq!(kinds, ["defer", "defer", "approve"]);
        let rules: Vec<RuleId> = decisions[0].reasons().iter().map(|r| r.rule).collect();
        assert_eq!(decisions[0].until(), Some(utc(2026, 6, 11, 10, 0)));
        assert_eq!(rules, [RuleId::MinGap]);
        assert_eq!(customer.contacts.len(), 1);
        assert_eq!(customer.contacts[0].channel, Channel::PHONE);
        assert_eq!(customer.contacts[0].outcome, Outcome::Pending);
    }

    #[test]
    fn plan_ties_keep_input_order() {
        let mut customer = view();
        let now = utc(2026, 6, 10, 10, 0);
        let first = proposal(Channel::EMAIL, Purpose::Value);
        let second = proposal(Channel::SMS, Purpose::Value);

        let decisions = plan(&[first, second], &mut customer, &Policy::default(), now);

        let kinds: Vec<&str> = decisions.iter().map(Decision::kind).collect();
        assert_eq!(kinds, ["approve", "defer"]);
    }
}

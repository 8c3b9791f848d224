//! Caps shared by all people of one business account.

use chrono::{DateTime, Utc};

use super::limits::verdict;
use super::{Context, Verdict};
use crate::counting::room;
use crate::{Contact, Purpose};

/// Limits contacts with anyone at the customer's account.
pub(crate) fn account_contacts(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(limit) = context.policy.account.contacts else {
        return Verdict::Allow;
    };
    if context.view.customer.account.is_none() {
        return Verdict::Allow;
    }
    let uses: Vec<_> = account_history(context)
        .into_iter()
        .map(|contact| (contact.at, 1))
        .collect();
    let found = room(context.zone, &limit, uses.into_iter(), 1, at);
    verdict(context, found, &limit, 1, "contact", || {
        "the account's limit".to_owned()
    })
}

/// Limits call minutes with anyone at the customer's account. Each call counts in whole
/// minutes, rounded up, and the proposal's expected `duration_s` counts too.
pub(crate) fn account_minutes(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(limit) = context.policy.account.call_minutes else {
        return Verdict::Allow;
    };
    let minutes = whole_minutes(context.proposal.duration_s);
    if context.view.customer.account.is_none() || minutes == 0 {
        return Verdict::Allow;
    }
    let uses: Vec<_> = account_history(context)
        .into_iter()
        .filter(|contact| contact.duration_s > 0)
        .map(|contact| (contact.at, whole_minutes(contact.duration_s)))
        .collect();
    let found = room(context.zone, &limit, uses.into_iter(), minutes, at);
    let owner = || "the account's limit".to_owned();
    verdict(context, found, &limit, minutes, "call minute", owner)
}

fn whole_minutes(seconds: u32) -> u64 {
    u64::from(seconds).div_ceil(60)
}

/// Collects the customer's and their colleagues' counted contacts, oldest first.
fn account_history<'a>(context: &'a Context<'_>) -> Vec<&'a Contact> {
    let colleagues = context.view.account_contacts.iter();
    let mut contacts: Vec<&Contact> = context
        .view
        .contacts
        .iter()
        .chain(colleagues)
        .filter(|contact| contact.outcome.counts() && contact.purpose != Purpose::Transactional)
        .collect();
    contacts.sort_by_key(|contact| contact.at);
    contacts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, proposal, utc, view};
    use crate::{AccountId, Channel, CustomerId, Limit, Period, Policy, Span};

    fn calls_policy(max: u32) -> Policy {
        let mut policy = Policy::default();
        policy.account.call_minutes = Some(Limit {
            max,
            per: Period::Rolling(Span::days(7)),
        });
        policy.account.contacts = Some(Limit {
            max: 2,
            per: Period::Rolling(Span::days(7)),
        });
        policy
    }

    #[test]
    fn account_minutes_round_up() {
        // A colleague's 61-second call counts 2 minutes of the 10 allowed. So an 8-minute
        // call fits, and a call of 8 minutes and 1 second (9 minutes) waits.
        let mut customer = view();
        customer.customer.account = Some(AccountId(7));
        let mut colleague_call = contact(Channel::PHONE, Purpose::Sales, utc(2026, 6, 24, 9, 0));
        colleague_call.customer = CustomerId(2);
        colleague_call.duration_s = 61;
        customer.account_contacts.push(colleague_call);
        let policy = calls_policy(10);
        let now = utc(2026, 6, 25, 12, 0);
        let mut fits = proposal(Channel::PHONE, Purpose::Sales);
        fits.duration_s = 480;
        let mut waits = fits.clone();
        waits.duration_s = 481;

        let fits_result = account_minutes(&Context::new(&fits, &customer, &policy), now);
        let waits_result = account_minutes(&Context::new(&waits, &customer, &policy), now);

        let message = "2 call minutes in the last 7 days and this contact needs 9 call \
                       minutes; the account's limit is 10 per 7 days";
        assert_eq!(fits_result, Verdict::Allow);
        assert_eq!(
            waits_result,
            Verdict::Defer {
                until: utc(2026, 7, 1, 9, 0),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn account_contacts_shared_by_people() {
        let mut customer = view();
        customer.customer.account = Some(AccountId(7));
        customer.contacts.push(contact(
            Channel::EMAIL,
            Purpose::Value,
            utc(2026, 6, 20, 9, 0),
        ));
        let mut colleague = contact(Channel::EMAIL, Purpose::Sales, utc(2026, 6, 22, 9, 0));
        colleague.customer = CustomerId(2);
        customer.account_contacts.push(colleague);
        let policy = calls_policy(10);
        let now = utc(2026, 6, 25, 12, 0);
        let value = proposal(Channel::EMAIL, Purpose::Value);

        let result = account_contacts(&Context::new(&value, &customer, &policy), now);

        let message = "2 contacts in the last 7 days; the account's limit is 2 per 7 days";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 6, 27, 9, 0),
                message: message.to_owned()
            }
        );
    }
}

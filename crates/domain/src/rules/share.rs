//! Favouring value over promotion: only a share of recent contacts may be sales.

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::{Period, Purpose};

/// Holds back a sales contact while sales make up too much of the recent contacts.
///
/// With `max_share` s of the last `over_last` n contacts within `within`, the proposal is one
/// of the n, so it is allowed while fewer than `floor(s * n)` of the other `n - 1` most
/// recent contacts within `within` are sales. Contacts only leave that set by ageing out of
/// `within`, so the earliest allowed instant is when enough of its oldest sales have aged
/// out. A share that allows no sales at all (`floor(s * n) == 0`) denies.
pub(crate) fn sales_share(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(share) = &context.policy.sales_share else {
        return Verdict::Allow;
    };
    if context.proposal.purpose != Purpose::Sales || share.over_last == 0 {
        return Verdict::Allow;
    }
    let allowed = (share.max_share * f64::from(share.over_last)).floor() as usize;
    let within = share.within.duration();

    if allowed == 0 {
        return context.deny(|| {
            format!(
                "sales may be at most {} of the last {} contacts, which allows none",
                share.max_share, share.over_last
            )
        });
    }
    let cutoff = at - within;
    let recent: Vec<_> = context
        .counted_in(Period::Rolling(share.within), at)
        .filter(|contact| contact.at > cutoff)
        .collect();

    let others = recent.len().saturating_sub(share.over_last as usize - 1);
    let considered = &recent[others..];
    let sales = considered
        .iter()
        .filter(|contact| contact.purpose == Purpose::Sales)
        .count();
    if sales < allowed {
        return Verdict::Allow;
    }

    let excess = sales + 1 - allowed;
    let ages_out = considered
        .iter()
        .filter(|contact| contact.purpose == Purpose::Sales)
        .nth(excess - 1)
        .map(|contact| contact.at + within);
    match ages_out {
        Some(until) => Verdict::Defer {
            until,
            message: context.say(|| {
                format!(
                    "{sales} of the last {} contacts within {} were sales; at most {allowed} of {} \
                 may be, this one included",
                    considered.len(),
                    share.within,
                    share.over_last
                )
            }),
        },
        None => Verdict::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, proposal, utc, view};
    use crate::{Channel, Policy, SalesShare, Span};
    use chrono::Duration;

    #[test]
    fn share_waits_for_oldest_sale() {
        // Half of the last 4: with sales on May 1 and May 3 among the 3 most recent, a third
        // sale waits until the May 1 sale is 30 days old.
        let mut customer = view();
        let entries = [
            (Purpose::Value, 1),
            (Purpose::Sales, 1),
            (Purpose::Value, 2),
            (Purpose::Sales, 3),
        ];
        for (purpose, day) in entries {
            customer
                .contacts
                .push(contact(Channel::EMAIL, purpose, utc(2026, 5, day, 9, 0)));
        }
        let policy = Policy {
            sales_share: Some(SalesShare {
                max_share: 0.5,
                over_last: 4,
                within: Span::days(30),
            }),
            ..Policy::default()
        };
        let sales = proposal(Channel::EMAIL, Purpose::Sales);
        let now = utc(2026, 5, 10, 9, 0);

        let result = sales_share(&Context::new(&sales, &customer, &policy), now);

        let message = "2 of the last 3 contacts within 30 days were sales; at most 2 of 4 may \
                       be, this one included";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 5, 1, 9, 0) + Duration::days(30),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn share_ignores_non_sales() {
        let mut customer = view();
        customer.contacts.push(contact(
            Channel::EMAIL,
            Purpose::Sales,
            utc(2026, 5, 1, 9, 0),
        ));
        let policy = Policy {
            sales_share: Some(SalesShare {
                max_share: 0.0,
                over_last: 4,
                within: Span::days(30),
            }),
            ..Policy::default()
        };
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let now = utc(2026, 5, 10, 9, 0);

        assert_eq!(
            sales_share(&Context::new(&value, &customer, &policy), now),
            Verdict::Allow
        );
    }
}

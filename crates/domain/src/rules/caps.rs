//! Company caps: per channel, per purpose, overall by channel weight, the reserved part of
//! the overall budget, and the minimum gap between contacts.

use chrono::{DateTime, Utc};

use super::limits::{counted, period_phrase, stamp, verdict};
use super::{Context, Verdict};
use crate::counting::Room;
use crate::{Contact, Limit, Purpose};

/// Limits contacts on the proposal's channel to the company cap for that channel.
pub(crate) fn channel_cap(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let channel = &context.proposal.channel;
    let Some(limit) = context.policy.channel_caps.get(channel) else {
        return Verdict::Allow;
    };
    let found = context.room(limit, 1, at, |contact| contact.channel == *channel, |_| 1);
    let owner = || format!("the company limit on {channel}");
    verdict(context, found, limit, 1, "contact", owner)
}

/// Limits contacts of the proposal's purpose to the company cap for that purpose.
pub(crate) fn purpose_cap(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let purpose = context.proposal.purpose;
    let Some(limit) = context.policy.purpose_caps.get(&purpose) else {
        return Verdict::Allow;
    };
    let found = context.room(limit, 1, at, |contact| contact.purpose == purpose, |_| 1);
    let owner = || format!("the company limit on {purpose} contacts");
    verdict(context, found, limit, 1, "contact", owner)
}

/// Limits the weighted sum of contacts across all channels to the overall budget.
pub(crate) fn overall_cap(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(limit) = context.policy.overall else {
        return Verdict::Allow;
    };
    let weight = u64::from(context.weight);
    let found = context.room(
        &limit,
        weight,
        at,
        |_| true,
        |contact| context.weight_of(contact),
    );
    let owner = || "the company limit across channels".to_owned();
    verdict(context, found, &limit, weight, "weight unit", owner)
}

/// Keeps `reserved.care_and_value` weight units of the overall budget away from sales and
/// survey contacts.
pub(crate) fn reserved_budget(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let reserved = context.policy.reserved.care_and_value;
    let purpose = context.proposal.purpose;
    let Some(overall) = context.policy.overall else {
        return Verdict::Allow;
    };
    if reserved == 0 || !matches!(purpose, Purpose::Sales | Purpose::Survey) {
        return Verdict::Allow;
    }
    let usable = Limit {
        max: overall.max.saturating_sub(reserved),
        per: overall.per,
    };
    let weight = u64::from(context.weight);
    let share = || {
        format!(
            "{purpose} contacts may use {} of the overall {}, because {} are kept for care and value",
            usable.max,
            overall,
            counted(u64::from(reserved), "weight unit")
        )
    };
    let weigh = |contact: &Contact| context.weight_of(contact);
    match context.room(&usable, weight, at, |_| true, weigh) {
        Room::Fits { .. } => Verdict::Allow,
        Room::From { at: until, used } => Verdict::Defer {
            until,
            message: context.say(|| {
                format!(
                    "{} {}; {}",
                    counted(used, "weight unit"),
                    period_phrase(overall.per),
                    share()
                )
            }),
        },
        Room::Never { .. } => context.deny(|| {
            format!(
                "this contact needs {}; {}",
                counted(weight, "weight unit"),
                share()
            )
        }),
    }
}

/// Keeps at least `min_gap` between any two non-transactional contacts.
pub(crate) fn min_gap(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(gap) = context.policy.min_gap else {
        return Verdict::Allow;
    };
    let Some(last) = context.counted().next_back() else {
        return Verdict::Allow;
    };
    let until = last.at + gap.duration();
    if until <= at {
        return Verdict::Allow;
    }
    Verdict::Defer {
        until,
        message: context.say(|| {
            format!(
                "the last contact was at {}; contacts must be at least {gap} apart",
                stamp(last.at)
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, proposal, utc, view};
    use crate::{Channel, CustomerView, Period, Policy, Span};
    use chrono::Duration;

    fn history(entries: &[(Channel, Purpose, u32)]) -> CustomerView {
        let mut customer = view();
        for (channel, purpose, day) in entries {
            let at = utc(2026, 6, *day, 9, 0);
            customer
                .contacts
                .push(contact(channel.clone(), *purpose, at));
        }
        customer
    }

    #[test]
    fn overall_cap_counts_weights() {
        // Calls weigh 3, email 1: 3 + 3 + 1 = 7 of 8, so a call (3) waits until the first
        // call (June 2) leaves the 30-day window.
        let customer = history(&[
            (Channel::PHONE, Purpose::Care, 2),
            (Channel::PHONE, Purpose::Care, 10),
            (Channel::EMAIL, Purpose::Value, 20),
        ]);
        let policy = Policy::default();
        let call = proposal(Channel::PHONE, Purpose::Care);
        let now = utc(2026, 6, 25, 12, 0);
        let context = Context::new(&call, &customer, &policy);

        let result = overall_cap(&context, now);

        let message = "7 weight units in the last 30 days and this contact needs 3 weight \
                       units; the company limit across channels is 8 per 30 days";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 7, 2, 9, 0),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn purpose_cap_zero_denies() {
        let customer = view();
        let mut policy = Policy::default();
        let never = Limit {
            max: 0,
            per: Period::Rolling(Span::days(30)),
        };
        policy.purpose_caps.insert(Purpose::Survey, never);
        let survey = proposal(Channel::EMAIL, Purpose::Survey);
        let now = utc(2026, 6, 25, 12, 0);
        let context = Context::new(&survey, &customer, &policy);

        let result = purpose_cap(&context, now);

        let message = "the company limit on survey contacts is 0 (never)";
        assert_eq!(result, Verdict::Deny(message.to_owned()));
    }

    #[test]
    fn reserved_budget_holds_back_sales() {
        // 6 of 8 units used; sales may use only 6, care may still use the other 2.
        let customer = history(&[
            (Channel::PHONE, Purpose::Care, 2),
            (Channel::PHONE, Purpose::Care, 10),
        ]);
        let policy = Policy::default();
        let now = utc(2026, 6, 25, 12, 0);
        let sales = proposal(Channel::EMAIL, Purpose::Sales);
        let care = proposal(Channel::EMAIL, Purpose::Care);

        let sales_result = reserved_budget(&Context::new(&sales, &customer, &policy), now);
        let care_result = reserved_budget(&Context::new(&care, &customer, &policy), now);

        let message = "6 weight units in the last 30 days; sales contacts may use 6 of the \
                       overall 8 per 30 days, because 2 weight units are kept for care and value";
        assert_eq!(
            sales_result,
            Verdict::Defer {
                until: utc(2026, 7, 2, 9, 0),
                message: message.to_owned()
            }
        );
        assert_eq!(care_result, Verdict::Allow);
    }

    #[test]
    fn min_gap_defers_one_day() {
        let customer = history(&[(Channel::EMAIL, Purpose::Value, 25)]);
        let policy = Policy::default();
        let value = proposal(Channel::SMS, Purpose::Value);
        let now = utc(2026, 6, 25, 12, 0);
        let context = Context::new(&value, &customer, &policy);

        let result = min_gap(&context, now);

        assert_eq!(
            result.until(),
            Some(utc(2026, 6, 25, 9, 0) + Duration::days(1))
        );
    }

    #[test]
    fn failed_contacts_never_count() {
        let mut customer = history(&[(Channel::EMAIL, Purpose::Value, 25)]);
        customer.contacts[0].outcome = crate::Outcome::Failed;
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let now = utc(2026, 6, 25, 12, 0);
        let context = Context::new(&value, &customer, &policy);

        assert_eq!(min_gap(&context, now), Verdict::Allow);
    }
}

//! The customer's own cadence, else the cadence of their bucket.

use chrono::{DateTime, Utc};

use super::limits::{message, verdict, write_counted, write_period_phrase};
use super::{Context, Verdict, signals};
use crate::counting::Room;
use crate::time::write_limit;
use crate::{Bucket, Limit};

/// Limits all non-transactional contacts to the customer's own overall cadence.
pub(crate) fn customer_cadence(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let Some(limit) = context.view.preferences.cadence else {
        return Verdict::Allow;
    };
    let found = context.room(&limit, 1, at, |_| true, |_| 1);
    verdict(context, found, &limit, 1, "contact", || {
        "the customer's limit".to_owned()
    })
}

/// Limits contacts on the proposal's channel to the customer's cadence for that channel.
pub(crate) fn channel_cadence(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let channel = &context.proposal.channel;
    let Some(limit) = context.view.preferences.channel_cadence.get(channel) else {
        return Verdict::Allow;
    };
    let found = context.room(limit, 1, at, |contact| contact.channel == *channel, |_| 1);
    let owner = || format!("the customer's limit on {channel}");
    verdict(context, found, limit, 1, "contact", owner)
}

/// Limits marketing contacts (sales, value and survey) to the cadence of the customer's
/// effective bucket, when the customer stated no overall cadence of their own.
///
/// Care contacts neither wait for the bucket nor use it up, so a support reply is not held
/// back by last week's newsletter. They still count against the caps and the minimum gap.
///
/// The effective bucket is the stated one, else the assigned one, else the policy default,
/// lowered one step by a run of ignored emails and by repeated negative signals. Negative
/// signals leave the repeat window over time, so the bucket can rise again later. The
/// search walks those steps, which keeps the deferral the earliest allowed instant.
pub(crate) fn bucket_cadence(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    let marketing = context.proposal.purpose.is_marketing();
    if context.view.preferences.cadence.is_some() || !marketing {
        return Verdict::Allow;
    }
    let base = context.base_bucket();
    let ignored_steps = context.ignored_steps();
    let mut start = at;
    loop {
        let negative_steps = signals::negative_steps(context, start);
        let bucket = base.lowered(ignored_steps + negative_steps);
        let limit = context.policy.bucket_cadence(bucket);
        let next_change = signals::next_negative_expiry(context, start);
        let room = marketing_room(context, &limit, start);
        let earliest = match room {
            Room::Fits { .. } => Some(start),
            Room::From { at: from, .. } => Some(from),
            Room::Never { .. } => None,
        };
        match (earliest, next_change) {
            (Some(from), Some(change)) if from >= change => start = change,
            (None, Some(change)) => start = change,
            (Some(from), _) if from == at => return Verdict::Allow,
            (Some(from), _) => {
                // The message counts the contacts at `at` under the final bucket's limit.
                let used = || {
                    if start == at {
                        used_in(room)
                    } else {
                        used_in(marketing_room(context, &limit, at))
                    }
                };
                return deferral(context, base, bucket, &limit, from, used);
            }
            (None, None) => {
                return context.deny(|| format!("the {bucket} bucket's limit is 0 (never)"));
            }
        }
    }
}

/// Finds the room for one more contact in `limit` at `at`, counting sales, value and
/// survey contacts only.
fn marketing_room(context: &Context<'_>, limit: &Limit, at: DateTime<Utc>) -> Room {
    context.room(
        limit,
        1,
        at,
        |contact| contact.purpose.is_marketing(),
        |_| 1,
    )
}

fn used_in(room: Room) -> u64 {
    match room {
        Room::Fits { used } | Room::From { used, .. } | Room::Never { used } => used,
    }
}

fn deferral(
    context: &Context<'_>,
    base: Bucket,
    bucket: Bucket,
    limit: &Limit,
    until: DateTime<Utc>,
    used: impl FnOnce() -> u64,
) -> Verdict {
    let message = context.say(|| {
        message(|out| {
            write_counted(out, used(), "contact")?;
            out.push(' ');
            write_period_phrase(out, limit.per)?;
            out.push_str("; the customer's ");
            out.push_str(bucket.as_str());
            out.push_str(" bucket");
            if bucket != base {
                out.push_str(", lowered from ");
                out.push_str(base.as_str());
                out.push_str(" after ignored emails or negative signals,");
            }
            out.push_str(" allows ");
            write_limit(out, limit)
        })
    });
    Verdict::Defer { until, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, proposal, utc, view};
    use crate::{Channel, Period, Policy, Purpose, Signal, SignalKind, Span};
    use chrono::Duration;

    #[test]
    fn customer_cadence_defers_to_slot() {
        let now = utc(2026, 6, 30, 12, 0);
        let mut customer = view();
        customer.preferences.cadence = Some(Limit {
            max: 2,
            per: Period::Rolling(Span::days(30)),
        });
        for day in [5, 20] {
            customer.contacts.push(contact(
                Channel::EMAIL,
                Purpose::Value,
                utc(2026, 6, day, 9, 0),
            ));
        }
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let context = Context::new(&value, &customer, &policy);

        let result = customer_cadence(&context, now);

        let message = "2 contacts in the last 30 days; the customer's limit is 2 per 30 days";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 7, 5, 9, 0),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn channel_cadence_zero_denies() {
        let now = utc(2026, 6, 30, 12, 0);
        let mut customer = view();
        let never = Limit {
            max: 0,
            per: Period::Rolling(Span::days(30)),
        };
        customer
            .preferences
            .channel_cadence
            .insert(Channel::PHONE, never);
        let policy = Policy::default();
        let call = proposal(Channel::PHONE, Purpose::Care);
        let context = Context::new(&call, &customer, &policy);

        let result = channel_cadence(&context, now);

        let message = "the customer's limit on phone is 0 (never)";
        assert_eq!(result, Verdict::Deny(message.to_owned()));
    }

    #[test]
    fn bucket_cadence_uses_stated_bucket() {
        // Assigned weekly, stated quarterly: the stated bucket wins (1 per 91 days).
        let now = utc(2026, 6, 30, 12, 0);
        let sent = utc(2026, 6, 1, 9, 0);
        let mut customer = view();
        customer.customer.bucket = Some(Bucket::Weekly);
        customer.preferences.bucket = Some(Bucket::Quarterly);
        customer
            .contacts
            .push(contact(Channel::EMAIL, Purpose::Value, sent));
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let context = Context::new(&value, &customer, &policy);

        let result = bucket_cadence(&context, now);

        let message = "1 contact in the last 91 days; the customer's quarterly bucket \
                       allows 1 per 91 days";
        assert_eq!(
            result,
            Verdict::Defer {
                until: sent + Duration::days(91),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn bucket_cadence_spares_care() {
        // A care call neither waits for the monthly bucket nor uses it up.
        let now = utc(2026, 6, 30, 12, 0);
        let mut customer = view();
        customer.contacts.push(contact(
            Channel::EMAIL,
            Purpose::Value,
            utc(2026, 6, 20, 9, 0),
        ));
        customer.contacts.push(contact(
            Channel::PHONE,
            Purpose::Care,
            utc(2026, 6, 29, 9, 0),
        ));
        let policy = Policy::default();
        let care = proposal(Channel::PHONE, Purpose::Care);
        let value = proposal(Channel::EMAIL, Purpose::Value);

        let care_result = bucket_cadence(&Context::new(&care, &customer, &policy), now);
        let value_result = bucket_cadence(&Context::new(&value, &customer, &policy), now);

        assert_eq!(care_result, Verdict::Allow);
        assert_eq!(value_result.until(), Some(utc(2026, 7, 20, 9, 0)));
    }

    #[test]
    fn bucket_rises_when_negatives_expire() {
        // Two complaints lower monthly to quarterly. The older complaint leaves the 180-day
        // repeat window on 2026-07-10. Monthly (1 per 30 days) then applies again, and the
        // contact of 2026-06-01 is already out of its window.
        let now = utc(2026, 6, 30, 12, 0);
        let mut customer = view();
        for at in [utc(2026, 1, 11, 9, 0), utc(2026, 2, 1, 9, 0)] {
            customer
                .signals
                .push(Signal::new(SignalKind::Complaint, at));
        }
        customer.contacts.push(contact(
            Channel::EMAIL,
            Purpose::Value,
            utc(2026, 6, 1, 9, 0),
        ));
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let context = Context::new(&value, &customer, &policy);

        let result = bucket_cadence(&context, now);

        assert_eq!(
            result.until(),
            Some(utc(2026, 1, 11, 9, 0) + Duration::days(180))
        );
    }
}

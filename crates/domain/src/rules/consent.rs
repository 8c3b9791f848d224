//! Opt-outs and pauses the customer asked for.

use chrono::{DateTime, Utc};

use super::limits::stamp;
use super::{Context, Verdict};
use crate::ConsentMark;

/// Denies every contact while do-not-contact is set.
pub(crate) fn do_not_contact(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    match context.view.preferences.do_not_contact {
        Some(mark) => context.deny(|| format!("do-not-contact was set on {}", day(mark))),
        None => Verdict::Allow,
    }
}

/// Denies sales, value and survey contacts after a marketing opt-out.
pub(crate) fn marketing_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let purpose = context.proposal.purpose;
    match context.view.preferences.marketing_opt_out {
        Some(mark) if purpose.is_marketing() => context.deny(|| {
            format!(
                "the customer opted out of marketing on {}, which covers {purpose} contacts",
                day(mark)
            )
        }),
        _ => Verdict::Allow,
    }
}

/// Denies contact on a channel the customer opted out of.
pub(crate) fn channel_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let channel = &context.proposal.channel;
    match context.view.preferences.channel_opt_outs.get(channel) {
        Some(mark) => context.deny(|| {
            format!(
                "the customer opted out of {channel} contact on {}",
                day(*mark)
            )
        }),
        None => Verdict::Allow,
    }
}

/// Denies contact about a topic the customer opted out of.
pub(crate) fn topic_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let Some(topic) = &context.proposal.topic else {
        return Verdict::Allow;
    };
    match context.view.preferences.topic_opt_outs.get(topic) {
        Some(mark) => context.deny(|| {
            format!(
                "the customer opted out of the topic {topic} on {}",
                day(*mark)
            )
        }),
        None => Verdict::Allow,
    }
}

/// Defers contact to the end of a pause.
pub(crate) fn paused(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    match context.view.preferences.paused_until {
        Some(end) if end > at => Verdict::Defer {
            until: end,
            message: context.say(|| format!("contact is paused until {}", stamp(end))),
        },
        _ => Verdict::Allow,
    }
}

fn day(mark: ConsentMark) -> String {
    mark.at.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{Actor, Channel, ConsentSource, Policy, Purpose, Topic};

    fn mark() -> ConsentMark {
        ConsentMark {
            actor: Actor::Staff,
            source: ConsentSource::Agent,
            at: utc(2026, 3, 2, 9, 0),
        }
    }

    fn check(rule: fn(&Context<'_>, DateTime<Utc>) -> Verdict, purpose: Purpose) -> Verdict {
        let mut customer = view();
        customer.preferences.do_not_contact = Some(mark());
        customer.preferences.marketing_opt_out = Some(mark());
        customer
            .preferences
            .channel_opt_outs
            .insert(Channel::SMS, mark());
        customer
            .preferences
            .topic_opt_outs
            .insert(Topic::parse("solar").unwrap(), mark());
        customer.preferences.paused_until = Some(utc(2026, 7, 1, 0, 0));
        let mut text = proposal(Channel::SMS, purpose);
        text.topic = Some(Topic::parse("solar").unwrap());
        let policy = Policy::default();
        let now = utc(2026, 6, 10, 10, 0);
        rule(&Context::new(&text, &customer, &policy), now)
    }

    #[test]
    fn do_not_contact_denies_care() {
        let expected = "do-not-contact was set on 2026-03-02";

        assert_eq!(
            check(do_not_contact, Purpose::Care),
            Verdict::Deny(expected.to_owned())
        );
    }

    #[test]
    fn marketing_opt_out_spares_care() {
        let expected = "the customer opted out of marketing on 2026-03-02, which covers survey \
                        contacts";

        assert_eq!(check(marketing_opt_out, Purpose::Care), Verdict::Allow);
        assert_eq!(
            check(marketing_opt_out, Purpose::Survey),
            Verdict::Deny(expected.to_owned())
        );
    }

    #[test]
    fn channel_and_topic_opt_outs_deny() {
        let channel = "the customer opted out of sms contact on 2026-03-02";
        let topic = "the customer opted out of the topic solar on 2026-03-02";

        assert_eq!(
            check(channel_opt_out, Purpose::Care),
            Verdict::Deny(channel.to_owned())
        );
        assert_eq!(
            check(topic_opt_out, Purpose::Value),
            Verdict::Deny(topic.to_owned())
        );
    }

    #[test]
    fn pause_defers_to_its_end() {
        let expected = "contact is paused until 2026-07-01T00:00:00Z";

        assert_eq!(
            check(paused, Purpose::Care),
            Verdict::Defer {
                until: utc(2026, 7, 1, 0, 0),
                message: expected.to_owned()
            }
        );
    }

    #[test]
    fn ended_pause_allows() {
        let mut customer = view();
        customer.preferences.paused_until = Some(utc(2026, 6, 10, 10, 0));
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let policy = Policy::default();

        let result = paused(
            &Context::new(&value, &customer, &policy),
            utc(2026, 6, 10, 10, 0),
        );

        assert_eq!(result, Verdict::Allow);
    }
}

//! Keeping care and sales apart, and honouring a "no".

use chrono::{DateTime, Utc};

use super::limits::stamp;
use super::{Context, Verdict};
use crate::{Purpose, SignalKind};

/// Holds back pitches (sales contacts and anything carrying an offer) while a care case is
/// open and until `care_grace` after it closes.
///
/// An open case has no known end, so the rule denies: the caller proposes again once
/// the case is closed, and is then deferred to the end of the grace period.
pub(crate) fn open_care_case(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    if !context.is_pitch() {
        return Verdict::Allow;
    }
    let grace = context.policy.care_grace;
    if let Some(case) = context
        .view
        .cases
        .iter()
        .find(|case| case.closed_at.is_none())
    {
        return context.deny(|| format!(
            "a care case opened at {} is still open, and sales wait until {grace} after it closes",
            stamp(case.opened_at)
        ));
    }
    let latest_close = context
        .view
        .cases
        .iter()
        .filter_map(|case| case.closed_at)
        .max();
    match latest_close {
        Some(closed) if closed + grace.duration() > at => Verdict::Defer {
            until: closed + grace.duration(),
            message: context.say(|| {
                format!(
                    "a care case closed at {}, and sales wait {grace} after a case closes",
                    stamp(closed)
                )
            }),
        },
        _ => Verdict::Allow,
    }
}

/// Denies a care message that carries an offer.
pub(crate) fn care_offer(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let proposal = context.proposal;
    if proposal.purpose == Purpose::Care && proposal.offer {
        return context.deny(|| "a care message must not carry an offer".to_owned());
    }
    Verdict::Allow
}

/// Holds back pitches on a topic for `declined_cooling` after the customer declined an
/// offer on it. A decline with no topic covers every pitch. One decline is enough.
pub(crate) fn declined_topic(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    if !context.is_pitch() {
        return Verdict::Allow;
    }
    let topic = context.proposal.topic.as_ref();
    let declined = context.view.signals.iter().rev().find(|signal| {
        signal.kind == SignalKind::Declined
            && (signal.topic.is_none() || signal.topic.as_ref() == topic)
    });
    let Some(signal) = declined else {
        return Verdict::Allow;
    };
    let cooling = context.policy.declined_cooling;
    let until = signal.at + cooling.duration();
    if until <= at {
        return Verdict::Allow;
    }
    let subject = || match &signal.topic {
        Some(topic) => format!("an offer on {topic}"),
        None => "all offers".to_owned(),
    };
    Verdict::Defer {
        until,
        message: context.say(|| {
            format!(
                "the customer declined {} at {}, and pitches wait {cooling} after a decline",
                subject(),
                stamp(signal.at)
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{CareCase, Channel, Policy, Signal, Topic};
    use chrono::Duration;

    #[test]
    fn open_case_denies_sales() {
        let mut customer = view();
        customer.cases.push(CareCase {
            opened_at: utc(2026, 6, 1, 9, 0),
            closed_at: None,
        });
        let policy = Policy::default();
        let sales = proposal(Channel::EMAIL, Purpose::Sales);
        let now = utc(2026, 6, 10, 9, 0);

        let result = open_care_case(&Context::new(&sales, &customer, &policy), now);

        let message = "a care case opened at 2026-06-01T09:00:00Z is still open, and sales \
                       wait until 7 days after it closes";
        assert_eq!(result, Verdict::Deny(message.to_owned()));
    }

    #[test]
    fn closed_case_defers_by_grace() {
        let closed = utc(2026, 6, 5, 9, 0);
        let mut customer = view();
        customer.cases.push(CareCase {
            opened_at: utc(2026, 6, 1, 9, 0),
            closed_at: Some(closed),
        });
        let policy = Policy::default();
        let sales = proposal(Channel::EMAIL, Purpose::Sales);
        let care = proposal(Channel::EMAIL, Purpose::Care);
        let now = utc(2026, 6, 10, 9, 0);

        let sales_result = open_care_case(&Context::new(&sales, &customer, &policy), now);
        let care_result = open_care_case(&Context::new(&care, &customer, &policy), now);

        assert_eq!(sales_result.until(), Some(closed + Duration::days(7)));
        assert_eq!(care_result, Verdict::Allow);
    }

    #[test]
    fn care_with_offer_denied() {
        let customer = view();
        let policy = Policy::default();
        let mut care = proposal(Channel::EMAIL, Purpose::Care);
        care.offer = true;
        let now = utc(2026, 6, 10, 9, 0);

        let result = care_offer(&Context::new(&care, &customer, &policy), now);

        assert_eq!(
            result,
            Verdict::Deny("a care message must not carry an offer".to_owned())
        );
    }

    #[test]
    fn decline_cools_only_its_topic() {
        let declined_at = utc(2026, 6, 1, 9, 0);
        let mut customer = view();
        let mut no = Signal::new(SignalKind::Declined, declined_at);
        no.topic = Some(Topic::parse("solar").unwrap());
        customer.signals.push(no);
        let policy = Policy::default();
        let now = utc(2026, 6, 10, 9, 0);
        let mut solar = proposal(Channel::PHONE, Purpose::Sales);
        solar.topic = Some(Topic::parse("solar").unwrap());
        let mut heating = solar.clone();
        heating.topic = Some(Topic::parse("heating").unwrap());

        let solar_result = declined_topic(&Context::new(&solar, &customer, &policy), now);
        let heating_result = declined_topic(&Context::new(&heating, &customer, &policy), now);

        let message = "the customer declined an offer on solar at 2026-06-01T09:00:00Z, and \
                       pitches wait 90 days after a decline";
        assert_eq!(
            solar_result,
            Verdict::Defer {
                until: declined_at + Duration::days(90),
                message: message.to_owned()
            }
        );
        assert_eq!(heating_result, Verdict::Allow);
    }

    #[test]
    fn decline_without_topic_covers_offers() {
        let mut customer = view();
        customer
            .signals
            .push(Signal::new(SignalKind::Declined, utc(2026, 6, 1, 9, 0)));
        let policy = Policy::default();
        let now = utc(2026, 6, 10, 9, 0);
        let mut newsletter_with_offer = proposal(Channel::EMAIL, Purpose::Value);
        newsletter_with_offer.offer = true;

        let context = Context::new(&newsletter_with_offer, &customer, &policy);

        assert_eq!(
            declined_topic(&context, now).until(),
            Some(utc(2026, 8, 30, 9, 0))
        );
    }
}

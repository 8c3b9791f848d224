//! Whether the channel has a usable address at all.

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::{Channel, Purpose, SuppressionReason};

/// Denies contact through a suppressed address.
///
/// A spam complaint suppresses only non-transactional messages, so a receipt still reaches
/// the customer. Every other reason suppresses the address for everything.
pub(crate) fn suppressed(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let proposal = context.proposal;
    let transactional = proposal.purpose == Purpose::Transactional;
    let blocking = context.view.suppressions.iter().find(|suppression| {
        suppression.channel == proposal.channel
            && !(transactional && suppression.reason == SuppressionReason::Complaint)
    });
    match blocking {
        Some(suppression) => context.deny(|| {
            format!(
                "the customer's {} address is suppressed since {} ({})",
                suppression.channel,
                suppression.at.format("%Y-%m-%d"),
                suppression.reason.as_str()
            )
        }),
        None => Verdict::Allow,
    }
}

/// Denies email without an email address, and phone calls or text messages without a
/// phone number. Other channels carry their own addresses and always pass.
pub(crate) fn no_address(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let customer = &context.view.customer;
    let channel = &context.proposal.channel;
    let (address, kind) = if *channel == Channel::EMAIL {
        (&customer.email, "email address")
    } else if *channel == Channel::PHONE || *channel == Channel::SMS {
        (&customer.phone, "phone number")
    } else {
        return Verdict::Allow;
    };
    match address {
        Some(value) if !value.trim().is_empty() => Verdict::Allow,
        _ => context.deny(|| format!("the customer has no {kind} for {channel} contact")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{CustomerView, Policy, Suppression};

    fn suppressed_by(reason: SuppressionReason) -> CustomerView {
        let mut customer = view();
        customer.suppressions.push(Suppression {
            channel: Channel::EMAIL,
            reason,
            at: utc(2026, 4, 1, 8, 0),
        });
        customer
    }

    fn check_suppressed(customer: &CustomerView, purpose: Purpose, channel: Channel) -> Verdict {
        let policy = Policy::default();
        let message = proposal(channel, purpose);
        suppressed(
            &Context::new(&message, customer, &policy),
            utc(2026, 6, 10, 10, 0),
        )
    }

    #[test]
    fn hard_bounce_blocks_everything() {
        let customer = suppressed_by(SuppressionReason::HardBounce);
        let expected = "the customer's email address is suppressed since 2026-04-01 \
                        (hard_bounce)";

        let receipt = check_suppressed(&customer, Purpose::Transactional, Channel::EMAIL);
        let text = check_suppressed(&customer, Purpose::Value, Channel::SMS);

        assert_eq!(receipt, Verdict::Deny(expected.to_owned()));
        assert_eq!(text, Verdict::Allow);
    }

    #[test]
    fn complaint_blocks_only_marketing() {
        let customer = suppressed_by(SuppressionReason::Complaint);

        let receipt = check_suppressed(&customer, Purpose::Transactional, Channel::EMAIL);
        let care = check_suppressed(&customer, Purpose::Care, Channel::EMAIL);

        assert_eq!(receipt, Verdict::Allow);
        assert!(matches!(care, Verdict::Deny(_)));
    }

    #[test]
    fn missing_phone_denies_sms() {
        let mut customer = view();
        customer.customer.phone = Some("  ".to_owned());
        let policy = Policy::default();
        let text = proposal(Channel::SMS, Purpose::Care);
        let push = proposal(Channel::parse("push").unwrap(), Purpose::Care);
        let now = utc(2026, 6, 10, 10, 0);

        let text_result = no_address(&Context::new(&text, &customer, &policy), now);
        let push_result = no_address(&Context::new(&push, &customer, &policy), now);

        let expected = "the customer has no phone number for sms contact";
        assert_eq!(text_result, Verdict::Deny(expected.to_owned()));
        assert_eq!(push_result, Verdict::Allow);
    }
}

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
        Some(suppression) => Verdict::Deny(format!(
            "the customer's {} address is suppressed since {} ({})",
            suppression.channel,
            suppression.at.format("%Y-%m-%d"),
            suppression.reason.as_str()
        )),
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
        _ => Verdict::Deny(format!("the customer has no {kind} for {channel} contact")),
    }
}

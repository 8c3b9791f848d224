//! `tact history` and `tact explain`: what reached a customer and what was held back.

use chrono::SecondsFormat;
use std::process::ExitCode;
use tact_storage::DeliveryState;

use super::Context;
use crate::cli::CustomerArg;
use crate::ops;

/// Prints every contact and signal of the customer, oldest first.
///
/// # Errors
///
/// Fails for an unknown customer or a storage failure.
pub fn history(context: &Context, args: CustomerArg) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let customer = ops::customer(&store, args.external_id())?;
    let history = store.history(customer.id)?;
    if args.json {
        let value = serde_json::json!({
            "contacts": history.contacts.iter().map(|(_, contact)| contact).collect::<Vec<_>>(),
            "signals": history.signals,
            "suppressions": history.suppressions,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "contacts with {} ({}):",
        args.external_id(),
        history.contacts.len()
    );
    for (_, contact) in &history.contacts {
        let topic = contact
            .topic
            .as_ref()
            .map(|t| format!(" about {t}"))
            .unwrap_or_default();
        let campaign = contact
            .campaign
            .map(|c| format!(", campaign {c}"))
            .unwrap_or_default();
        let outcome = serde_json::to_value(contact.outcome)?;
        println!(
            "  {} {} {}{topic}{campaign}: {}",
            contact.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            contact.channel,
            contact.purpose,
            outcome.as_str().unwrap_or_default()
        );
    }
    println!("signals ({}):", history.signals.len());
    for signal in &history.signals {
        let channel = signal
            .channel
            .as_ref()
            .map(|c| format!(" via {c}"))
            .unwrap_or_default();
        println!(
            "  {} {}{channel}",
            signal.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            signal.kind.as_str()
        );
    }
    for suppression in &history.suppressions {
        println!(
            "suppressed: {} since {} ({})",
            suppression.channel,
            suppression.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            suppression.reason.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every campaign delivery of the customer with its state and, for deferrals and
/// denials, the rules and their reasons.
///
/// # Errors
///
/// Fails for an unknown customer or a storage failure.
pub fn explain(context: &Context, args: CustomerArg) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let customer = ops::customer(&store, args.external_id())?;
    let deliveries = store.deliveries_for(customer.id)?;
    if args.json {
        let value: Vec<serde_json::Value> = deliveries
            .iter()
            .map(|delivery| {
                serde_json::json!({
                    "delivery": delivery.id.0,
                    "campaign": delivery.campaign.0,
                    "state": delivery.state,
                    "next_attempt_at": delivery.next_attempt_at,
                    "reasons": delivery.reasons,
                    "last_error": delivery.last_error,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "deliveries to {} ({}):",
        args.external_id(),
        deliveries.len()
    );
    for delivery in &deliveries {
        let campaign = store.campaign(delivery.campaign)?;
        let mut line = format!(
            "  delivery {} of campaign {} ({}): {}",
            delivery.id, campaign.id, campaign.name, delivery.state
        );
        if let (DeliveryState::Deferred, Some(at)) = (delivery.state, delivery.next_attempt_at) {
            line.push_str(&format!(
                " until {}",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        println!("{line}");
        for reason in &delivery.reasons {
            println!("    {}: {}", reason.rule, reason.message);
        }
        if let Some(error) = &delivery.last_error {
            println!("    last error: {error}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

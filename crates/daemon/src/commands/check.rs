//! `tact check`: decide one proposed contact and explain it.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use std::process::ExitCode;
use tact_domain::Decision;

use super::Context;
use crate::cli::CheckArgs;
use crate::ops::{self, ProposalInput};

/// Runs `tact check`. Exits 0 whatever the decision; only errors exit non-zero.
///
/// # Errors
///
/// Fails for an unknown customer, an invalid name or a storage failure.
pub fn run(context: &Context, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let at = args.at.unwrap_or_else(|| context.clock.now());
    let input = ProposalInput {
        customer: args.customer,
        channel: args.channel,
        purpose: args.purpose,
        topic: args.topic,
        offer: args.offer,
        duration_s: 0,
    };
    let decision = ops::decide(&store, &context.settings.policy, &input, at, false)?;
    if args.json {
        println!("{}", serde_json::to_string(&decision)?);
    } else {
        let zone = ops::customer(&store, &input.customer)?.time_zone;
        print!("{}", explain_decision(&decision, &input, at, zone));
    }
    Ok(ExitCode::SUCCESS)
}

/// Formats an instant in UTC and in the customer's zone.
pub fn both_zones(instant: DateTime<Utc>, zone: Tz) -> String {
    let utc = instant.to_rfc3339_opts(SecondsFormat::Secs, true);
    let local = instant.with_timezone(&zone).format("%a %-d %b %Y %H:%M");
    format!("{utc} ({local} {zone})")
}

fn explain_decision(
    decision: &Decision,
    input: &ProposalInput,
    at: DateTime<Utc>,
    zone: Tz,
) -> String {
    let what = format!(
        "{} {} contact with {}",
        input.purpose, input.channel, input.customer
    );
    let mut text = match decision {
        Decision::Approve(_) => format!(
            "approve: the {what} may happen at {}\n",
            both_zones(at, zone)
        ),
        Decision::Defer { until, .. } => {
            format!(
                "defer: the {what} may happen from {}\n",
                both_zones(*until, zone)
            )
        }
        Decision::Deny { .. } => format!("deny: the {what} must not happen\n"),
    };
    for reason in decision.reasons() {
        text.push_str(&format!("  {}: {}\n", reason.rule, reason.message));
    }
    text
}

//! `tact ingest-mail`: read returned mail from standard input or a Maildir.

use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;
use tact_delivery::token::LinkKey;

use super::Context;
use crate::cli::IngestArgs;
use crate::inbound::{Effect, Ingestor, Mode, Outcome, ingest_maildir, read_limited};

/// The exit code that asks a mail server to keep the message and try again later
/// (`EX_TEMPFAIL` of sysexits.h), which postfix and other servers honour.
const EXIT_TEMPORARY_FAILURE: u8 = 75;

/// The exit code that asks the mail server to deliver the message again later.
pub fn temporary_failure() -> ExitCode {
    ExitCode::from(EXIT_TEMPORARY_FAILURE)
}

/// Runs `tact ingest-mail`. Exits 0 when every message was stored or recognised as not
/// returned mail, and 75 (`EX_TEMPFAIL`) when one could not be stored, so a mail server
/// that pipes a message in keeps it and retries.
///
/// # Errors
///
/// None: every failure is printed and turned into exit code 75.
pub fn run(context: &Context, args: IngestArgs) -> anyhow::Result<ExitCode> {
    match ingest(context, &args) {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(EXIT_TEMPORARY_FAILURE))
        }
    }
}

fn ingest(context: &Context, args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let settings = &context.settings;
    let key = LinkKey::new(&settings.secret_key()?).context("invalid links.secret_key")?;
    let ingestor = Ingestor::new(key, settings);
    let store = context.open_store()?;
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };

    let Some(maildir) = &args.maildir else {
        let raw = read_standard_input(ingestor.bounces().max_message_bytes)?;
        let outcomes = ingestor.ingest(&store, &raw, context.clock.now(), mode)?;
        print_outcomes(&outcomes, args.json);
        return Ok(ExitCode::SUCCESS);
    };
    let now = || context.clock.now();
    let report = |_: &Path, outcomes: &[Outcome]| print_outcomes(outcomes, args.json);
    let summary = ingest_maildir(&ingestor, &store, maildir, now, mode, report)?;
    if summary.failed > 0 {
        anyhow::bail!(
            "{} of {} messages in {} could not be ingested and stay in place; see the log",
            summary.failed,
            summary.failed + summary.processed,
            maildir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the message up to `limit` bytes and discards the rest, so the mail server can
/// finish writing it.
fn read_standard_input(limit: usize) -> anyhow::Result<Vec<u8>> {
    let mut input = std::io::stdin().lock();
    let (raw, truncated) =
        read_limited(&mut input, limit).context("cannot read the message from standard input")?;
    if truncated {
        std::io::copy(&mut input, &mut std::io::sink())
            .context("cannot read the message from standard input")?;
        tracing::warn!(
            limit,
            "message larger than bounces.max_message_bytes; reading only its start"
        );
    }
    Ok(raw)
}

fn print_outcomes(outcomes: &[Outcome], json: bool) {
    for outcome in outcomes {
        if json {
            println!("{}", outcome.to_json_line());
        } else {
            println!("{}", describe(outcome));
        }
    }
}

/// Formats one line for people, such as `hard_bounce kim@example.org (delivery 17): suppressed
/// (hard_bounce)`.
fn describe(outcome: &Outcome) -> String {
    let report = &outcome.report;
    let recipient = report.recipient.as_deref().unwrap_or("-");
    let delivery = match outcome.delivery {
        Some(delivery) => format!(" (delivery {delivery})"),
        None => String::new(),
    };
    let effect = match outcome.effect {
        Effect::Suppressed(reason) => format!("suppressed ({})", reason.as_str()),
        other => other.as_str().replace('_', " "),
    };
    format!("{} {recipient}{delivery}: {effect}", report.class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tact_domain::{DeliveryId, SuppressionReason};
    use tact_inbound::{Class, Report};

    #[test]
    fn describe_names_class_and_effect() {
        let mut report = Report::not_returned("test");
        report.class = Class::HardBounce;
        report.recipient = Some("kim@example.org".into());
        let outcome = Outcome {
            report,
            delivery: Some(DeliveryId(17)),
            customers: Vec::new(),
            effect: Effect::Suppressed(SuppressionReason::HardBounce),
        };

        let expected = "hard_bounce kim@example.org (delivery 17): suppressed (hard_bounce)";
        assert_eq!(describe(&outcome), expected);
    }
}

//! `tact prefs show|set`.

use anyhow::bail;
use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use std::process::ExitCode;
use tact_domain::{Actor, Bucket, ConsentChange, ConsentMark, ConsentSource, LocalWindow};

use super::Context;
use crate::cli::{ActorArg, CustomerArg, PrefsCommand, PrefsSetArgs, Switch};
use crate::ops;

/// Runs `tact prefs`.
///
/// # Errors
///
/// Fails for an unknown customer, an invalid value, a change that only the customer may
/// make, or a storage failure.
pub fn run(context: &Context, command: PrefsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PrefsCommand::Show(args) => show(context, args),
        PrefsCommand::Set(args) => set(context, args),
    }
}

fn show(context: &Context, args: CustomerArg) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let customer = ops::customer(&store, args.external_id())?;
    let preferences = store.preferences(customer.id)?;
    let log = store.consent_log(customer.id)?;
    if args.json {
        let events: Vec<serde_json::Value> = log
            .iter()
            .map(|event| {
                serde_json::json!({
                    "at": event.mark.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "actor": event.mark.actor,
                    "source": event.mark.source,
                    "change": event.change,
                })
            })
            .collect();
        let value = serde_json::json!({ "preferences": preferences, "consent_log": events });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("preferences of {}:", args.external_id());
    println!("{}", serde_json::to_string_pretty(&preferences)?);
    println!("consent log ({} entries):", log.len());
    for event in &log {
        let actor = serde_json::to_value(event.mark.actor)?;
        let source = serde_json::to_value(event.mark.source)?;
        println!(
            "  {} {} via {}: {}",
            event.mark.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            actor.as_str().unwrap_or_default(),
            source.as_str().unwrap_or_default(),
            serde_json::to_string(&event.change)?
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn set(context: &Context, args: PrefsSetArgs) -> anyhow::Result<ExitCode> {
    let changes = changes_from_args(&args)?;
    if changes.is_empty() {
        bail!("nothing to change; pass at least one option (see tact prefs set --help)");
    }
    let store = context.open_store()?;
    let customer = ops::customer(&store, &args.external_id)?;
    let mark = ConsentMark {
        actor: match args.actor {
            ActorArg::Customer => Actor::Customer,
            ActorArg::Staff => Actor::Staff,
        },
        source: ConsentSource::Cli,
        at: context.clock.now(),
    };
    ops::apply_changes(&store, customer.id, &changes, mark)?;
    println!("{} change(s) saved for {}", changes.len(), args.external_id);
    Ok(ExitCode::SUCCESS)
}

fn changes_from_args(args: &PrefsSetArgs) -> anyhow::Result<Vec<ConsentChange>> {
    let mut changes = Vec::new();
    if let Some(switch) = args.do_not_contact {
        changes.push(ConsentChange::DoNotContact {
            value: switch == Switch::On,
        });
    }
    if let Some(switch) = args.marketing {
        changes.push(ConsentChange::Marketing {
            allowed: switch == Switch::On,
        });
    }
    for (names, allowed) in [(&args.allow_channels, true), (&args.block_channels, false)] {
        for name in names {
            let channel = ops::parse_channel(name)?;
            changes.push(ConsentChange::Channel { channel, allowed });
        }
    }
    for (names, allowed) in [(&args.allow_topics, true), (&args.block_topics, false)] {
        for name in names {
            let topic = ops::parse_topic(name)?;
            changes.push(ConsentChange::Topic { topic, allowed });
        }
    }
    if let Some(text) = &args.bucket {
        let bucket = match text.as_str() {
            "none" => None,
            name => Some(Bucket::parse(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "--bucket: unknown bucket {name:?}; use weekly, monthly, quarterly, \
                     twice_a_year, yearly or none"
                )
            })?),
        };
        changes.push(ConsentChange::Bucket { bucket });
    }
    if let Some(text) = &args.window {
        changes.push(ConsentChange::Window {
            window: parse_window(text)?,
        });
    }
    if let Some(text) = &args.pause_until {
        let until = match text.as_str() {
            "none" => None,
            instant => Some(instant.parse::<DateTime<Utc>>().map_err(|_| {
                anyhow::anyhow!("--pause-until: {instant:?} is not an RFC 3339 time or none")
            })?),
        };
        changes.push(ConsentChange::Pause { until });
    }
    Ok(changes)
}

/// Parses `HH:MM-HH:MM`, or `none`.
fn parse_window(text: &str) -> anyhow::Result<Option<LocalWindow>> {
    if text == "none" {
        return Ok(None);
    }
    let invalid = || anyhow::anyhow!("--window: {text:?} is not HH:MM-HH:MM or none");
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let start = NaiveTime::parse_from_str(start.trim(), "%H:%M").map_err(|_| invalid())?;
    let end = NaiveTime::parse_from_str(end.trim(), "%H:%M").map_err(|_| invalid())?;
    Ok(Some(LocalWindow {
        start,
        end,
        days: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_parses_hours_and_minutes() {
        let window = parse_window("09:00-17:30").unwrap().unwrap();

        assert_eq!(window.start, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert_eq!(window.end, NaiveTime::from_hms_opt(17, 30, 0).unwrap());
    }

    #[test]
    fn window_rejects_single_time() {
        let error = parse_window("09:00").unwrap_err();

        assert_eq!(
            error.to_string(),
            "--window: \"09:00\" is not HH:MM-HH:MM or none"
        );
    }
}

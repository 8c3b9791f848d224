//! `tact campaign create|preview|send|status`.

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use tact_delivery::{Composer, TemplateSource};
use tact_domain::{Bucket, CampaignId, Policy};
use tact_storage::{Audience, CampaignReport, CampaignStatus, DeliveryState, NewCampaign, Store};

use super::Context;
use super::check::both_zones;
use crate::cli::{CampaignCommand, CampaignCreateArgs, CampaignIdArg, CampaignPreviewArgs};
use crate::ops::{self, OpError};
use crate::scheduler::content::{Mailer, StoredTemplate, campaign_proposal};
use crate::scheduler::planning;

/// Customers whose imported field names count as known when a template is checked.
const FIELD_SAMPLE: usize = 1_000;

/// Runs `tact campaign`.
///
/// # Errors
///
/// Fails for an unknown campaign or customer, an invalid template or a storage failure.
pub fn run(context: &Context, command: CampaignCommand) -> anyhow::Result<ExitCode> {
    match command {
        CampaignCommand::Create(args) => create(context, args),
        CampaignCommand::Preview(args) => preview(context, args),
        CampaignCommand::Send(args) => send(context, args),
        CampaignCommand::Status(args) => status(context, args),
    }
}

fn mailer(context: &Context) -> anyhow::Result<Mailer> {
    let config = crate::config::message_config(&context.settings)?;
    Ok(Mailer::new(Composer::new(&config)?))
}

/// The template file: TOML with `subject`, `text` and optional `html`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    subject: String,
    text: String,
    #[serde(default)]
    html: Option<String>,
}

/// Reads a template from a TOML file or a folder with subject.txt, body.txt and optional
/// body.html.
fn read_template(path: &Path) -> anyhow::Result<TemplateSource> {
    if path.is_dir() {
        let read = |name: &str| {
            let file = path.join(name);
            std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))
        };
        let html_path = path.join("body.html");
        let html = if html_path.exists() {
            Some(read("body.html")?)
        } else {
            None
        };
        return Ok(TemplateSource {
            subject: read("subject.txt")?,
            text: read("body.txt")?,
            html,
        });
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read template {}", path.display()))?;
    let file: TemplateFile =
        toml::from_str(&text).with_context(|| format!("template {} is invalid", path.display()))?;
    Ok(TemplateSource {
        subject: file.subject,
        text: file.text,
        html: file.html,
    })
}

/// Parses `all`, `bucket:NAME`, `topic:NAME` or `account:NAME`.
fn parse_audience(store: &Store, text: &str) -> anyhow::Result<Audience> {
    let (kind, value) = text.split_once(':').unwrap_or((text, ""));
    let audience = match (kind, value) {
        ("all", "") => Audience::All,
        ("bucket", name) => Audience::Bucket {
            bucket: Bucket::parse(name).with_context(|| {
                format!("--audience: unknown bucket {name:?}; use weekly, monthly, quarterly, twice_a_year or yearly")
            })?,
        },
        ("topic", name) => Audience::Topic { topic: ops::parse_topic(name)? },
        // NOTE: an account name that is not stored yet creates an empty account, so the
        // campaign reaches no customer rather than failing.
        ("account", name) if !name.is_empty() => Audience::Account { account: store.upsert_account(name)? },
        _ => bail!("--audience: {text:?} is not all, bucket:NAME, topic:NAME or account:NAME"),
    };
    Ok(audience)
}

/// Collects the imported field names of the first customers of the audience.
fn known_fields(
    store: &Store,
    audience: &Audience,
    policy: &Policy,
    context: &Context,
) -> anyhow::Result<Vec<String>> {
    let mut fields = BTreeSet::new();
    let now = context.clock.now();
    if let Some(batch) = store
        .view_batches(audience, now, policy, FIELD_SAMPLE)
        .next()
    {
        for view in batch? {
            fields.extend(store.customer_fields(view.customer.id)?.keys().cloned());
        }
    }
    Ok(fields.into_iter().collect())
}

fn create(context: &Context, args: CampaignCreateArgs) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let policy = &context.settings.policy;
    let audience = parse_audience(&store, &args.audience)?;
    let source = read_template(&args.template)?;
    let stored = StoredTemplate {
        fields: known_fields(&store, &audience, policy, context)?,
        source,
    };
    stored
        .compile()
        .with_context(|| format!("template {} is invalid", args.template.display()))?;
    let campaign = NewCampaign {
        name: args.name,
        channel: ops::parse_channel(&args.channel)?,
        purpose: ops::parse_purpose(&args.purpose)?,
        topic: args.topic.as_deref().map(ops::parse_topic).transpose()?,
        audience,
        priority: args.priority,
        offer: args.offer,
        template: serde_json::to_string(&stored)?,
        send_at: args.start_at,
        relevant_until: args.relevant_until,
        created_at: context.clock.now(),
    };
    let id = store.create_campaign(&campaign)?;
    if let Some(warning) = missing_unsubscribe_link(&campaign, &stored) {
        eprintln!("warning: {warning}");
    }
    match args.start_at {
        Some(at) => println!(
            "campaign {id} created; tact serve starts it at {}",
            both_zones(at, chrono_tz::UTC)
        ),
        None => println!("campaign {id} created; start it with: tact campaign send {id}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn preview(context: &Context, args: CampaignPreviewArgs) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let policy = &context.settings.policy;
    let campaign = store.campaign(CampaignId(args.id))?;
    let customer = ops::customer(&store, &args.customer)?;
    let at = args.at.unwrap_or_else(|| context.clock.now());
    let mailer = mailer(context)?;

    let (rendered, content) = mailer
        .render_with_content(&store, &campaign, &customer, at)
        .with_context(|| {
            format!(
                "cannot render campaign {} for customer {}",
                args.id, args.customer
            )
        })?;
    let proposal = campaign_proposal(&campaign, &customer, Some(content));
    let view = store.load_view(customer.id, at, policy)?;
    let decision = tact_domain::decide(&proposal, &view, policy, at);

    println!(
        "Subject: {}\n\n{}",
        rendered.subject,
        rendered.text.trim_end()
    );
    if let Some(html) = &rendered.html {
        println!("\n--- HTML part ---\n{}", html.trim_end());
    }
    println!("\n--- decision for {} ---", args.customer);
    match decision.until() {
        Some(until) => println!(
            "{} until {}",
            decision.kind(),
            both_zones(until, customer.time_zone)
        ),
        None => println!("{}", decision.kind()),
    }
    for reason in decision.reasons() {
        println!("  {}: {}", reason.rule, reason.message);
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if !std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} customers decided ({per_sec})")
    {
        bar.set_style(style);
    }
    bar
}

fn send(context: &Context, args: CampaignIdArg) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let campaign = store.campaign(CampaignId(args.id))?;
    match campaign.status {
        CampaignStatus::Done => {
            println!(
                "campaign {} was already planned; see tact campaign status {}",
                args.id, args.id
            );
            return Ok(ExitCode::SUCCESS);
        }
        CampaignStatus::Cancelled => bail!("campaign {} is cancelled", args.id),
        _ => {}
    }
    let mailer = mailer(context)?;
    let bar = progress_bar();
    let now = context.clock.now();
    let report = planning::plan_campaign(
        &store,
        &mailer,
        &context.settings.policy,
        &campaign,
        now,
        &mut |done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    println!(
        "campaign {}: {} approved and queued, {} deferred, {} denied, {} skipped",
        args.id, report.approved, report.deferred, report.denied, report.skipped
    );
    Ok(ExitCode::SUCCESS)
}

/// Returns a warning when a marketing campaign's message never shows the unsubscribe link.
/// The message still carries it in its `List-Unsubscribe` header, but many mail programs
/// hide that.
fn missing_unsubscribe_link(campaign: &NewCampaign, template: &StoredTemplate) -> Option<String> {
    let source = &template.source;
    let parts = [Some(&source.text), source.html.as_ref()];
    let shows_link = parts
        .into_iter()
        .flatten()
        .any(|part| part.contains("unsubscribe_url"));
    (campaign.purpose.is_marketing() && !shows_link).then(|| {
        format!(
            "the template of this {} campaign never shows {{{{ unsubscribe_url }}}}; add it to \
             the text so customers can unsubscribe from the message itself",
            campaign.purpose
        )
    })
}

/// Lists the deliveries not sent yet and what sends them, or returns `None` when none
/// wait. A campaign is `done` once every customer is decided, which is before `tact serve`
/// sends the approved messages and decides the deferred ones again.
fn waiting_lines(report: &CampaignReport) -> Option<String> {
    let count = |state| report.by_state.get(&state).copied().unwrap_or(0);
    let to_send = count(DeliveryState::Approved) + count(DeliveryState::Sending);
    let to_decide = count(DeliveryState::Planned) + count(DeliveryState::Deferred);
    let mut lines = vec!["not sent yet:".to_owned()];
    if to_send > 0 {
        lines.push(format!("  approved, sent by `tact serve`: {to_send}"));
    }
    if to_decide > 0 {
        lines.push(format!(
            "  deferred, decided again by `tact serve` at their time: {to_decide}"
        ));
    }
    (lines.len() > 1).then(|| lines.join("\n"))
}

/// Returns the campaign's status as JSON: `{"id", "name", "status", "by_state", "by_rule"}`.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown campaign.
pub fn status_json(store: &Store, id: CampaignId) -> Result<Value, OpError> {
    let campaign = store.campaign(id)?;
    let report = store.campaign_status(id)?;
    let by_state: serde_json::Map<String, Value> = report
        .by_state
        .iter()
        .map(|(state, count)| (state.as_str().to_owned(), json!(count)))
        .collect();
    Ok(json!({
        "id": id.0,
        "name": campaign.name,
        "status": campaign.status.to_string(),
        "by_state": by_state,
        "by_rule": report.by_rule,
        "skipped": report.skipped,
    }))
}

fn status(context: &Context, args: CampaignIdArg) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let value = status_json(&store, CampaignId(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let report = store.campaign_status(CampaignId(args.id))?;
    println!(
        "campaign {} ({}): {}",
        args.id,
        value["name"].as_str().unwrap_or_default(),
        value["status"].as_str().unwrap_or_default()
    );
    if report.by_state.is_empty() {
        println!("deliveries by state: none");
    } else {
        println!("deliveries by state:");
    }
    for (state, count) in &report.by_state {
        println!("  {state}: {count}");
    }
    if let Some(waiting) = waiting_lines(&report) {
        println!("{waiting}");
    }
    if !report.by_rule.is_empty() {
        println!("held back by rule:");
        for (rule, count) in &report.by_rule {
            println!("  {rule}: {count}");
        }
    }
    if report.skipped > 0 {
        println!(
            "skipped, without a field the template needs: {} (tact campaign preview {} \
             --customer ID shows why)",
            report.skipped, args.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_lines_count_unsent_states() {
        let mut report = CampaignReport::default();
        assert_eq!(waiting_lines(&report), None);

        report.by_state.insert(DeliveryState::Sent, 4);
        report.by_state.insert(DeliveryState::Denied, 1);
        assert_eq!(waiting_lines(&report), None);

        report.by_state.insert(DeliveryState::Approved, 2);
        report.by_state.insert(DeliveryState::Sending, 1);
        report.by_state.insert(DeliveryState::Deferred, 5);
        assert_eq!(
            waiting_lines(&report).as_deref(),
            Some(
                "not sent yet:\n  approved, sent by `tact serve`: 3\n  \
                 deferred, decided again by `tact serve` at their time: 5"
            )
        );
    }
}

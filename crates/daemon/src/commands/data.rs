//! `tact convert`, `tact analyze` and `tact simulate`: working with data sets.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::io::IsTerminal;
use std::process::ExitCode;
use tact_domain::{Policy, Span};
use tact_storage::Audience;

use super::Context;
use crate::analyze::{self, Question, Tally};
use crate::cli::{AnalyzeArgs, ConvertCommand, SimulateArgs};
use crate::convert;
use crate::simulate::{self, Simulation};

/// Runs `tact convert`.
///
/// # Errors
///
/// Fails when the input cannot be read or the output written.
pub fn convert(command: ConvertCommand) -> anyhow::Result<ExitCode> {
    let (input, out, report) = match command {
        ConvertCommand::OnlineRetail(args) => {
            create_dir(&args.out)?;
            let report = convert::online_retail::convert(&args.input, &args.out)?;
            (args.input, args.out, report.to_string())
        }
        ConvertCommand::BankMarketing(args) => {
            create_dir(&args.out)?;
            let report = convert::bank_marketing::convert(&args.input, &args.out)?;
            (args.input, args.out, report.to_string())
        }
    };
    println!("converted {} into {}", input.display(), out.display());
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn create_dir(path: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create output folder {}", path.display()))
}

/// Runs `tact analyze` over the whole stored history.
///
/// # Errors
///
/// Fails when an argument is invalid or the store fails.
pub fn analyze(context: &Context, args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let question = Question {
        channel: args
            .channel
            .as_deref()
            .map(crate::ops::parse_channel)
            .transpose()?,
        purpose: args
            .purpose
            .as_deref()
            .map(crate::ops::parse_purpose)
            .transpose()?,
        response: crate::ops::parse_signal_kind(&args.response)?,
        threshold: check_share(args.threshold)?,
        min_customers: args.min_customers,
    };
    let store = context.open_store()?;
    let mut tally = Tally::default();
    // Any policy will do: the views only supply the customer ids, in order.
    let ids = Policy::default();
    let now = context.clock.now();
    for batch in store.view_batches(&Audience::All, now, &ids, 1_000) {
        for view in batch? {
            let history = store.history(view.customer.id)?;
            let contacts: Vec<_> = history.contacts.into_iter().map(|(_, c)| c).collect();
            tally.add_customer(&contacts, &history.signals, &question);
        }
    }
    let rows = tally.rows();
    let recommendation = analyze::recommend(&rows, &question);
    let shown = args.rows.min(rows.len());
    let report = analyze::Report {
        customers: tally.customers(),
        rows: rows.into_iter().take(shown).collect(),
        recommendation,
        threshold: question.threshold,
    };
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn check_share(value: f64) -> anyhow::Result<f64> {
    if !(value > 0.0 && value < 1.0) {
        anyhow::bail!("invalid --threshold {value}: give a share between 0 and 1, such as 0.02");
    }
    Ok(value)
}

/// Runs `tact simulate`.
///
/// # Errors
///
/// Fails when the plan or a data file cannot be read, or the store or scheduler fails.
pub fn simulate(context: &Context, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let simulation = Simulation {
        from: args.from,
        to: args.to,
        step: Span::parse(&args.step).with_context(|| format!("invalid --step {}", args.step))?,
        plan: simulate::load_plan(&args.plan)?,
        customers: args.customers,
        signals: args.signals,
    };
    check_period(simulation.from, simulation.to)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let verbose = std::io::stderr().is_terminal() || args.progress;
    let mut progress = |line: &str| {
        if verbose {
            eprintln!("{line}");
        }
    };
    let report = runtime.block_on(simulate::run(
        context.settings.clone(),
        simulation,
        &mut progress,
    ))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<()> {
    if to <= from {
        anyhow::bail!("invalid period: --to {to} is not after --from {from}");
    }
    Ok(())
}

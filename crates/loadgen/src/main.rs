//! `tact-loadgen`: writes a seeded customer base in tact's CSV import format, and applies
//! the preference changes and care cases that `tact import` cannot read.
//!
//! ```text
//! tact-loadgen --customers 100000 --seed 1 --now 2026-12-04T12:00:00Z --out /tmp/load
//! tact import customers /tmp/load/customers.csv   # and contacts.csv, signals.csv
//! tact-loadgen apply --database tact.db --dir /tmp/load
//! ```
//!
//! `scripts/bench-million.sh` runs these steps and times them.

mod apply;
mod generate;
mod people;
mod random;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

use generate::Workload;

/// Generate a customer base for tact's end-to-end benchmark.
///
/// Without a subcommand, writes customers.csv, contacts.csv and signals.csv for `tact
/// import`, and preferences.csv and cases.csv for `tact-loadgen apply`, into --out.
#[derive(Debug, Parser)]
#[command(
    name = "tact-loadgen",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(flatten)]
    generate: GenerateArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Number of customers; accounts are one per 20 customers.
    #[arg(long, required = true)]
    customers: Option<u64>,
    /// Seed of every random choice; the same seed and --now give identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The benchmark's "now" (RFC 3339): all history lies in the year before it. Use the
    /// time at which the benchmark runs, because `tact` decides with the system clock.
    #[arg(long, required = true)]
    now: Option<DateTime<Utc>>,
    /// Folder for the CSV files; created when missing.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply preferences.csv and cases.csv to a database whose customers are imported.
    Apply {
        /// The tact database file.
        #[arg(long)]
        database: PathBuf,
        /// The folder the generator wrote.
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(Command::Apply { database, dir }) = cli.command {
        let applied = apply::apply(&database, &dir)?;
        println!(
            "applied consent_changes={} cases={} seconds={:.3}",
            applied.consent_changes,
            applied.cases,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let args = cli.generate;
    let (Some(customers), Some(now), Some(out)) = (args.customers, args.now, args.out) else {
        anyhow::bail!("--customers, --now and --out are required");
    };
    let workload = Workload {
        customers,
        seed: args.seed,
        now,
    };
    let counts = generate::generate(&workload, &out)
        .with_context(|| format!("cannot write the workload to {}", out.display()))?;
    println!(
        "generated customers={} accounts={} contacts={} signals={} preferences={} \
         opt_outs={} cases={} seconds={:.3}",
        counts.customers,
        counts.accounts,
        counts.contacts,
        counts.signals,
        counts.preferences,
        counts.opt_outs,
        counts.cases,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

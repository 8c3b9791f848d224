//! One module per subcommand, and the context they share.

pub mod campaign;
mod check;
mod data;
mod history;
mod import;
mod ingest;
mod prefs;
mod serve;

use anyhow::Context as _;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use tact_storage::Store;
use tracing_subscriber::EnvFilter;

use crate::cli::{CaseCommand, Cli, Command};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::ops::{self, SignalInput};

/// The context every command needs: the settings and the clock.
#[derive(Debug, Clone)]
pub struct Context {
    /// The validated configuration.
    pub settings: Settings,
    /// The source of the current time.
    pub clock: SharedClock,
}

impl Context {
    /// Opens a connection to the configured database.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be opened or was written by a newer tact.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let path = &self.settings.database;
        Store::open(path).with_context(|| format!("cannot open database {}", path.display()))
    }
}

/// Runs the command line and returns the process exit code.
///
/// # Errors
///
/// Any failure of the command, with its causes.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Init = cli.command {
        crate::init::write_starter_config(&cli.config)?;
        println!("wrote {}", cli.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    // Converting a data set needs no configuration or database.
    if let Command::Convert(command) = cli.command {
        return data::convert(command);
    }
    let settings = match Settings::load(&cli.config, std::env::vars()) {
        Ok(settings) => settings,
        // A mail server treats exit code 1 as a permanent failure and would drop the
        // returned message, so a configuration error asks it to try again later.
        Err(error) if matches!(cli.command, Command::IngestMail(_)) => {
            eprintln!("error: {:#}", anyhow::Error::from(error));
            return Ok(ingest::temporary_failure());
        }
        Err(error) => return Err(error.into()),
    };
    let serving = matches!(cli.command, Command::Serve | Command::IngestMail(_));
    init_logging(&settings, serving);
    let context = Context {
        settings,
        clock: Arc::new(SystemClock),
    };
    match cli.command {
        Command::Init => Ok(ExitCode::SUCCESS),
        Command::Import(command) => import::run(&context, command),
        Command::Prefs(command) => prefs::run(&context, command),
        Command::Signal(args) => signal(&context, args),
        Command::Case(command) => case(&context, command),
        Command::Check(args) => check::run(&context, args),
        Command::Campaign(command) => campaign::run(&context, command),
        Command::History(args) => history::history(&context, args),
        Command::Explain(args) => history::explain(&context, args),
        Command::Serve => serve::run(context),
        Command::Backup(args) => backup(&context, &args.file),
        Command::RebuildTimelines => rebuild_timelines(&context),
        Command::Convert(_) => Ok(ExitCode::SUCCESS),
        Command::Analyze(args) => data::analyze(&context, args),
        Command::Simulate(args) => data::simulate(&context, args),
        Command::IngestMail(args) => ingest::run(&context, args),
    }
}

/// Logs to standard error. The daemon logs at the configured level; other commands only
/// warnings, so their output stays readable. `TACT_LOG` overrides both.
fn init_logging(settings: &Settings, serving: bool) {
    let default = if serving {
        settings.config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = std::env::var("TACT_LOG")
        .ok()
        .and_then(|text| EnvFilter::try_new(text).ok())
        .or_else(|| EnvFilter::try_new(default).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn signal(context: &Context, args: crate::cli::SignalArgs) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let input = SignalInput {
        customer: args.external_id,
        kind: args.kind,
        channel: args.channel,
        topic: args.topic,
        at: args.at,
        machine: false,
        value: None,
    };
    let recorded = ops::record_signal(&store, &input, context.clock.now())?;
    match recorded {
        tact_storage::Recorded::New => println!("recorded {} for {}", input.kind, input.customer),
        tact_storage::Recorded::Duplicate => {
            println!("{} for {} was already recorded", input.kind, input.customer)
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn case(context: &Context, command: CaseCommand) -> anyhow::Result<ExitCode> {
    let store = context.open_store()?;
    let (args, open) = match command {
        CaseCommand::Open(args) => (args, true),
        CaseCommand::Close(args) => (args, false),
    };
    let customer = ops::customer(&store, &args.external_id)?;
    let at = args.at.unwrap_or_else(|| context.clock.now());
    if open {
        ops::open_case(&store, customer.id, at)?;
        println!("care case open for {}", args.external_id);
    } else {
        ops::close_case(&store, customer.id, at)?;
        println!("care case closed for {}", args.external_id);
    }
    Ok(ExitCode::SUCCESS)
}

fn rebuild_timelines(context: &Context) -> anyhow::Result<ExitCode> {
    /// Customers named one by one before the rest are only counted.
    const NAMED: usize = 20;
    let store = context.open_store()?;
    let customers = store
        .rebuild_timelines()
        .context("deriving the timelines failed")?;
    println!("derived the timelines of {customers} customers with history");
    let unreadable = store.unreadable_timelines()?;
    if unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (customer, reason) in unreadable.iter().take(NAMED) {
        let name = match store.customer(*customer) {
            Ok(found) => format!("customer {}", found.external_id),
            Err(_) => "a customer that does not exist".to_owned(),
        };
        eprintln!("{name} (id {customer}): {reason}");
    }
    if unreadable.len() > NAMED {
        eprintln!("and {} more customers", unreadable.len() - NAMED);
    }
    eprintln!(
        "error: the history of {} customers cannot be read, so tact cannot decide for them; \
         fix or delete the rows named above and run `tact rebuild-timelines` again",
        unreadable.len()
    );
    Ok(ExitCode::FAILURE)
}

fn backup(context: &Context, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    if file.exists() {
        anyhow::bail!("{} already exists; choose a new file name", file.display());
    }
    let store = context.open_store()?;
    store
        .backup_to(file)
        .with_context(|| format!("backup to {} failed", file.display()))?;
    println!(
        "backed up {} to {}",
        context.settings.database.display(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

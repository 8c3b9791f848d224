//! Command-line arguments (clap derive).

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// tact: a customer-contact governor and mailer daemon.
///
/// Every contact goes through one rules engine that returns "now", "not before a given
/// time" or "never". Times on the command line are RFC 3339 (2026-03-01T09:00:00Z).
#[derive(Debug, Parser)]
#[command(name = "tact", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file. Relative paths inside it are relative to its folder.
    #[arg(long, global = true, env = "TACT_CONFIG", default_value = "tact.toml")]
    pub config: PathBuf,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter configuration with a new API token and link key.
    Init,
    /// Import customers, contacts or signals from CSV.
    ///
    /// Good rows are kept and every rejected row is reported with its line number. Exit
    /// code 0 means every row was accepted, 2 that some were rejected, 1 an error.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Show or change a customer's preferences.
    #[command(subcommand)]
    Prefs(PrefsCommand),
    /// Record a signal (complaint, declined, opened, …) for a customer.
    Signal(SignalArgs),
    /// Open or close a customer's care case.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Decide one proposed contact and explain the decision.
    ///
    /// With --json, prints one object {"decision","until","reasons"} and exits 0 whatever
    /// the decision. When it cannot decide, it prints the error on standard error and exits
    /// 1.
    Check(CheckArgs),
    /// Create, preview, send and follow campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// List a customer's contacts and signals; `tact explain` shows held-back deliveries.
    History(CustomerArg),
    /// Explain why each of a customer's deliveries was sent, deferred or denied.
    Explain(CustomerArg),
    /// Run the daemon: scheduler, outbox worker and HTTP server, until SIGTERM or Ctrl-C.
    Serve,
    /// Copy the database to a new file while tact keeps running.
    Backup(BackupArgs),
    /// Derive every customer's timeline again from the contacts and signals tables.
    ///
    /// Views read each customer's history from a packed timeline that tact keeps with every
    /// write. Run this after changing the contacts or signals tables by other means, such
    /// as the sqlite3 shell.
    RebuildTimelines,
    /// Convert a public data set into tact's import CSV files.
    #[command(subcommand)]
    Convert(ConvertCommand),
    /// Report the response rate by number of contacts and recommend a cap.
    Analyze(AnalyzeArgs),
    /// Run the scheduler over past data on a simulated clock and report what it did.
    ///
    /// Customers and signals are replayed in time order; campaigns come from a plan file.
    /// Delivery goes through the configured channel, as with `tact serve`.
    Simulate(SimulateArgs),
    /// Read returned mail (bounces, complaints, auto-replies) and suppress dead addresses.
    ///
    /// Reads one message from standard input, as a mail server pipes it, or every message
    /// of a Maildir. Exits 0 when the messages were stored or are not returned mail, and 75
    /// (EX_TEMPFAIL) when one could not be stored, so the mail server retries.
    IngestMail(IngestArgs),
}

/// Arguments of `tact ingest-mail`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Read every message in DIR/new and DIR/cur, moving each to the processed folder
    /// (`bounces.processed_folder`) once its effects are stored.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// Classify and map only; change nothing and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per reported recipient: class, recipient, status, reason,
    /// delivery.
    #[arg(long)]
    pub json: bool,
}

/// `tact convert` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// The UCI Online Retail invoice lines (CSV or .csv.gz) into customers.csv and
    /// signals.csv (one purchase per invoice).
    OnlineRetail(ConvertArgs),
    /// The UCI Bank Marketing bank-full.csv into customers.csv, contacts.csv (phone sales
    /// calls) and signals.csv (subscriptions as purchases).
    BankMarketing(ConvertArgs),
}

/// Arguments of `tact convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The data set file.
    pub input: PathBuf,
    /// Folder for the CSV files; created when missing.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `tact analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Count only contacts on this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Count only contacts with this purpose.
    #[arg(long)]
    pub purpose: Option<String>,
    /// The signal kind that counts as a response.
    #[arg(long, default_value = "purchase")]
    pub response: String,
    /// Recommend stopping before the first contact whose response rate is below this share
    /// (0.02 = 2 %).
    #[arg(long, default_value_t = 0.02)]
    pub threshold: f64,
    /// Ignore contact numbers reached by fewer customers than this when recommending.
    #[arg(long, default_value_t = 100)]
    pub min_customers: u64,
    /// Rows of the table to print.
    #[arg(long, default_value_t = 15)]
    pub rows: usize,
}

/// Arguments of `tact simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// First simulated instant, RFC 3339.
    #[arg(long, value_parser = parse_instant)]
    pub from: DateTime<Utc>,
    /// The simulation stops at this instant, RFC 3339.
    #[arg(long, value_parser = parse_instant)]
    pub to: DateTime<Utc>,
    /// The campaign plan (TOML): recurring campaigns, follow-ups and bucket thresholds.
    #[arg(long)]
    pub plan: PathBuf,
    /// Customers CSV, as `tact import customers` reads it.
    #[arg(long)]
    pub customers: PathBuf,
    /// Signals CSV sorted by `at`, as `tact import signals` reads it.
    #[arg(long)]
    pub signals: PathBuf,
    /// How far the simulated clock moves per step: a number and a unit s, m, h or d.
    #[arg(long, default_value = "1h")]
    pub step: String,
    /// Print a line per simulated month on standard error even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// Arguments of `tact backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file; an existing file is never overwritten.
    pub file: PathBuf,
}

/// `tact import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Customers: header external_id,name,email,phone,timezone,locale,account; only
    /// external_id is required; other columns become template fields.
    Customers(FileArg),
    /// Past contacts: header external_id,channel,purpose,topic,at,duration_s,outcome; `at`
    /// in RFC 3339, `duration_s` in seconds.
    Contacts(FileArg),
    /// Signals: header external_id,kind,at, and optionally channel, topic, value (a number)
    /// and machine (true or false); `at` in RFC 3339.
    Signals(FileArg),
}

/// A CSV file.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The CSV file, UTF-8 with a header row.
    pub file: PathBuf,
}

/// One customer, named by its external id or by `--customer` as `tact check` takes it.
#[derive(Debug, Args)]
pub struct CustomerArg {
    /// The customer's external id.
    #[arg(required_unless_present = "customer", conflicts_with = "customer")]
    external_id: Option<String>,
    /// The customer's external id, instead of the positional argument.
    #[arg(long, value_name = "EXTERNAL_ID")]
    customer: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl CustomerArg {
    /// Returns the external id, from the positional argument or `--customer`.
    pub fn external_id(&self) -> &str {
        self.external_id
            .as_deref()
            .or(self.customer.as_deref())
            .unwrap_or_default()
    }
}

/// `tact prefs` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrefsCommand {
    /// Print the customer's preferences and consent log.
    Show(CustomerArg),
    /// Change preferences; each change is written to the consent log.
    Set(PrefsSetArgs),
}

/// The person making a change from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActorArg {
    /// The customer asked for it (for example on the phone).
    Customer,
    /// A member of staff decided it.
    Staff,
}

/// On or off; each option's help says what "on" means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Turn the setting on.
    On,
    /// Turn the setting off.
    Off,
}

/// Arguments of `tact prefs set`.
#[derive(Debug, Args)]
pub struct PrefsSetArgs {
    /// The customer's external id.
    pub external_id: String,
    /// The person who asked for the change; staff cannot lift an opt-out the customer made.
    #[arg(long, value_enum, default_value = "staff")]
    pub actor: ActorArg,
    /// Marketing (sales, value, survey contacts): `on` allows it, `off` opts out.
    #[arg(long, value_enum)]
    pub marketing: Option<Switch>,
    /// Do-not-contact: `on` forbids every non-transactional contact.
    #[arg(long, value_enum)]
    pub do_not_contact: Option<Switch>,
    /// Allow a channel (repeatable).
    #[arg(long = "allow-channel", value_name = "CHANNEL")]
    pub allow_channels: Vec<String>,
    /// Opt out of a channel (repeatable).
    #[arg(long = "block-channel", value_name = "CHANNEL")]
    pub block_channels: Vec<String>,
    /// Allow a topic (repeatable).
    #[arg(long = "allow-topic", value_name = "TOPIC")]
    pub allow_topics: Vec<String>,
    /// Opt out of a topic (repeatable).
    #[arg(long = "block-topic", value_name = "TOPIC")]
    pub block_topics: Vec<String>,
    /// Cadence bucket: weekly, monthly, quarterly, twice_a_year, yearly, or `none` to clear.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Contact window in the customer's time zone, as HH:MM-HH:MM, or `none` to clear.
    #[arg(long)]
    pub window: Option<String>,
    /// Pause non-transactional contact until this instant (RFC 3339), or `none` to lift.
    #[arg(long)]
    pub pause_until: Option<String>,
}

/// Arguments of `tact signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The customer's external id.
    pub external_id: String,
    /// complaint, negative_tone, declined, unsubscribed, bounced, opened, clicked, replied,
    /// case_opened, case_closed or purchase.
    pub kind: String,
    /// When it happened (RFC 3339); default now.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// The channel it came through.
    #[arg(long)]
    pub channel: Option<String>,
    /// The topic it concerns, such as the topic of a declined offer.
    #[arg(long)]
    pub topic: Option<String>,
}

/// `tact case` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Open a care case; no sales contact goes out while it is open.
    Open(CaseArgs),
    /// Close the customer's open care case.
    Close(CaseArgs),
}

/// Arguments of `tact case open|close`.
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// The customer's external id.
    pub external_id: String,
    /// When (RFC 3339); default now.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
}

/// Arguments of `tact check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The customer's external id.
    #[arg(long)]
    pub customer: String,
    /// The channel, such as email, phone or sms.
    #[arg(long)]
    pub channel: String,
    /// care, sales, value, survey or transactional.
    #[arg(long)]
    pub purpose: String,
    /// The topic, such as newsletter.
    #[arg(long)]
    pub topic: Option<String>,
    /// Decide as of this instant (RFC 3339); default now.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// The contact carries an offer (a price, a discount, a pitch).
    #[arg(long)]
    pub offer: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `tact campaign` subcommands.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign from a template; prints its id.
    Create(CampaignCreateArgs),
    /// Render the campaign for one customer and show the decision for them.
    Preview(CampaignPreviewArgs),
    /// Decide for every member of the audience and queue the approved deliveries.
    Send(CampaignIdArg),
    /// Print delivery counts by state and by the rule that held deliveries back.
    Status(CampaignIdArg),
}

/// Arguments of `tact campaign create`.
#[derive(Debug, Args)]
pub struct CampaignCreateArgs {
    /// A name for people.
    #[arg(long)]
    pub name: String,
    /// A TOML file with `subject`, `text` and optional `html`, or a folder with
    /// subject.txt, body.txt and optional body.html. minijinja syntax: {{ name }}.
    #[arg(long)]
    pub template: PathBuf,
    /// The channel.
    #[arg(long, default_value = "email")]
    pub channel: String,
    /// care, sales, value, survey or transactional.
    #[arg(long)]
    pub purpose: String,
    /// The topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Who receives it: `all`, `bucket:NAME`, `topic:NAME` (not opted out of the topic) or
    /// `account:NAME`.
    #[arg(long, default_value = "all")]
    pub audience: String,
    /// Higher goes first when campaigns compete for the same customers.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// The messages carry an offer.
    #[arg(long)]
    pub offer: bool,
    /// When `tact serve` starts it (RFC 3339); without it, start with `campaign send`.
    #[arg(long, value_parser = parse_instant)]
    pub start_at: Option<DateTime<Utc>>,
    /// After this instant (RFC 3339) the messages are pointless and deferred ones are
    /// dropped.
    #[arg(long, value_parser = parse_instant)]
    pub relevant_until: Option<DateTime<Utc>>,
}

/// Arguments of `tact campaign preview`.
#[derive(Debug, Args)]
pub struct CampaignPreviewArgs {
    /// The campaign id.
    pub id: i64,
    /// The customer's external id.
    #[arg(long)]
    pub customer: String,
    /// Decide as of this instant (RFC 3339); default now.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
}

/// A campaign id.
#[derive(Debug, Args)]
pub struct CampaignIdArg {
    /// The campaign id.
    pub id: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses an RFC 3339 instant such as `2026-03-01T09:00:00Z`, with an error that says so.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|error| {
            format!(
                "invalid time {text:?} ({error}): write RFC 3339 with a time zone, \
                 such as 2026-03-01T09:00:00Z"
            )
        })
}

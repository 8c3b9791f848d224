//! Returned mail: bounces, complaints and automatic replies turned into signals and
//! suppressions.
//!
//! [`Ingestor::ingest`] is the one code path behind `tact ingest-mail` (standard input or a
//! Maildir) and `POST /api/v1/inbound`. It classifies the raw message with
//! [`tact_inbound::classify`], maps each report to its delivery and customer, and stores the
//! effects:
//!
//! - a hard bounce records a `bounced` signal and suppresses the email address
//!   (`hard_bounce`);
//! - a soft bounce records a `bounced` signal, and suppresses the address (`soft_bounces`)
//!   once `bounces.soft_limit` of them fall within `bounces.soft_window`;
//! - a complaint records a `complaint` signal, which backs off contact on every channel, and
//!   suppresses marketing email (`complaint`), which still lets transactional email through;
//! - an unsubscribe request by mail (the `mailto:` of `List-Unsubscribe`) opts the customer
//!   that its signed token names out of marketing and records an `unsubscribed` signal, as
//!   the one-click link does;
//! - an automatic reply or a message that is not returned mail changes nothing.
//!
//! Every effect is idempotent, so a message read twice (after a crash, or piped twice by the
//! mail server) changes nothing the second time. A signal with a delivery id is stored once
//! per kind and delivery, and a suppression keeps its first reason and time.

mod config;
mod maildir;
mod target;

pub use config::BouncesConfig;
pub use maildir::{MaildirSummary, ingest_maildir, read_limited};

use chrono::{DateTime, Utc};
use tact_delivery::token::LinkKey;
use tact_domain::{Channel, CustomerId, DeliveryId, Policy, Signal, SignalKind, SuppressionReason};
use tact_inbound::{Class, Report};
use tact_storage::Store;

use crate::config::Settings;
use target::Target;

/// Errors of ingesting returned mail. The message must be ingested again after any of them.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// Reading the store to map a report to its delivery or customer failed.
    #[error("looking up the delivery or customer of a returned message failed; retry later")]
    Lookup(#[source] tact_storage::Error),
    /// Storing a signal or suppression failed.
    #[error("storing the {kind} of customer {customer} failed; retry later")]
    Store {
        /// The record that failed, such as `bounced signal`.
        kind: &'static str,
        /// The customer.
        customer: CustomerId,
        /// The storage error.
        #[source]
        source: tact_storage::Error,
    },
}

/// Whether ingestion stores its effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Store signals and suppressions.
    Apply,
    /// Classify and map only; change nothing.
    DryRun,
}

/// The change made by ingesting one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing to change: an automatic reply, not returned mail, or a dry run.
    None,
    /// The report needs a customer, but none matches its delivery or address.
    NoCustomer,
    /// A signal is stored (now or by an earlier ingestion) and the address stays usable.
    Recorded,
    /// A signal is stored and the email address is suppressed for this reason.
    Suppressed(SuppressionReason),
    /// The customer is opted out of marketing, now or by an earlier request.
    Unsubscribed,
}

impl Effect {
    /// Returns the name used in logs and JSON: `none`, `no_customer`, `recorded` or `suppressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::None => "none",
            Effect::NoCustomer => "no_customer",
            Effect::Recorded => "recorded",
            Effect::Suppressed(_) => "suppressed",
            Effect::Unsubscribed => "unsubscribed",
        }
    }
}

/// The result for one recipient of a returned message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The classified report.
    pub report: Report,
    /// The delivery the report maps to, through its VERP address or Message-ID.
    pub delivery: Option<DeliveryId>,
    /// The customers the report maps to: the delivery's customer, or every customer whose
    /// email address is the reported recipient.
    pub customers: Vec<CustomerId>,
    /// The change made.
    pub effect: Effect,
}

impl Outcome {
    /// Formats the outcome as one line of `tact ingest-mail --json`.
    pub fn to_json_line(&self) -> String {
        tact_inbound::to_json_line(&self.report, self.delivery.map(|delivery| delivery.0))
    }
}

/// Turns returned messages into signals and suppressions.
#[derive(Debug, Clone)]
pub struct Ingestor {
    key: LinkKey,
    message_id_domain: String,
    bounces: BouncesConfig,
    policy: Policy,
}

impl Ingestor {
    /// Builds an ingestor that checks VERP signatures with `key` (the key of
    /// `links.secret_key`, which also signs outgoing envelope senders).
    pub fn new(key: LinkKey, settings: &Settings) -> Ingestor {
        Ingestor {
            key,
            message_id_domain: settings.config.message.message_id_domain.clone(),
            bounces: settings.config.bounces.clone(),
            policy: settings.policy.clone(),
        }
    }

    /// Returns the `[bounces]` settings.
    pub fn bounces(&self) -> &BouncesConfig {
        &self.bounces
    }

    /// Classifies one raw message, maps each report to its delivery and customer, and with
    /// [`Mode::Apply`] stores the effects at `now` (UTC). Logs one info line per report.
    ///
    /// The result has one outcome per report and is never empty. Malformed, truncated or
    /// non-UTF-8 input is read as well as possible and at worst gives one `not_returned`
    /// outcome.
    ///
    /// # Errors
    ///
    /// [`InboundError`] when the store fails. Effects stored before the failure stay, and
    /// ingesting the message again does not repeat them.
    pub fn ingest(
        &self,
        store: &Store,
        raw: &[u8],
        now: DateTime<Utc>,
        mode: Mode,
    ) -> Result<Vec<Outcome>, InboundError> {
        let mut outcomes = Vec::new();
        for report in tact_inbound::classify(raw) {
            let target = target::find(self, store, &report, now).map_err(InboundError::Lookup)?;
            let effect = match mode {
                Mode::Apply => self.apply(store, &report, &target, now)?,
                Mode::DryRun => Effect::None,
            };
            log_outcome(&report, &target, effect);
            outcomes.push(Outcome {
                report,
                delivery: target.delivery,
                customers: target.customers,
                effect,
            });
        }
        Ok(outcomes)
    }

    fn apply(
        &self,
        store: &Store,
        report: &Report,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Effect, InboundError> {
        let (kind, fixed_reason) = match report.class {
            Class::HardBounce => (SignalKind::Bounced, Some(SuppressionReason::HardBounce)),
            Class::SoftBounce => (SignalKind::Bounced, None),
            Class::Complaint => (SignalKind::Complaint, Some(SuppressionReason::Complaint)),
            Class::Unsubscribe => return unsubscribe(store, target, now),
            Class::AutoReply | Class::NotReturned => return Ok(Effect::None),
        };
        if target.customers.is_empty() {
            return Ok(Effect::NoCustomer);
        }

        let mut effect = Effect::Recorded;
        for &customer in &target.customers {
            record_once(store, customer, kind, target.delivery, now)?;
            let reason = match fixed_reason {
                Some(reason) => Some(reason),
                None => self
                    .soft_limit_reached(store, customer, now)?
                    .then_some(SuppressionReason::SoftBounces),
            };
            if let Some(reason) = reason {
                effect = Effect::Suppressed(suppress(store, customer, reason, now)?);
            }
        }
        Ok(effect)
    }

    /// Checks whether the customer's `bounced` email signals within the soft window, ending at
    /// `now`, reach the soft limit.
    fn soft_limit_reached(
        &self,
        store: &Store,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<bool, InboundError> {
        let since = now - self.bounces.soft_window.duration();
        let history = store
            .history(customer)
            .map_err(|source| store_error("bounce count", customer, source))?;
        let bounces = history
            .signals
            .iter()
            .filter(|signal| signal.kind == SignalKind::Bounced)
            .filter(|signal| signal.channel.as_ref().is_none_or(|c| *c == Channel::EMAIL))
            .filter(|signal| signal.at > since && signal.at <= now)
            .count();
        Ok(bounces >= self.bounces.soft_limit as usize)
    }
}

/// Opts the customers of an unsubscribe request out of marketing. The request names them
/// through its verified token only, so a forged sender address changes nothing.
fn unsubscribe(store: &Store, target: &Target, now: DateTime<Utc>) -> Result<Effect, InboundError> {
    if target.customers.is_empty() {
        return Ok(Effect::NoCustomer);
    }
    for &customer in &target.customers {
        crate::ops::unsubscribe_from_marketing(store, customer, now)
            .map_err(|source| store_error("marketing opt-out", customer, source))?;
    }
    Ok(Effect::Unsubscribed)
}

/// Records a signal of `kind` on the email channel, unless the customer already has one of
/// that kind for the same delivery.
///
/// Without a delivery id there is no identity to compare, so a second reading of the same
/// message stores a second signal.
fn record_once(
    store: &Store,
    customer: CustomerId,
    kind: SignalKind,
    delivery: Option<DeliveryId>,
    now: DateTime<Utc>,
) -> Result<(), InboundError> {
    let what = match kind {
        SignalKind::Complaint => "complaint signal",
        _ => "bounced signal",
    };
    if let Some(delivery) = delivery {
        let history = store
            .history(customer)
            .map_err(|source| store_error(what, customer, source))?;
        let stored = history
            .signals
            .iter()
            .any(|signal| signal.kind == kind && signal.delivery == Some(delivery));
        if stored {
            return Ok(());
        }
    }
    let mut signal = Signal::new(kind, now);
    signal.channel = Some(Channel::EMAIL);
    signal.delivery = delivery;
    store
        .record_signal(customer, &signal)
        .map_err(|source| store_error(what, customer, source))?;
    Ok(())
}

/// Suppresses the customer's email address and returns the stored reason.
///
/// NOTE: an address already suppressed keeps its first reason, so a hard bounce after a
/// complaint leaves `complaint`, which still lets transactional email through.
fn suppress(
    store: &Store,
    customer: CustomerId,
    reason: SuppressionReason,
    now: DateTime<Utc>,
) -> Result<SuppressionReason, InboundError> {
    let recorded = store
        .suppress(customer, &Channel::EMAIL, reason, now)
        .map_err(|source| store_error("suppression", customer, source))?;
    if recorded == tact_storage::Recorded::New {
        return Ok(reason);
    }
    let stored = store
        .suppressions(customer)
        .map_err(|source| store_error("suppression", customer, source))?
        .into_iter()
        .find(|suppression| suppression.channel == Channel::EMAIL)
        .map_or(reason, |suppression| suppression.reason);
    Ok(stored)
}

fn store_error(
    kind: &'static str,
    customer: CustomerId,
    source: tact_storage::Error,
) -> InboundError {
    InboundError::Store {
        kind,
        customer,
        source,
    }
}

/// Logs one line per customer of the report (one line when there is none), with ids but
/// never the address.
fn log_outcome(report: &Report, target: &Target, effect: Effect) {
    let delivery = target.delivery.map(|delivery| delivery.0);
    let customers: Vec<Option<i64>> = if target.customers.is_empty() {
        vec![None]
    } else {
        target.customers.iter().map(|id| Some(id.0)).collect()
    };
    for customer in customers {
        tracing::info!(
            class = report.class.as_str(),
            delivery.id = delivery,
            customer.id = customer,
            status = report.status.as_deref(),
            effect = effect.as_str(),
            "returned mail ingested"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use tact_storage::NewCustomer;

    /// A delayed-delivery notice (a soft bounce) for ann@example.com, with no VERP address
    /// or Message-ID, so it maps by address.
    const DELAYED: &[u8] = b"From: MAILER-DAEMON@mx.example.org\r\n\
To: tact@localhost\r\n\
Subject: Delayed Mail (still being retried)\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.org\r\n\
\r\n\
Final-Recipient: rfc822; ann@example.com\r\n\
Action: delayed\r\n\
Status: 4.2.2\r\n\
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n\
--b--\r\n";

    fn setup(folder: &std::path::Path) -> (Ingestor, Store, CustomerId) {
        let settings = Settings::from_config(crate::config::Config::default(), folder).unwrap();
        let key = LinkKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let store = Store::open(folder.join("tact.db")).unwrap();
        let mut customer = NewCustomer::new("c1");
        customer.email = Some("ann@example.com".into());
        let id = store.upsert_customer(&customer).unwrap();
        (Ingestor::new(key, &settings), store, id)
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn effect_at(ingestor: &Ingestor, store: &Store, at: DateTime<Utc>) -> Effect {
        let outcomes = ingestor.ingest(store, DELAYED, at, Mode::Apply).unwrap();
        assert_eq!(outcomes.len(), 1);
        outcomes[0].effect
    }

    #[test]
    fn third_soft_bounce_suppresses() {
        let folder = tempfile::tempdir().unwrap();
        let (ingestor, store, customer) = setup(folder.path());

        let first = effect_at(&ingestor, &store, start());
        let second = effect_at(&ingestor, &store, start() + Duration::days(10));
        let third = effect_at(&ingestor, &store, start() + Duration::days(20));

        assert_eq!(first, Effect::Recorded);
        assert_eq!(second, Effect::Recorded);
        assert_eq!(third, Effect::Suppressed(SuppressionReason::SoftBounces));
        let history = store.history(customer).unwrap();
        assert_eq!(history.signals.len(), 3);
        assert_eq!(
            history.suppressions[0].reason,
            SuppressionReason::SoftBounces
        );
        assert_eq!(history.suppressions[0].at, start() + Duration::days(20));
    }

    #[test]
    fn soft_bounces_outside_window_ignored() {
        let folder = tempfile::tempdir().unwrap();
        let (ingestor, store, customer) = setup(folder.path());

        effect_at(&ingestor, &store, start());
        effect_at(&ingestor, &store, start() + Duration::days(25));
        let third = effect_at(&ingestor, &store, start() + Duration::days(31));

        assert_eq!(third, Effect::Recorded);
        assert_eq!(store.history(customer).unwrap().suppressions, Vec::new());
    }

    #[test]
    fn earlier_suppression_keeps_reason() {
        let folder = tempfile::tempdir().unwrap();
        let (ingestor, store, customer) = setup(folder.path());
        store
            .suppress(
                customer,
                &Channel::EMAIL,
                SuppressionReason::Manual,
                start(),
            )
            .unwrap();

        effect_at(&ingestor, &store, start());
        effect_at(&ingestor, &store, start() + Duration::days(1));
        let third = effect_at(&ingestor, &store, start() + Duration::days(2));

        assert_eq!(third, Effect::Suppressed(SuppressionReason::Manual));
        let history = store.history(customer).unwrap();
        assert_eq!(history.suppressions.len(), 1);
        assert_eq!(history.suppressions[0].at, start());
    }

    #[test]
    fn dry_run_stores_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let (ingestor, store, customer) = setup(folder.path());

        let outcomes = ingestor
            .ingest(&store, DELAYED, start(), Mode::DryRun)
            .unwrap();

        assert_eq!(outcomes[0].report.class, Class::SoftBounce);
        assert_eq!(outcomes[0].customers, vec![customer]);
        assert_eq!(outcomes[0].effect, Effect::None);
        assert_eq!(store.history(customer).unwrap().signals, Vec::new());
    }
}

//! Mapping a report back to its delivery and customer.

use chrono::{DateTime, Utc};
use tact_delivery::token::LinkPurpose;
use tact_domain::{CustomerId, DeliveryId};
use tact_inbound::{Class, Report};
use tact_storage::{Audience, Delivery, Store};

use super::Ingestor;

/// Customers loaded per batch while looking an address up.
const SCAN_BATCH: usize = 1000;

/// The delivery and customers a report is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) delivery: Option<DeliveryId>,
    pub(super) customers: Vec<CustomerId>,
}

/// Finds the report's delivery and customers, in this order:
///
/// 1. the VERP address, when its signature is valid;
/// 2. the original's `Message-ID` `<delivery-<id>@<message_id_domain>>`, when the domain is
///    ours and the delivery's customer has the reported address (the id is not signed, so
///    the address guards against a guessed one);
/// 3. the reported recipient (or original recipient) matched to customers' email addresses,
///    for the classes that change something. The delivery is then unknown.
///
/// A delivery id that no delivery has falls through to the next step.
///
/// An unsubscribe request maps only through its token instead. It maps to the customer the
/// token names when its signature is valid and that customer exists, and to no customer
/// otherwise.
pub(super) fn find(
    ingestor: &Ingestor,
    store: &Store,
    report: &Report,
    now: DateTime<Utc>,
) -> tact_storage::Result<Target> {
    if report.class == Class::Unsubscribe {
        return token_customer(ingestor, store, report, now);
    }
    if let Some(delivery) = verp_delivery(ingestor, store, report)? {
        return Ok(Target {
            delivery: Some(delivery.id),
            customers: vec![delivery.customer],
        });
    }
    if let Some(delivery) = message_id_delivery(ingestor, store, report)? {
        return Ok(Target {
            delivery: Some(delivery.id),
            customers: vec![delivery.customer],
        });
    }
    if matches!(report.class, Class::AutoReply | Class::NotReturned) {
        return Ok(Target::default());
    }
    let addresses = reported_addresses(report);
    if addresses.is_empty() {
        return Ok(Target::default());
    }
    Ok(Target {
        delivery: None,
        customers: customers_with_email(ingestor, store, &addresses, now)?,
    })
}

fn verp_delivery(
    ingestor: &Ingestor,
    store: &Store,
    report: &Report,
) -> tact_storage::Result<Option<Delivery>> {
    let Some(verp) = &report.verp else {
        return Ok(None);
    };
    match ingestor.key.parse_verp(verp) {
        Ok(id) => existing_delivery(store, id),
        Err(error) => {
            tracing::warn!(error = %error, "ignoring a VERP address with an invalid signature");
            Ok(None)
        }
    }
}

fn message_id_delivery(
    ingestor: &Ingestor,
    store: &Store,
    report: &Report,
) -> tact_storage::Result<Option<Delivery>> {
    let id = report
        .original_message_id
        .as_deref()
        .and_then(|message_id| delivery_in_message_id(message_id, &ingestor.message_id_domain));
    let Some(id) = id else {
        return Ok(None);
    };
    let Some(delivery) = existing_delivery(store, id)? else {
        return Ok(None);
    };
    let addresses = reported_addresses(report);
    if addresses.is_empty() {
        return Ok(Some(delivery));
    }
    let email = store.customer(delivery.customer)?.email.unwrap_or_default();
    let matches = addresses
        .iter()
        .any(|address| address.eq_ignore_ascii_case(email.trim()));
    Ok(matches.then_some(delivery))
}

/// Reads the delivery id from `delivery-<id>@<domain>` (angle brackets optional) when the
/// domain is `domain`, ignoring case.
fn delivery_in_message_id(message_id: &str, domain: &str) -> Option<DeliveryId> {
    let message_id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, found_domain) = message_id.rsplit_once('@')?;
    if !found_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let id = local.strip_prefix("delivery-")?;
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    id.parse().ok().map(DeliveryId)
}

/// Finds the customer an unsubscribe token names. A token of any age counts, because the
/// signature proves the customer and honouring an old request only ever means less contact.
///
/// NOTE: the same request read again after the customer opted back in opts them out again;
/// nothing compares the message's date with the opt-in.
fn token_customer(
    ingestor: &Ingestor,
    store: &Store,
    report: &Report,
    now: DateTime<Utc>,
) -> tact_storage::Result<Target> {
    let Some(token) = &report.unsubscribe_token else {
        return Ok(Target::default());
    };
    let any_age = chrono::Duration::days(365 * 1000);
    let Ok(customer) = ingestor
        .key
        .verify(token, LinkPurpose::Unsubscribe, now, any_age)
    else {
        return Ok(Target::default());
    };
    match store.customer(customer) {
        Ok(_) => Ok(Target {
            delivery: None,
            customers: vec![customer],
        }),
        Err(tact_storage::Error::NotFound { .. }) => Ok(Target::default()),
        Err(error) => Err(error),
    }
}

fn existing_delivery(store: &Store, id: DeliveryId) -> tact_storage::Result<Option<Delivery>> {
    match store.delivery(id) {
        Ok(delivery) => Ok(Some(delivery)),
        Err(tact_storage::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The recipient and the original recipient, without duplicates.
fn reported_addresses(report: &Report) -> Vec<&str> {
    let mut addresses: Vec<&str> = Vec::new();
    for address in [&report.recipient, &report.original_recipient]
        .into_iter()
        .flatten()
    {
        if !addresses
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(address))
        {
            addresses.push(address);
        }
    }
    addresses
}

/// Returns every customer whose email address is one of `addresses`, ignoring case.
///
/// NOTE: the store has no lookup by email address, so this reads every customer, which
/// takes seconds on a million customers. It runs only for reports that carry neither a
/// valid VERP address nor one of our Message-IDs.
fn customers_with_email(
    ingestor: &Ingestor,
    store: &Store,
    addresses: &[&str],
    now: DateTime<Utc>,
) -> tact_storage::Result<Vec<CustomerId>> {
    let mut customers = Vec::new();
    store.for_each_view(&Audience::All, now, &ingestor.policy, SCAN_BATCH, |view| {
        let email = view.customer.email.as_deref().unwrap_or_default().trim();
        let matches = addresses
            .iter()
            .any(|address| address.eq_ignore_ascii_case(email));
        if !email.is_empty() && matches {
            customers.push(view.customer.id);
        }
        Ok(())
    })?;
    Ok(customers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_gives_delivery() {
        let found = delivery_in_message_id("<delivery-42@Mail.Example.com>", "mail.example.com");

        assert_eq!(found, Some(DeliveryId(42)));
    }

    #[test]
    fn message_id_foreign_domain_ignored() {
        let cases = [
            "delivery-42@other.example",
            "delivery-@mail.example.com",
            "delivery-4x2@mail.example.com",
            "newsletter-42@mail.example.com",
            "no at sign",
        ];

        for case in cases {
            assert_eq!(
                delivery_in_message_id(case, "mail.example.com"),
                None,
                "{case}"
            );
        }
    }

    #[test]
    fn reported_addresses_drop_duplicates() {
        let mut report = Report::not_returned("test");
        report.recipient = Some("ann@example.com".into());
        report.original_recipient = Some("ANN@example.com".into());

        assert_eq!(reported_addresses(&report), vec!["ann@example.com"]);
    }
}

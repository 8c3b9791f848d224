use chrono_tz::Tz;
use serde_json::json;
use tact_domain::{
    Bucket, CampaignId, Channel, Contact, CustomerId, Outcome, Purpose, Signal, SignalKind,
    Suppression, SuppressionReason, Topic,
};
use tact_storage::{Error, NewCustomer, Recorded};

use crate::common::{TestResult, customer, temp_store, utc};

#[test]
fn customer_round_trip_exact() -> TestResult {
    let (_folder, store) = temp_store()?;
    let account = store.upsert_account("Acme GmbH")?;
    let mut new = NewCustomer::new("crm-1");
    new.name = Some("Ann Lee".to_owned());
    new.email = Some("ann@example.com".to_owned());
    new.phone = Some("+49 30 123456".to_owned());
    new.time_zone = Tz::Europe__Berlin;
    new.locale = "de-DE".to_owned();
    new.account = Some(account);
    new.fields.insert("plan".to_owned(), json!("gold"));

    let id = store.upsert_customer(&new)?;
    store.set_bucket(id, Some(Bucket::Quarterly))?;

    let stored = store.customer(id)?;
    assert_eq!(stored.id, id);
    assert_eq!(stored.external_id, "crm-1");
    assert_eq!(stored.name.as_deref(), Some("Ann Lee"));
    assert_eq!(stored.email.as_deref(), Some("ann@example.com"));
    assert_eq!(stored.phone.as_deref(), Some("+49 30 123456"));
    assert_eq!(stored.time_zone, Tz::Europe__Berlin);
    assert_eq!(stored.locale, "de-DE");
    assert_eq!(stored.account, Some(account));
    assert_eq!(stored.bucket, Some(Bucket::Quarterly));
    assert_eq!(store.customer_by_external_id("crm-1")?, stored);
    assert_eq!(store.customer_fields(id)?.get("plan"), Some(&json!("gold")));
    Ok(())
}

#[test]
fn fields_each_keeps_id_order() -> TestResult {
    let (_folder, store) = temp_store()?;
    let mut ids = Vec::new();
    for (external_id, plan) in [("c1", "gold"), ("c2", "free"), ("c3", "pro")] {
        let mut new = customer(external_id);
        new.fields.insert("plan".to_owned(), json!(plan));
        ids.push(store.upsert_customer(&new)?);
    }
    let missing = CustomerId(ids[2].0 + 5);
    let requested = [CustomerId(0), ids[0], ids[2], missing];

    let fields = store.customer_fields_each(&requested)?;

    let plans: Vec<_> = fields
        .iter()
        .map(|fields| match fields {
            Ok(fields) => format!("{}", fields["plan"]),
            Err(error) => error.to_string(),
        })
        .collect();
    assert_eq!(
        plans,
        [
            store
                .customer_fields(CustomerId(0))
                .unwrap_err()
                .to_string(),
            "\"gold\"".to_owned(),
            "\"pro\"".to_owned(),
            store.customer_fields(missing).unwrap_err().to_string(),
        ]
    );
    assert!(matches!(fields[0], Err(Error::NotFound { .. })));
    assert!(store.customer_fields_each(&[])?.is_empty());
    Ok(())
}

#[test]
fn upsert_customer_updates_by_external_id() -> TestResult {
    let (_folder, store) = temp_store()?;
    let first = store.upsert_customer(&customer("c1"))?;
    store.set_bucket(first, Some(Bucket::Yearly))?;

    let mut changed = customer("c1");
    changed.name = Some("New Name".to_owned());
    let second = store.upsert_customer(&changed)?;

    assert_eq!(second, first);
    let stored = store.customer(first)?;
    assert_eq!(stored.name.as_deref(), Some("New Name"));
    assert_eq!(stored.bucket, Some(Bucket::Yearly));
    assert_eq!(store.upsert_account("Acme")?, store.upsert_account("Acme")?);
    Ok(())
}

#[test]
fn upsert_customer_rejects_invalid_fields() -> TestResult {
    let (_folder, store) = temp_store()?;
    type Spoil = fn(&mut NewCustomer);
    let cases: [(&str, Spoil); 5] = [
        ("external_id", |c| c.external_id = " ".to_owned()),
        ("name", |c| c.name = Some("Ann\r\nBcc: x".to_owned())),
        ("email", |c| c.email = Some("not-an-address".to_owned())),
        ("phone", |c| c.phone = Some("call me".to_owned())),
        ("locale", |c| c.locale = "en_GB!".to_owned()),
    ];
    for (field, spoil) in cases {
        let mut new = customer("c1");
        spoil(&mut new);
        let error = store.upsert_customer(&new).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidField { field: f, .. } if *f == field),
            "{field}: {error}"
        );
    }
    assert!(matches!(
        store.customer_by_external_id("c1"),
        Err(Error::NotFound {
            entity: "customer with external id",
            ..
        })
    ));
    Ok(())
}

#[test]
fn missing_customer_is_not_found() -> TestResult {
    let (_folder, store) = temp_store()?;
    let error = store.customer(CustomerId(99)).unwrap_err();
    assert_eq!(error.to_string(), "customer 99 not found");
    let error = store.set_bucket(CustomerId(99), None).unwrap_err();
    assert!(matches!(
        error,
        Error::NotFound {
            entity: "customer",
            ..
        }
    ));
    Ok(())
}

#[test]
fn history_round_trip_exact() -> TestResult {
    let (_folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let contact = Contact {
        customer: id,
        channel: Channel::PHONE,
        purpose: Purpose::Sales,
        topic: Some(Topic::parse("offers")?),
        campaign: None,
        at: utc(2026, 3, 1, 9, 30),
        duration_s: 240,
        outcome: Outcome::Answered,
    };
    let mut signal = Signal::new(SignalKind::Declined, utc(2026, 3, 1, 9, 35));
    signal.channel = Some(Channel::PHONE);
    signal.topic = Some(Topic::parse("offers")?);
    signal.value = Some(12.5);

    let contact_id = store.record_contact(&contact)?;
    assert_eq!(store.record_contact(&contact)?, contact_id);
    assert_eq!(store.record_signal(id, &signal)?, Recorded::New);
    assert_eq!(store.record_signal(id, &signal)?, Recorded::Duplicate);
    let case = store.open_case(id, utc(2026, 3, 2, 10, 0))?;
    store.close_case(case, utc(2026, 3, 3, 10, 0))?;
    store.close_case(case, utc(2026, 3, 9, 10, 0))?;
    let reason = SuppressionReason::HardBounce;
    assert_eq!(
        store.suppress(id, &Channel::EMAIL, reason, utc(2026, 3, 4, 0, 0))?,
        Recorded::New
    );
    let again = store.suppress(
        id,
        &Channel::EMAIL,
        SuppressionReason::Manual,
        utc(2026, 4, 1, 0, 0),
    )?;
    assert_eq!(again, Recorded::Duplicate);

    let history = store.history(id)?;
    assert_eq!(history.contacts, vec![(contact_id, contact)]);
    assert_eq!(history.signals, vec![signal]);
    assert_eq!(history.cases.len(), 1);
    assert_eq!(history.cases[0].0, case);
    assert_eq!(history.cases[0].1.opened_at, utc(2026, 3, 2, 10, 0));
    assert_eq!(history.cases[0].1.closed_at, Some(utc(2026, 3, 3, 10, 0)));
    let expected = Suppression {
        channel: Channel::EMAIL,
        reason,
        at: utc(2026, 3, 4, 0, 0),
    };
    assert_eq!(history.suppressions, vec![expected.clone()]);
    assert_eq!(store.suppressions(id)?, vec![expected]);
    Ok(())
}

#[test]
fn contact_outcome_update_and_errors() -> TestResult {
    let (_folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let mut contact = Contact {
        customer: id,
        channel: Channel::EMAIL,
        purpose: Purpose::Value,
        topic: None,
        campaign: None,
        at: utc(2026, 3, 1, 9, 30),
        duration_s: 0,
        outcome: Outcome::Sent,
    };
    let contact_id = store.record_contact(&contact)?;
    store.set_contact_outcome(contact_id, Outcome::Delivered)?;
    assert_eq!(store.history(id)?.contacts[0].1.outcome, Outcome::Delivered);

    contact.customer = CustomerId(404);
    assert!(matches!(
        store.record_contact(&contact),
        Err(Error::NotFound { .. })
    ));
    contact.customer = id;
    contact.campaign = Some(CampaignId(7));
    assert!(matches!(
        store.record_contact(&contact),
        Err(Error::NotFound { .. })
    ));
    let signal = Signal::new(SignalKind::Opened, utc(2026, 3, 1, 10, 0));
    assert!(matches!(
        store.record_signal(CustomerId(404), &signal),
        Err(Error::NotFound { .. })
    ));
    Ok(())
}

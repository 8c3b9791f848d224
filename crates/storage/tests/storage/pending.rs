//! Contacts with the outcome `pending` have a unique identity index of their own and stay
//! out of timelines. These tests check that views, history, imports and sent marks treat a
//! pending contact and its later outcome as one contact.

use chrono::{DateTime, Duration, Utc};
use tact_domain::{CampaignId, Channel, CustomerId, DeliveryId, Outcome, Policy, Purpose};
use tact_storage::import::{import_contacts, import_customers};
use tact_storage::{DeliveryState, Error, Store};

use crate::common::{TestResult, approve, campaign, raw, sent_contact, temp_store, utc};

/// Returns the instant the tests decide at.
fn now() -> DateTime<Utc> {
    utc(2026, 3, 10, 12, 0)
}

/// Returns the outcomes of the customer's stored contacts, oldest first.
fn stored_outcomes(store: &Store, customer: CustomerId) -> Vec<Outcome> {
    store
        .history(customer)
        .unwrap()
        .contacts
        .iter()
        .map(|(_, contact)| contact.outcome)
        .collect()
}

#[test]
fn outcome_report_after_pending_stores_one_contact() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    let customer = CustomerId(1);
    let at = utc(2026, 3, 9, 9, 0);
    let mut booked = sent_contact(customer, Channel::PHONE, Purpose::Sales, at);
    booked.outcome = Outcome::Pending;

    let first = store.record_contact(&booked)?;
    let answered = tact_domain::Contact {
        outcome: Outcome::Answered,
        ..booked.clone()
    };
    let second = store.record_contact(&answered)?;

    assert_eq!(second, first, "the same call reported twice");
    assert_eq!(stored_outcomes(&store, customer).len(), 1);
    Ok(())
}

#[test]
fn import_of_pending_then_sent_stores_one_contact() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    let header = "external_id,channel,purpose,at,outcome\n";
    let row = "c1,email,value,2026-03-09T09:30:00Z";

    let booked = import_contacts(&store, format!("{header}{row},pending\n").as_bytes())?;
    let booked_again = import_contacts(&store, format!("{header}{row},pending\n").as_bytes())?;
    let sent = import_contacts(&store, format!("{header}{row},sent\n").as_bytes())?;

    assert_eq!(booked.inserted, 1);
    assert_eq!(booked_again.inserted, 0);
    assert_eq!(sent.inserted, 0, "the booked contact again, now sent");
    let view = store.load_view(CustomerId(1), now(), &Policy::default())?;
    assert_eq!(view.contacts.len(), 1);
    Ok(())
}

#[test]
fn import_of_sent_then_pending_stores_one_contact() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    let header = "external_id,channel,purpose,at,outcome\n";
    let row = "c1,email,value,2026-03-09T09:30:00Z";

    let sent = import_contacts(&store, format!("{header}{row},sent\n").as_bytes())?;
    let pending = import_contacts(&store, format!("{header}{row},pending\n").as_bytes())?;

    assert_eq!(sent.inserted, 1);
    assert_eq!(pending.inserted, 0);
    assert_eq!(pending.unchanged, 1);
    assert_eq!(stored_outcomes(&store, CustomerId(1)), [Outcome::Sent]);
    Ok(())
}

/// Plans a newsletter to customer c1, approves it two hours before [`now`] and claims the
/// delivery. Returns the campaign, the delivery and the instant of the booking.
fn claimed_booking(store: &Store) -> Result<(CampaignId, DeliveryId, DateTime<Utc>), Error> {
    import_customers(store, "external_id,email\nc1,c1@example.com\n".as_bytes())?;
    let customer = CustomerId(1);
    let planned_at = now() - Duration::hours(2);
    let news = store.create_campaign(&campaign("News", planned_at))?;
    let deliveries = store.plan_deliveries(news, &[customer], planned_at)?;
    approve(store, deliveries[0], customer, news, planned_at);
    store.claim_deliveries("w1", Duration::minutes(5), 10, planned_at)?;
    Ok((news, deliveries[0], planned_at))
}

#[test]
fn sent_mark_with_recorded_copy_counts_once() -> TestResult {
    let (_folder, store) = temp_store()?;
    let customer = CustomerId(1);
    let (news, delivery, planned_at) = claimed_booking(&store)?;
    // The campaign message as a mail log import records it, at the instant it was booked.
    let mut recorded = sent_contact(customer, Channel::EMAIL, Purpose::Value, planned_at);
    recorded.campaign = Some(news);
    store.record_contact(&recorded)?;

    store.mark_sent(delivery, "<d1@tact>", now() - Duration::hours(1))?;

    assert_eq!(stored_outcomes(&store, customer), [Outcome::Sent]);
    Ok(())
}

#[test]
fn unreadable_pending_row_is_listed() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    // A booked contact with a purpose that tact rejects, as the sqlite3 shell may write.
    raw(&folder).execute(
        "INSERT INTO contacts (id, customer_id, channel, purpose, at_ms, outcome)
             VALUES (50, 2, 'email', 'promo', 1773046800000, 'pending')",
        [],
    )?;

    store.rebuild_timelines()?;
    let unreadable = store.unreadable_timelines()?;
    let error = store
        .load_view(CustomerId(2), now(), &Policy::default())
        .unwrap_err();

    let listed: Vec<CustomerId> = unreadable.iter().map(|(customer, _)| *customer).collect();
    assert_eq!(listed, [CustomerId(2)]);
    assert_eq!(
        error.to_string(),
        "invalid contact row 50: unknown purpose \"promo\""
    );
    Ok(())
}

#[test]
fn unreadable_booked_row_keeps_sent_mark() -> TestResult {
    let (folder, store) = temp_store()?;
    let (_, delivery, _) = claimed_booking(&store)?;
    // A booked contact whose call length is text, as the sqlite3 shell may write.
    raw(&folder).execute(
        "UPDATE contacts SET duration_s = 'long' WHERE customer_id = 1",
        [],
    )?;

    let marked = store.mark_sent(delivery, "<d1@tact>", now() - Duration::hours(1));

    assert!(marked.is_ok(), "{marked:?}");
    assert_eq!(store.delivery(delivery)?.state, DeliveryState::Sent);
    Ok(())
}

#[test]
fn account_view_counts_pending_bookings_of_members() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id,account\nc1,acme\nc2,acme\n".as_bytes())?;
    let at = utc(2026, 3, 9, 9, 0);
    let mut booked = sent_contact(CustomerId(2), Channel::PHONE, Purpose::Sales, at);
    booked.outcome = Outcome::Pending;
    store.record_contact(&booked)?;
    let mut policy = Policy::default();
    policy.account.contacts = Some(serde_json::from_str(r#"{"max":1,"per":"7d"}"#)?);

    let view = store.load_view(CustomerId(1), now(), &policy)?;

    assert_eq!(view.account_contacts, [booked]);
    Ok(())
}

/// One write through the public API, for the property test below.
#[derive(Debug, Clone)]
enum Write {
    Record {
        customer: i64,
        seconds_ago: i64,
        channel: bool,
        outcome: usize,
    },
    SetOutcome {
        contact: usize,
        outcome: usize,
    },
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::Pending,
    Outcome::Sent,
    Outcome::Failed,
    Outcome::Answered,
];

fn write() -> impl proptest::strategy::Strategy<Value = Write> {
    use proptest::prelude::*;
    // Two instants and two channels, so that writes repeat stored contacts.
    prop_oneof![
        (1..=2i64, 0..2i64, any::<bool>(), 0..OUTCOMES.len()).prop_map(
            |(customer, seconds_ago, channel, outcome)| Write::Record {
                customer,
                seconds_ago,
                channel,
                outcome,
            }
        ),
        (0..12usize, 0..OUTCOMES.len())
            .prop_map(|(contact, outcome)| Write::SetOutcome { contact, outcome }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn pending_writes_keep_views_equal_to_history(
        writes in proptest::collection::vec(write(), 0..30)
    ) {
        let store = Store::open_in_memory().unwrap();
        import_customers(&store, "external_id\nc1\nc2\n".as_bytes()).unwrap();
        let base = now() - Duration::hours(1);
        let mut ids = Vec::new();
        for write in &writes {
            match *write {
                Write::Record { customer, seconds_ago, channel, outcome } => {
                    let channel = if channel { Channel::EMAIL } else { Channel::SMS };
                    let at = base - Duration::seconds(seconds_ago);
                    let mut contact = sent_contact(CustomerId(customer), channel, Purpose::Value, at);
                    contact.outcome = OUTCOMES[outcome];
                    ids.push(store.record_contact(&contact).unwrap());
                }
                Write::SetOutcome { contact, outcome } => {
                    if let Some(&id) = ids.get(contact) {
                        store.set_contact_outcome(id, OUTCOMES[outcome]).unwrap();
                    }
                }
            }
        }
        for customer in [CustomerId(1), CustomerId(2)] {
            let history: Vec<tact_domain::Contact> = store
                .history(customer)
                .unwrap()
                .contacts
                .into_iter()
                .map(|(_, contact)| contact)
                .collect();
            let view = store.load_view(customer, now(), &Policy::default()).unwrap();
            proptest::prop_assert_eq!(view.contacts, history);
        }
    }
}

#[test]
fn concurrent_sending_planning_and_recording_agree() -> TestResult {
    let (folder, store) = temp_store()?;
    let path = folder.path().join("tact.db");
    let count = 40i64;
    let mut csv = String::from("external_id,email\n");
    for i in 1..=count {
        csv.push_str(&format!("c{i},c{i}@example.com\n"));
    }
    import_customers(&store, csv.as_bytes())?;
    let customers: Vec<CustomerId> = (1..=count).map(CustomerId).collect();
    let planned_at = now() - Duration::hours(3);
    let news = store.create_campaign(&campaign("News", planned_at))?;
    let deliveries = store.plan_deliveries(news, &customers, planned_at)?;
    for (delivery, customer) in deliveries.iter().zip(&customers) {
        approve(&store, *delivery, *customer, news, planned_at);
    }
    let tips = store.create_campaign(&campaign("Tips", planned_at))?;

    std::thread::scope(|threads| {
        // The outbox worker claims deliveries and marks them sent, the first of each claim at
        // the booked instant.
        threads.spawn(|| {
            let sender = Store::open(&path).unwrap();
            for round in 0..20 {
                let claimed = sender
                    .claim_deliveries("w1", Duration::minutes(5), 3, planned_at)
                    .unwrap();
                if claimed.is_empty() {
                    break;
                }
                for (k, delivery) in claimed.iter().enumerate() {
                    let at = if k == 0 {
                        planned_at
                    } else {
                        planned_at + Duration::minutes(round)
                    };
                    sender.mark_sent(delivery.id, "<m@tact>", at).unwrap();
                }
            }
        });
        // Planning of a second campaign for the same customers.
        threads.spawn(|| {
            let planner = Store::open(&path).unwrap();
            let planned = planner
                .plan_deliveries(tips, &customers, planned_at)
                .unwrap();
            for (delivery, customer) in planned.iter().zip(&customers) {
                let decision =
                    crate::common::decide_delivery(&planner, *customer, tips, planned_at);
                planner
                    .record_decision(*delivery, &decision, planned_at)
                    .unwrap();
            }
        });
        // An API caller recording the newsletter as its mail log saw it.
        threads.spawn(|| {
            let recorder = Store::open(&path).unwrap();
            for customer in &customers {
                let mut seen = sent_contact(*customer, Channel::EMAIL, Purpose::Value, planned_at);
                seen.campaign = Some(news);
                recorder.record_contact(&seen).unwrap();
            }
        });
    });

    for customer in &customers {
        let history = store.history(*customer)?;
        let view = store.load_view(*customer, now(), &Policy::default())?;
        let stored: Vec<tact_domain::Contact> =
            history.contacts.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(view.contacts, stored, "customer {customer}");
    }
    Ok(())
}

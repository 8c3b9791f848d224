//! Views read contacts and signals from each customer's packed timeline. These tests check
//! that every write path keeps the timelines equal to the `contacts` and `signals` tables.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use tact_domain::{
    CampaignId, Channel, Contact, CustomerId, DeliveryId, Outcome, Policy, Purpose, Signal,
    SignalKind, Topic,
};
use tact_storage::import::{import_contacts, import_customers, import_signals};
use tact_storage::{ContactId, Store};

use crate::common::{TestResult, approve, campaign, raw, sent_contact as contact, temp_store, utc};

/// Returns the instant the tests decide at. Every write lies within the week before it,
/// inside the default policy's lookback.
fn now() -> DateTime<Utc> {
    utc(2026, 3, 10, 12, 0)
}

/// Asserts that the view of every customer contains exactly the contacts and signals of the
/// tables in its window, oldest first, and that leaving out one contact drops only it.
fn assert_views_match_tables(store: &Store, customers: &[CustomerId]) {
    let policy = Policy::default();
    let since = now() - policy.lookback();
    let in_window = |at: DateTime<Utc>| at > since && at <= now();
    for &customer in customers {
        let history = store.history(customer).unwrap();
        let contacts: Vec<Contact> = history
            .contacts
            .iter()
            .filter(|(_, contact)| in_window(contact.at))
            .map(|(_, contact)| contact.clone())
            .collect();
        let signals: Vec<Signal> = history
            .signals
            .iter()
            .filter(|signal| in_window(signal.at))
            .cloned()
            .collect();
        let view = store.load_view(customer, now(), &policy).unwrap();
        assert_eq!(view.contacts, contacts, "contacts of customer {customer}");
        assert_eq!(view.signals, signals, "signals of customer {customer}");
        if let Some((first, _)) = history.contacts.first() {
            let without = store
                .load_view_without(customer, *first, now(), &policy)
                .unwrap();
            let expected: Vec<Contact> = history
                .contacts
                .iter()
                .filter(|(id, contact)| id != first && in_window(contact.at))
                .map(|(_, contact)| contact.clone())
                .collect();
            assert_eq!(
                without.contacts, expected,
                "customer {customer} without {first}"
            );
        }
    }
}

/// One write through the public API.
#[derive(Debug, Clone)]
enum Write {
    Contact {
        customer: usize,
        minutes_ago: i64,
        channel: usize,
        purpose: usize,
        topic: bool,
    },
    Outcome {
        contact: usize,
        outcome: usize,
    },
    Signal {
        customer: usize,
        minutes_ago: i64,
        kind: usize,
        value: Option<u8>,
    },
}

const CUSTOMERS: usize = 3;
/// Returns one of the built-in channels, stored as codes, or one stored by name.
fn channel_of(index: usize) -> Channel {
    match index {
        0 => Channel::EMAIL,
        1 => Channel::PHONE,
        2 => Channel::SMS,
        _ => Channel::parse("postal").unwrap(),
    }
}
const OUTCOMES: [Outcome; 4] = [
    Outcome::Sent,
    Outcome::Answered,
    Outcome::Failed,
    Outcome::Pending,
];
const KINDS: [SignalKind; 3] = [
    SignalKind::Opened,
    SignalKind::Purchase,
    SignalKind::Complaint,
];

fn write() -> impl Strategy<Value = Write> {
    // Few distinct instants, so that writes collide on the same millisecond and repeat
    // stored rows.
    let minutes = 0..6i64;
    prop_oneof![
        (
            0..CUSTOMERS,
            minutes.clone(),
            0..4usize,
            0..Purpose::ALL.len(),
            any::<bool>()
        )
            .prop_map(
                |(customer, minutes_ago, channel, purpose, topic)| Write::Contact {
                    customer,
                    minutes_ago,
                    channel,
                    purpose,
                    topic
                }
            ),
        (0..16usize, 0..OUTCOMES.len())
            .prop_map(|(contact, outcome)| Write::Outcome { contact, outcome }),
        (
            0..CUSTOMERS,
            minutes,
            0..KINDS.len(),
            proptest::option::of(0..3u8)
        )
            .prop_map(|(customer, minutes_ago, kind, value)| Write::Signal {
                customer,
                minutes_ago,
                kind,
                value
            }),
    ]
}

fn apply(store: &Store, customers: &[CustomerId], contacts: &mut Vec<ContactId>, write: &Write) {
    match *write {
        Write::Contact {
            customer,
            minutes_ago,
            channel,
            purpose,
            topic,
        } => {
            let mut contact = contact(
                customers[customer],
                channel_of(channel),
                Purpose::ALL[purpose],
                now() - Duration::minutes(minutes_ago),
            );
            contact.topic = topic.then(|| Topic::parse("offers").unwrap());
            contacts.push(store.record_contact(&contact).unwrap());
        }
        Write::Outcome { contact, outcome } => {
            if let Some(&id) = contacts.get(contact) {
                store.set_contact_outcome(id, OUTCOMES[outcome]).unwrap();
            }
        }
        Write::Signal {
            customer,
            minutes_ago,
            kind,
            value,
        } => {
            let mut signal = Signal::new(KINDS[kind], now() - Duration::minutes(minutes_ago));
            signal.value = value.map(f64::from);
            store.record_signal(customers[customer], &signal).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writes_keep_timelines_equal_to_tables(writes in proptest::collection::vec(write(), 0..40)) {
        let store = Store::open_in_memory().unwrap();
        import_customers(&store, "external_id\nc1\nc2\nc3\n".as_bytes()).unwrap();
        let customers: Vec<CustomerId> = (1..=CUSTOMERS as i64).map(CustomerId).collect();
        let mut contacts = Vec::new();
        for write in &writes {
            apply(&store, &customers, &mut contacts, write);
        }
        assert_views_match_tables(&store, &customers);
    }
}

#[test]
fn imports_merge_into_timelines() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\nc3\n".as_bytes())?;
    let customers = [CustomerId(1), CustomerId(2), CustomerId(3)];
    // A contact recorded before the import, at an instant between imported ones.
    let mut early = contact(
        customers[0],
        Channel::SMS,
        Purpose::Care,
        utc(2026, 3, 8, 9, 0),
    );
    early.outcome = Outcome::Delivered;
    store.record_contact(&early)?;
    let contacts = "\
external_id,channel,purpose,topic,at,duration_s,outcome
c1,email,value,newsletter,2026-03-09T09:30:00Z,,
c1,phone,sales,,2026-03-07T10:00:00Z,240,answered
c3,email,value,,2026-03-09T09:30:00Z,,
c1,email,value,newsletter,2026-03-09T09:30:00Z,,
";
    let signals = "\
external_id,kind,channel,at,topic,value,machine
c3,opened,email,2026-03-09T10:30:00Z,,,true
c1,purchase,,2026-03-09T11:30:00Z,shoes,19.99,
c1,purchase,,2026-03-09T11:30:00Z,shoes,5,
";

    let imported = import_contacts(&store, contacts.as_bytes())?;
    let imported_signals = import_signals(&store, signals.as_bytes())?;
    let again = import_contacts(&store, contacts.as_bytes())?;

    assert_eq!((imported.inserted, imported.unchanged), (3, 1));
    assert_eq!(imported_signals.inserted, 3);
    assert_eq!((again.inserted, again.unchanged), (0, 4));
    let view = store.load_view(customers[0], now(), &Policy::default())?;
    let channels: Vec<&str> = view.contacts.iter().map(|c| c.channel.as_str()).collect();
    assert_eq!(channels, ["phone", "sms", "email"]);
    assert_eq!(view.signals.len(), 2);
    assert_views_match_tables(&store, &customers);
    Ok(())
}

/// Imports customers 1 and 2 with email addresses, and plans and approves a campaign for
/// both at `planned_at`. Returns the campaign and the two deliveries.
fn approved_campaign(
    store: &Store,
    planned_at: DateTime<Utc>,
) -> Result<(CampaignId, Vec<DeliveryId>), Box<dyn std::error::Error>> {
    import_customers(
        store,
        "external_id,email\nc1,c1@example.com\nc2,c2@example.com\n".as_bytes(),
    )?;
    let customers = [CustomerId(1), CustomerId(2)];
    let news = store.create_campaign(&campaign("News", planned_at))?;
    let deliveries = store.plan_deliveries(news, &customers, planned_at)?;
    for (delivery, customer) in deliveries.iter().zip(customers) {
        approve(store, *delivery, customer, news, planned_at);
    }
    Ok((news, deliveries))
}

#[test]
fn sending_updates_the_booked_contact_in_timelines() -> TestResult {
    let (_folder, store) = temp_store()?;
    let customers = [CustomerId(1), CustomerId(2)];
    let planned_at = now() - Duration::hours(2);
    let (_, deliveries) = approved_campaign(&store, planned_at)?;
    let claimed = store.claim_deliveries("w1", Duration::minutes(5), 10, planned_at)?;
    assert_eq!(claimed.len(), 2);

    let sent_at = now() - Duration::hours(1);
    store.mark_sent(deliveries[0], "<d1@tact>", sent_at)?;
    store.mark_failed(deliveries[1], "550 no such user", sent_at)?;

    let view = store.load_view(customers[0], now(), &Policy::default())?;
    let booked: Vec<(Outcome, DateTime<Utc>)> =
        view.contacts.iter().map(|c| (c.outcome, c.at)).collect();
    assert_eq!(booked, [(Outcome::Sent, sent_at)]);
    let view = store.load_view(customers[1], now(), &Policy::default())?;
    let booked: Vec<Outcome> = view.contacts.iter().map(|c| c.outcome).collect();
    assert_eq!(booked, [Outcome::Failed]);
    assert_views_match_tables(&store, &customers);
    Ok(())
}

#[test]
fn booked_contacts_enter_timelines_when_sent() -> TestResult {
    let (folder, store) = temp_store()?;
    let customer = CustomerId(1);
    let planned_at = now() - Duration::hours(2);
    let (_, deliveries) = approved_campaign(&store, planned_at)?;
    let timeline_bytes = || -> rusqlite::Result<i64> {
        raw(&folder).query_row(
            "SELECT coalesce(sum(length(contacts)), 0) FROM timelines WHERE customer_id = 1",
            [],
            |row| row.get(0),
        )
    };
    assert_eq!(timeline_bytes()?, 0);
    let view = store.load_view(customer, now(), &Policy::default())?;
    let booked: Vec<Outcome> = view.contacts.iter().map(|c| c.outcome).collect();
    assert_eq!(booked, [Outcome::Pending]);

    store.claim_deliveries("w1", Duration::minutes(5), 10, planned_at)?;
    store.mark_sent(deliveries[0], "<d1@tact>", now() - Duration::hours(1))?;

    assert!(timeline_bytes()? > 0);
    assert_views_match_tables(&store, &[customer]);
    Ok(())
}

#[test]
fn unreadable_timeline_names_the_customer() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    store.record_contact(&contact(
        CustomerId(1),
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 3, 9, 9, 0),
    ))?;
    raw(&folder).execute(
        "UPDATE timelines SET contacts = x'07' WHERE customer_id = 1",
        [],
    )?;

    let error = store
        .load_view(CustomerId(1), now(), &Policy::default())
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "invalid timeline row 1: unknown format 7"
    );
    Ok(())
}

#[test]
fn cut_short_timeline_names_the_customer() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    store.record_signal(
        CustomerId(1),
        &Signal::new(SignalKind::Opened, utc(2026, 3, 9, 9, 0)),
    )?;
    raw(&folder).execute(
        "UPDATE timelines SET signals = x'0105' WHERE customer_id = 1",
        [],
    )?;

    let error = store
        .load_view(CustomerId(1), now(), &Policy::default())
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "invalid timeline row 1: entry at byte 1 is cut short"
    );
    Ok(())
}

#[test]
fn rebuild_takes_rows_written_around_the_store() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    let customers = [CustomerId(1), CustomerId(2)];
    store.record_contact(&contact(
        customers[0],
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 3, 9, 9, 0),
    ))?;
    raw(&folder).execute_batch(
        "INSERT INTO contacts (customer_id, channel, purpose, at_ms, outcome)
             VALUES (1, 'sms', 'care', 1773046800000, 'delivered'),
                    (2, 'phone', 'sales', 1773046800000, 'answered');
         INSERT INTO signals (customer_id, kind, at_ms) VALUES (2, 'replied', 1773046800000);",
    )?;
    assert_eq!(
        store
            .load_view(customers[1], now(), &Policy::default())?
            .contacts
            .len(),
        0
    );

    assert_eq!(store.rebuild_timelines()?, 2);

    let view = store.load_view(customers[1], now(), &Policy::default())?;
    assert_eq!(view.contacts.len(), 1);
    assert_eq!(view.signals.len(), 1);
    assert_views_match_tables(&store, &customers);
    Ok(())
}

/// Turns the store's file back into a schema version 3 file: no timelines, the two history
/// indexes that version 4 drops, and no skipped count of campaigns (version 7).
fn downgrade_to_version_three(folder: &tempfile::TempDir) -> TestResult {
    raw(folder).execute_batch(
        "DROP TABLE timelines;
         DROP INDEX contacts_pending;
         DROP INDEX contacts_identity;
         CREATE UNIQUE INDEX contacts_identity ON contacts(
             customer_id, at_ms, channel, purpose, ifnull(topic, ''), ifnull(campaign_id, 0)
         );
         CREATE INDEX contacts_history ON contacts(customer_id, at_ms);
         CREATE INDEX signals_history ON signals(customer_id, at_ms);
         ALTER TABLE campaigns DROP COLUMN skipped;
         PRAGMA user_version = 3;",
    )?;
    Ok(())
}

#[test]
fn upgrade_takes_pending_contacts_out_of_timelines() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    let customer = CustomerId(1);
    let at = utc(2026, 3, 9, 9, 0);
    let mut pending = contact(customer, Channel::EMAIL, Purpose::Value, at);
    pending.outcome = Outcome::Pending;
    let id = store.record_contact(&pending)?;
    store.record_contact(&contact(customer, Channel::SMS, Purpose::Care, at))?;
    // A file of schema version 4 has the pending contact in the timeline too.
    raw(&folder).execute("UPDATE contacts SET outcome = 'sent' WHERE id = ?1", [id.0])?;
    store.rebuild_timelines()?;
    drop(store);
    raw(&folder).execute_batch(&format!(
        "DROP INDEX contacts_pending;
         DROP INDEX contacts_identity;
         CREATE UNIQUE INDEX contacts_identity ON contacts(
             customer_id, at_ms, channel, purpose, ifnull(topic, ''), ifnull(campaign_id, 0)
         );
         UPDATE contacts SET outcome = 'pending' WHERE id = {};
         ALTER TABLE campaigns DROP COLUMN skipped;
         PRAGMA user_version = 4;",
        id.0
    ))?;

    let store = Store::open(folder.path().join("tact.db"))?;

    let view = store.load_view(customer, now(), &Policy::default())?;
    let outcomes: Vec<Outcome> = view
        .contacts
        .iter()
        .map(|contact| contact.outcome)
        .collect();
    assert_eq!(outcomes, [Outcome::Pending, Outcome::Sent]);
    assert_views_match_tables(&store, &[customer]);
    Ok(())
}

#[test]
fn upgrade_isolates_unreadable_and_orphan_rows() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    store.record_contact(&contact(
        CustomerId(1),
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 3, 9, 9, 0),
    ))?;
    drop(store);
    downgrade_to_version_three(&folder)?;
    // A row the store cannot read, and one whose customer does not exist, as the sqlite3
    // shell (foreign keys off) may leave.
    raw(&folder).execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO contacts (id, customer_id, channel, purpose, at_ms, outcome)
             VALUES (50, 2, 'email', 'value', 1773046800000, 'bounced'),
                    (51, 77, 'email', 'value', 1773046800000, 'sent');",
    )?;

    let store = Store::open(folder.path().join("tact.db"))?;

    let view = store.load_view(CustomerId(1), now(), &Policy::default())?;
    assert_eq!(view.contacts.len(), 1);
    let error = store
        .load_view(CustomerId(2), now(), &Policy::default())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid timeline row 2: its history cannot be read: \
         invalid contact row 50: unknown outcome \"bounced\""
    );
    assert_eq!(store.rebuild_timelines()?, 3);
    Ok(())
}

#[test]
fn writes_derive_a_damaged_timeline_again() -> TestResult {
    let (folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    let customers = [CustomerId(1), CustomerId(2)];
    let at = utc(2026, 3, 9, 9, 0);
    store.record_contact(&contact(customers[0], Channel::EMAIL, Purpose::Value, at))?;
    store.record_signal(customers[1], &Signal::new(SignalKind::Opened, at))?;
    raw(&folder).execute_batch(
        "UPDATE timelines SET contacts = '' WHERE customer_id = 1;
         UPDATE timelines SET signals = x'01ff' WHERE customer_id = 2;",
    )?;
    let error = store
        .load_view(customers[0], now(), &Policy::default())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid timeline row 1: contacts holds text, not a blob"
    );

    let later = at + Duration::hours(1);
    store.record_contact(&contact(customers[0], Channel::SMS, Purpose::Care, later))?;
    store.record_signal(customers[1], &Signal::new(SignalKind::Clicked, later))?;

    assert_eq!(
        store
            .load_view(customers[0], now(), &Policy::default())?
            .contacts
            .len(),
        2
    );
    assert_views_match_tables(&store, &customers);
    Ok(())
}

#[test]
fn sent_marks_survive_damaged_timeline() -> TestResult {
    let (folder, store) = temp_store()?;
    let customers = [CustomerId(1), CustomerId(2)];
    let planned_at = now() - Duration::hours(2);
    let (news, deliveries) = approved_campaign(&store, planned_at)?;
    store.claim_deliveries("w1", Duration::minutes(5), 10, planned_at)?;
    raw(&folder).execute(
        "UPDATE timelines SET contacts = x'07' WHERE customer_id = 1",
        [],
    )?;
    let sent_at = now() - Duration::hours(1);
    // The same campaign message recorded by hand at the instant the channel accepted the
    // second one.
    let mut recorded = contact(customers[1], Channel::EMAIL, Purpose::Value, sent_at);
    recorded.campaign = Some(news);
    store.record_contact(&recorded)?;

    let marked = store.mark_sent_each(
        &[
            (deliveries[0], "<d1@tact>".to_owned(), sent_at),
            (deliveries[1], "<d2@tact>".to_owned(), sent_at),
        ],
        sent_at,
    )?;

    assert_eq!(marked.iter().filter(|result| result.is_ok()).count(), 2);
    let outcomes: Vec<(Outcome, DateTime<Utc>)> = store
        .history(customers[1])?
        .contacts
        .iter()
        .map(|(_, c)| (c.outcome, c.at))
        .collect();
    assert_eq!(
        outcomes,
        [(Outcome::Sent, planned_at), (Outcome::Sent, sent_at)]
    );
    assert_views_match_tables(&store, &customers);
    Ok(())
}

#[test]
fn sent_mark_moves_past_identical_contacts() -> TestResult {
    let (folder, store) = temp_store()?;
    let customer = CustomerId(1);
    let planned_at = now() - Duration::hours(2);
    let (news, deliveries) = approved_campaign(&store, planned_at)?;
    store.claim_deliveries("w1", Duration::minutes(5), 10, planned_at)?;
    // The same campaign message written with the sqlite3 shell at the instant it was
    // booked, which the store would have taken for the booking, and recorded at the
    // instant the channel accepted it.
    raw(&folder).execute(
        "INSERT INTO contacts (customer_id, channel, purpose, campaign_id, at_ms, outcome) \
         VALUES (1, 'email', 'value', ?1, ?2, 'sent')",
        [news.0, planned_at.timestamp_millis()],
    )?;
    store.rebuild_timelines()?;
    let sent_at = now() - Duration::hours(1);
    let mut recorded = contact(customer, Channel::EMAIL, Purpose::Value, sent_at);
    recorded.campaign = Some(news);
    store.record_contact(&recorded)?;

    store.mark_sent(deliveries[0], "<d1@tact>", sent_at)?;

    let outcomes: Vec<(Outcome, DateTime<Utc>)> = store
        .history(customer)?
        .contacts
        .iter()
        .map(|(_, c)| (c.outcome, c.at))
        .collect();
    let next_ms = planned_at + Duration::milliseconds(1);
    assert_eq!(
        outcomes,
        [
            (Outcome::Sent, planned_at),
            (Outcome::Sent, next_ms),
            (Outcome::Sent, sent_at)
        ]
    );
    assert_views_match_tables(&store, &[customer]);
    Ok(())
}

#[test]
fn signal_nan_value_reads_as_none() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    let mut purchase = Signal::new(SignalKind::Purchase, utc(2026, 3, 9, 9, 0));
    purchase.value = Some(f64::NAN);

    store.record_signal(CustomerId(1), &purchase)?;

    let view = store.load_view(CustomerId(1), now(), &Policy::default())?;
    assert_eq!(view.signals[0].value, None);
    assert_views_match_tables(&store, &[CustomerId(1)]);
    Ok(())
}

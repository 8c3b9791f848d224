use chrono::Duration;
use tact_domain::{
    Actor, Bucket, Channel, ConsentChange, ConsentMark, ConsentSource, Contact, CustomerId, Limit,
    Period, Policy, Purpose, Signal, SignalKind, Span, SuppressionReason, Topic,
};
use tact_storage::{Audience, Scan, Store};

use crate::common::{TestResult, customer, sent_contact, temp_store, utc};

fn contact(customer: CustomerId, at: chrono::DateTime<chrono::Utc>) -> Contact {
    sent_contact(customer, Channel::EMAIL, Purpose::Value, at)
}

#[test]
fn load_view_keeps_only_window() -> TestResult {
    let (_folder, store) = temp_store()?;
    let mut policy = Policy::default();
    // Account contacts are loaded only for the periods of the policy's account caps.
    policy.account.contacts = Some(Limit {
        max: 20,
        per: Period::Rolling(Span::days(30)),
    });
    let now = utc(2026, 6, 1, 12, 0);
    let since = now - policy.lookback();
    let account = store.upsert_account("Acme")?;
    let mut ann = customer("ann");
    ann.account = Some(account);
    let mut bob = customer("bob");
    bob.account = Some(account);
    let ann = store.upsert_customer(&ann)?;
    let bob = store.upsert_customer(&bob)?;
    let carl = store.upsert_customer(&customer("carl"))?;

    let recent = contact(ann, now - Duration::days(3));
    let older = contact(ann, since + Duration::hours(1));
    store.record_contact(&recent)?;
    store.record_contact(&contact(ann, since))?;
    store.record_contact(&older)?;
    store.record_contact(&contact(ann, now + Duration::minutes(1)))?;
    let bob_contact = contact(bob, now - Duration::days(1));
    store.record_contact(&bob_contact)?;
    store.record_contact(&contact(carl, now - Duration::days(1)))?;
    let signal = Signal::new(SignalKind::Opened, now - Duration::days(2));
    store.record_signal(ann, &signal)?;
    store.record_signal(
        ann,
        &Signal::new(SignalKind::Opened, since - Duration::days(1)),
    )?;
    let old_case = store.open_case(ann, since - Duration::days(10))?;
    store.close_case(old_case, since - Duration::days(5))?;
    let open_case = store.open_case(ann, now - Duration::days(1))?;
    store.suppress(
        ann,
        &Channel::SMS,
        SuppressionReason::Manual,
        since - Duration::days(90),
    )?;

    let view = store.load_view(ann, now, &policy)?;
    let without_account_cap = store.load_view(ann, now, &Policy::default())?;

    assert_eq!(view.customer.id, ann);
    assert_eq!(view.contacts, vec![older, recent]);
    assert_eq!(view.account_contacts, vec![bob_contact]);
    assert_eq!(without_account_cap.account_contacts, Vec::<Contact>::new());
    assert_eq!(without_account_cap.contacts, view.contacts);
    assert_eq!(view.signals, vec![signal]);
    assert_eq!(view.cases.len(), 1);
    assert_eq!(view.cases[0].opened_at, now - Duration::days(1));
    assert_eq!(view.suppressions.len(), 1);
    assert_eq!(view.suppressions[0].channel, Channel::SMS);
    let _ = open_case;
    Ok(())
}

fn seed(store: &Store, count: usize) -> Result<Vec<CustomerId>, tact_storage::Error> {
    let account = store.upsert_account("Acme")?;
    let now = utc(2026, 6, 1, 12, 0);
    let mut ids = Vec::new();
    for index in 0..count {
        let mut new = customer(&format!("c{index}"));
        if index % 3 == 0 {
            new.account = Some(account);
        }
        let id = store.upsert_customer(&new)?;
        for day in 0..(index % 4) {
            store.record_contact(&contact(id, now - Duration::days(day as i64 + 1)))?;
        }
        ids.push(id);
    }
    Ok(ids)
}

#[test]
fn view_batches_match_load_view() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 25)?;

    let batches: Vec<_> = store
        .view_batches(&Audience::All, now, &policy, 7)
        .collect::<Result<_, _>>()?;

    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![7, 7, 7, 4]);
    let streamed: Vec<_> = batches.into_iter().flatten().collect();
    let loaded: Vec<_> = ids
        .iter()
        .map(|id| store.load_view(*id, now, &policy))
        .collect::<Result<_, _>>()?;
    assert_eq!(streamed, loaded);
    Ok(())
}

#[test]
fn audiences_select_customers() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 6)?;
    store.set_bucket(ids[1], Some(Bucket::Quarterly))?;
    store.set_bucket(ids[2], Some(Bucket::Yearly))?;
    let chose = ConsentChange::Bucket {
        bucket: Some(Bucket::Quarterly),
    };
    let mark = ConsentMark {
        actor: Actor::Customer,
        source: ConsentSource::PreferenceCentre,
        at: now,
    };
    store.apply_consent(ids[2], &chose, mark)?;
    let offers = Topic::parse("offers")?;
    let opt_out = ConsentChange::Topic {
        topic: offers.clone(),
        allowed: false,
    };
    store.apply_consent(ids[4], &opt_out, mark)?;
    let account = store.customer(ids[0])?.account.ok_or("no account")?;

    let select = |audience: Audience| -> Result<Vec<CustomerId>, tact_storage::Error> {
        let mut selected = Vec::new();
        store.for_each_view(&audience, now, &policy, 2, |view| {
            selected.push(view.customer.id);
            Ok(())
        })?;
        Ok(selected)
    };

    assert_eq!(select(Audience::All)?, ids);
    assert_eq!(
        select(Audience::Bucket {
            bucket: Bucket::Quarterly
        })?,
        vec![ids[1], ids[2]]
    );
    let everyone_but_four: Vec<_> = ids.iter().copied().filter(|id| *id != ids[4]).collect();
    assert_eq!(
        select(Audience::Topic { topic: offers })?,
        everyone_but_four
    );
    assert_eq!(select(Audience::Account { account })?, vec![ids[0], ids[3]]);
    Ok(())
}

#[test]
fn parallel_scan_matches_load_view_in_order() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 25)?;
    let loaded: Vec<_> = ids
        .iter()
        .map(|id| store.load_view(*id, now, &policy))
        .collect::<Result<_, _>>()?;

    for readers in [1, 2, 3, 8] {
        let scan = Scan {
            batch_size: 4,
            readers,
            ..Scan::new(&Audience::All, now, &policy)
        };
        let mut scanned = Vec::new();
        let mut threads = std::collections::HashSet::new();
        store.scan_views(
            &scan,
            |_, views| (std::thread::current().id(), views),
            |(thread, views)| -> Result<(), tact_storage::Error> {
                threads.insert(thread);
                scanned.extend(views);
                Ok(())
            },
        )?;
        assert_eq!(scanned, loaded, "{readers} readers");
        // One reader runs on the calling thread; more run on their own threads.
        let expected_threads = if readers == 1 { 1 } else { readers.min(7) + 1 };
        assert_eq!(threads.len(), expected_threads, "{readers} readers");
    }
    Ok(())
}

#[test]
fn parallel_scan_lets_work_read_through_its_reader() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 9)?;
    let scan = Scan {
        batch_size: 2,
        readers: 2,
        ..Scan::new(&Audience::All, now, &policy)
    };
    let mut names = Vec::new();
    store.scan_views(
        &scan,
        |reader, views| -> Result<Vec<String>, tact_storage::Error> {
            views
                .iter()
                .map(|view| Ok(reader.customer(view.customer.id)?.external_id))
                .collect()
        },
        |batch| -> Result<(), tact_storage::Error> {
            names.extend(batch?);
            Ok(())
        },
    )?;
    let expected: Vec<String> = (0..ids.len()).map(|index| format!("c{index}")).collect();
    assert_eq!(names, expected);
    Ok(())
}

#[test]
fn parallel_scan_stops_on_consume_error() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    seed(&store, 30)?;
    let scan = Scan {
        batch_size: 3,
        readers: 2,
        ..Scan::new(&Audience::All, now, &policy)
    };
    let mut consumed = 0;
    let result = store.scan_views(
        &scan,
        |_, views| views.len(),
        |_| {
            consumed += 1;
            if consumed == 4 {
                return Err(tact_storage::Error::InvalidField {
                    field: "test",
                    value: "4".to_owned(),
                    reason: "stop here".to_owned(),
                });
            }
            Ok(())
        },
    );
    assert_eq!(
        result.map_err(|error| error.to_string()),
        Err("invalid test \"4\": stop here".to_owned())
    );
    assert_eq!(consumed, 4);
    Ok(())
}

#[test]
fn parallel_scan_reads_customers_created_while_it_runs() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let mut ids = seed(&store, 6)?;
    let scan = Scan {
        batch_size: 2,
        readers: 2,
        ..Scan::new(&Audience::All, now, &policy)
    };
    let mut scanned = Vec::new();
    let mut created = false;
    store.scan_views(
        &scan,
        |_, views| views,
        |views| -> Result<(), tact_storage::Error> {
            if !created {
                created = true;
                ids.push(store.upsert_customer(&customer("late"))?);
            }
            scanned.extend(views.into_iter().map(|view| view.customer.id));
            Ok(())
        },
    )?;
    assert_eq!(scanned, ids);
    Ok(())
}

#[test]
fn parallel_scan_skips_id_gaps_and_keeps_audience() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 3)?;

    // Ids jump from 3 to 49: the batches in between are empty.
    let path = store.path().ok_or("no file")?;
    rusqlite::Connection::open(path)?.execute(
        "INSERT INTO customers (id, external_id, time_zone, locale) \
         VALUES (49, 'gap', 'UTC', 'en')",
        [],
    )?;
    let far = store.upsert_customer(&customer("far"))?;
    assert_eq!(far, CustomerId(50));

    let offers = Topic::parse("offers")?;
    let opt_out = ConsentChange::Topic {
        topic: offers.clone(),
        allowed: false,
    };
    let mark = ConsentMark {
        actor: Actor::Customer,
        source: ConsentSource::PreferenceCentre,
        at: now,
    };
    store.apply_consent(ids[1], &opt_out, mark)?;
    let audience = Audience::Topic { topic: offers };
    let scan = Scan {
        batch_size: 4,
        readers: 2,
        ..Scan::new(&audience, now, &policy)
    };

    let batches = scanned_ids(&store, &scan)?;

    let mut expected = vec![vec![ids[0], ids[2]]];
    expected.extend((0..11).map(|_| Vec::new()));
    expected.push(vec![CustomerId(49), far]);
    // The tail after the last id read when the scan started.
    expected.push(Vec::new());
    assert_eq!(batches, expected);
    Ok(())
}

#[test]
fn parallel_scan_takes_huge_batch_sizes() -> TestResult {
    let (_folder, store) = temp_store()?;
    let policy = Policy::default();
    let now = utc(2026, 6, 1, 12, 0);
    let ids = seed(&store, 5)?;
    let scan = Scan {
        batch_size: usize::MAX,
        readers: 1_000,
        ..Scan::new(&Audience::All, now, &policy)
    };

    let batches = scanned_ids(&store, &scan)?;

    assert_eq!(batches, vec![ids, Vec::new()]);
    Ok(())
}

/// Scans and returns the customer ids of each batch, in the order `consume` received them.
fn scanned_ids(
    store: &Store,
    scan: &Scan<'_>,
) -> Result<Vec<Vec<CustomerId>>, tact_storage::Error> {
    let mut batches = Vec::new();
    store.scan_views(
        scan,
        |_, views| {
            views
                .iter()
                .map(|view| view.customer.id)
                .collect::<Vec<_>>()
        },
        |batch| -> Result<(), tact_storage::Error> {
            batches.push(batch);
            Ok(())
        },
    )?;
    Ok(batches)
}

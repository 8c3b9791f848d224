use chrono::Duration;
use tact_domain::{
    Actor, Bucket, Channel, ConsentChange, ConsentMark, ConsentSource, Contact, CustomerId, Limit,
    Outcome, Period, Policy, Purpose, Signal, SignalKind, Span, SuppressionReason, Topic,
};
use tact_storage::{Audience, Store};

use crate::common::{TestResult, customer, temp_store, utc};

fn contact(customer: CustomerId, at: chrono::DateTime<chrono::Utc>) -> Contact {
    Contact {
        customer,
        channel: Channel::EMAIL,
        purpose: Purpose::Value,
        topic: None,
        campaign: None,
        at,
        duration_s: 0,
        outcome: Outcome::Sent,
    }
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

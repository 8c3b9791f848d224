use chrono::Duration;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use tact_domain::{CampaignId, CustomerId, Decision, DeliveryId, Outcome, Reason, RuleId};
use tact_storage::{CampaignStatus, DeliveryState, Error, Store};

use crate::common::{
    TestResult, approve, campaign, customer, decide_delivery, raw, temp_store, utc,
};

fn reasons(rule: RuleId) -> Vec<Reason> {
    vec![Reason {
        rule,
        message: format!("held back by {rule}"),
    }]
}

/// Creates `count` customers and a campaign with a planned delivery for each.
fn planned(
    store: &Store,
    count: usize,
) -> Result<(CampaignId, Vec<CustomerId>, Vec<DeliveryId>), Error> {
    let now = utc(2026, 6, 1, 12, 0);
    let campaign = store.create_campaign(&campaign("June news", now))?;
    let customers: Vec<CustomerId> = (0..count)
        .map(|index| store.upsert_customer(&customer(&format!("c{index}"))))
        .collect::<Result<_, _>>()?;
    let deliveries = store.plan_deliveries(campaign, &customers, now)?;
    Ok((campaign, customers, deliveries))
}

#[test]
fn campaign_round_trip_and_due() -> TestResult {
    let (_folder, store) = temp_store()?;
    let at = utc(2026, 6, 1, 12, 0);
    let new = campaign("June news", at);
    let mut draft = campaign("Draft", at);
    draft.send_at = None;

    let id = store.create_campaign(&new)?;
    let draft_id = store.create_campaign(&draft)?;

    let stored = store.campaign(id)?;
    assert_eq!(stored.name, "June news");
    assert_eq!(stored.channel, new.channel);
    assert_eq!(stored.purpose, new.purpose);
    assert_eq!(stored.audience, new.audience);
    assert_eq!(stored.template, new.template);
    assert_eq!(stored.send_at, Some(at));
    assert_eq!(stored.created_at, at);
    assert_eq!(stored.status, CampaignStatus::Scheduled);
    assert_eq!(store.campaign(draft_id)?.status, CampaignStatus::Draft);
    assert!(store.campaigns_due(at - Duration::seconds(1))?.is_empty());
    assert_eq!(store.campaigns_due(at)?, vec![stored]);

    store.set_campaign_status(id, CampaignStatus::Running, at)?;
    store.set_campaign_status(draft_id, CampaignStatus::Scheduled, at)?;
    let due: Vec<_> = store.campaigns_due(at)?.into_iter().map(|c| c.id).collect();
    assert_eq!(due, vec![draft_id]);
    Ok(())
}

#[test]
fn plan_deliveries_is_idempotent() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 3)?;

    let again = store.plan_deliveries(campaign, &customers, utc(2026, 6, 2, 0, 0))?;

    assert_eq!(again, deliveries);
    let report = store.campaign_status(campaign)?;
    assert_eq!(
        report.by_state,
        BTreeMap::from([(DeliveryState::Planned, 3)])
    );
    let later = utc(2026, 6, 2, 0, 0);
    let missing_customer = store.plan_deliveries(campaign, &[CustomerId(999)], later);
    let missing_campaign = store.plan_deliveries(CampaignId(999), &customers, later);
    assert_eq!(
        missing_customer.unwrap_err().to_string(),
        "customer 999 not found"
    );
    assert_eq!(
        missing_campaign.unwrap_err().to_string(),
        "campaign 999 not found"
    );
    assert_eq!(store.campaign_status(campaign)?.by_state.len(), 1);
    Ok(())
}

#[test]
fn approval_books_contact_atomically() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 1)?;
    let now = utc(2026, 6, 1, 12, 0);

    approve(&store, deliveries[0], customers[0], campaign, now);

    let delivery = store.delivery(deliveries[0])?;
    assert_eq!(delivery.state, DeliveryState::Approved);
    assert_eq!(delivery.decided_at, Some(now));
    assert_eq!(delivery.next_attempt_at, Some(now));
    assert_eq!(
        delivery.approval_expires_at,
        Some(now + Duration::minutes(15))
    );
    let history = store.history(customers[0])?;
    assert_eq!(history.contacts.len(), 1);
    let (contact_id, contact) = &history.contacts[0];
    assert_eq!(delivery.contact, Some(*contact_id));
    assert_eq!(contact.outcome, Outcome::Pending);
    assert_eq!(contact.campaign, Some(campaign));
    assert_eq!(contact.at, now);
    Ok(())
}

#[test]
fn defer_and_deny_keep_reasons() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, _customers, deliveries) = planned(&store, 3)?;
    let now = utc(2026, 6, 1, 12, 0);
    let until = utc(2026, 6, 3, 8, 0);
    let defer = Decision::Defer {
        until,
        reasons: reasons(RuleId::MinGap),
    };
    let deny = Decision::Deny {
        reasons: reasons(RuleId::TopicOptOut),
    };

    store.record_decisions(
        &[(deliveries[0], defer.clone()), (deliveries[1], deny)],
        now,
    )?;

    let deferred = store.delivery(deliveries[0])?;
    assert_eq!(deferred.state, DeliveryState::Deferred);
    assert_eq!(deferred.next_attempt_at, Some(until));
    assert_eq!(deferred.reasons, reasons(RuleId::MinGap));
    let denied = store.delivery(deliveries[1])?;
    assert_eq!(denied.state, DeliveryState::Denied);
    assert_eq!(denied.next_attempt_at, None);
    assert_eq!(denied.reasons, reasons(RuleId::TopicOptOut));

    let due_now: Vec<_> = store
        .deferred_due(now, 10)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due_now, vec![deliveries[2]]);
    let due_later: Vec<_> = store
        .deferred_due(until, 10)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due_later, vec![deliveries[2], deliveries[0]]);

    let error = store
        .record_decision(deliveries[1], &defer, now)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "delivery {} is denied, expected planned or deferred",
            deliveries[1]
        )
    );

    let report = store.campaign_status(campaign)?;
    let by_state = BTreeMap::from([
        (DeliveryState::Planned, 1),
        (DeliveryState::Deferred, 1),
        (DeliveryState::Denied, 1),
    ]);
    assert_eq!(report.by_state, by_state);
    let by_rule = BTreeMap::from([("min_gap".to_owned(), 1), ("topic_opt_out".to_owned(), 1)]);
    assert_eq!(report.by_rule, by_rule);
    Ok(())
}

#[test]
fn claim_send_retry_fail_release() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 4)?;
    let now = utc(2026, 6, 1, 12, 0);
    for (delivery, customer) in deliveries.iter().zip(&customers) {
        approve(&store, *delivery, *customer, campaign, now);
    }

    let claimed = store.claim_deliveries("w1", Duration::minutes(5), 10, now)?;
    let ids: Vec<_> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids, deliveries);
    assert_eq!(claimed[0].customer, customers[0]);
    assert_eq!(claimed[0].lease_expires_at, now + Duration::minutes(5));
    assert!(
        store
            .claim_deliveries("w2", Duration::minutes(5), 10, now)?
            .is_empty()
    );

    store.mark_sent(deliveries[0], "<d1@tact>", now + Duration::seconds(2))?;
    store.mark_retry(
        deliveries[1],
        now + Duration::minutes(10),
        "451 try later",
        now,
    )?;
    store.mark_failed(deliveries[2], "550 no such user", now)?;
    store.release(deliveries[3], now)?;

    let sent = store.delivery(deliveries[0])?;
    assert_eq!(sent.state, DeliveryState::Sent);
    assert_eq!(sent.message_id.as_deref(), Some("<d1@tact>"));
    assert_eq!(sent.lease_owner, None);
    let contact = &store.history(customers[0])?.contacts[0].1;
    assert_eq!(contact.outcome, Outcome::Sent);
    assert_eq!(contact.at, now + Duration::seconds(2));
    let retry = store.delivery(deliveries[1])?;
    assert_eq!(retry.state, DeliveryState::Approved);
    assert_eq!(retry.attempts, 1);
    assert_eq!(retry.last_error.as_deref(), Some("451 try later"));
    assert_eq!(retry.next_attempt_at, Some(now + Duration::minutes(10)));
    let failed = store.delivery(deliveries[2])?;
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(
        store.history(customers[2])?.contacts[0].1.outcome,
        Outcome::Failed
    );
    assert_eq!(
        store.delivery(deliveries[3])?.state,
        DeliveryState::Approved
    );

    let again: Vec<_> = store
        .claim_deliveries("w2", Duration::minutes(5), 10, now)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(again, vec![deliveries[3]]);
    let error = store
        .mark_sent(deliveries[0], "<again@tact>", now)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidState {
                expected: "sending",
                ..
            }
        ),
        "{error}"
    );
    Ok(())
}

#[test]
fn renew_lease_only_by_holder() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 1)?;
    let now = utc(2026, 6, 1, 12, 0);
    approve(&store, deliveries[0], customers[0], campaign, now);
    store.claim_deliveries("w1", Duration::minutes(5), 10, now)?;

    let by_holder = store.renew_lease(deliveries[0], "w1", Duration::minutes(5), now)?;
    let by_other = store.renew_lease(deliveries[0], "w2", Duration::minutes(5), now)?;
    let after_expiry = store.renew_lease(
        deliveries[0],
        "w1",
        Duration::minutes(5),
        now + Duration::minutes(6),
    )?;

    assert!(by_holder);
    assert!(!by_other);
    assert!(!after_expiry);
    let delivery = store.delivery(deliveries[0])?;
    assert_eq!(delivery.lease_owner.as_deref(), Some("w1"));
    assert_eq!(delivery.lease_expires_at, Some(now + Duration::minutes(5)));
    Ok(())
}

#[test]
fn renew_leases_skips_lost_claims() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 3)?;
    let now = utc(2026, 6, 1, 12, 0);
    for (delivery, customer) in deliveries.iter().zip(&customers) {
        approve(&store, *delivery, *customer, campaign, now);
    }
    store.claim_deliveries("w1", Duration::minutes(5), 2, now)?;
    // The third delivery belongs to another worker.
    store.claim_deliveries("w2", Duration::minutes(5), 1, now)?;
    store.mark_sent(deliveries[1], "<b@tact>", now)?;
    let later = now + Duration::minutes(2);

    let renewed = store.renew_leases(&deliveries, "w1", Duration::minutes(5), later)?;

    assert_eq!(renewed, vec![true, false, false]);
    let first = store.delivery(deliveries[0])?;
    assert_eq!(first.lease_expires_at, Some(later + Duration::minutes(5)));
    let other = store.delivery(deliveries[2])?;
    assert_eq!(other.lease_owner.as_deref(), Some("w2"));
    assert_eq!(other.lease_expires_at, Some(now + Duration::minutes(5)));
    Ok(())
}

#[test]
fn expired_lease_is_claimable_again() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 1)?;
    let now = utc(2026, 6, 1, 12, 0);
    approve(&store, deliveries[0], customers[0], campaign, now);
    store.claim_deliveries("dead", Duration::minutes(5), 10, now)?;

    let early =
        store.claim_deliveries("w2", Duration::minutes(5), 10, now + Duration::minutes(4))?;
    let late =
        store.claim_deliveries("w2", Duration::minutes(5), 10, now + Duration::minutes(5))?;

    assert!(early.is_empty());
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].id, deliveries[0]);
    let delivery = store.delivery(deliveries[0])?;
    assert_eq!(delivery.lease_owner.as_deref(), Some("w2"));
    assert_eq!(delivery.lease_expires_at, Some(now + Duration::minutes(10)));
    Ok(())
}

#[test]
fn two_workers_never_share_delivery() -> TestResult {
    let (folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 300)?;
    let now = utc(2026, 6, 1, 12, 0);
    for (delivery, customer) in deliveries.iter().zip(&customers) {
        approve(&store, *delivery, *customer, campaign, now);
    }
    let path = folder.path().join("tact.db");
    let barrier = Arc::new(Barrier::new(2));

    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|worker| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || -> Result<Vec<DeliveryId>, Error> {
                let store = Store::open(&path)?;
                barrier.wait();
                let mut mine = Vec::new();
                for _ in 0..1_000 {
                    let claimed = store.claim_deliveries(worker, Duration::minutes(5), 7, now)?;
                    if claimed.is_empty() {
                        break;
                    }
                    for delivery in claimed {
                        store.mark_sent(delivery.id, &format!("<{}@tact>", delivery.id), now)?;
                        mine.push(delivery.id);
                    }
                }
                Ok(mine)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().expect("worker thread panicked")?);
    }

    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 300);
    assert_eq!(unique.len(), 300);
    let report = store.campaign_status(campaign)?;
    assert_eq!(
        report.by_state,
        BTreeMap::from([(DeliveryState::Sent, 300)])
    );
    Ok(())
}

#[test]
fn claimed_delivery_reapproves_without_booking() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 1)?;
    let now = utc(2026, 6, 1, 12, 0);
    approve(&store, deliveries[0], customers[0], campaign, now);
    let claimed = store.claim_deliveries("w1", Duration::minutes(5), 1, now)?;
    let policy = tact_domain::Policy::default();
    let later = now + Duration::minutes(1);

    let with_booking = store.load_view(customers[0], later, &policy)?;
    let without = store.load_view_without(customers[0], claimed[0].contact, later, &policy)?;

    assert_eq!(with_booking.contacts.len(), 1);
    assert!(without.contacts.is_empty());
    let proposal = crate::common::proposal(customers[0], campaign);
    let decision = tact_domain::decide(&proposal, &without, &policy, later);
    assert_eq!(decision.kind(), "approve", "{:?}", decision.reasons());
    Ok(())
}

#[test]
fn record_planned_keeps_decided_deliveries() -> TestResult {
    let (_folder, store) = temp_store()?;
    let now = utc(2026, 6, 1, 12, 0);
    let until = utc(2026, 6, 3, 8, 0);
    let campaign = store.create_campaign(&campaign("June news", now))?;
    let customers: Vec<CustomerId> = (0..4)
        .map(|index| store.upsert_customer(&customer(&format!("c{index}"))))
        .collect::<Result<_, _>>()?;
    // c0 has a planned delivery from an earlier run, c1 one that was deferred.
    let earlier = store.plan_deliveries(campaign, &customers[..2], now)?;
    let defer = |rule| Decision::Defer {
        until,
        reasons: reasons(rule),
    };
    store.record_decision(earlier[1], &defer(RuleId::MinGap), now)?;

    let decisions = vec![
        (
            customers[0],
            decide_delivery(&store, customers[0], campaign, now),
        ),
        (
            customers[1],
            Decision::Deny {
                reasons: reasons(RuleId::TopicOptOut),
            },
        ),
        (customers[2], defer(RuleId::BucketCadence)),
        (
            customers[3],
            decide_delivery(&store, customers[3], campaign, now),
        ),
    ];
    let stored = store.record_planned(campaign, &decisions, now)?;

    assert_eq!(stored[0], Some(earlier[0]));
    assert_eq!(stored[1], None);
    let (Some(third), Some(fourth)) = (stored[2], stored[3]) else {
        panic!("no new deliveries: {stored:?}");
    };
    let still_deferred = store.delivery(earlier[1])?;
    assert_eq!(still_deferred.state, DeliveryState::Deferred);
    assert_eq!(still_deferred.reasons, reasons(RuleId::MinGap));
    let deferred = store.delivery(third)?;
    assert_eq!(deferred.customer, customers[2]);
    assert_eq!(deferred.state, DeliveryState::Deferred);
    assert_eq!(deferred.next_attempt_at, Some(until));
    assert_eq!(deferred.decided_at, Some(now));
    assert_eq!(deferred.reasons, reasons(RuleId::BucketCadence));
    for (delivery, customer) in [(earlier[0], customers[0]), (fourth, customers[3])] {
        let approved = store.delivery(delivery)?;
        assert_eq!(approved.state, DeliveryState::Approved);
        assert_eq!(approved.next_attempt_at, Some(now));
        assert_eq!(
            approved.approval_expires_at,
            Some(now + Duration::minutes(15))
        );
        let history = store.history(customer)?;
        assert_eq!(history.contacts.len(), 1);
        let (contact_id, contact) = &history.contacts[0];
        assert_eq!(approved.contact, Some(*contact_id));
        assert_eq!(contact.outcome, Outcome::Pending);
        assert_eq!(contact.campaign, Some(campaign));
        assert_eq!(contact.at, now);
    }
    let by_state = BTreeMap::from([(DeliveryState::Approved, 2), (DeliveryState::Deferred, 2)]);
    assert_eq!(store.campaign_status(campaign)?.by_state, by_state);
    Ok(())
}

#[test]
fn record_planned_finds_scattered_and_repeated_customers() -> TestResult {
    let (folder, store) = temp_store()?;
    let now = utc(2026, 6, 1, 12, 0);
    let until = utc(2026, 6, 3, 8, 0);
    let campaign = store.create_campaign(&campaign("June news", now))?;
    let first = store.upsert_customer(&customer("c0"))?;
    // Ids far apart, so that the store looks them up one by one.
    raw(&folder).execute(
        "INSERT INTO customers (id, external_id, time_zone, locale) VALUES (50000, 'far', 'UTC', 'en')",
        [],
    )?;
    let far = CustomerId(50_000);
    let planned = store.plan_deliveries(campaign, &[far], now)?;
    let defer = |rule| Decision::Defer {
        until,
        reasons: reasons(rule),
    };
    let decisions = vec![
        (far, defer(RuleId::MinGap)),
        (first, defer(RuleId::BucketCadence)),
        (far, defer(RuleId::TopicOptOut)),
        (first, defer(RuleId::TopicOptOut)),
    ];

    let stored = store.record_planned(campaign, &decisions, now)?;

    let Some(new) = stored[1] else {
        panic!("no new delivery: {stored:?}");
    };
    assert_eq!(stored, [Some(planned[0]), Some(new), None, None]);
    assert_eq!(store.delivery(planned[0])?.reasons, reasons(RuleId::MinGap));
    assert_eq!(store.delivery(new)?.reasons, reasons(RuleId::BucketCadence));
    Ok(())
}

#[test]
fn record_planned_rejects_foreign_approval() -> TestResult {
    let (_folder, store) = temp_store()?;
    let now = utc(2026, 6, 1, 12, 0);
    let campaign = store.create_campaign(&campaign("June news", now))?;
    let ann = store.upsert_customer(&customer("ann"))?;
    let bob = store.upsert_customer(&customer("bob"))?;
    let deny = Decision::Deny {
        reasons: reasons(RuleId::TopicOptOut),
    };
    // Bob's decision carries Ann's approval.
    let decisions = vec![
        (ann, deny.clone()),
        (bob, decide_delivery(&store, ann, campaign, now)),
    ];

    let error = store.record_planned(campaign, &decisions, now).unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "invalid approval \"customer {ann} campaign Some(CampaignId({campaign}))\": \
             the new delivery of customer {bob} is for customer {bob} of campaign {campaign}"
        )
    );
    assert_eq!(store.campaign_status(campaign)?.by_state, BTreeMap::new());
    assert_eq!(store.history(ann)?.contacts.len(), 0);

    let missing = store
        .record_planned(campaign, &[(CustomerId(999), deny)], now)
        .unwrap_err();
    assert_eq!(missing.to_string(), "customer 999 not found");
    Ok(())
}

#[test]
fn record_planned_checks_references_itself() -> TestResult {
    let (_folder, store) = temp_store()?;
    let now = utc(2026, 6, 1, 12, 0);
    let campaign = store.create_campaign(&campaign("June news", now))?;
    let ann = store.upsert_customer(&customer("ann"))?;
    let deny = Decision::Deny {
        reasons: reasons(RuleId::TopicOptOut),
    };

    let no_campaign = store
        .record_planned(CampaignId(77), &[(ann, deny.clone())], now)
        .unwrap_err();
    assert_eq!(no_campaign.to_string(), "campaign 77 not found");
    // Far apart ids are looked up one by one instead of as one range.
    let far = CustomerId(ann.0 + 1_000_000);
    let scattered = vec![(ann, deny.clone()), (far, deny.clone())];
    let missing = store.record_planned(campaign, &scattered, now).unwrap_err();
    assert_eq!(missing.to_string(), format!("customer {far} not found"));
    assert_eq!(store.campaign_status(campaign)?.by_state, BTreeMap::new());

    // SQLite checks foreign keys again for every other write.
    let unchecked = store.plan_deliveries(campaign, &[far], now).unwrap_err();
    assert_eq!(unchecked.to_string(), format!("customer {far} not found"));
    store.record_planned(campaign, &[(ann, deny)], now)?;
    let after_success = store.plan_deliveries(campaign, &[far], now).unwrap_err();
    assert_eq!(
        after_success.to_string(),
        format!("customer {far} not found")
    );
    Ok(())
}

#[test]
fn mark_sent_each_skips_unclaimed() -> TestResult {
    let (_folder, store) = temp_store()?;
    let (campaign, customers, deliveries) = planned(&store, 3)?;
    let now = utc(2026, 6, 1, 12, 0);
    for (delivery, customer) in deliveries.iter().zip(&customers) {
        approve(&store, *delivery, *customer, campaign, now);
    }
    store.claim_deliveries("w1", Duration::minutes(5), 10, now)?;
    store.release(deliveries[1], now)?;
    let at = |seconds| now + Duration::seconds(seconds);

    let results = store.mark_sent_each(
        &[
            (deliveries[0], "<a@tact>".to_owned(), at(1)),
            (deliveries[1], "<b@tact>".to_owned(), at(2)),
            (deliveries[2], "<c@tact>".to_owned(), at(3)),
        ],
        at(4),
    )?;

    let results: Vec<_> = results
        .into_iter()
        .map(|result| result.map_err(|error| error.to_string()))
        .collect();
    assert_eq!(
        results,
        vec![
            Ok(()),
            Err(format!(
                "delivery {} is approved, expected sending",
                deliveries[1]
            )),
            Ok(()),
        ]
    );
    for (index, seconds) in [(0, 1), (2, 3)] {
        let sent = store.delivery(deliveries[index])?;
        assert_eq!(sent.state, DeliveryState::Sent);
        assert_eq!(sent.lease_owner, None);
        let contact = &store.history(customers[index])?.contacts[0].1;
        assert_eq!(contact.outcome, Outcome::Sent);
        assert_eq!(contact.at, at(seconds));
    }
    assert_eq!(store.delivery(deliveries[1])?.message_id, None);
    assert_eq!(
        store.history(customers[1])?.contacts[0].1.outcome,
        Outcome::Pending
    );
    Ok(())
}

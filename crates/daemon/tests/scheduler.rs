//! The scheduler driven step by step by a simulated clock, with no real waiting: a campaign
//! planned at night is deferred to the start of the contact hours, decided again when the
//! clock gets there, and sent to the Maildir.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;
use tact::clock::SimulatedClock;
use tact::config::{Config, Settings};
use tact::scheduler::content::StoredTemplate;
use tact::scheduler::{Scheduler, StepReport, configured_channel};
use tact_delivery::TemplateSource;
use tact_domain::{CampaignId, Channel, Purpose};
use tact_storage::{Audience, CampaignStatus, DeliveryState, NewCampaign, NewCustomer, Store};
use tokio_util::sync::CancellationToken;

fn utc(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn settings(folder: &std::path::Path) -> Settings {
    let mut config = Config::default();
    config.http.api_token = "test-token".to_owned();
    config.links.secret_key = "0123456789abcdef0123456789abcdef".to_owned();
    Settings::from_config(config, folder).unwrap()
}

fn seed(settings: &Settings, start: DateTime<Utc>) -> Store {
    let store = Store::open(&settings.database).unwrap();
    let mut customer = NewCustomer::new("c1");
    customer.name = Some("Ann Lee".to_owned());
    customer.email = Some("ann@example.com".to_owned());
    store.upsert_customer(&customer).unwrap();
    let template = StoredTemplate {
        source: TemplateSource {
            subject: "Tips".to_owned(),
            text: "Hello {{ name }},\n".to_owned(),
            html: None,
        },
        fields: Vec::new(),
    };
    store
        .create_campaign(&value_campaign("tips", &template, start))
        .unwrap();
    store
}

/// An email campaign for purpose value to every customer, due at `start`.
fn value_campaign(name: &str, template: &StoredTemplate, start: DateTime<Utc>) -> NewCampaign {
    NewCampaign {
        name: name.to_owned(),
        channel: Channel::EMAIL,
        purpose: Purpose::Value,
        topic: None,
        audience: Audience::All,
        priority: 0,
        offer: false,
        template: serde_json::to_string(template).unwrap(),
        send_at: Some(start),
        relevant_until: None,
        created_at: start,
    }
}

/// A scheduler whose simulated clock starts at `start`.
fn scheduler_at(settings: &Settings, start: DateTime<Utc>) -> Arc<Scheduler> {
    scheduler_on(settings, Arc::new(SimulatedClock::new(start)))
}

/// Returns a scheduler driven by `clock`, which the test moves forward.
fn scheduler_on(settings: &Settings, clock: Arc<SimulatedClock>) -> Arc<Scheduler> {
    let channel = configured_channel(settings).unwrap();
    Arc::new(Scheduler::new(settings.clone(), clock, channel, CancellationToken::new()).unwrap())
}

#[tokio::test]
async fn simulated_clock_drives_deferral() {
    let folder = tempfile::tempdir().unwrap();
    let settings = settings(folder.path());
    let night = utc(2, 21);
    let store = seed(&settings, night);
    let clock = Arc::new(SimulatedClock::new(night));
    let channel = configured_channel(&settings).unwrap();
    let scheduler = Arc::new(
        Scheduler::new(
            settings.clone(),
            clock.clone(),
            channel,
            CancellationToken::new(),
        )
        .unwrap(),
    );
    let customer = store.customer_by_external_id("c1").unwrap().id;

    let at_night = scheduler.step().await.unwrap();
    let deferred = store.deliveries_for(customer).unwrap()[0].clone();
    clock.advance_to(utc(3, 7));
    let before_opening = scheduler.step().await.unwrap();
    clock.advance_to(utc(3, 8));
    let at_opening = scheduler.step().await.unwrap();

    assert_eq!(
        at_night,
        StepReport {
            campaigns: 1,
            ..StepReport::default()
        }
    );
    assert_eq!(deferred.state, DeliveryState::Deferred);
    assert_eq!(deferred.next_attempt_at, Some(utc(3, 8)));
    assert_eq!(before_opening, StepReport::default());
    assert_eq!(
        at_opening,
        StepReport {
            redecided: 1,
            sent: 1,
            ..StepReport::default()
        }
    );
    let sent = &store.deliveries_for(customer).unwrap()[0];
    assert_eq!(sent.state, DeliveryState::Sent);
    let files = std::fs::read_dir(folder.path().join("outbox/new"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
}

#[tokio::test]
async fn invalid_template_returns_to_draft() {
    let folder = tempfile::tempdir().unwrap();
    let settings = settings(folder.path());
    let start = utc(2, 10);
    let store = seed(&settings, start);
    let broken = store
        .create_campaign(&NewCampaign {
            name: "broken".to_owned(),
            channel: Channel::EMAIL,
            purpose: Purpose::Value,
            topic: None,
            audience: Audience::All,
            priority: 1,
            offer: false,
            template: "{\"subject\": \"{{ unclosed\", \"text\": \"\"}".to_owned(),
            send_at: Some(start),
            relevant_until: None,
            created_at: start,
        })
        .unwrap();
    let clock = Arc::new(SimulatedClock::new(start));
    let channel = configured_channel(&settings).unwrap();
    let scheduler = Arc::new(
        Scheduler::new(settings.clone(), clock, channel, CancellationToken::new()).unwrap(),
    );

    let report = scheduler.step().await.unwrap();

    assert_eq!(
        report,
        StepReport {
            campaigns: 1,
            sent: 1,
            ..StepReport::default()
        }
    );
    assert_eq!(
        store.campaign(broken).unwrap().status,
        CampaignStatus::Draft
    );
    assert_eq!(store.campaign_status(broken).unwrap().by_state.len(), 0);
}

/// Two customers of one account whose deferrals end at the same instant are decided again
/// in one round. An account cap of one contact per week lets exactly one of them through.
#[tokio::test]
async fn redecided_deferrals_respect_account_cap() {
    let folder = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.http.api_token = "test-token".to_owned();
    config.links.secret_key = "0123456789abcdef0123456789abcdef".to_owned();
    config.policy = toml::from_str("[account]\ncontacts = { max = 1, per = \"7d\" }\n").unwrap();
    let settings = Settings::from_config(config, folder.path()).unwrap();
    let night = utc(2, 21);
    let store = seed(&settings, night);
    let account = store.upsert_account("acme").unwrap();
    for external_id in ["c1", "c2"] {
        let mut customer = NewCustomer::new(external_id);
        customer.name = Some(format!("Customer {external_id}"));
        customer.email = Some(format!("{external_id}@example.com"));
        customer.account = Some(account);
        store.upsert_customer(&customer).unwrap();
    }
    let clock = Arc::new(SimulatedClock::new(night));
    let channel = configured_channel(&settings).unwrap();
    let scheduler = Arc::new(
        Scheduler::new(
            settings.clone(),
            clock.clone(),
            channel,
            CancellationToken::new(),
        )
        .unwrap(),
    );

    let at_night = scheduler.step().await.unwrap();
    clock.advance_to(utc(3, 8));
    let at_opening = scheduler.step().await.unwrap();
    clock.advance_to(utc(3, 9));
    let later = scheduler.step().await.unwrap();

    let mut states = Vec::new();
    let mut contacts = 0;
    for external_id in ["c1", "c2"] {
        let customer = store.customer_by_external_id(external_id).unwrap().id;
        let delivery = store.deliveries_for(customer).unwrap()[0].clone();
        states.push(delivery.state);
        contacts += store
            .load_view(customer, utc(3, 9), &settings.policy)
            .unwrap()
            .contacts
            .len();
    }
    let files = std::fs::read_dir(folder.path().join("outbox/new"))
        .unwrap()
        .count();
    assert_eq!(at_night.campaigns, 1, "{at_night:?}");
    assert_eq!(at_opening.redecided, 2, "{at_opening:?} then {later:?}");
    assert_eq!(
        contacts, 1,
        "contacts booked for the account; states {states:?}, {at_opening:?} then {later:?}"
    );
    assert_eq!(files, 1, "messages delivered; states {states:?}");
}

/// A template that reads a field only on the right of a `set` renders with the customer's
/// fields when planned, as it does when sent.
#[tokio::test]
async fn field_read_in_set_is_planned() {
    let folder = tempfile::tempdir().unwrap();
    let settings = settings(folder.path());
    let start = utc(2, 10);
    let store = Store::open(&settings.database).unwrap();
    let mut customer = NewCustomer::new("c1");
    customer.name = Some("Ann Lee".to_owned());
    customer.email = Some("ann@example.com".to_owned());
    customer
        .fields
        .insert("plan".to_owned(), serde_json::json!("gold"));
    store.upsert_customer(&customer).unwrap();
    let template = StoredTemplate {
        source: TemplateSource {
            subject: "Your plan".to_owned(),
            text: "Hello {{ name }},\n{% set plan = plan | upper %}your {{ plan }} plan.\n"
                .to_owned(),
            html: None,
        },
        fields: vec!["plan".to_owned()],
    };
    store
        .create_campaign(&value_campaign("plan", &template, start))
        .unwrap();
    let scheduler = scheduler_at(&settings, start);

    let report = scheduler.step().await.unwrap();

    assert_eq!(
        report,
        StepReport {
            campaigns: 1,
            sent: 1,
            ..StepReport::default()
        }
    );
    let outbox = folder.path().join("outbox/new");
    let mut messages = std::fs::read_dir(&outbox).unwrap();
    let message = std::fs::read_to_string(messages.next().unwrap().unwrap().path()).unwrap();
    assert!(message.contains("your GOLD plan"), "{message}");
}

/// One step claims batch after batch while each claim fills its batch, so a campaign larger
/// than `delivery.batch_size` goes out in one step, each delivery once.
#[tokio::test]
async fn step_claims_until_batch_not_full() {
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(folder.path());
    settings.config.delivery.batch_size = 2;
    let start = utc(2, 10);
    let store = seed(&settings, start);
    for n in 2..=5 {
        let mut customer = NewCustomer::new(format!("c{n}"));
        customer.name = Some(format!("Customer {n}"));
        customer.email = Some(format!("c{n}@example.com"));
        store.upsert_customer(&customer).unwrap();
    }
    let scheduler = scheduler_at(&settings, start);

    let report = scheduler.step().await.unwrap();

    assert_eq!(
        report,
        StepReport {
            campaigns: 1,
            sent: 5,
            ..StepReport::default()
        }
    );
    let sent = std::fs::read_dir(folder.path().join("outbox/new")).unwrap();
    assert_eq!(sent.count(), 5);
    let again = scheduler.step().await.unwrap();
    assert_eq!(again, StepReport::default());
}

/// A campaign whose planning fails goes back to scheduled and is planned again a minute
/// later, while the round itself succeeds.
#[tokio::test]
async fn failed_plan_is_retried_later() {
    let folder = tempfile::tempdir().unwrap();
    let settings = settings(folder.path());
    let start = utc(2, 10);
    let store = seed(&settings, start);
    let campaign = CampaignId(1);
    let connection = rusqlite::Connection::open(&settings.database).unwrap();
    connection
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries
             BEGIN SELECT RAISE(ABORT, 'deliveries refused'); END;",
        )
        .unwrap();
    let clock = Arc::new(SimulatedClock::new(start));
    let scheduler = scheduler_on(&settings, clock.clone());

    let failed = scheduler.step().await.unwrap();

    assert_eq!(failed, StepReport::default());
    let status = store.campaign(campaign).unwrap().status;
    assert_eq!(status, CampaignStatus::Scheduled);

    connection.execute_batch("DROP TRIGGER refuse").unwrap();
    let waiting = scheduler.step().await.unwrap();
    assert_eq!(waiting, StepReport::default());

    clock.advance_to(start + chrono::TimeDelta::minutes(1));
    let retried = scheduler.step().await.unwrap();
    let expected = StepReport {
        campaigns: 1,
        sent: 1,
        ..StepReport::default()
    };
    assert_eq!(retried, expected);
    let status = store.campaign(campaign).unwrap().status;
    assert_eq!(status, CampaignStatus::Done);
}

/// A campaign left running by a process that stopped while planning it is scheduled again
/// when the scheduler starts, and planned in its first round.
#[tokio::test]
async fn running_campaign_is_planned_again() {
    let folder = tempfile::tempdir().unwrap();
    let settings = settings(folder.path());
    let start = utc(2, 10);
    let store = seed(&settings, start);
    let campaign = CampaignId(1);
    store
        .set_campaign_status(campaign, CampaignStatus::Running, start)
        .unwrap();

    let scheduler = scheduler_at(&settings, start);

    let status = store.campaign(campaign).unwrap().status;
    assert_eq!(status, CampaignStatus::Scheduled);
    let report = scheduler.step().await.unwrap();
    let expected = StepReport {
        campaigns: 1,
        sent: 1,
        ..StepReport::default()
    };
    assert_eq!(report, expected);
}

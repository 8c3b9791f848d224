//! Helpers shared by the integration tests: a store on a real file in a temporary folder,
//! fixtures, and approvals made by the real rules engine.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use tact_domain::{
    CampaignId, Channel, Contact, Content, CustomerId, Decision, DeliveryId, Outcome, Policy,
    Proposal, Purpose, decide,
};
use tact_storage::{Audience, NewCampaign, NewCustomer, Store};
use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A store on `tact.db` in a fresh temporary folder, which lives as long as the `TempDir`.
pub fn temp_store() -> Result<(TempDir, Store), tact_storage::Error> {
    let folder = tempfile::tempdir()?;
    let store = Store::open(folder.path().join("tact.db"))?;
    Ok((folder, store))
}

/// An instant in UTC.
pub fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .unwrap()
}

/// A customer with a name and an email address in UTC.
pub fn customer(external_id: &str) -> NewCustomer {
    let mut customer = NewCustomer::new(external_id);
    customer.name = Some(format!("Customer {external_id}"));
    customer.email = Some(format!("{external_id}@example.com"));
    customer
}

/// A sent contact with `customer`, with no topic or campaign.
pub fn sent_contact(
    customer: CustomerId,
    channel: Channel,
    purpose: Purpose,
    at: DateTime<Utc>,
) -> Contact {
    Contact {
        customer,
        channel,
        purpose,
        topic: None,
        campaign: None,
        at,
        duration_s: 0,
        outcome: Outcome::Sent,
    }
}

/// A scheduled value campaign on email for everyone.
pub fn campaign(name: &str, at: DateTime<Utc>) -> NewCampaign {
    NewCampaign {
        name: name.to_owned(),
        channel: Channel::EMAIL,
        purpose: Purpose::Value,
        topic: None,
        audience: Audience::All,
        priority: 0,
        offer: false,
        template: "Hello {{ name }}".to_owned(),
        send_at: Some(at),
        relevant_until: None,
        created_at: at,
    }
}

/// The proposal a value campaign makes for one customer, personalised.
pub fn proposal(customer: CustomerId, campaign: CampaignId) -> Proposal {
    let mut proposal = Proposal::new(customer, Channel::EMAIL, Purpose::Value);
    proposal.campaign = Some(campaign);
    proposal.content = Some(Content {
        greeting: Some(format!("Dear customer {customer},")),
        personalised: true,
    });
    proposal
}

/// Decides the campaign's proposal for the delivery's customer with the default policy,
/// loading the view from the store.
pub fn decide_delivery(
    store: &Store,
    customer: CustomerId,
    campaign: CampaignId,
    now: DateTime<Utc>,
) -> Decision {
    let policy = Policy::default();
    let view = store.load_view(customer, now, &policy).unwrap();
    decide(&proposal(customer, campaign), &view, &policy, now)
}

/// Approves the delivery through the rules, and panics when the rules do not approve.
pub fn approve(
    store: &Store,
    delivery: DeliveryId,
    customer: CustomerId,
    campaign: CampaignId,
    now: DateTime<Utc>,
) {
    let decision = decide_delivery(store, customer, campaign, now);
    assert_eq!(decision.kind(), "approve", "{:?}", decision.reasons());
    store.record_decision(delivery, &decision, now).unwrap();
}

/// Opens a raw SQLite connection to the store's file, for checks the API does not offer.
pub fn raw(folder: &TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(folder.path().join("tact.db")).unwrap()
}

//! The customer history shared by the `decide` benchmark and the `decide_loop` example.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tact_domain::{
    Channel, Contact, Content, Customer, CustomerId, CustomerView, Outcome, Preferences, Proposal,
    Purpose, Signal, SignalKind,
};

/// Returns the decision time of every benchmark run.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 9, 0, 0).unwrap()
}

/// Builds the email newsletter proposal that every case decides. With `generic_greeting` its
/// content opens with "Dear Valued Customer,", which the rules deny.
pub fn proposal(generic_greeting: bool) -> Proposal {
    let mut proposal = Proposal::new(CustomerId(1), Channel::EMAIL, Purpose::Value);
    if generic_greeting {
        proposal.content = Some(Content {
            greeting: Some("Dear Valued Customer,".to_owned()),
            personalised: true,
        });
    }
    proposal
}

/// Builds a customer with 50 contacts, one every 6 days with the latest `last_days_ago`
/// days before `now()`, and 20 signals.
pub fn history(last_days_ago: i64) -> CustomerView {
    let channels = [Channel::EMAIL, Channel::EMAIL, Channel::SMS, Channel::PHONE];
    let purposes = [
        Purpose::Value,
        Purpose::Sales,
        Purpose::Care,
        Purpose::Survey,
    ];
    let contacts = (0..50)
        .rev()
        .map(|index: i64| Contact {
            customer: CustomerId(1),
            channel: channels[index as usize % 4].clone(),
            purpose: purposes[index as usize % 4],
            topic: None,
            campaign: None,
            at: now() - Duration::days(last_days_ago + index * 6),
            duration_s: if index % 4 == 3 { 300 } else { 0 },
            outcome: Outcome::Sent,
        })
        .collect();
    let kinds = [
        SignalKind::Opened,
        SignalKind::Clicked,
        SignalKind::Purchase,
        SignalKind::Opened,
    ];
    let signals = (0..20)
        .rev()
        .map(|index: i64| {
            let at = now() - Duration::days(last_days_ago + index * 15) + Duration::hours(3);
            Signal::new(kinds[index as usize % 4], at)
        })
        .collect();
    CustomerView {
        customer: Customer {
            id: CustomerId(1),
            external_id: "c-1".into(),
            name: Some("Ann Example".into()),
            email: Some("ann@example.com".into()),
            phone: Some("+49 30 1234567".into()),
            time_zone: chrono_tz::Europe::Berlin,
            locale: "de-DE".into(),
            account: None,
            bucket: None,
        },
        preferences: Preferences::default(),
        contacts,
        account_contacts: vec![],
        signals,
        cases: vec![],
        suppressions: vec![],
    }
}

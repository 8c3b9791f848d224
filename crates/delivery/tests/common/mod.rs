//! Messages and settings shared by the delivery tests.

use chrono::{DateTime, TimeZone, Utc};
use tact_delivery::{MessageConfig, Outgoing, Recipient, Rendered};
use tact_domain::{
    Approval, Content, Customer, CustomerId, CustomerView, Decision, DeliveryId, Policy,
    Preferences, Proposal, Purpose, decide,
};

pub const SECRET: &str = "test secret of at least thirty-two bytes";

pub fn message_config() -> MessageConfig {
    MessageConfig {
        from: "Acme News <news@acme.example>".into(),
        reply_to: Some("care@acme.example".into()),
        base_url: "https://tact.acme.example/".into(),
        unsubscribe_mailto: "unsubscribe@acme.example".into(),
        secret: SECRET.into(),
        message_id_domain: "mail.acme.example".into(),
        bounce_domain: Some("bounce.acme.example".into()),
    }
}

/// Monday 2 March 2026, 10:00 in London: inside the default quiet hours.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

pub fn customer(id: i64, name: &str, email: &str) -> Customer {
    Customer {
        id: CustomerId(id),
        external_id: format!("ext-{id}"),
        name: Some(name.into()),
        email: Some(email.into()),
        phone: None,
        time_zone: chrono_tz::Europe::London,
        locale: "en-GB".into(),
        account: None,
        bucket: None,
    }
}

/// Asks the domain for an approval, as the daemon does.
pub fn approve(customer: &Customer, purpose: Purpose) -> Approval {
    let mut proposal = Proposal::new(customer.id, tact_domain::Channel::EMAIL, purpose);
    proposal.content = Some(Content {
        greeting: Some(format!(
            "Hello {},",
            customer.name.clone().unwrap_or_default()
        )),
        personalised: true,
    });
    let view = CustomerView {
        customer: customer.clone(),
        preferences: Preferences::default(),
        contacts: vec![],
        account_contacts: vec![],
        signals: vec![],
        cases: vec![],
        suppressions: vec![],
    };
    match decide(&proposal, &view, &Policy::default(), now()) {
        Decision::Approve(approval) => approval,
        other => panic!("expected an approval, got {other:?}"),
    }
}

pub fn outgoing(id: i64, name: &str, email: &str, subject: &str) -> Outgoing {
    let customer = customer(id, name, email);
    let content = Rendered {
        subject: subject.into(),
        text: format!("Hello {name},\nthree tips for spring.\n"),
        html: None,
    };
    let approval = approve(&customer, Purpose::Value);
    let recipient = Recipient::email(&customer).unwrap();
    Outgoing::new(approval, DeliveryId(100 + id), recipient, content).unwrap()
}

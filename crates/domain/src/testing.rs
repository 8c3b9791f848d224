//! Fixtures shared by the unit tests.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{
    Channel, Contact, Customer, CustomerId, CustomerView, Outcome, Preferences, Proposal, Purpose,
};

/// An instant in UTC.
pub(crate) fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .unwrap()
}

/// A customer in `zone` with an email address and a phone number and nothing else.
pub(crate) fn view_in(zone: Tz) -> CustomerView {
    CustomerView {
        customer: Customer {
            id: CustomerId(1),
            external_id: "c-1".to_owned(),
            name: Some("Ann Example".to_owned()),
            email: Some("ann@example.com".to_owned()),
            phone: Some("+49 30 1234567".to_owned()),
            time_zone: zone,
            locale: "de-DE".to_owned(),
            account: None,
            bucket: None,
        },
        preferences: Preferences::default(),
        contacts: Vec::new(),
        account_contacts: Vec::new(),
        signals: Vec::new(),
        cases: Vec::new(),
        suppressions: Vec::new(),
    }
}

/// A customer in Europe/Berlin.
pub(crate) fn view() -> CustomerView {
    view_in(chrono_tz::Europe::Berlin)
}

/// A proposal for customer 1.
pub(crate) fn proposal(channel: Channel, purpose: Purpose) -> Proposal {
    Proposal::new(CustomerId(1), channel, purpose)
}

/// A sent contact with customer 1.
pub(crate) fn contact(channel: Channel, purpose: Purpose, at: DateTime<Utc>) -> Contact {
    Contact {
        customer: CustomerId(1),
        channel,
        purpose,
        topic: None,
        campaign: None,
        at,
        duration_s: 0,
        outcome: Outcome::Sent,
    }
}

//! Customers and cadence buckets.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{AccountId, CustomerId};

/// A person tact may contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Internal id.
    pub id: CustomerId,
    /// The id the company's own systems use; unique.
    pub external_id: String,
    /// Full name, when known.
    pub name: Option<String>,
    /// Email address, when known.
    pub email: Option<String>,
    /// Phone number, when known.
    pub phone: Option<String>,
    /// IANA time zone that local windows and calendar periods are computed in.
    pub time_zone: Tz,
    /// BCP 47 language tag such as `en-GB`.
    pub locale: String,
    /// The company the customer works for, for business customers.
    pub account: Option<AccountId>,
    /// The cadence bucket assigned from behaviour, when assigned.
    pub bucket: Option<Bucket>,
}

/// A cadence bucket: how often a customer who stated no cadence of their own hears from us.
///
/// Ordered from most to least frequent, so "lowering" a bucket moves it towards `Yearly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// About once a week.
    Weekly,
    /// About once a month.
    Monthly,
    /// About once a quarter.
    Quarterly,
    /// About twice a year.
    TwiceAYear,
    /// About once a year.
    Yearly,
}

impl Bucket {
    /// All buckets, most frequent first.
    pub const ALL: [Bucket; 5] = [
        Bucket::Weekly,
        Bucket::Monthly,
        Bucket::Quarterly,
        Bucket::TwiceAYear,
        Bucket::Yearly,
    ];

    /// The configuration and API name, such as `twice_a_year`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Weekly => "weekly",
            Bucket::Monthly => "monthly",
            Bucket::Quarterly => "quarterly",
            Bucket::TwiceAYear => "twice_a_year",
            Bucket::Yearly => "yearly",
        }
    }

    /// Parses the configuration name.
    pub fn parse(text: &str) -> Option<Bucket> {
        Bucket::ALL
            .into_iter()
            .find(|bucket| bucket.as_str() == text)
    }

    /// The bucket `steps` places less frequent, stopping at `Yearly`.
    pub fn lowered(self, steps: usize) -> Bucket {
        let index = Bucket::ALL.iter().position(|b| *b == self).unwrap_or(0);
        Bucket::ALL[(index + steps).min(Bucket::ALL.len() - 1)]
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

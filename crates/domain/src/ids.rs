//! Identifiers. Storage assigns the numbers; the domain only compares them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A customer: one person who can be contacted.
    CustomerId
);
id_type!(
    /// An account: the company a business customer works for. Its people share one budget.
    AccountId
);
id_type!(
    /// A campaign: one template sent to an audience.
    CampaignId
);
id_type!(
    /// A delivery: one row of the outbox, one campaign message for one customer.
    DeliveryId
);

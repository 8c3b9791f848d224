//! SQLite persistence for tact.
//!
//! Everything tact remembers lives in one SQLite file: accounts, customers and their
//! preferences, the append-only consent log, the contact history, signals, care cases,
//! suppressed addresses, campaigns and the outbox of deliveries. The crate returns the
//! domain's types ([`tact_domain`]); no other crate writes SQL.
//!
//! - [`Store`]: one connection. Open one per thread or blocking task on the same file.
//! - [`Store::load_view`], [`Store::view_batches`] and [`Store::scan_views`]: the
//!   [`tact_domain::CustomerView`]s the rules need, for one customer or streamed for a whole
//!   [`Audience`], on several reader threads with `scan_views`.
//!   [`Store::load_view_without`] leaves out a claimed delivery's own booked contact.
//! - The outbox: [`Store::plan_deliveries`], [`Store::record_decision`],
//!   [`Store::record_planned`], [`Store::claim_deliveries`] and the `mark_*` methods.
//! - [`import`]: bulk CSV import of customers, contacts and signals.
//!
//! The schema, the outbox states and the concurrency and crash guarantees are described in
//! docs/storage.md.
//!
//! ```
//! use tact_storage::{NewCustomer, Store};
//!
//! let store = Store::open_in_memory()?;
//! let id = store.upsert_customer(&NewCustomer::new("crm-42"))?;
//! assert_eq!(store.customer(id)?.external_id, "crm-42");
//! # Ok::<(), tact_storage::Error>(())
//! ```

#![warn(missing_docs)]

mod campaigns;
mod checkpoint;
mod codec;
mod customers;
mod error;
mod history;
mod ids;
pub mod import;
mod outbox;
mod schema;
mod store;
mod timeline;
mod views;

pub use campaigns::{Campaign, CampaignStatus, NewCampaign};
pub use checkpoint::Checkpointer;
pub use customers::{ConsentEvent, MAX_TEXT_LEN, NewCustomer};
pub use error::{Error, Result};
pub use history::{History, Recorded};
pub use ids::{CaseId, ConsentEventId, ContactId};
pub use outbox::{CampaignReport, ClaimedDelivery, Delivery, DeliveryState};
pub use schema::SCHEMA_VERSION;
pub use store::Store;
pub use views::{Audience, SCAN_CHECKPOINT_EVERY, Scan, ViewBatches};

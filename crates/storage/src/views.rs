//! Loading what the rules need: one customer's view, or views for a whole audience in
//! batches.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use tact_domain::{
    AccountId, Bucket, Contact, CustomerId, CustomerView, Policy, Preferences, Topic,
};

use crate::codec::to_ms;
use crate::customers::{CUSTOMER_COLUMNS, customer_from_row, parse_preferences};
use crate::history::{
    CASE_COLUMNS, CONTACT_COLUMNS, SUPPRESSION_COLUMNS, case_from_row, contact_from_row,
    qualified_contact_columns, suppression_from_row, text_at,
};
use crate::timeline::{self, Span};
use crate::{Checkpointer, ContactId, Error, Result, Store};

/// The customers a campaign addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    /// Every customer.
    All,
    /// Customers in this bucket: the one they chose, or else the one assigned to them.
    Bucket {
        /// The bucket.
        bucket: Bucket,
    },
    /// Customers who have not opted out of this topic.
    Topic {
        /// The topic.
        topic: Topic,
    },
    /// The people of one account.
    Account {
        /// The account.
        account: AccountId,
    },
}

impl Audience {
    fn includes(&self, preferences: &Preferences, assigned: Option<Bucket>) -> bool {
        match self {
            Audience::All | Audience::Account { .. } => true,
            Audience::Bucket { bucket } => preferences.bucket.or(assigned) == Some(*bucket),
            Audience::Topic { topic } => !preferences.topic_opt_outs.contains_key(topic),
        }
    }
}

/// The time range of history a view loads: after `since` and up to `now`, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    since_ms: i64,
    now_ms: i64,
    /// A contact left out of the customer's own contacts.
    excluded_contact: Option<i64>,
    /// Start of the account contacts to load; `None` when the policy sets no account cap,
    /// because only the account caps read them.
    account_since_ms: Option<i64>,
}

impl Window {
    /// Returns the part of the window that timelines filter on.
    fn span(&self) -> Span {
        Span {
            since_ms: self.since_ms,
            until_ms: self.now_ms,
            excluded_contact: self.excluded_contact,
        }
    }

    fn new(now: DateTime<Utc>, policy: &Policy) -> Window {
        let since = now
            .checked_sub_signed(policy.lookback())
            .unwrap_or(DateTime::UNIX_EPOCH);
        let account_lookback = [policy.account.contacts, policy.account.call_minutes]
            .into_iter()
            .flatten()
            .map(|limit| limit.per.lookback())
            .max();
        let account_since_ms = account_lookback.map(|lookback| {
            to_ms(
                now.checked_sub_signed(lookback)
                    .unwrap_or(DateTime::UNIX_EPOCH),
            )
        });
        Window {
            since_ms: to_ms(since),
            now_ms: to_ms(now),
            excluded_contact: None,
            account_since_ms,
        }
    }
}

impl Store {
    /// Loads one customer's view for a decision at `now`: the customer, their preferences,
    /// and the history [`Policy::lookback`] needs.
    ///
    /// The history is their contacts and signals after `now - lookback` and not after `now`,
    /// oldest first, and the same for the other people of their account. It also has the
    /// care cases still open or closed in that window, and every suppressed address.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the customer does not exist; [`Error::InvalidRow`] when a
    /// stored row cannot be read back.
    pub fn load_view(
        &self,
        customer: CustomerId,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<CustomerView> {
        self.load_view_in(customer, Window::new(now, policy))
    }

    /// Loads the view as [`Store::load_view`] does, but without the contact `booked`.
    ///
    /// A claimed delivery's contact is already booked, so checking the delivery against the
    /// rules again (for a fresh approval before sending) must not count that booking.
    ///
    /// # Errors
    ///
    /// As [`Store::load_view`].
    pub fn load_view_without(
        &self,
        customer: CustomerId,
        booked: ContactId,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<CustomerView> {
        let mut window = Window::new(now, policy);
        window.excluded_contact = Some(booked.0);
        self.load_view_in(customer, window)
    }

    fn load_view_in(&self, customer: CustomerId, window: Window) -> Result<CustomerView> {
        self.read(|tx| {
            let mut batch =
                customers_between(tx, customer.0.saturating_sub(1), None, 1, &Audience::All)?;
            batch.customers.retain(|view| view.customer.id == customer);
            if batch.customers.is_empty() {
                return Err(Error::not_found("customer", customer));
            }
            load_history(tx, &mut batch, window)?;
            batch
                .customers
                .pop()
                .ok_or_else(|| Error::not_found("customer", customer))
        })
    }

    /// Streams the views of every customer in `audience`, in id order, `batch_size`
    /// customers at a time, with the same history as [`Store::load_view`].
    ///
    /// Memory is bounded by one batch. Each batch is read in its own read transaction, so a
    /// batch is consistent in itself but later batches see writes made meanwhile. The store
    /// is free between batches, so the caller may write through it while iterating.
    pub fn view_batches<'a>(
        &'a self,
        audience: &Audience,
        now: DateTime<Utc>,
        policy: &Policy,
        batch_size: usize,
    ) -> ViewBatches<'a> {
        ViewBatches {
            store: self,
            audience: audience.clone(),
            window: Window::new(now, policy),
            batch_size: batch_size.max(1),
            after: 0,
            done: false,
        }
    }

    /// Calls `visit` with the view of every customer in `audience`, in id order, loading
    /// `batch_size` customers at a time as [`Store::view_batches`] does, on as many reader
    /// threads as [`Scan::new`] chooses. Stops at the first error, from storage or from
    /// `visit`.
    ///
    /// # Errors
    ///
    /// The first error of a batch or of `visit`.
    pub fn for_each_view(
        &self,
        audience: &Audience,
        now: DateTime<Utc>,
        policy: &Policy,
        batch_size: usize,
        mut visit: impl FnMut(CustomerView) -> Result<()>,
    ) -> Result<()> {
        let scan = Scan {
            batch_size,
            ..Scan::new(audience, now, policy)
        };
        self.scan_views(
            &scan,
            |_, views| views,
            |views| views.into_iter().try_for_each(&mut visit),
        )
    }

    /// Loads the views of every customer in the scan's audience, in batches, runs `work` on
    /// each batch, and calls `consume` with the results in customer id order.
    ///
    /// With `scan.readers` above one and a database file, batches load on that many threads,
    /// each with its own read-only connection, and `work` runs on the thread that loaded the
    /// batch, with that thread's connection. Batch `k` contains the customers with ids from
    /// `k * batch_size + 1` to `(k + 1) * batch_size`, so batches are smaller where ids have
    /// gaps. Customers created after the scan started are read at the end, on the calling
    /// thread. A database in memory, an account's audience or a single reader reads every
    /// batch on the calling thread, as [`Store::view_batches`] does.
    ///
    /// `consume` runs on the calling thread and may write through `self`. Each batch is read
    /// in its own read transaction, so a batch loaded ahead may not see what `consume`
    /// wrote for earlier batches. At most five batches per reader are in memory at once: four
    /// waiting and one loading.
    ///
    /// # Errors
    ///
    /// The first error from loading a batch, opening a reader, or `consume`; the readers
    /// stop after the batch they are loading.
    pub fn scan_views<T, E>(
        &self,
        scan: &Scan<'_>,
        work: impl Fn(&Store, Vec<CustomerView>) -> T + Sync,
        mut consume: impl FnMut(T) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        T: Send,
        E: From<Error>,
    {
        // Clamped so that id arithmetic in SQLite's 64-bit integers cannot overflow.
        let batch_size = scan.batch_size.clamp(1, u32::MAX as usize);
        let window = Window::new(scan.now, scan.policy);
        let mut after = 0;
        let whole_range = !matches!(scan.audience, Audience::Account { .. });
        if let Some(path) = self.path().filter(|_| scan.readers > 1 && whole_range) {
            let last: i64 = self.read(|tx| {
                let sql = "SELECT coalesce(max(id), 0) FROM customers";
                Ok(tx.query_row(sql, [], |row| row.get(0))?)
            })?;
            let parallel = Parallel {
                path,
                audience: scan.audience,
                window,
                batch_size,
                readers: scan.readers.min(MAX_READERS),
                last,
            };
            // `consume` writes all through the scan, so a checkpointer copies the log
            // meanwhile instead of this connection. Without one, for instance when no more
            // files can be opened, this connection goes on checkpointing by itself.
            let checkpoints = self.autocheckpoint()?;
            let checkpointer = Checkpointer::start(path, SCAN_CHECKPOINT_EVERY).ok();
            if checkpointer.is_some() {
                self.defer_checkpoints()?;
            }
            let ran = parallel.run(&work, &mut consume);
            drop(checkpointer);
            self.set_autocheckpoint(checkpoints)?;
            ran?;
            after = last;
        }
        let batches = ViewBatches {
            store: self,
            audience: scan.audience.clone(),
            window,
            batch_size,
            after,
            done: false,
        };
        for batch in batches {
            consume(work(self, batch?))?;
        }
        Ok(())
    }
}

/// The audience, time, policy, batch size and reader count of a [`Store::scan_views`] call.
#[derive(Debug, Clone, Copy)]
pub struct Scan<'a> {
    /// The customers to read.
    pub audience: &'a Audience,
    /// The time the views are for.
    pub now: DateTime<Utc>,
    /// The policy whose windows decide how much history each view holds.
    pub policy: &'a Policy,
    /// Customer ids per batch.
    pub batch_size: usize,
    /// Threads that load batches at once, at most 64.
    pub readers: usize,
}

impl<'a> Scan<'a> {
    /// Returns a scan in batches of 1,000 customers, with one reader per available core and at
    /// most four.
    pub fn new(audience: &'a Audience, now: DateTime<Utc>, policy: &'a Policy) -> Scan<'a> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Scan {
            audience,
            now,
            policy,
            batch_size: 1_000,
            readers: cores.min(4),
        }
    }
}

/// How often a parallel scan checkpoints the log that its caller's writes fill. Planning
/// commits about 7,000 pages at a time at 1,000,000 customers. Copying them soon after each
/// commit lets the log start over more often, so its writer rarely copies the log itself.
pub const SCAN_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// The maximum number of reader threads a scan starts, whatever [`Scan::readers`] requests.
const MAX_READERS: usize = 64;

/// Loaded batches each reader thread of a scan may keep waiting for the caller. A few absorb
/// the moments when the caller's work on one batch takes longer than loading the next: with
/// room for one, planning 100,000 customers took about a tenth longer.
const BATCHES_AHEAD: usize = 4;

/// The page cache of each reader thread of a scan, in KiB. Scans read each page once, so a
/// small cache costs nothing and keeps memory down.
const READER_CACHE_KIB: i64 = 8 * 1024;

/// A scan of the ids from 1 to `last` by several reader threads.
struct Parallel<'a> {
    path: &'a std::path::Path,
    audience: &'a Audience,
    window: Window,
    batch_size: usize,
    readers: usize,
    last: i64,
}

impl Parallel<'_> {
    fn run<T, E>(
        &self,
        work: &(impl Fn(&Store, Vec<CustomerView>) -> T + Sync),
        consume: &mut impl FnMut(T) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        T: Send,
        E: From<Error>,
    {
        let size = self.batch_size as i64;
        let batches = (self.last + size - 1) / size;
        if batches == 0 {
            return Ok(());
        }
        let readers = self.readers.min(batches as usize);
        std::thread::scope(|threads| {
            let mut receivers = Vec::with_capacity(readers);
            for reader in 0..readers {
                let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<T>>(BATCHES_AHEAD);
                receivers.push(receiver);
                threads.spawn(move || {
                    let store = match Store::open_reader_with_cache(self.path, READER_CACHE_KIB) {
                        Ok(store) => store,
                        Err(error) => {
                            let _ = sender.send(Err(error));
                            return;
                        }
                    };
                    for k in (reader as i64..batches).step_by(readers) {
                        let loaded = self.load(&store, k * size);
                        let failed = loaded.is_err();
                        let item = loaded.map(|views| work(&store, views));
                        // A closed channel means the scan stopped early.
                        if sender.send(item).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            for k in 0..batches as usize {
                // A reader that panicked closed its channel; leaving the loop lets the
                // scope end, and it raises the panic again.
                let Ok(item) = receivers[k % readers].recv() else {
                    break;
                };
                consume(item?)?;
            }
            Ok(())
        })
    }

    /// Loads the views of the customers with ids above `after` and up to one batch more.
    fn load(&self, store: &Store, after: i64) -> Result<Vec<CustomerView>> {
        let until = after + self.batch_size as i64;
        let batch = read_batch(
            store,
            self.audience,
            self.window,
            after,
            Some(until),
            self.batch_size,
        )?;
        Ok(batch.customers)
    }
}

/// Reads, in one read transaction, the customers that [`customers_between`] selects, with
/// their history.
fn read_batch(
    store: &Store,
    audience: &Audience,
    window: Window,
    after: i64,
    until: Option<i64>,
    limit: usize,
) -> Result<Batch> {
    store.read(|tx| {
        let mut batch = customers_between(tx, after, until, limit, audience)?;
        load_history(tx, &mut batch, window)?;
        Ok(batch)
    })
}

/// Batches of customer views, from [`Store::view_batches`].
///
/// Each item is one batch of at most `batch_size` views in customer id order. A batch may be
/// smaller, even empty while more follow, when the audience leaves customers out.
#[derive(Debug)]
pub struct ViewBatches<'a> {
    store: &'a Store,
    audience: Audience,
    window: Window,
    batch_size: usize,
    after: i64,
    done: bool,
}

impl Iterator for ViewBatches<'_> {
    type Item = Result<Vec<CustomerView>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = read_batch(
            self.store,
            &self.audience,
            self.window,
            self.after,
            None,
            self.batch_size,
        );
        match read {
            Ok(batch) => {
                if batch.scanned < self.batch_size {
                    self.done = true;
                }
                self.after = batch.last_id;
                Some(Ok(batch.customers))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// The most views a batch reserves room for before reading them, so a huge `batch_size`
/// does not reserve memory that a small audience never fills.
const MAX_RESERVED_VIEWS: usize = 10_000;

/// Customers of one batch, with their history still empty.
struct Batch {
    customers: Vec<CustomerView>,
    /// Customers read, including those the audience left out.
    scanned: usize,
    first_id: i64,
    last_id: i64,
}

/// Finds the view of each row's customer in a batch, for rows that arrive in customer id
/// order: the search starts where the previous one ended.
struct Cursor {
    next: usize,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor { next: 0 }
    }

    /// Returns the index of `customer` in `views`, or `None` when the audience left it out.
    fn find(&mut self, views: &[CustomerView], customer: i64) -> Option<usize> {
        while self.next < views.len() && views[self.next].customer.id.0 < customer {
            self.next += 1;
        }
        let view = views.get(self.next)?;
        (view.customer.id.0 == customer).then_some(self.next)
    }
}

/// Reads up to `limit` customers with ids above `after` and not above `until`, in id order,
/// keeping those in `audience`.
fn customers_between(
    tx: &Connection,
    after: i64,
    until: Option<i64>,
    limit: usize,
    audience: &Audience,
) -> Result<Batch> {
    let account = match audience {
        Audience::Account { account } => Some(account.0),
        _ => None,
    };
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS}, preferences FROM customers \
         WHERE id > ?1 AND (?4 IS NULL OR id <= ?4) AND (?3 IS NULL OR account_id = ?3) \
         ORDER BY id LIMIT ?2"
    );
    let mut statement = tx.prepare_cached(&sql)?;
    let mut rows = statement.query(params![after, limit as i64, account, until])?;
    let mut batch = Batch {
        customers: Vec::with_capacity(limit.min(MAX_RESERVED_VIEWS)),
        scanned: 0,
        first_id: after + 1,
        last_id: after,
    };
    while let Some(row) = rows.next()? {
        let customer = customer_from_row(row)?;
        batch.scanned += 1;
        batch.last_id = customer.id.0;
        let preferences = parse_preferences(customer.id.0, text_at(row, 9)?)?;
        if audience.includes(&preferences, customer.bucket) {
            batch.customers.push(empty_view(customer, preferences));
        }
    }
    Ok(batch)
}

fn empty_view(customer: tact_domain::Customer, preferences: Preferences) -> CustomerView {
    CustomerView {
        customer,
        preferences,
        contacts: Vec::new(),
        account_contacts: Vec::new(),
        signals: Vec::new(),
        cases: Vec::new(),
        suppressions: Vec::new(),
    }
}

/// Fills in the history of every customer of the batch: contacts and signals from their
/// timelines, then one range query per table (pending contacts, care cases, suppressions)
/// and one query per account.
fn load_history(tx: &Connection, batch: &mut Batch, window: Window) -> Result<()> {
    if batch.customers.is_empty() {
        return Ok(());
    }
    let range = params![
        batch.first_id,
        batch.last_id,
        window.since_ms,
        window.now_ms
    ];

    let span = window.span();
    let mut pending = pending_contacts(tx, batch, window)?;
    let sql = "SELECT customer_id, contacts, signals FROM timelines \
               WHERE customer_id BETWEEN ?1 AND ?2 ORDER BY customer_id";
    let mut statement = tx.prepare_cached(sql)?;
    let mut rows = statement.query(params![batch.first_id, batch.last_id])?;
    let mut cursor = Cursor::new();
    while let Some(row) = rows.next()? {
        let customer = CustomerId(row.get(0)?);
        let Some(index) = cursor.find(&batch.customers, customer.0) else {
            continue;
        };
        let view = &mut batch.customers[index];
        let contacts = timeline_at(row, 1, "contacts", customer)?;
        let own = pending.remove(&customer.0).unwrap_or_default();
        view.contacts = timeline::contacts_in(customer, contacts, span, own)?;
        let signals = timeline_at(row, 2, "signals", customer)?;
        view.signals = timeline::signals_in(customer, signals, span)?;
    }
    // Customers whose only contacts are pending may have no timeline yet.
    for (customer, contacts) in pending {
        let found = batch
            .customers
            .binary_search_by_key(&customer, |view| view.customer.id.0);
        if let Ok(index) = found {
            batch.customers[index].contacts =
                contacts.into_iter().map(|(_, contact)| contact).collect();
        }
    }

    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM care_cases WHERE customer_id BETWEEN ?1 AND ?2 \
         AND opened_at_ms <= ?4 AND (closed_at_ms IS NULL OR closed_at_ms > ?3) \
         ORDER BY customer_id, opened_at_ms"
    );
    let mut statement = tx.prepare_cached(&sql)?;
    let mut rows = statement.query(range)?;
    let mut cursor = Cursor::new();
    while let Some(row) = rows.next()? {
        let customer: i64 = row.get(1)?;
        if let Some(index) = cursor.find(&batch.customers, customer) {
            let (_, case) = case_from_row(row)?;
            batch.customers[index].cases.push(case);
        }
    }

    let sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE customer_id BETWEEN ?1 AND ?2 \
         ORDER BY customer_id, channel"
    );
    let mut statement = tx.prepare_cached(&sql)?;
    let mut rows = statement.query(params![batch.first_id, batch.last_id])?;
    let mut cursor = Cursor::new();
    while let Some(row) = rows.next()? {
        let customer: i64 = row.get(0)?;
        if let Some(index) = cursor.find(&batch.customers, customer) {
            batch.customers[index]
                .suppressions
                .push(suppression_from_row(row)?);
        }
    }

    load_account_contacts(tx, batch, window)
}

/// Reads the pending contacts of the batch's customers in the window, which their
/// timelines leave out, by customer and oldest first.
fn pending_contacts(
    tx: &Connection,
    batch: &Batch,
    window: Window,
) -> Result<BTreeMap<i64, Vec<(ContactId, Contact)>>> {
    static SQL: LazyLock<String> = LazyLock::new(pending_contacts_sql);
    let mut statement = tx.prepare_cached(&SQL)?;
    let range = params![
        batch.first_id,
        batch.last_id,
        window.since_ms,
        window.now_ms,
        window.excluded_contact
    ];
    let mut rows = statement.query(range)?;
    let mut pending: BTreeMap<i64, Vec<(ContactId, Contact)>> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let (id, contact) = contact_from_row(row)?;
        pending
            .entry(contact.customer.0)
            .or_default()
            .push((id, contact));
    }
    for contacts in pending.values_mut() {
        contacts.sort_by_key(|(id, contact)| (contact.at, id.0));
    }
    Ok(pending)
}

/// Selects the pending contacts of a range of customers in a window, leaving out one
/// contact, by customer and oldest first. The excluded contact is left out by the index
/// alone, without reading its row. Contacts at the same instant come in index order, not
/// by id, because sorting by id too would take a sort on every query.
fn pending_contacts_sql() -> String {
    format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE outcome = 'pending' \
         AND customer_id BETWEEN ?1 AND ?2 AND at_ms > ?3 AND at_ms <= ?4 AND id IS NOT ?5 \
         ORDER BY customer_id, at_ms"
    )
}

/// Gives each customer with an account the contacts of the account's other people, over the
/// longest period of the policy's account caps; nothing when it sets none.
fn load_account_contacts(tx: &Connection, batch: &mut Batch, window: Window) -> Result<()> {
    let Some(account_since_ms) = window.account_since_ms else {
        return Ok(());
    };
    let mut members: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (index, view) in batch.customers.iter().enumerate() {
        if let Some(account) = view.customer.account {
            members.entry(account.0).or_default().push(index);
        }
    }
    static SQL: LazyLock<String> = LazyLock::new(account_contacts_sql);
    let mut statement = tx.prepare_cached(&SQL)?;
    for (account, indexes) in members {
        let mut contacts: Vec<Contact> = Vec::new();
        let mut rows = statement.query(params![account, account_since_ms, window.now_ms])?;
        while let Some(row) = rows.next()? {
            contacts.push(contact_from_row(row)?.1);
        }
        for index in indexes {
            let view = &mut batch.customers[index];
            let own = view.customer.id;
            view.account_contacts = contacts
                .iter()
                .filter(|contact| contact.customer != own)
                .cloned()
                .collect();
        }
    }
    Ok(())
}

/// Selects the contacts of an account's people in a window, oldest first and by id among
/// equal instants (`CONTACT_COLUMNS` has the instant seventh and the id first). Pending
/// contacts have an index of their own, so each part of the union reads its index.
fn account_contacts_sql() -> String {
    let columns = qualified_contact_columns();
    let part = |outcome: &str| {
        format!(
            "SELECT {columns} FROM customers p JOIN contacts c ON c.customer_id = p.id \
             WHERE p.account_id = ?1 AND c.outcome {outcome} AND c.at_ms > ?2 AND c.at_ms <= ?3"
        )
    };
    format!(
        "{} UNION ALL {} ORDER BY 7, 1",
        part("<> 'pending'"),
        part("= 'pending'")
    )
}

/// Borrows the timeline blob `name` in column `index` of the customer's row.
fn timeline_at<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
    name: &str,
    customer: CustomerId,
) -> Result<&'r [u8]> {
    match row.get_ref(index)? {
        rusqlite::types::ValueRef::Blob(bytes) => Ok(bytes),
        other => Err(Error::InvalidRow {
            entity: "timeline",
            id: customer.0,
            reason: format!(
                "{name} holds {}, not a blob",
                other.data_type().to_string().to_lowercase()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the query plan of `sql`, one line per step.
    fn plan_of(store: &Store, sql: &str) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut statement = store.connection.prepare(&explain).unwrap();
        let unbound = vec![rusqlite::types::Null; statement.parameter_count()];
        statement
            .query_map(rusqlite::params_from_iter(unbound), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(|line| line.unwrap())
            .collect()
    }

    #[test]
    fn contact_queries_read_indexes() {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(folder.path().join("tact.db")).unwrap();

        let history = plan_of(&store, &crate::history::customer_contacts_sql());
        let account = plan_of(&store, &account_contacts_sql());
        let pending = plan_of(&store, &pending_contacts_sql());

        let reads = |plan: &[String], index: &str| {
            let search = format!("USING INDEX {index} (customer_id=?");
            plan.iter().any(|step| step.contains(&search))
        };
        for plan in [&history, &account] {
            assert!(reads(plan, "contacts_identity"), "{plan:?}");
            assert!(reads(plan, "contacts_pending"), "{plan:?}");
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{plan:?}"
            );
        }
        assert_eq!(
            pending,
            ["SEARCH contacts USING INDEX contacts_pending (customer_id>? AND customer_id<?)"]
        );
    }
}

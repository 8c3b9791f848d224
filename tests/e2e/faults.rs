//! Faults against the real binary: kill -9 during a campaign, an SMTP server that is down,
//! vanishes, hangs or replies 451, two daemons on one database, and a database that is
//! read-only, full or from a newer version.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tact_domain::CampaignId;
use tact_storage::DeliveryState;

use crate::harness::{Server, Workspace};

/// Debian's Python, which has python3-aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// In-flight sends of the daemons under test (`delivery.concurrency`).
const CONCURRENCY: usize = 8;

/// The fault-injecting SMTP server of `fault_smtp.py`; killed when dropped.
pub struct FaultSmtp {
    child: Child,
    pub port: u16,
}

impl FaultSmtp {
    /// Starts the server on `port` (0 lets the system pick). While `tempfail` exists every
    /// RCPT gets 451; while `hang` exists DATA gets no answer.
    pub fn start(out_dir: &Path, port: u16, tempfail: &Path, hang: &Path) -> FaultSmtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/fault_smtp.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(out_dir)
            .args(["--port", &port.to_string()])
            .arg("--tempfail-until-file")
            .arg(tempfail)
            .arg("--hang-file")
            .arg(hang)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port in {line:?}"));
        FaultSmtp { child, port }
    }
}

impl Drop for FaultSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A workspace with `count` customers `c1`… (address `cN@example.com`, UTC) and campaign 1
/// planned for all of them, plus the folders and switch files of a [`FaultSmtp`].
pub struct Campaign {
    pub workspace: Workspace,
    pub received: PathBuf,
    pub tempfail: PathBuf,
    pub hang: PathBuf,
}

impl Campaign {
    pub fn planned(count: usize) -> Campaign {
        let workspace = Workspace::new();
        workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
        let mut csv = String::from("external_id,name,email,phone,timezone,locale,account\n");
        for index in 1..=count {
            csv.push_str(&format!(
                "c{index},Customer {index},c{index}@example.com,,UTC,en,\n"
            ));
        }
        let file = workspace.write("customers.csv", &csv);
        workspace.run_ok(&["import", "customers", file.to_str().unwrap()]);
        let template = workspace.write(
            "tips.toml",
            "subject = \"Tips\"\ntext = \"Hello {{ name }},\\n\"\n",
        );
        workspace.run_ok(&[
            "campaign",
            "create",
            "--name",
            "tips",
            "--template",
            template.to_str().unwrap(),
            "--purpose",
            "value",
        ]);
        let planned = workspace.run_ok(&["campaign", "send", "1"]);
        assert_eq!(
            planned,
            format!("campaign 1: {count} approved and queued, 0 deferred, 0 denied, 0 skipped\n")
        );
        let received = workspace.path().join("received");
        std::fs::create_dir(&received).unwrap();
        Campaign {
            tempfail: workspace.path().join("tempfail"),
            hang: workspace.path().join("hang"),
            received,
            workspace,
        }
    }

    pub fn smtp(&self, port: u16) -> FaultSmtp {
        FaultSmtp::start(&self.received, port, &self.tempfail, &self.hang)
    }

    /// Starts `tact serve` sending to `port` with a 1 s lease and retry base.
    pub fn serve(&self, port: u16) -> Server {
        self.serve_with_lease(port, "1s")
    }

    /// Starts `tact serve` sending to `port` with the given lease and a 1 s retry base.
    pub fn serve_with_lease(&self, port: u16, lease: &str) -> Server {
        let port = port.to_string();
        let concurrency = CONCURRENCY.to_string();
        self.workspace.serve_with(&[
            ("TACT_DELIVERY_CHANNEL", "smtp"),
            ("TACT_SMTP_HOST", "127.0.0.1"),
            ("TACT_SMTP_PORT", &port),
            ("TACT_SMTP_TLS", "none"),
            ("TACT_SMTP_TIMEOUT", "20s"),
            ("TACT_SMTP_POOL_SIZE", &concurrency),
            ("TACT_DELIVERY_CONCURRENCY", &concurrency),
            ("TACT_DELIVERY_LEASE", lease),
            ("TACT_DELIVERY_RETRY_BASE", "1s"),
            ("TACT_DELIVERY_RETRY_MAX_DELAY", "2s"),
            ("TACT_DELIVERY_MAX_ATTEMPTS", "100"),
        ])
    }

    /// Deliveries of campaign 1 per state.
    pub fn states(&self) -> BTreeMap<DeliveryState, u64> {
        self.workspace
            .store()
            .campaign_status(CampaignId(1))
            .unwrap()
            .by_state
    }

    /// Deliveries of campaign 1 marked sent.
    pub fn sent(&self) -> u64 {
        self.states()
            .get(&DeliveryState::Sent)
            .copied()
            .unwrap_or(0)
    }

    /// Messages the SMTP server accepted.
    pub fn received_total(&self) -> usize {
        self.received().values().sum()
    }

    /// Waits up to `limit` until all `count` deliveries are sent; returns whether they are.
    pub async fn wait_all_sent(&self, count: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let done = BTreeMap::from([(DeliveryState::Sent, count)]);
        while Instant::now() < deadline {
            if self.states() == done {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Messages the SMTP server accepted, per recipient address.
    pub fn received(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in std::fs::read_dir(&self.received).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(stem) = name.strip_suffix(".eml") else {
                continue;
            };
            let (_, recipient) = stem.split_once('-').expect("<n>-<recipient>.eml");
            *counts.entry(recipient.to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// Contacts in the history per customer, read straight from the database file.
    pub fn contacts_per_customer(&self) -> BTreeMap<String, i64> {
        let connection = rusqlite::Connection::open(self.workspace.path().join("tact.db")).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT customers.external_id, COUNT(*) FROM contacts \
                 JOIN customers ON customers.id = contacts.customer_id GROUP BY 1",
            )
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// Returns a port of 127.0.0.1 on which nothing listens right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A xorshift generator for kill moments. The test prints its seed, and the `KILL_SEED`
/// environment variable sets it to repeat a run.
struct Moments(u64);

impl Moments {
    fn next_in(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Asserts that every one of `count` customers got exactly one contact in the history.
fn assert_one_contact_each(campaign: &Campaign, count: usize) {
    let contacts = campaign.contacts_per_customer();
    assert_eq!(contacts.len(), count);
    let doubled: Vec<_> = contacts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        doubled.is_empty(),
        "customers with more than one contact: {doubled:?}"
    );
}

/// Returns the number of messages received beyond the first per recipient, after checking
/// that each of the `count` customers got at least one.
fn count_duplicates(campaign: &Campaign, count: usize) -> usize {
    let received = campaign.received();
    let missed: Vec<String> = (1..=count)
        .map(|index| format!("c{index}@example.com"))
        .filter(|address| !received.contains_key(address))
        .collect();
    assert!(missed.is_empty(), "customers never sent to: {missed:?}");
    assert_eq!(received.len(), count);
    received.values().map(|n| n - 1).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_loses_and_doubles_nothing() {
    const CUSTOMERS: usize = 2_000;
    const KILLS: usize = 10;
    let campaign = Campaign::planned(CUSTOMERS);
    let smtp = campaign.smtp(0);
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse::<u64>().ok())
        .unwrap_or_else(|| crate::harness::wall_clock().timestamp_subsec_nanos().into())
        | 1;
    println!("kill moments seed {seed}");
    let mut moments = Moments(seed);

    let mut kills = 0;
    let mut unmarked_before = 0;
    for _ in 0..KILLS {
        let before = campaign.sent();
        // Kill after a random number of further sends (at most 10 x 180 in all, fewer than
        // the campaign), plus a random delay so the kill lands anywhere in an SMTP exchange.
        let target = before + moments.next_in(30, 180);
        let extra = moments.next_in(0, 20);
        let server = campaign.serve(smtp.port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while campaign.sent() < target {
            assert!(Instant::now() < deadline, "{}", server.log());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(extra)).await;
        // Dropping the server sends SIGKILL.
        drop(server);
        kills += 1;
        // Let the SMTP server finish writing the messages whose data it already has.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = campaign.sent();
        println!(
            "kill {kills}: {sent} sent, {} received",
            campaign.received_total()
        );
        assert!(
            sent < CUSTOMERS as u64,
            "the campaign ended before kill {kills}"
        );
        // Accepted by the server but not marked sent: the sends in flight at this kill, plus
        // those of earlier kills, which were sent again and marked since.
        let unmarked = campaign.received_total() - sent as usize;
        assert!(
            unmarked - unmarked_before <= CONCURRENCY,
            "kill {kills} left {} sends unmarked",
            unmarked - unmarked_before
        );
        unmarked_before = unmarked;
    }
    let server = campaign.serve(smtp.port);
    let finished = campaign
        .wait_all_sent(CUSTOMERS as u64, Duration::from_secs(60))
        .await;
    let log = server.log();
    drop(server);

    assert!(finished, "{:?}\n{log}", campaign.states());
    let duplicates = count_duplicates(&campaign, CUSTOMERS);
    println!("{duplicates} messages received twice after {kills} kills");
    assert!(
        duplicates <= kills * CONCURRENCY,
        "{duplicates} duplicates exceed {kills} kills x {CONCURRENCY} in flight"
    );
    assert_one_contact_each(&campaign, CUSTOMERS);
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_down_at_start_retries() {
    let campaign = Campaign::planned(20);
    let port = free_port();
    let server = campaign.serve(port);
    let store = campaign.workspace.store();
    let c1 = store.customer_by_external_id("c1").unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.deliveries_for(c1).unwrap()[0].attempts < 2 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(campaign.received().is_empty());

    let _smtp = campaign.smtp(port);
    let finished = campaign.wait_all_sent(20, Duration::from_secs(20)).await;

    assert!(finished, "{:?}\n{}", campaign.states(), server.log());
    assert_eq!(count_duplicates(&campaign, 20), 0);
    assert_one_contact_each(&campaign, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_vanishing_midway_loses_nothing() {
    const CUSTOMERS: usize = 300;
    let campaign = Campaign::planned(CUSTOMERS);
    let smtp = campaign.smtp(0);
    let port = smtp.port;
    let server = campaign.serve(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while campaign.received().len() < 20 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop(smtp);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during_outage = campaign.received().len();
    let _smtp = campaign.smtp(port);
    let finished = campaign
        .wait_all_sent(CUSTOMERS as u64, Duration::from_secs(30))
        .await;

    assert!(finished, "{:?}\n{}", campaign.states(), server.log());
    assert!(during_outage < CUSTOMERS, "{during_outage}");
    let duplicates = count_duplicates(&campaign, CUSTOMERS);
    println!("{duplicates} messages received twice after the server vanished");
    assert!(duplicates <= CONCURRENCY, "{duplicates}");
    assert_one_contact_each(&campaign, CUSTOMERS);
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_tempfail_is_retried() {
    let campaign = Campaign::planned(10);
    std::fs::write(&campaign.tempfail, "").unwrap();
    let smtp = campaign.smtp(0);
    let server = campaign.serve(smtp.port);
    let store = campaign.workspace.store();
    let c1 = store.customer_by_external_id("c1").unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.deliveries_for(c1).unwrap()[0].attempts < 2 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivery = store.deliveries_for(c1).unwrap().remove(0);
    let error = delivery.last_error.unwrap_or_default();
    assert!(
        error.contains("451 4.3.0 <c1@example.com>: try again later"),
        "{error}"
    );
    assert!(campaign.received().is_empty());

    std::fs::remove_file(&campaign.tempfail).unwrap();
    let finished = campaign.wait_all_sent(10, Duration::from_secs(20)).await;

    assert!(finished, "{:?}\n{}", campaign.states(), server.log());
    assert_eq!(count_duplicates(&campaign, 10), 0);
}

/// Returns how long `GET /healthz` took, after checking its body is `ok`.
async fn time_healthz(server: &Server) -> Duration {
    let started = Instant::now();
    let response = server
        .client()
        .get(format!("{}/healthz", server.url))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect("healthz answers within 1 s");
    assert_eq!(response.text().await.unwrap(), "ok\n");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_while_smtp_hangs() {
    let campaign = Campaign::planned(20);
    std::fs::write(&campaign.hang, "").unwrap();
    let smtp = campaign.smtp(0);
    let server = campaign.serve(smtp.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !campaign.states().contains_key(&DeliveryState::Sending) {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    for _ in 0..5 {
        let took = time_healthz(&server).await;
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    assert!(campaign.received().is_empty());
    std::fs::remove_file(&campaign.hang).unwrap();
    let finished = campaign.wait_all_sent(20, Duration::from_secs(30)).await;

    assert!(finished, "{:?}\n{}", campaign.states(), server.log());
    // A send whose lease ran out while the server hung may be taken over and sent again.
    let duplicates = count_duplicates(&campaign, 20);
    println!("{duplicates} messages received twice after the hang");
    assert!(duplicates <= CONCURRENCY, "{duplicates}");
    assert_one_contact_each(&campaign, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_send_each_once() {
    const CUSTOMERS: usize = 400;
    let campaign = Campaign::planned(CUSTOMERS);
    let smtp = campaign.smtp(0);
    // A lease longer than a whole batch takes, as the default of 5 minutes is; see
    // docs/reliability.md for what a shorter one allows.
    let first = campaign.serve_with_lease(smtp.port, "60s");
    let second = campaign.serve_with_lease(smtp.port, "60s");
    let finished = campaign
        .wait_all_sent(CUSTOMERS as u64, Duration::from_secs(40))
        .await;
    let log = first.log();
    drop((first, second));

    assert!(finished, "{:?}\n{log}", campaign.states());
    assert_eq!(count_duplicates(&campaign, CUSTOMERS), 0);
    assert_one_contact_each(&campaign, CUSTOMERS);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribe_while_queued_wins() {
    let campaign = Campaign::planned(3);
    std::fs::write(&campaign.hang, "").unwrap();
    let smtp = campaign.smtp(0);
    let server = campaign.workspace.serve_with(&[
        ("TACT_DELIVERY_CHANNEL", "smtp"),
        ("TACT_SMTP_HOST", "127.0.0.1"),
        ("TACT_SMTP_PORT", &smtp.port.to_string()),
        ("TACT_SMTP_TLS", "none"),
        ("TACT_DELIVERY_CONCURRENCY", "1"),
        ("TACT_SMTP_POOL_SIZE", "1"),
    ]);
    let held = campaign.hang.with_extension("held");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !held.exists() {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One message is held at DATA with one send allowed at a time, so the other two wait
    // their turn. Everyone unsubscribes; only the message already in flight goes out.
    for external_id in ["c1", "c2", "c3"] {
        let token = campaign
            .workspace
            .token(tact_delivery::token::LinkPurpose::Unsubscribe, external_id);
        let response = server
            .client()
            .post(format!("{}/unsubscribe/{token}", server.url))
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    std::fs::remove_file(&campaign.hang).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while campaign.states().get(&DeliveryState::Failed).copied() != Some(2) {
        assert!(Instant::now() < deadline, "{:?}", campaign.states());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    let received = campaign.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        campaign.states(),
        BTreeMap::from([(DeliveryState::Sent, 1), (DeliveryState::Failed, 2)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribe_while_deferred_wins() {
    let campaign = Campaign::planned(2);
    std::fs::write(&campaign.tempfail, "").unwrap();
    let smtp = campaign.smtp(0);
    let server = campaign.serve(smtp.port);
    let store = campaign.workspace.store();
    let c1 = store.customer_by_external_id("c1").unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.deliveries_for(c1).unwrap()[0].attempts < 1 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let token = campaign
        .workspace
        .token(tact_delivery::token::LinkPurpose::Unsubscribe, "c1");
    let response = server
        .client()
        .post(format!("{}/unsubscribe/{token}", server.url))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    std::fs::remove_file(&campaign.tempfail).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while campaign.states().len() != 2 || campaign.states().contains_key(&DeliveryState::Approved) {
        assert!(Instant::now() < deadline, "{:?}", campaign.states());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    let delivery = store.deliveries_for(c1).unwrap().remove(0);
    assert_eq!(delivery.state, DeliveryState::Failed);
    let error = delivery.last_error.unwrap_or_default();
    assert!(error.starts_with("denied at send time by "), "{error}");
    assert_eq!(
        campaign.received(),
        BTreeMap::from([("c2@example.com".to_owned(), 1)])
    );
}

/// A size-limited tmpfs mounted on a temporary folder; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (such as `4m`), or returns `None` where mounting is not
    /// allowed (when not root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts the file system read-only.
    fn make_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

/// Folds the WAL into the database file and switches it to rollback-journal mode, so the
/// file alone is the whole database.
fn checkpoint(database: &Path) {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    connection
        .pragma_update(None, "journal_mode", "DELETE")
        .unwrap();
}

fn integrity(database: &Path) -> String {
    rusqlite::Connection::open(database)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn newer_schema_is_refused() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let database = workspace.path().join("tact.db");
    let newer = tact_storage::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&database)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    checkpoint(&database);
    let before = std::fs::read(&database).unwrap();

    for args in [
        &["history", "c1"][..],
        &["serve"],
        &["campaign", "send", "1"],
    ] {
        let output = workspace
            .command()
            .args(args)
            .env("TACT_HTTP_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();

        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected = format!("database schema version {newer} is newer than this build supports");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&database).unwrap(), before);
}

#[test]
fn read_only_database_fails_cleanly() {
    let Some(disk) = SmallDisk::mount("8m") else {
        println!("skipped: mounting a tmpfs needs root");
        return;
    };
    let workspace = Workspace::new();
    workspace.import_customers();
    let database = disk.path().join("tact.db");
    checkpoint(&workspace.path().join("tact.db"));
    std::fs::copy(workspace.path().join("tact.db"), &database).unwrap();
    disk.make_read_only();
    let before = std::fs::read(&database).unwrap();
    let more = workspace.write("more.csv", "external_id,name\nc3,Cleo\n");

    let import = workspace
        .command()
        .args(["import", "customers", more.to_str().unwrap()])
        .env("TACT_DATABASE", &database)
        .output()
        .unwrap();

    assert_eq!(import.status.code(), Some(1));
    let stderr = String::from_utf8(import.stderr).unwrap();
    println!("{stderr}");
    assert!(
        stderr.contains("read-only") || stderr.contains("readonly"),
        "{stderr}"
    );
    assert!(stderr.contains("tact.db"), "{stderr}");
    assert_eq!(std::fs::read(&database).unwrap(), before);
}

#[test]
fn full_disk_import_resumes_cleanly() {
    let Some(disk) = SmallDisk::mount("2m") else {
        println!("skipped: mounting a tmpfs needs root");
        return;
    };
    let workspace = Workspace::new();
    let database = disk.path().join("tact.db");
    let mut csv = String::from("external_id,name,email,timezone\n");
    for index in 1..=20_000 {
        csv.push_str(&format!(
            "c{index},Customer number {index},c{index}@example.com,UTC\n"
        ));
    }
    let file = workspace.write("customers.csv", &csv);
    let import = |database: &Path| {
        workspace
            .command()
            .args(["import", "customers", file.to_str().unwrap()])
            .env("TACT_DATABASE", database)
            .output()
            .unwrap()
    };

    let full = import(&database);

    assert_eq!(full.status.code(), Some(1));
    let stderr = String::from_utf8(full.stderr).unwrap();
    println!("{stderr}");
    assert!(stderr.contains("disk is full"), "{stderr}");
    // Copy the database with its WAL to a roomy disk, where SQLite can open it again.
    let roomy = workspace.path().join("roomy.db");
    for suffix in ["", "-wal"] {
        let from = disk.path().join(format!("tact.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, workspace.path().join(format!("roomy.db{suffix}"))).unwrap();
        }
    }
    assert_eq!(integrity(&roomy), "ok");
    let stored: i64 = rusqlite::Connection::open(&roomy)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM customers", [], |row| row.get(0))
        .unwrap();
    assert!(stored < 20_000, "{stored}");

    // Importing the file again adds the rest, each row once.
    let resumed = import(&roomy);
    assert!(resumed.status.success(), "{resumed:?}");
    let report = String::from_utf8(resumed.stdout).unwrap();
    assert!(
        report.contains(&format!(
            "{} inserted, 0 updated, {stored} unchanged, 0 rejected",
            20_000 - stored
        )),
        "{report}"
    );
}

//! The outbox worker against a real SMTP server: a 451 is retried, a 550 is a bounce that
//! suppresses the address.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tact_domain::{Channel, SignalKind, SuppressionReason};
use tact_storage::DeliveryState;

use crate::harness::Workspace;

/// Debian's Python, which has python3-aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// The test SMTP server; killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    /// One line per `QUIT` the server received.
    quit_log: PathBuf,
}

impl SmtpServer {
    fn start(out_dir: &Path, tempfail: &str, reject: &str) -> SmtpServer {
        SmtpServer::start_with_delay(out_dir, tempfail, reject, 0)
    }

    /// Starts a server that waits `delay_s` seconds before it answers each DATA.
    fn start_with_delay(out_dir: &Path, tempfail: &str, reject: &str, delay_s: u32) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/smtp_server.py");
        let quit_log = out_dir.with_extension("quits");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(out_dir)
            .args(["--tempfail", tempfail, "--reject", reject])
            .args(["--delay", &delay_s.to_string()])
            .arg("--quit-log")
            .arg(&quit_log)
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
        SmtpServer {
            child,
            port,
            quit_log,
        }
    }

    /// Counts the `QUIT` commands the server received.
    fn quits(&self) -> usize {
        std::fs::read_to_string(&self.quit_log)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_retries_then_bounces() {
    let workspace = Workspace::new();
    let received = workspace.path().join("received");
    std::fs::create_dir(&received).unwrap();
    let smtp = SmtpServer::start(&received, "ann@example.com", "bob@example.com");
    workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
    workspace.import_customers();
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);

    let server = workspace.serve_with(&[
        ("TACT_DELIVERY_CHANNEL", "smtp"),
        ("TACT_SMTP_HOST", "127.0.0.1"),
        ("TACT_SMTP_PORT", &smtp.port.to_string()),
        ("TACT_SMTP_TLS", "none"),
        ("TACT_DELIVERY_RETRY_BASE", "1s"),
    ]);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap();
    let bob = store.customer_by_external_id("c2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = |id| {
        let state = store.deliveries_for(id).unwrap()[0].state;
        matches!(state, DeliveryState::Sent | DeliveryState::Failed)
    };
    while !(settled(ann.id) && settled(bob.id)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(server.stop().success());

    let ann_delivery = &store.deliveries_for(ann.id).unwrap()[0];
    assert_eq!(ann_delivery.state, DeliveryState::Sent, "{log}");
    assert_eq!(ann_delivery.attempts, 1);
    let bob_delivery = &store.deliveries_for(bob.id).unwrap()[0];
    assert_eq!(bob_delivery.state, DeliveryState::Failed);
    let error = bob_delivery.last_error.as_deref().unwrap();
    assert!(error.contains("550"), "{error}");
    assert_eq!(std::fs::read_dir(&received).unwrap().count(), 1);

    let history = store.history(bob.id).unwrap();
    assert_eq!(history.suppressions.len(), 1);
    assert_eq!(history.suppressions[0].channel, Channel::EMAIL);
    assert_eq!(
        history.suppressions[0].reason,
        SuppressionReason::HardBounce
    );
    assert_eq!(history.signals[0].kind, SignalKind::Bounced);
    let retry_line = format!(
        "delivery failed; retrying delivery.id={} customer.id={}",
        ann_delivery.id, ann.id
    );
    assert!(log.contains(&retry_line), "{log}");
    assert!(
        log.contains("code=451 reply=\"4.3.0 <ann@example.com>: try again later\""),
        "{log}"
    );
    let bounce_line = format!(
        "delivery bounced; suppressing the address delivery.id={} customer.id={}",
        bob_delivery.id, bob.id
    );
    assert!(log.contains(&bounce_line), "{log}");
    assert!(
        log.contains("code=550 reply=\"5.1.1 <bob@example.com>: mailbox unavailable\""),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_end_after_max_attempts() {
    let workspace = Workspace::new();
    let received = workspace.path().join("received");
    std::fs::create_dir(&received).unwrap();
    let smtp = SmtpServer::start(&received, "ann@example.com", "nobody@example.com");
    workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c2",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);

    let server = workspace.serve_with(&[
        ("TACT_DELIVERY_CHANNEL", "smtp"),
        ("TACT_SMTP_HOST", "127.0.0.1"),
        ("TACT_SMTP_PORT", &smtp.port.to_string()),
        ("TACT_SMTP_TLS", "none"),
        ("TACT_DELIVERY_MAX_ATTEMPTS", "1"),
    ]);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.deliveries_for(ann.id).unwrap()[0].state != DeliveryState::Failed
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.stop().success());

    let delivery = &store.deliveries_for(ann.id).unwrap()[0];
    assert_eq!(delivery.state, DeliveryState::Failed);
    assert_eq!(delivery.attempts, 1);
    let error = delivery.last_error.as_deref().unwrap();
    assert!(
        error.contains("451 4.3.0 <ann@example.com>: try again later"),
        "{error}"
    );
    assert!(store.history(ann.id).unwrap().suppressions.is_empty());
    assert_eq!(std::fs::read_dir(&received).unwrap().count(), 0);
}

/// Starts a daemon whose SMTP server takes `delay_s` seconds per message, with one approved
/// delivery for c1, and waits until the worker has claimed it.
async fn sending_daemon(
    workspace: &Workspace,
    smtp: &SmtpServer,
    grace: &str,
) -> (crate::harness::Server, tact_domain::CustomerId) {
    workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c2",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);
    let server = workspace.serve_with(&[
        ("TACT_DELIVERY_CHANNEL", "smtp"),
        ("TACT_SMTP_HOST", "127.0.0.1"),
        ("TACT_SMTP_PORT", &smtp.port.to_string()),
        ("TACT_SMTP_TLS", "none"),
        ("TACT_DELIVERY_SHUTDOWN_GRACE", grace),
    ]);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.deliveries_for(ann).unwrap()[0].state != DeliveryState::Sending
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the worker a moment to open the SMTP transaction.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (server, ann)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_inflight_send() {
    let workspace = Workspace::new();
    let received = workspace.path().join("received");
    std::fs::create_dir(&received).unwrap();
    let smtp = SmtpServer::start_with_delay(&received, "none@example.com", "nobody@example.com", 2);
    let (server, ann) = sending_daemon(&workspace, &smtp, "30s").await;

    let exit = server.stop();

    assert!(exit.success(), "tact serve exited with {exit}");
    let delivery = &workspace.store().deliveries_for(ann).unwrap()[0];
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(std::fs::read_dir(&received).unwrap().count(), 1);
    // The daemon closes its connection with QUIT before it exits.
    assert_eq!(smtp.quits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_releases_send_after_grace() {
    let workspace = Workspace::new();
    let received = workspace.path().join("received");
    std::fs::create_dir(&received).unwrap();
    let smtp =
        SmtpServer::start_with_delay(&received, "none@example.com", "nobody@example.com", 20);
    let (server, ann) = sending_daemon(&workspace, &smtp, "1s").await;

    let started = Instant::now();
    let exit = server.stop();

    assert!(exit.success(), "tact serve exited with {exit}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let delivery = &workspace.store().deliveries_for(ann).unwrap()[0];
    assert_eq!(delivery.state, DeliveryState::Approved);
    assert_eq!(delivery.lease_owner, None);
    assert_eq!(delivery.attempts, 0);
}

//! Returned mail: `tact ingest-mail` on standard input and on a Maildir, and
//! `POST /api/v1/inbound`, with bounces built from messages a real SMTP server received.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tact_delivery::token::{LinkKey, LinkPurpose};
use tact_domain::{Actor, Channel, ConsentSource, DeliveryId, SignalKind, SuppressionReason};
use tact_storage::DeliveryState;

use crate::harness::Workspace;

/// Debian's Python, which has python3-aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// An SMTP server on 127.0.0.1 that stores each message as `<n>.eml` with the envelope
/// sender in a `Return-Path` header on top, as a delivering mail server does. It prints its
/// port first and stops by itself after ten minutes.
const RECEIVER: &str = r#"
import asyncio, os, sys
from aiosmtpd.smtp import SMTP

class Handler:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        path = os.path.join(sys.argv[1], "%d.eml" % Handler.count)
        with open(path + ".part", "wb") as out:
            out.write(b"Return-Path: <" + envelope.mail_from.encode() + b">\r\n")
            out.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 2.0.0 queued"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler()), host="127.0.0.1", port=0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"#;

/// The domain of the VERP envelope senders in these tests.
const BOUNCE_DOMAIN: &str = "bounces.example.com";

/// The receiving SMTP server; killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    fn start(out_dir: &Path) -> Receiver {
        let mut child = Command::new(PYTHON)
            .args(["-c", RECEIVER])
            .arg(out_dir)
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
        Receiver { child, port }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tact ARGS` with `input` on standard input.
fn run_with_input(workspace: &Workspace, args: &[&str], input: &[u8]) -> Output {
    let mut child = workspace
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tact runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("tact finishes");
    writer
        .join()
        .expect("writer thread")
        .expect("input written");
    output
}

/// Runs `tact ingest-mail ARGS` on `message`, checks it exits 0 and returns its output.
fn ingest(workspace: &Workspace, args: &[&str], message: &[u8]) -> String {
    let mut all = vec!["ingest-mail"];
    all.extend_from_slice(args);
    let output = run_with_input(workspace, &all, message);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Builds a delivery status notification (RFC 3464) for `recipient`, sent to `to`, with the
/// original's headers attached.
fn dsn(to: &str, recipient: &str, original_headers: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.org\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.org\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {original_headers}\
         --b1--\r\n"
    )
}

/// Builds a spam complaint (ARF, RFC 5965) about a message to `recipient`.
fn complaint(recipient: &str, message_id: &str) -> String {
    format!(
        "From: feedback@fbl.example.net\r\n\
         To: abuse@example.com\r\n\
         Subject: Abuse report\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\
         \r\n\
         --arf\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an email abuse report.\r\n\
         --arf\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: fbl/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: {recipient}\r\n\
         \r\n\
         --arf\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         From: tact <tact@localhost>\r\n\
         To: {recipient}\r\n\
         Subject: Tips\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         Hello\r\n\
         --arf--\r\n"
    )
}

/// An ordinary message that is not returned mail.
const ORDINARY: &str = "From: Kim <kim@example.org>\r\n\
    To: tact@localhost\r\n\
    Subject: Lunch on Friday?\r\n\
    \r\n\
    Shall we meet at noon?\r\n";

/// Returns the VERP address of a delivery, signed with the workspace's link key.
fn verp(workspace: &Workspace, delivery: DeliveryId) -> String {
    let secret = workspace.config_value("secret_key");
    let key = LinkKey::new(secret.as_bytes()).expect("valid key");
    key.verp_address(delivery, BOUNCE_DOMAIN)
}

/// Creates a value campaign for every customer and queues its deliveries.
fn queue_campaign(workspace: &Workspace) {
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);
}

/// Creates a workspace with both customers, where contact is allowed at any hour.
fn workspace_with_customers() -> Workspace {
    let workspace = Workspace::new();
    workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
    workspace.import_customers();
    workspace
}

/// Returns the headers of a received message, up to and including the blank line.
fn headers_of(message: &str) -> String {
    let end = message.find("\r\n\r\n").expect("a header block") + 4;
    message[..end].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_bounce_suppresses_customer() {
    let workspace = workspace_with_customers();
    let received = workspace.path().join("received");
    std::fs::create_dir(&received).unwrap();
    let smtp = Receiver::start(&received);
    queue_campaign(&workspace);
    let server = workspace.serve_with(&[
        ("TACT_DELIVERY_CHANNEL", "smtp"),
        ("TACT_SMTP_HOST", "127.0.0.1"),
        ("TACT_SMTP_PORT", &smtp.port.to_string()),
        ("TACT_SMTP_TLS", "none"),
        ("TACT_MESSAGE_BOUNCE_DOMAIN", BOUNCE_DOMAIN),
    ]);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let sent = || store.deliveries_for(ann.id).unwrap()[0].state == DeliveryState::Sent;
    while !sent() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(server.stop().success());
    assert!(sent(), "{log}");

    let delivery = store.deliveries_for(ann.id).unwrap()[0].id;
    let envelope = verp(&workspace, delivery);
    let message = std::fs::read_dir(&received)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .find(|message| {
            message
                .lines()
                .any(|line| line.starts_with("To:") && line.ends_with("<ann@example.com>"))
        })
        .expect("Ann's message was received");
    assert!(
        message.starts_with(&format!("Return-Path: <{envelope}>\r\n")),
        "{message}"
    );
    let bounce = dsn(&envelope, "ann@example.com", &headers_of(&message));
    let output = ingest(&workspace, &["--json"], bounce.as_bytes());
    let decision = workspace.run_ok(&[
        "check",
        "--customer",
        "c1",
        "--channel",
        "email",
        "--purpose",
        "value",
        "--json",
    ]);

    let expected = format!(
        "{{\"class\":\"hard_bounce\",\"recipient\":\"ann@example.com\",\"status\":\"5.1.1\",\
         \"reason\":\"550 5.1.1 <ann@example.com>: User unknown\",\"delivery\":{}}}\n",
        delivery.0
    );
    assert_eq!(output, expected);
    let history = store.history(ann.id).unwrap();
    assert_eq!(history.suppressions.len(), 1);
    let since = history.suppressions[0].at.format("%Y-%m-%d");
    let expected = format!(
        "{{\"decision\":\"deny\",\"until\":null,\"reasons\":[{{\"rule\":\"suppressed\",\
         \"message\":\"the customer's email address is suppressed since {since} \
         (hard_bounce)\"}}]}}\n"
    );
    assert_eq!(decision, expected);
    assert_eq!(history.signals.len(), 1);
    assert_eq!(history.signals[0].kind, SignalKind::Bounced);
    assert_eq!(history.signals[0].delivery, Some(delivery));
}

#[test]
fn dry_run_prints_exact_lines() {
    let workspace = workspace_with_customers();
    let hard_bounce = dsn("tact@localhost", "ann@example.com", "Subject: Tips\r\n\r\n");
    let arf = complaint("bob@example.com", "<delivery-99@localhost>");

    let bounce_output = ingest(&workspace, &["--dry-run", "--json"], hard_bounce.as_bytes());
    let complaint_output = ingest(&workspace, &["--dry-run", "--json"], arf.as_bytes());
    let ordinary_output = ingest(&workspace, &["--dry-run", "--json"], ORDINARY.as_bytes());

    assert_eq!(
        bounce_output,
        "{\"class\":\"hard_bounce\",\"recipient\":\"ann@example.com\",\"status\":\"5.1.1\",\
         \"reason\":\"550 5.1.1 <ann@example.com>: User unknown\",\"delivery\":null}\n"
    );
    assert_eq!(
        complaint_output,
        "{\"class\":\"complaint\",\"recipient\":\"bob@example.com\",\"status\":null,\
         \"reason\":\"feedback report: abuse\",\"delivery\":null}\n"
    );
    assert_eq!(
        ordinary_output,
        "{\"class\":\"not_returned\",\"recipient\":null,\"status\":null,\
         \"reason\":\"no bounce, complaint or automatic reply found\",\"delivery\":null}\n"
    );
    let store = workspace.store();
    for external_id in ["c1", "c2"] {
        let customer = store.customer_by_external_id(external_id).unwrap();
        let history = store.history(customer.id).unwrap();
        assert_eq!(history.signals, Vec::new(), "{external_id}");
        assert_eq!(history.suppressions, Vec::new(), "{external_id}");
    }
}

/// Builds a mail client's message for the `mailto:` of `List-Unsubscribe`, sent from
/// `from`.
fn mailto_unsubscribe(from: &str, token: &str) -> String {
    format!(
        "From: {from}\r\nTo: unsubscribe@localhost\r\nSubject: unsubscribe-{token}\r\n\
         Message-ID: <unsub-1@client.example>\r\n\r\nThis message unsubscribes you.\r\n"
    )
}

#[test]
fn mail_unsubscribe_opts_token_customer_out() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    // The sender is Bob's address: the signed token, not the sender, names the customer.
    let request = mailto_unsubscribe("bob@example.com", &token);
    let mut tampered: Vec<char> = token.chars().collect();
    tampered[10] = if tampered[10] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let forged = mailto_unsubscribe("bob@example.com", &tampered);

    let tampered_output = ingest(&workspace, &["--json"], forged.as_bytes());
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap().id;
    let bob = store.customer_by_external_id("c2").unwrap().id;
    let after_forged = store.preferences(ann).unwrap().marketing_opt_out;
    let first = ingest(&workspace, &["--json"], request.as_bytes());
    let again = ingest(&workspace, &["--json"], request.as_bytes());

    let line = "{\"class\":\"unsubscribe\",\"recipient\":\"bob@example.com\",\"status\":null,\
                \"reason\":\"unsubscribe request by mail\",\"delivery\":null}\n";
    assert_eq!(first, line);
    assert_eq!(again, line);
    assert_eq!(tampered_output, line);
    assert_eq!(after_forged, None);
    let opt_out = store.preferences(ann).unwrap().marketing_opt_out.unwrap();
    assert_eq!(opt_out.actor, Actor::Customer);
    assert_eq!(opt_out.source, ConsentSource::Link);
    let signals: Vec<SignalKind> = store
        .history(ann)
        .unwrap()
        .signals
        .iter()
        .map(|signal| signal.kind)
        .collect();
    assert_eq!(signals, [SignalKind::Unsubscribed]);
    assert_eq!(store.consent_log(ann).unwrap().len(), 1);
    assert_eq!(store.preferences(bob).unwrap().marketing_opt_out, None);
    assert_eq!(store.history(bob).unwrap().signals, Vec::new());
}

/// Creates `DIR/new`, `DIR/cur` and `DIR/tmp` and returns DIR.
fn maildir(workspace: &Workspace) -> PathBuf {
    let maildir = workspace.path().join("bounces");
    for folder in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(folder)).unwrap();
    }
    maildir
}

fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn maildir_moves_and_stays_idempotent() {
    let workspace = workspace_with_customers();
    queue_campaign(&workspace);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap();
    let bob = store.customer_by_external_id("c2").unwrap();
    let ann_delivery = store.deliveries_for(ann.id).unwrap()[0].id;
    let bob_delivery = store.deliveries_for(bob.id).unwrap()[0].id;
    let bounce = dsn(
        &verp(&workspace, ann_delivery),
        "ann@example.com",
        "Subject: Tips\r\n\r\n",
    );
    let arf = complaint(
        "bob@example.com",
        &format!("<delivery-{}@localhost>", bob_delivery.0),
    );
    let maildir = maildir(&workspace);
    std::fs::write(maildir.join("new/1.host"), &bounce).unwrap();
    std::fs::write(maildir.join("new/2.host"), &arf).unwrap();
    std::fs::write(maildir.join("cur/3.host:2,S"), ORDINARY).unwrap();
    let folder = maildir.to_str().unwrap();

    let first_run = workspace.run(&["ingest-mail", "--maildir", folder]);
    let second = workspace.run_ok(&["ingest-mail", "--maildir", folder]);
    std::fs::write(maildir.join("new/4.host"), &bounce).unwrap();
    let again = workspace.run_ok(&["ingest-mail", "--maildir", folder]);

    let expected = format!(
        "hard_bounce ann@example.com (delivery {}): suppressed (hard_bounce)\n\
         complaint bob@example.com (delivery {}): suppressed (complaint)\n\
         not_returned -: none\n",
        ann_delivery.0, bob_delivery.0
    );
    assert_eq!(first_run.status.code(), Some(0), "{first_run:?}");
    assert_eq!(String::from_utf8_lossy(&first_run.stdout), expected);
    let log = String::from_utf8_lossy(&first_run.stderr);
    let ann_line = format!(
        "returned mail ingested class=\"hard_bounce\" delivery.id={} customer.id={} \
         status=\"5.1.1\" effect=\"suppressed\"",
        ann_delivery.0, ann.id.0
    );
    assert!(log.contains(&ann_line), "{log}");
    assert!(!log.contains("ann@example.com"), "{log}");
    assert!(!log.contains("bob@example.com"), "{log}");
    assert_eq!(second, "");
    assert_eq!(
        again,
        format!(
            "hard_bounce ann@example.com (delivery {}): suppressed (hard_bounce)\n",
            ann_delivery.0
        )
    );
    assert_eq!(file_names(&maildir.join("new")), Vec::<String>::new());
    assert_eq!(file_names(&maildir.join("cur")), Vec::<String>::new());
    assert_eq!(
        file_names(&maildir.join(".processed/cur")),
        vec!["1.host:2,S", "2.host:2,S", "3.host:2,S", "4.host:2,S"]
    );
    let ann_history = store.history(ann.id).unwrap();
    assert_eq!(ann_history.signals.len(), 1);
    assert_eq!(ann_history.signals[0].kind, SignalKind::Bounced);
    assert_eq!(ann_history.suppressions.len(), 1);
    let bob_history = store.history(bob.id).unwrap();
    assert_eq!(bob_history.signals.len(), 1);
    assert_eq!(bob_history.signals[0].kind, SignalKind::Complaint);
    assert_eq!(bob_history.signals[0].delivery, Some(bob_delivery));
    assert_eq!(
        bob_history.suppressions[0].reason,
        SuppressionReason::Complaint
    );
}

/// Builds messages that are no valid mail at all: empty, binary, cut off, and 20 MB.
fn hostile_messages(bounce: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut large =
        dsn("tact@localhost", "bob@example.com", "Subject: Tips\r\n\r\n").replace("--b1--\r\n", "");
    large.push_str("--b1\r\nContent-Type: text/plain\r\n\r\n");
    while large.len() < 20 * 1024 * 1024 {
        large.push_str(&"x".repeat(998));
        large.push_str("\r\n");
    }
    large.push_str("--b1--\r\n");
    vec![
        ("empty", Vec::new()),
        ("binary", (0..=255u8).cycle().take(70_000).collect()),
        (
            "latin1",
            b"From: J\xe9r\xf4me <j@example.org>\r\n\r\nCaf\xe9\xff\xfe\r\n".to_vec(),
        ),
        ("truncated", bounce.as_bytes()[..bounce.len() / 2].to_vec()),
        (
            "headers-only",
            b"Content-Type: multipart/report; boundary=\"".to_vec(),
        ),
        ("large", large.into_bytes()),
    ]
}

#[test]
fn maildir_keeps_no_hostile_message() {
    let workspace = workspace_with_customers();
    let bounce = dsn("tact@localhost", "ann@example.com", "Subject: Tips\r\n\r\n");
    let maildir = maildir(&workspace);
    let messages = hostile_messages(&bounce);
    for (name, bytes) in &messages {
        std::fs::write(maildir.join("new").join(name), bytes).unwrap();
    }

    let output = workspace.run(&["ingest-mail", "--maildir", maildir.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(file_names(&maildir.join("new")), Vec::<String>::new());
    let mut expected: Vec<String> = messages
        .iter()
        .map(|(name, _)| format!("{name}:2,S"))
        .collect();
    expected.sort();
    assert_eq!(file_names(&maildir.join(".processed/cur")), expected);
    let large = std::fs::metadata(maildir.join(".processed/cur/large:2,S")).unwrap();
    assert!(large.len() >= 20 * 1024 * 1024);
    let store = workspace.store();
    let bob = store.customer_by_external_id("c2").unwrap();
    assert_eq!(
        store.history(bob.id).unwrap().suppressions[0].reason,
        SuppressionReason::HardBounce
    );
}

#[test]
fn standard_input_survives_hostile_messages() {
    let workspace = workspace_with_customers();
    let bounce = dsn("tact@localhost", "ann@example.com", "Subject: Tips\r\n\r\n");

    for (name, bytes) in hostile_messages(&bounce) {
        let output = run_with_input(&workspace, &["ingest-mail", "--json"], &bytes);

        assert_eq!(output.status.code(), Some(0), "{name}: {output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.starts_with("{\"class\":"), "{name}: {stdout}");
    }
}

/// Holds the database's write lock for `seconds` from a separate process; returns once the
/// lock is taken.
fn hold_write_lock(database: &Path, seconds: u32) -> Child {
    let script = "import sqlite3, sys, time\n\
        connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
        connection.execute('BEGIN IMMEDIATE')\n\
        print('locked', flush=True)\n\
        time.sleep(float(sys.argv[2]))\n";
    let mut child = Command::new(PYTHON)
        .args(["-c", script])
        .arg(database)
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("locked line");
    assert_eq!(line, "locked\n");
    child
}

#[test]
fn locked_database_keeps_message() {
    let workspace = workspace_with_customers();
    let maildir = maildir(&workspace);
    let bounce = dsn("tact@localhost", "ann@example.com", "Subject: Tips\r\n\r\n");
    std::fs::write(maildir.join("new/1.host"), &bounce).unwrap();
    std::fs::write(maildir.join("new/2.host"), ORDINARY).unwrap();
    let folder = maildir.to_str().unwrap();
    let mut lock = hold_write_lock(&workspace.path().join("tact.db"), 15);

    let locked = workspace.run(&["ingest-mail", "--maildir", folder]);
    let _ = lock.kill();
    let _ = lock.wait();
    let piped = run_with_input(&workspace, &["ingest-mail"], bounce.as_bytes());

    assert_eq!(locked.status.code(), Some(75), "{locked:?}");
    let stderr = String::from_utf8_lossy(&locked.stderr);
    assert!(
        stderr.contains("ingesting a message failed; it stays in place for the next run"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "error: 1 of 2 messages in {folder} could not be ingested and stay in place; \
             see the log\n"
        )),
        "{stderr}"
    );
    assert_eq!(file_names(&maildir.join("new")), vec!["1.host"]);
    assert_eq!(
        file_names(&maildir.join(".processed/cur")),
        vec!["2.host:2,S"]
    );
    assert_eq!(piped.status.code(), Some(0), "{piped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_route_needs_token() {
    let workspace = workspace_with_customers();
    let server = workspace.serve_with(&[("TACT_BOUNCES_MAX_MESSAGE_BYTES", "200000")]);
    let client = server.client();
    let url = format!("{}/api/v1/inbound", server.url);
    // Larger than http.max_body_bytes (64 KiB), which this route does not use.
    let padding = format!("X-Padding: {}\r\n", "p".repeat(100_000));
    let bounce = dsn("tact@localhost", "bob@example.com", "Subject: Tips\r\n\r\n");
    let padded = format!("{padding}{bounce}");

    let anonymous = client
        .post(&url)
        .header("content-type", "message/rfc822")
        .body(bounce.clone())
        .send()
        .await
        .unwrap();
    let wrong_type = client
        .post(&url)
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(bounce.clone())
        .send()
        .await
        .unwrap();
    let too_large = client
        .post(&url)
        .bearer_auth(&server.token)
        .header("content-type", "message/rfc822")
        .body("x".repeat(200_001))
        .send()
        .await
        .unwrap();
    // The server closes the connection that carried the body it refused, and a pooled
    // client could send the next request on it before noticing, so a new client sends it.
    let accepted = server
        .client()
        .post(&url)
        .bearer_auth(&server.token)
        .header("content-type", "message/rfc822")
        .body(padded)
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(wrong_type.status().as_u16(), 415);
    assert_eq!(too_large.status().as_u16(), 413);
    assert_eq!(accepted.status().as_u16(), 200);
    let body: serde_json::Value = accepted.json().await.unwrap();
    let expected = serde_json::json!({
        "reports": [{
            "class": "hard_bounce",
            "recipient": "bob@example.com",
            "status": "5.1.1",
            "reason": "550 5.1.1 <bob@example.com>: User unknown",
            "delivery": null,
            "effect": "suppressed",
            "suppression": "hard_bounce"
        }]
    });
    assert_eq!(body, expected);
    let store = workspace.store();
    let bob = store.customer_by_external_id("c2").unwrap();
    let history = store.history(bob.id).unwrap();
    assert_eq!(history.suppressions.len(), 1);
    assert_eq!(history.suppressions[0].channel, Channel::EMAIL);
    assert_eq!(
        history.suppressions[0].reason,
        SuppressionReason::HardBounce
    );
    assert!(server.stop().success());
}

/// Builds a message with the given raw `Subject` header value, sent from Bob.
fn with_subject(subject: &str) -> String {
    format!(
        "From: bob@example.com\r\nTo: unsubscribe@localhost\r\nSubject: {subject}\r\n\
         Message-ID: <hostile@client.example>\r\n\r\nPlease stop.\r\n"
    )
}

/// Returns whether the customer has opted out of marketing.
fn opted_out(workspace: &Workspace, external_id: &str) -> bool {
    let store = workspace.store();
    let id = store.customer_by_external_id(external_id).unwrap().id;
    store.preferences(id).unwrap().marketing_opt_out.is_some()
}

#[test]
fn mail_unsubscribe_rejects_hostile_subjects() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    let preferences = workspace.token(LinkPurpose::Preferences, "c1");
    let secret = workspace.config_value("secret_key");
    let key = LinkKey::new(secret.as_bytes()).expect("valid key");
    let unknown = key.sign(
        LinkPurpose::Unsubscribe,
        tact_domain::CustomerId(999),
        crate::harness::wall_clock(),
    );
    let verp_local = verp(&workspace, DeliveryId(1));
    let verp_local = verp_local.split('@').next().unwrap().to_owned();
    let cases = [
        format!("unsubscribe-{preferences}"),
        format!("unsubscribe-{unknown}"),
        format!("unsubscribe-{verp_local}"),
        format!("unsubscribe-{}", &token[..token.len() - 1]),
        format!("unsubscribe-{token}A"),
        format!("unsubscribe-{token}é"),
        format!("unsubscribe-é{token}"),
        format!("unsubscribe-\r\n {token}"),
        format!("unsubscribe-{}\r\n {}", &token[..20], &token[20..]),
        format!("unsubscribe-{}", "A".repeat(10_000)),
        format!("Ré: unsubscribe-{token}"),
        format!("=?utf-8?q?unsubscribe-{token}=0Aextra?="),
        "=?utf-8?b?/w==?=".to_owned(),
        "Re:".to_owned(),
        "Re: Re: Re: Fwd: Fw:".to_owned(),
        "\u{00e9}\u{00e9}\u{00e9}\u{00e9}".to_owned(),
    ];
    for subject in &cases {
        let message = with_subject(subject);
        let output = run_with_input(&workspace, &["ingest-mail"], message.as_bytes());
        let stdout = String::from_utf8_lossy(&output.stdout);

        assert_eq!(output.status.code(), Some(0), "{subject:?}: {output:?}");
        assert!(!stdout.contains("unsubscribed"), "{subject:?}: {stdout}");
        assert!(!opted_out(&workspace, "c1"), "{subject:?}");
        assert!(!opted_out(&workspace, "c2"), "{subject:?}");
    }
}

#[test]
fn mail_unsubscribe_encoded_subject_names_token_customer() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    // In the Q encoding an underscore stands for a space, so the token's own are escaped.
    let encoded = format!(
        "=?utf-8?q?Re=3A_unsubscribe-{}?=",
        token.replace('_', "=5F")
    );

    let output = ingest(&workspace, &[], with_subject(&encoded).as_bytes());

    assert_eq!(output, "unsubscribe bob@example.com: unsubscribed\n");
    assert!(opted_out(&workspace, "c1"));
    assert!(!opted_out(&workspace, "c2"));
}

#[test]
fn mail_unsubscribe_dry_run_changes_nothing() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    let request = mailto_unsubscribe("ann@example.com", &token);

    let text = ingest(&workspace, &["--dry-run"], request.as_bytes());
    let json = ingest(&workspace, &["--dry-run", "--json"], request.as_bytes());

    assert_eq!(text, "unsubscribe ann@example.com: none\n");
    assert!(json.contains("\"class\":\"unsubscribe\""), "{json}");
    assert!(!opted_out(&workspace, "c1"));
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap().id;
    assert!(store.history(ann).unwrap().signals.is_empty());
    assert!(store.consent_log(ann).unwrap().is_empty());
}

#[test]
fn bounce_with_unsubscribe_subject() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    let bounce = dsn("tact@localhost", "bob@example.com", "Subject: Tips\r\n\r\n").replace(
        "Subject: Undelivered Mail Returned to Sender",
        &format!("Subject: unsubscribe-{token}"),
    );

    let output = ingest(&workspace, &[], bounce.as_bytes());

    // A bounce stays a bounce, whatever its subject.
    assert!(
        output.starts_with("hard_bounce bob@example.com"),
        "{output}"
    );
    assert!(!opted_out(&workspace, "c1"));
    assert!(!opted_out(&workspace, "c2"));
}

#[test]
fn complaint_enclosing_unsubscribe_subject() {
    let workspace = workspace_with_customers();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c2");
    let report = complaint("ann@example.com", "<x@localhost>")
        .replace("Subject: Tips", &format!("Subject: unsubscribe-{token}"));

    let output = ingest(&workspace, &[], report.as_bytes());

    assert!(output.starts_with("complaint ann@example.com"), "{output}");
    assert!(!opted_out(&workspace, "c2"));
}

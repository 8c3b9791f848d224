//! Delivery against real servers: each SMTP test starts `smtp_server.py` (Debian's
//! python3-aiosmtpd) on 127.0.0.1 on a free port, sends through [`EmailChannel`], and parses
//! what the server stored with mail-parser. Maildir tests write into a temporary directory.

use chrono::Duration as ChronoDuration;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tact_delivery::token::{LinkKey, LinkPurpose};
use tact_delivery::{
    Channel, EmailChannel, MaildirChannel, Outgoing, Recipient, Rendered, RetryPolicy, SendError,
    SmtpConfig, TlsMode,
};
use tact_domain::{
    Content, CustomerId, CustomerView, Decision, DeliveryId, Policy, Preferences, Proposal,
    Purpose, decide,
};

mod common;
use common::{SECRET, approve, customer, message_config, now, outgoing};

/// A running `smtp_server.py`, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl SmtpServer {
    fn start(tempfail: &[&str], reject: &[&str]) -> SmtpServer {
        SmtpServer::start_with(false, tempfail, reject)
    }

    /// Starts a server that advertises `PIPELINING` when `pipelining` is true.
    fn start_with(pipelining: bool, tempfail: &[&str], reject: &[&str]) -> SmtpServer {
        let mut args = Vec::new();
        if pipelining {
            args.push("--pipelining".to_owned());
        }
        for address in tempfail {
            args.extend(["--tempfail".to_owned(), address.to_string()]);
        }
        for address in reject {
            args.extend(["--reject".to_owned(), address.to_string()]);
        }
        SmtpServer::spawn(&args)
    }

    /// Starts `smtp_server.py` with a temporary output directory and `args`.
    fn spawn(args: &[String]) -> SmtpServer {
        let out = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut command = Command::new("/usr/bin/python3");
        command.arg(script).arg("--out").arg(out.path()).args(args);
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("smtp_server.py printed {line:?}, not its port; is python3-aiosmtpd installed?")
        });
        SmtpServer { child, port, out }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The stored messages, oldest first, with their envelopes as JSON.
    fn messages(&self) -> Vec<(Vec<u8>, serde_json::Value)> {
        let mut stored = Vec::new();
        for n in 1.. {
            let eml = self.out.path().join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let meta = std::fs::read(self.out.path().join(format!("{n}.json"))).unwrap();
            stored.push((
                std::fs::read(eml).unwrap(),
                serde_json::from_slice(&meta).unwrap(),
            ));
        }
        stored
    }

    /// The accepted logins, one `<mechanism> <user>` line each.
    fn logins(&self) -> String {
        std::fs::read_to_string(self.out.path().join("auth")).unwrap_or_default()
    }

    /// How many transactions arrived pipelined.
    fn pipelined(&self) -> usize {
        let log = std::fs::read_to_string(self.out.path().join("pipelined")).unwrap_or_default();
        log.lines().count()
    }

    /// Returns how many messages arrived with the next transaction's commands behind their
    /// data.
    fn carried(&self) -> usize {
        let log = std::fs::read_to_string(self.out.path().join("carried")).unwrap_or_default();
        log.lines().count()
    }

    /// Counts the connections that greeted the server with `EHLO`.
    fn connections(&self) -> usize {
        let log = std::fs::read_to_string(self.out.path().join("connections")).unwrap_or_default();
        log.lines().count()
    }

    fn channel(&self) -> EmailChannel {
        self.channel_with_pool(4)
    }

    fn channel_with_pool(&self, connections: usize) -> EmailChannel {
        let mut config = SmtpConfig::new("127.0.0.1", self.port, TlsMode::None);
        config.hello_name = Some("client.test".into());
        config.timeout_seconds = 5;
        config.pool_size = connections;
        EmailChannel::new(config, &message_config()).unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn header_names(raw: &[u8]) -> Vec<String> {
    let message = MessageParser::default().parse(raw).unwrap();
    message
        .headers()
        .iter()
        .map(|header| header.name().to_owned())
        .collect()
}

fn text_header(raw: &[u8], name: &str) -> Option<String> {
    let message = MessageParser::default().parse(raw).unwrap();
    message.header(name).and_then(|value| match value {
        HeaderValue::Text(text) => Some(text.to_string()),
        _ => None,
    })
}

#[tokio::test]
async fn smtp_message_headers_and_body_exact() {
    let server = SmtpServer::start(&[], &[]);
    let channel = server.channel();
    let message = outgoing(1, "Ann Smith", "ann@example.com", "Three tips for spring");

    let receipt = channel.send(&message, now()).await.unwrap();

    assert_eq!(receipt.message_id, "<delivery-101@mail.acme.example>");
    assert_eq!(receipt.reply, "250 2.0.0 Ok: queued as 1");
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    let (raw, envelope) = &stored[0];
    let key = LinkKey::new(SECRET.as_bytes()).unwrap();
    let verp = envelope["mail_from"].as_str().unwrap();
    assert_eq!(key.parse_verp(verp), Ok(DeliveryId(101)));
    assert!(verp.ends_with("@bounce.acme.example"), "{verp}");
    assert_eq!(envelope["rcpt_tos"], serde_json::json!(["ann@example.com"]));
    assert_eq!(
        header_names(raw),
        [
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Date",
            "Reply-To",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ]
    );

    let parsed = MessageParser::default().parse(raw.as_slice()).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Acme News"));
    assert_eq!(from.address(), Some("news@acme.example"));
    let reply_to = parsed.reply_to().unwrap().first().unwrap();
    assert_eq!(reply_to.address(), Some("care@acme.example"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Ann Smith"));
    assert_eq!(to.address(), Some("ann@example.com"));
    assert_eq!(parsed.subject(), Some("Three tips for spring"));
    assert_eq!(parsed.message_id(), Some("delivery-101@mail.acme.example"));
    assert_eq!(parsed.date().unwrap().to_rfc3339(), "2026-03-02T10:00:00Z");
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Hello Ann Smith,\r\nthree tips for spring.\r\n")
    );
    assert_eq!(parsed.body_html(1), None);

    let post = text_header(raw, "List-Unsubscribe-Post");
    assert_eq!(post.as_deref(), Some("List-Unsubscribe=One-Click"));
    let unsubscribe = parsed.list_unsubscribe().as_address().unwrap();
    let urls: Vec<&str> = unsubscribe.iter().filter_map(|a| a.address()).collect();
    assert_eq!(urls.len(), 2);
    let token = urls[0]
        .strip_prefix("https://tact.acme.example/unsubscribe/")
        .unwrap();
    let max_age = ChronoDuration::days(365);
    let customer = key.verify(token, LinkPurpose::Unsubscribe, now(), max_age);
    assert_eq!(customer, Ok(CustomerId(1)));
    assert_eq!(
        urls[1],
        format!("mailto:unsubscribe@acme.example?subject=unsubscribe-{token}")
    );
}

#[tokio::test]
async fn smtp_multipart_has_text_and_html() {
    let server = SmtpServer::start(&[], &[]);
    let channel = server.channel();
    let customer = customer(2, "Bo", "bo@example.com");
    let content = Rendered {
        subject: "News".into(),
        text: "Plain news\n".into(),
        html: Some("<p>HTML news</p>\n".into()),
    };
    let approval = approve(&customer, Purpose::Value);
    let recipient = Recipient::email(&customer).unwrap();
    let message = Outgoing::new(approval, DeliveryId(7), recipient, content).unwrap();

    channel.send(&message, now()).await.unwrap();

    let stored = server.messages();
    let parsed = MessageParser::default().parse(&stored[0].0).unwrap();
    assert_eq!(parsed.text_body_count(), 1);
    assert_eq!(parsed.html_body_count(), 1);
    assert_eq!(parsed.body_text(0).as_deref(), Some("Plain news\r\n"));
    assert_eq!(parsed.body_html(0).as_deref(), Some("<p>HTML news</p>\r\n"));
    let content_type = parsed.root_part().content_type().unwrap();
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
}

#[tokio::test]
async fn smtp_transactional_has_no_unsubscribe() {
    let server = SmtpServer::start(&[], &[]);
    let channel = server.channel();
    let customer = customer(3, "Cy", "cy@example.com");
    let content = Rendered {
        subject: "Your receipt".into(),
        text: "Paid.\n".into(),
        html: None,
    };
    let approval = approve(&customer, Purpose::Transactional);
    let recipient = Recipient::email(&customer).unwrap();
    let message = Outgoing::new(approval, DeliveryId(8), recipient, content).unwrap();

    channel.send(&message, now()).await.unwrap();

    let names = header_names(&server.messages()[0].0);
    assert!(
        !names.iter().any(|name| name.starts_with("List-")),
        "{names:?}"
    );
}

#[tokio::test]
async fn smtp_451_retried_then_delivered_once() {
    for pipelining in [false, true] {
        retry_after_451(pipelining).await;
    }
}

async fn retry_after_451(pipelining: bool) {
    let server = SmtpServer::start_with(pipelining, &["slow@example.com"], &[]);
    let channel = server.channel();
    let message = outgoing(4, "Dee", "slow@example.com", "Hello");
    let policy = RetryPolicy {
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_attempts: 3,
    };

    let first = channel.send(&message, now()).await.unwrap_err();
    assert!(first.is_transient(), "{first}");
    assert_eq!(first.code(), Some(451));
    assert_eq!(
        first.reply(),
        Some("4.3.0 <slow@example.com>: Temporary failure, try again later")
    );
    let delay = policy.delay_for(1).expect("a second attempt is allowed");
    tokio::time::sleep(delay).await;
    let receipt = channel.send(&message, now()).await.unwrap();

    assert_eq!(receipt.reply, "250 2.0.0 Ok: queued as 1");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.pipelined(), if pipelining { 2 } else { 0 });
}

#[tokio::test]
async fn smtp_550_is_permanent_bounce() {
    for pipelining in [false, true] {
        bounce_on_550(pipelining).await;
    }
}

async fn bounce_on_550(pipelining: bool) {
    let server = SmtpServer::start_with(pipelining, &[], &["gone@example.com"]);
    let channel = server.channel();
    let message = outgoing(5, "Eve", "gone@example.com", "Hello");

    let error = channel.send(&message, now()).await.unwrap_err();

    assert!(!error.is_transient());
    assert!(error.is_bounce());
    assert_eq!(error.code(), Some(550));
    assert_eq!(
        error.reply(),
        Some("5.1.1 <gone@example.com>: Recipient address rejected: User unknown")
    );
    match &error {
        SendError::Rejected { stage, .. } => assert_eq!(*stage, "RCPT"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(server.messages().len(), 0);

    let next = outgoing(6, "Fay", "fay@example.com", "Hello");
    channel.send(&next, now()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.pipelined(), if pipelining { 2 } else { 0 });
}

#[tokio::test]
async fn smtp_server_gone_mid_batch() {
    for pipelining in [false, true] {
        server_gone_mid_batch(pipelining).await;
    }
}

async fn server_gone_mid_batch(pipelining: bool) {
    let mut server = SmtpServer::start_with(pipelining, &[], &[]);
    let channel = server.channel();
    let batch: Vec<Outgoing> = (10..15)
        .map(|id| outgoing(id, "Gus", &format!("gus{id}@example.com"), "Batch"))
        .collect();

    let mut results = Vec::new();
    for (index, message) in batch.iter().enumerate() {
        if index == 2 {
            server.stop();
        }
        results.push(channel.send(message, now()).await);
    }

    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[1].is_ok(), "{:?}", results[1]);
    for result in &results[2..] {
        let error = result.as_ref().unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(matches!(error, SendError::Connection { .. }), "{error:?}");
    }
    let stored = server.messages();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1].1["rcpt_tos"],
        serde_json::json!(["gus11@example.com"])
    );
    assert_eq!(server.pipelined(), if pipelining { 2 } else { 0 });
}

/// Returns the recipients of the stored messages, in the order the server accepted them.
fn stored_recipients(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .map(|(_, envelope)| envelope["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn queued_messages_ride_behind_the_previous_content() {
    let args = ["--pipelining", "--ehlo-delay", "0.3"].map(str::to_owned);
    let server = SmtpServer::spawn(&args);
    let channel = server.channel_with_pool(1);
    let batch: Vec<Outgoing> = (20..25)
        .map(|id| outgoing(id, "Hal", &format!("hal{id}@example.com"), "Queued"))
        .collect();

    // The server replies to each EHLO after 0.3 s, so all five are queued before the
    // connection's first transaction opens.
    let (a, b, c, d, e) = tokio::join!(
        channel.send(&batch[0], now()),
        channel.send(&batch[1], now()),
        channel.send(&batch[2], now()),
        channel.send(&batch[3], now()),
        channel.send(&batch[4], now()),
    );

    let replies: Vec<String> = [a, b, c, d, e]
        .into_iter()
        .map(|result| result.unwrap().reply)
        .collect();
    let expected: Vec<String> = (1..=5)
        .map(|n| format!("250 2.0.0 Ok: queued as {n}"))
        .collect();
    assert_eq!(replies, expected);
    let recipients: Vec<String> = (20..25).map(|id| format!("hal{id}@example.com")).collect();
    assert_eq!(stored_recipients(&server), recipients);
    assert_eq!(server.pipelined(), 5);
    assert_eq!(server.carried(), 4);
}

#[tokio::test]
async fn rejected_message_behind_content_leaves_the_others() {
    let server = SmtpServer::start_with(true, &[], &["gone@example.com"]);
    let channel = server.channel_with_pool(1);
    let first = outgoing(30, "Ida", "ida@example.com", "One");
    let rejected = outgoing(31, "Eve", "gone@example.com", "Two");
    let third = outgoing(32, "Jon", "jon@example.com", "Three");

    let (first, rejected, third) = tokio::join!(
        channel.send(&first, now()),
        channel.send(&rejected, now()),
        channel.send(&third, now()),
    );

    assert_eq!(first.unwrap().reply, "250 2.0.0 Ok: queued as 1");
    let error = rejected.unwrap_err();
    assert!(error.is_bounce(), "{error}");
    match &error {
        SendError::Rejected { stage, code, .. } => assert_eq!((*stage, *code), ("RCPT", 550)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(third.unwrap().reply, "250 2.0.0 Ok: queued as 2");
    assert_eq!(
        stored_recipients(&server),
        ["ida@example.com", "jon@example.com"]
    );
}

#[tokio::test]
async fn abandoned_send_is_not_sent() {
    let args = ["--pipelining", "--ehlo-delay", "0.3"].map(str::to_owned);
    let server = SmtpServer::spawn(&args);
    let channel = server.channel_with_pool(1);
    let abandoned = outgoing(40, "Kim", "kim@example.com", "Never");
    let delivered = outgoing(41, "Lou", "lou@example.com", "Kept");

    // A zero timeout polls the send once, which queues the message, and then drops it
    // while the connection's worker still waits 0.3 s for the server's EHLO reply.
    let gave_up = tokio::time::timeout(Duration::ZERO, channel.send(&abandoned, now())).await;
    assert!(gave_up.is_err());
    channel.send(&delivered, now()).await.unwrap();

    assert_eq!(stored_recipients(&server), ["lou@example.com"]);
}

#[tokio::test]
async fn closed_channel_sends_queued_messages_then_refuses() {
    let server = SmtpServer::start_with(true, &[], &[]);
    let channel = server.channel_with_pool(2);
    let before = outgoing(42, "Mae", "mae@example.com", "Before");
    let after = outgoing(43, "Ned", "ned@example.com", "After");

    channel.send(&before, now()).await.unwrap();
    channel.close().await;
    let error = channel.send(&after, now()).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "connection to 127.0.0.1 failed: the channel is closed"
    );
    assert!(error.is_transient());
    assert_eq!(stored_recipients(&server), ["mae@example.com"]);
}

#[tokio::test]
async fn idle_connection_closed_by_server_reconnects() {
    for pipelining in [false, true] {
        reconnect_after_idle_close(pipelining).await;
    }
}

async fn reconnect_after_idle_close(pipelining: bool) {
    let mut args = vec!["--idle-timeout".to_owned(), "0.3".to_owned()];
    if pipelining {
        args.push("--pipelining".to_owned());
    }
    let server = SmtpServer::spawn(&args);
    let channel = server.channel_with_pool(1);
    let first = outgoing(60, "Ron", "ron@example.com", "First");
    let second = outgoing(61, "Sue", "sue@example.com", "Second");

    channel.send(&first, now()).await.unwrap();
    // Meanwhile the server replies 421 and closes the idle connection.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let receipt = channel.send(&second, now()).await.unwrap();

    assert_eq!(receipt.reply, "250 2.0.0 Ok: queued as 2");
    assert_eq!(
        stored_recipients(&server),
        ["ron@example.com", "sue@example.com"]
    );
}

/// The connections run on the channel's own thread, so they outlive the runtime of the
/// caller that opened them: a send from another runtime reuses the connection.
#[test]
fn connection_outlives_the_runtime_that_opened_it() {
    let server = SmtpServer::start_with(true, &[], &[]);
    let channel = server.channel_with_pool(1);
    let first = outgoing(62, "Tom", "tom@example.com", "First");
    let second = outgoing(63, "Uma", "uma@example.com", "Second");
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };

    let first_runtime = runtime();
    let first = first_runtime.block_on(channel.send(&first, now())).unwrap();
    drop(first_runtime);
    let second = runtime().block_on(async {
        let send = channel.send(&second, now());
        tokio::time::timeout(Duration::from_secs(10), send).await
    });

    assert_eq!(first.reply, "250 2.0.0 Ok: queued as 1");
    let second = second.expect("the second send hung").unwrap();
    assert_eq!(second.reply, "250 2.0.0 Ok: queued as 2");
    assert_eq!(
        stored_recipients(&server),
        ["tom@example.com", "uma@example.com"]
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn smtp_injection_adds_no_header() {
    let server = SmtpServer::start(&[], &[]);
    let channel = server.channel();
    let name = "Ann\r\nBcc: thief@evil.example\0";
    let subject = "Hi\r\nX-Injected: yes\nBcc: thief@evil.example\0!";
    let message = outgoing(20, name, "ann@example.com", subject);

    channel.send(&message, now()).await.unwrap();

    let stored = server.messages();
    let (raw, envelope) = &stored[0];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!(["ann@example.com"]));
    let names = header_names(raw);
    assert_eq!(names.len(), 11, "{names:?}");
    assert!(
        !names.iter().any(|n| n == "Bcc" || n == "X-Injected"),
        "{names:?}"
    );
    let parsed = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Hi  X-Injected: yes Bcc: thief@evil.example !")
    );
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Ann  Bcc: thief@evil.example "));
    assert_eq!(to.address(), Some("ann@example.com"));
}

#[tokio::test]
async fn smtp_non_ascii_round_trips() {
    let server = SmtpServer::start(&[], &[]);
    let channel = server.channel();
    let subject = "Grüße, Zoë – ¡mañana! 🎉";
    let message = outgoing(21, "Zoë Ñandú-Łukasz", "zoe@bücher.example", subject);

    channel.send(&message, now()).await.unwrap();

    let stored = server.messages();
    let (raw, envelope) = &stored[0];
    assert!(raw.is_ascii(), "headers and body are 7-bit encoded");
    let rcpt = serde_json::json!(["zoe@xn--bcher-kva.example"]);
    assert_eq!(envelope["rcpt_tos"], rcpt);
    let parsed = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(parsed.subject(), Some(subject));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Zoë Ñandú-Łukasz"));
    assert_eq!(to.address(), Some("zoe@xn--bcher-kva.example"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Hello Zoë Ñandú-Łukasz,\r\nthree tips for spring.\r\n")
    );
}

#[tokio::test]
async fn smtp_expired_approval_sends_nothing() {
    let server = SmtpServer::start(&[], &[]);
    let channel: Arc<dyn Channel> = Arc::new(server.channel());
    let message = outgoing(22, "Hal", "hal@example.com", "Late");
    let expires_at = message.approval().expires_at();

    let error = channel.send(&message, expires_at).await.unwrap_err();

    assert!(matches!(error, SendError::Expired { expires_at: at } if at == expires_at));
    assert!(!error.is_transient());
    assert_eq!(server.messages().len(), 0);
}

#[tokio::test]
async fn smtp_rate_limit_spaces_sends() {
    let server = SmtpServer::start(&[], &[]);
    let mut config = SmtpConfig::new("127.0.0.1", server.port, TlsMode::None);
    config.rate_limit = Some(tact_delivery::RateLimit {
        per_second: 20.0,
        burst: 1,
    });
    let channel = EmailChannel::new(config, &message_config()).unwrap();
    let started = std::time::Instant::now();

    for id in 30..34 {
        let message = outgoing(id, "Ida", "ida@example.com", "Paced");
        channel.send(&message, now()).await.unwrap();
    }

    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert_eq!(server.messages().len(), 4);
}

fn maildir_files(root: &Path, sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn maildir_writes_one_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let channel = MaildirChannel::open(dir.path().join("mail"), &message_config()).unwrap();
    let first = outgoing(40, "Jo", "jo@example.com", "One");
    let second = outgoing(41, "Kim", "kim@example.com", "Two");

    let receipt = channel.send(&first, now()).await.unwrap();
    channel.send(&second, now()).await.unwrap();
    channel.send(&second, now()).await.unwrap();

    assert_eq!(receipt.message_id, "<delivery-140@mail.acme.example>");
    let root = channel.root();
    assert_eq!(maildir_files(root, "tmp"), Vec::<PathBuf>::new());
    assert_eq!(maildir_files(root, "cur"), Vec::<PathBuf>::new());
    let files = maildir_files(root, "new");
    assert_eq!(files.len(), 3);
    let names: std::collections::BTreeSet<_> = files.iter().map(|f| f.file_name()).collect();
    assert_eq!(names.len(), 3);
    let subjects: Vec<String> = files
        .iter()
        .map(|file| {
            let raw = std::fs::read(file).unwrap();
            let parsed = MessageParser::default().parse(&raw).unwrap();
            parsed.subject().unwrap().to_owned()
        })
        .collect();
    let mut sorted = subjects.clone();
    sorted.sort();
    assert_eq!(sorted, ["One", "Two", "Two"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&root.join("new")), 0o700);
        assert_eq!(mode(root), 0o700);
    }
}

#[tokio::test]
async fn maildir_expired_approval_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let channel = MaildirChannel::open(dir.path(), &message_config()).unwrap();
    let message = outgoing(42, "Lu", "lu@example.com", "Late");
    let later = now() + ChronoDuration::hours(1);

    let error = channel.send(&message, later).await.unwrap_err();

    assert!(matches!(error, SendError::Expired { .. }), "{error:?}");
    assert_eq!(maildir_files(dir.path(), "new"), Vec::<PathBuf>::new());
    assert_eq!(maildir_files(dir.path(), "tmp"), Vec::<PathBuf>::new());
}

/// A private CA and a server certificate for `localhost` and 127.0.0.1, made with openssl.
struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    fn create() -> TestCertificates {
        let dir = tempfile::tempdir().unwrap();
        let ext = dir.path().join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-extfile",
                "server.ext",
            ],
        ];
        for (index, step) in steps.iter().enumerate() {
            let subject = if index == 0 {
                "/CN=tact test CA"
            } else {
                "/CN=localhost"
            };
            let mut command = Command::new("openssl");
            command.args(step).current_dir(dir.path());
            if index < 2 {
                command.args(["-subj", subject, "-days", "2"]);
            } else {
                command.args(["-days", "2"]);
            }
            let output = command.output().unwrap();
            assert!(output.status.success(), "{output:?}");
        }
        TestCertificates { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Arguments that make `smtp_server.py` use the server certificate and the account
    /// `tact` with password `s3cret`.
    fn server_args(&self, implicit: bool) -> Vec<String> {
        let mut args = vec![
            "--cert".to_owned(),
            self.path("server.pem"),
            "--key".to_owned(),
            self.path("server.key"),
            "--user".to_owned(),
            "tact".to_owned(),
            "--password".to_owned(),
            "s3cret".to_owned(),
        ];
        if implicit {
            args.push("--implicit-tls".to_owned());
        }
        args
    }
}

fn tls_channel(
    server: &SmtpServer,
    certificates: Option<&TestCertificates>,
    tls: TlsMode,
    password: &str,
) -> EmailChannel {
    let mut config = SmtpConfig::new("localhost", server.port, tls);
    config.hello_name = Some("client.test".into());
    config.timeout_seconds = 5;
    config.username = Some("tact".into());
    config.password = Some(password.into());
    config.ca_file = certificates.map(|c| c.path("ca.pem").into());
    EmailChannel::new(config, &message_config()).unwrap()
}

#[tokio::test]
async fn starttls_with_auth_delivers() {
    let certificates = TestCertificates::create();
    let server = SmtpServer::spawn(&certificates.server_args(false));
    let channel = tls_channel(&server, Some(&certificates), TlsMode::Starttls, "s3cret");
    let message = outgoing(50, "Max", "max@example.com", "Encrypted");

    let receipt = channel.send(&message, now()).await.unwrap();

    assert_eq!(receipt.reply, "250 2.0.0 Ok: queued as 1");
    assert_eq!(server.logins(), "PLAIN tact\n");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers() {
    let certificates = TestCertificates::create();
    let server = SmtpServer::spawn(&certificates.server_args(true));
    let channel = tls_channel(&server, Some(&certificates), TlsMode::Tls, "s3cret");
    let message = outgoing(51, "Ned", "ned@example.com", "Encrypted");

    let receipt = channel.send(&message, now()).await.unwrap();

    assert_eq!(receipt.reply, "250 2.0.0 Ok: queued as 1");
    assert_eq!(server.logins(), "PLAIN tact\n");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn wrong_password_is_transient_not_bounce() {
    let certificates = TestCertificates::create();
    let server = SmtpServer::spawn(&certificates.server_args(false));
    let channel = tls_channel(&server, Some(&certificates), TlsMode::Starttls, "wrong");
    let message = outgoing(52, "Ola", "ola@example.com", "Denied");

    let error = channel.send(&message, now()).await.unwrap_err();

    assert!(matches!(error, SendError::Connection { .. }), "{error:?}");
    assert_eq!(error.code(), Some(535));
    assert!(error.is_transient());
    assert!(!error.is_bounce());
    assert_eq!(server.messages().len(), 0);
}

#[tokio::test]
async fn untrusted_certificate_is_rejected() {
    let certificates = TestCertificates::create();
    let server = SmtpServer::spawn(&certificates.server_args(false));
    let channel = tls_channel(&server, None, TlsMode::Starttls, "s3cret");
    let message = outgoing(53, "Pia", "pia@example.com", "Untrusted");

    let error = channel.send(&message, now()).await.unwrap_err();

    assert!(matches!(error, SendError::Connection { .. }), "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert_eq!(server.logins(), "");
    assert_eq!(server.messages().len(), 0);
}

#[tokio::test]
async fn outgoing_rejects_other_customer() {
    let ann = customer(60, "Ann", "ann@example.com");
    let bob = customer(61, "Bob", "bob@example.com");
    let content = Rendered {
        subject: "Hi".into(),
        text: "Hi\n".into(),
        html: None,
    };
    let approval = approve(&ann, Purpose::Value);

    let error = Outgoing::new(
        approval,
        DeliveryId(60),
        Recipient::email(&bob).unwrap(),
        content,
    )
    .unwrap_err();

    match error {
        tact_delivery::Error::WrongCustomer {
            recipient,
            approved,
        } => {
            assert_eq!(recipient, CustomerId(61));
            assert_eq!(approved, CustomerId(60));
        }
        other => panic!("expected a customer mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn maildir_rejects_sms_approval() {
    let dir = tempfile::tempdir().unwrap();
    let channel = MaildirChannel::open(dir.path(), &message_config()).unwrap();
    let mut customer = customer(62, "Cal", "cal@example.com");
    customer.phone = Some("+441632960000".into());
    let mut proposal = Proposal::new(customer.id, tact_domain::Channel::SMS, Purpose::Value);
    proposal.content = Some(Content {
        greeting: Some("Hello Cal,".into()),
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
    let Decision::Approve(approval) = decide(&proposal, &view, &Policy::default(), now()) else {
        panic!("the domain did not approve the text message");
    };
    let content = Rendered {
        subject: String::new(),
        text: "Hi\n".into(),
        html: None,
    };
    let recipient = Recipient::email(&customer).unwrap();
    let message = Outgoing::new(approval, DeliveryId(62), recipient, content).unwrap();

    let error = channel.send(&message, now()).await.unwrap_err();

    match &error {
        SendError::WrongChannel { approved, channel } => {
            assert_eq!(approved, "sms");
            assert_eq!(channel, "email");
        }
        other => panic!("expected a channel mismatch, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert_eq!(maildir_files(dir.path(), "new"), Vec::<PathBuf>::new());
}

//! Measures how many messages per second the email channel delivers to an SMTP server.
//!
//! ```text
//! cargo run --release -p tact-delivery --example bench_smtp -- \
//!     --port 2525 --messages 2000 --size 2048 --connections 1 [--no-nodelay] [--no-pipelining]
//! ```
//!
//! The server must run on 127.0.0.1 (for example postfix's `smtp-sink`). Each message is
//! built from an approval that `tact_domain::decide` returns, as in production, and is about
//! `--size` bytes long. The program prints one line of `key=value` figures.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;
use std::time::Instant;
use tact_delivery::{
    Channel, EmailChannel, MessageConfig, Outgoing, Recipient, Rendered, SmtpConfig, TlsMode,
    build_email,
};
use tact_domain::{
    Content, Customer, CustomerId, CustomerView, Decision, DeliveryId, Policy, Preferences,
    Proposal, Purpose, decide,
};

struct Options {
    port: u16,
    messages: usize,
    size: usize,
    connections: usize,
    nodelay: bool,
    pipelining: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        messages: 1000,
        size: 2048,
        connections: 1,
        nodelay: true,
        pipelining: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-nodelay" {
            options.nodelay = false;
            continue;
        }
        if flag == "--no-pipelining" {
            options.pipelining = false;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .map_err(|_| format!("{flag} needs a whole number, not {value:?}"))?;
        match flag.as_str() {
            "--port" => options.port = u16::try_from(number).map_err(|e| e.to_string())?,
            "--messages" => options.messages = number,
            "--size" => options.size = number,
            "--connections" => options.connections = number.max(1),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.port == 0 {
        return Err("--port is required".into());
    }
    Ok(options)
}

/// Monday 2 March 2026, 10:00 UTC: inside the default quiet hours in London.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn message_config() -> MessageConfig {
    MessageConfig {
        from: "Acme News <news@acme.example>".into(),
        reply_to: None,
        base_url: "https://tact.acme.example".into(),
        unsubscribe_mailto: "unsubscribe@acme.example".into(),
        secret: "benchmark secret of at least thirty-two bytes".into(),
        message_id_domain: "mail.acme.example".into(),
        bounce_domain: Some("bounce.acme.example".into()),
    }
}

fn outgoing(id: i64, body: &str) -> Outgoing {
    let customer = Customer {
        id: CustomerId(id),
        external_id: format!("ext-{id}"),
        name: Some(format!("Customer {id}")),
        email: Some(format!("customer{id}@example.com")),
        phone: None,
        time_zone: chrono_tz::Europe::London,
        locale: "en-GB".into(),
        account: None,
        bucket: None,
    };
    let mut proposal = Proposal::new(customer.id, tact_domain::Channel::EMAIL, Purpose::Value);
    proposal.content = Some(Content {
        greeting: Some(format!("Hello Customer {id},")),
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
        panic!("the domain did not approve customer {id}");
    };
    let content = Rendered {
        subject: "Three tips for spring".into(),
        text: body.to_owned(),
        html: None,
    };
    let recipient = Recipient::email(&customer).unwrap();
    Outgoing::new(approval, DeliveryId(id), recipient, content).unwrap()
}

/// A body of 72-character lines that makes the whole message about `size` bytes.
fn body_for(size: usize) -> String {
    let probe = outgoing(0, "");
    let ready = probe.ready(&tact_domain::Channel::EMAIL, now()).unwrap();
    let overhead = build_email(&message_config(), ready)
        .unwrap()
        .formatted()
        .len();
    let line = format!("{}\n", "x".repeat(72));
    let lines = size.saturating_sub(overhead) / (line.len() + 1);
    line.repeat(lines.max(1))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bench_smtp: {message}");
            std::process::exit(2);
        }
    };
    let mut config = SmtpConfig::new("127.0.0.1", options.port, TlsMode::None);
    config.pool_size = options.connections;
    config.tcp_nodelay = options.nodelay;
    config.pipelining = options.pipelining;
    config.hello_name = Some("bench.test".into());
    let channel = Arc::new(EmailChannel::new(config, &message_config()).unwrap());
    let body = body_for(options.size);
    let messages: Arc<Vec<Outgoing>> = Arc::new(
        (1..=options.messages as i64)
            .map(|id| outgoing(id, &body))
            .collect(),
    );
    let ready = messages[0]
        .ready(&tact_domain::Channel::EMAIL, now())
        .unwrap();
    let size = build_email(&message_config(), ready)
        .unwrap()
        .formatted()
        .len();

    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.connections {
        let channel = Arc::clone(&channel);
        let messages = Arc::clone(&messages);
        let step = options.connections;
        workers.push(tokio::spawn(async move {
            let mut failed = 0usize;
            for message in messages.iter().skip(worker).step_by(step) {
                if channel.send(message, now()).await.is_err() {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for worker in workers {
        failed += worker.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    channel.close().await;

    println!(
        "tact messages={} failed={failed} size={size} connections={} nodelay={} \
         pipelining={} seconds={seconds:.3} rate={:.0}",
        options.messages,
        options.connections,
        options.nodelay,
        options.pipelining,
        options.messages as f64 / seconds
    );
}

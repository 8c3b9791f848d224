//! The preference centre and the unsubscribe confirmation, driven in headless Chromium
//! through chromedriver, both started by the test on 127.0.0.1.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tact_delivery::token::LinkPurpose;
use tact_domain::{Actor, Bucket, Channel, ConsentChange, ConsentSource, Topic};
use tempfile::TempDir;

use crate::harness::Workspace;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver with a headless Chromium session; both end when dropped.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: TempDir,
}

impl Browser {
    async fn start() -> Browser {
        // Both rustls back ends are in the dependency graph, so name one; chromedriver is
        // reached over plain HTTP anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{CHROMEDRIVER} does not start ({error}); install chromium-driver")
            });

        let profile = tempfile::tempdir().unwrap();
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);

        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let builder = ClientBuilder::rustls()
                .expect("TLS setup")
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match builder {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    panic!("chromedriver did not answer: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open session")
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preference_centre_saves_choices() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let server = workspace.serve();
    let token = workspace.token(LinkPurpose::Preferences, "c1");
    let browser = Browser::start().await;
    let client = browser.client();

    client
        .goto(&format!("{}/preferences/{token}", server.url))
        .await
        .unwrap();
    let legend = client
        .find(Locator::Css("fieldset legend"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .find(Locator::Css("label[for=frequency-quarterly]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("topic-offers"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("channel-sms"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .execute(
            "document.getElementById('window-start').value = '09:00';\
             document.getElementById('window-end').value = '17:30';",
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Id("pause-3"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = client
        .wait()
        .for_element(Locator::Id("saved"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let quarterly_checked = client
        .find(Locator::Id("frequency-quarterly"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    browser.close().await;

    assert_eq!(legend, "How often may we write to you?");
    assert_eq!(notice, "Your preferences are saved.");
    assert_eq!(quarterly_checked.as_deref(), Some("true"));
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    let preferences = store.preferences(customer.id).unwrap();
    assert_eq!(preferences.bucket, Some(Bucket::Quarterly));
    assert!(
        preferences
            .topic_opt_outs
            .contains_key(&Topic::parse("offers").unwrap())
    );
    assert!(preferences.channel_opt_outs.contains_key(&Channel::SMS));
    let window = preferences.window.unwrap();
    assert_eq!(
        (window.start.to_string(), window.end.to_string()),
        ("09:00:00".into(), "17:30:00".into())
    );
    assert!(preferences.paused_until.is_some());
    assert_eq!(preferences.marketing_opt_out, None);

    let log = store.consent_log(customer.id).unwrap();
    let changes: Vec<&ConsentChange> = log.iter().map(|event| &event.change).collect();
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert_eq!(
        changes[0],
        &ConsentChange::Bucket {
            bucket: Some(Bucket::Quarterly)
        }
    );
    assert_eq!(
        changes[1],
        &ConsentChange::Topic {
            topic: Topic::parse("offers").unwrap(),
            allowed: false
        }
    );
    assert_eq!(
        changes[2],
        &ConsentChange::Channel {
            channel: Channel::SMS,
            allowed: false
        }
    );
    for event in &log {
        assert_eq!(event.mark.actor, Actor::Customer);
        assert_eq!(event.mark.source, ConsentSource::PreferenceCentre);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribe_confirm_button_works() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let server = workspace.serve();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c2");
    let browser = Browser::start().await;
    let client = browser.client();

    client
        .goto(&format!("{}/unsubscribe/{token}", server.url))
        .await
        .unwrap();
    let store = workspace.store();
    let customer = store.customer_by_external_id("c2").unwrap();
    let before = store.preferences(customer.id).unwrap().marketing_opt_out;
    client
        .find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = client
        .wait()
        .for_element(Locator::Css("p[role=status]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.close().await;

    assert_eq!(before, None);
    assert!(status.starts_with("You are unsubscribed."), "{status}");
    let mark = store
        .preferences(customer.id)
        .unwrap()
        .marketing_opt_out
        .unwrap();
    assert_eq!(mark.actor, Actor::Customer);
    assert_eq!(mark.source, ConsentSource::Link);
    let log = store.consent_log(customer.id).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].change, ConsentChange::Marketing { allowed: false });
}

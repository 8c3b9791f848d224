//! Campaign messages: the stored template, rendering per customer, and the proposal the
//! rules decide.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tact_delivery::{Composer, Rendered, Template, TemplateData, TemplateSource};
use tact_domain::{CampaignId, Content, Customer, Proposal};
use tact_storage::{Campaign, Store};

/// The contents of a campaign's `template` column: the source and the imported fields that
/// were known when the campaign was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Subject, text and HTML in minijinja syntax.
    #[serde(flatten)]
    pub source: TemplateSource,
    /// Imported field names the template may use.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl StoredTemplate {
    /// Compiles the template against its known fields.
    ///
    /// # Errors
    ///
    /// The delivery crate's template error, naming the part and the unknown field.
    pub fn compile(&self) -> Result<Template, tact_delivery::Error> {
        Template::compile(&self.source, &self.fields)
    }
}

/// Builds messages: compiled templates per campaign and the signed links of each customer.
#[derive(Debug)]
pub struct Mailer {
    composer: Composer,
    templates: Mutex<HashMap<CampaignId, Arc<Template>>>,
}

impl Mailer {
    /// Creates a mailer that signs links with `composer`'s key.
    pub fn new(composer: Composer) -> Mailer {
        Mailer {
            composer,
            templates: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the campaign's compiled template, compiled once per process.
    ///
    /// # Errors
    ///
    /// Fails when the stored template does not parse or compile.
    pub fn template(&self, campaign: &Campaign) -> anyhow::Result<Arc<Template>> {
        let mut templates = self
            .templates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(template) = templates.get(&campaign.id) {
            return Ok(template.clone());
        }
        let stored: StoredTemplate = serde_json::from_str(&campaign.template)
            .with_context(|| format!("campaign {} has an unreadable template", campaign.id))?;
        let template = Arc::new(
            stored
                .compile()
                .with_context(|| format!("campaign {} has an invalid template", campaign.id))?,
        );
        templates.insert(campaign.id, template.clone());
        Ok(template)
    }

    /// Renders the campaign's message for one customer, with links issued at `now`, and
    /// describes its content for the rules as [`Mailer::content`] does.
    ///
    /// # Errors
    ///
    /// Fails when the customer lacks a field the template uses, or the store fails.
    pub fn render_with_content(
        &self,
        store: &Store,
        campaign: &Campaign,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Rendered, Content)> {
        let fields = store.customer_fields(customer.id)?;
        self.render_fields(campaign, customer, fields, now)
    }

    /// Renders as [`Mailer::render_with_content`] does, with the customer's imported
    /// `fields` already read.
    ///
    /// # Errors
    ///
    /// Fails when the customer lacks a field the template uses.
    pub fn render_fields(
        &self,
        campaign: &Campaign,
        customer: &Customer,
        fields: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Rendered, Content)> {
        let template = self.template(campaign)?;
        let links = self.composer.links(customer.id, now);
        let data = template_data(
            customer,
            fields,
            &links.unsubscribe_url,
            &links.preferences_url,
        );
        let rendered = template.render(&data)?;
        let mut text = std::borrow::Cow::Borrowed(rendered.text.as_str());
        for url in [&links.unsubscribe_url, &links.preferences_url] {
            if text.contains(url.as_str()) {
                text = text.replace(url.as_str(), "").into();
            }
        }
        let content = content_of(&text, customer, &template);
        Ok((rendered, content))
    }

    /// Describes the campaign's message to one customer for the content rules, rendering
    /// only its text part, with the links left empty.
    ///
    /// The rules read the greeting and whether the text names the customer, and neither
    /// depends on the links. [`Mailer::render_with_content`] removes the links from the text
    /// before it describes it, so both describe the same message alike, and a name that
    /// happens to appear inside a link's token does not count.
    ///
    /// # Errors
    ///
    /// As [`Mailer::render_with_content`].
    pub fn content(
        &self,
        store: &Store,
        campaign: &Campaign,
        customer: &Customer,
    ) -> anyhow::Result<Content> {
        self.content_with(campaign, customer, store.customer_fields(customer.id)?)
    }

    /// Describes the content as [`Mailer::content`] does, with the customer's imported
    /// `fields` already read.
    ///
    /// # Errors
    ///
    /// As [`Mailer::render_fields`].
    pub fn content_with(
        &self,
        campaign: &Campaign,
        customer: &Customer,
        fields: Map<String, Value>,
    ) -> anyhow::Result<Content> {
        let template = self.template(campaign)?;
        let data = template_data(customer, fields, "", "");
        let text = template.render_text(&data)?;
        Ok(content_of(&text, customer, &template))
    }
}

fn template_data(
    customer: &Customer,
    fields: Map<String, Value>,
    unsubscribe_url: &str,
    preferences_url: &str,
) -> TemplateData {
    TemplateData {
        name: customer.name.clone(),
        email: customer.email.clone(),
        account: customer.account.map(|account| account.to_string()),
        fields,
        unsubscribe_url: unsubscribe_url.to_owned(),
        preferences_url: preferences_url.to_owned(),
    }
}

/// Describes the content for the content rules from the message's text without its links:
/// the first line as the greeting, and whether the message mentions the customer's name or
/// uses an imported field.
fn content_of(text: &str, customer: &Customer, template: &Template) -> Content {
    let greeting = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned);
    let names_customer = customer
        .name
        .as_deref()
        .is_some_and(|name| !name.is_empty() && text.contains(name));
    let uses_fields = template.fields().next().is_some();
    Content {
        greeting,
        personalised: names_customer || uses_fields,
    }
}

/// Builds the proposal for one campaign message to one customer.
pub fn campaign_proposal(
    campaign: &Campaign,
    customer: &Customer,
    content: Option<Content>,
) -> Proposal {
    let mut proposal = Proposal::new(customer.id, campaign.channel.clone(), campaign.purpose);
    proposal.topic = campaign.topic.clone();
    proposal.campaign = Some(campaign.id);
    proposal.priority = campaign.priority;
    proposal.offer = campaign.offer;
    proposal.content = content;
    proposal.relevant_until = campaign.relevant_until;
    proposal
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tact_delivery::MessageConfig;
    use tact_domain::{Channel, Purpose};
    use tact_storage::{Audience, NewCampaign, NewCustomer};

    /// A mailer with fixed test settings and link key.
    pub(in crate::scheduler) fn mailer() -> Mailer {
        let config = MessageConfig {
            from: "News <news@example.com>".to_owned(),
            reply_to: None,
            base_url: "https://example.com".to_owned(),
            unsubscribe_mailto: "unsubscribe@example.com".to_owned(),
            secret: "0123456789abcdef0123456789abcdef".to_owned(),
            message_id_domain: "example.com".to_owned(),
            bounce_domain: None,
        };
        Mailer::new(Composer::new(&config).unwrap())
    }

    /// Creates a value campaign on email for everyone in `store`, created at the Unix epoch
    /// and sent with `template`, and returns it.
    pub(in crate::scheduler) fn value_campaign(
        store: &Store,
        template: &StoredTemplate,
    ) -> Campaign {
        let campaign = store
            .create_campaign(&NewCampaign {
                name: "news".to_owned(),
                channel: Channel::EMAIL,
                purpose: Purpose::Value,
                topic: None,
                audience: Audience::All,
                priority: 0,
                offer: false,
                template: serde_json::to_string(template).unwrap(),
                send_at: None,
                relevant_until: None,
                created_at: DateTime::UNIX_EPOCH,
            })
            .unwrap();
        store.campaign(campaign).unwrap()
    }

    /// Returns a store with one customer called `name` and one campaign whose text is `text`.
    fn store_with(name: &str, text: &str) -> (Store, Campaign, Customer) {
        let store = Store::open_in_memory().unwrap();
        let mut customer = NewCustomer::new("c1");
        customer.name = Some(name.to_owned());
        customer.email = Some("c1@example.org".to_owned());
        let id = store.upsert_customer(&customer).unwrap();
        let template = StoredTemplate {
            source: TemplateSource {
                subject: "News for {{ name }}".to_owned(),
                text: text.to_owned(),
                html: Some("<p>{{ unsubscribe_url }}</p>".to_owned()),
            },
            fields: Vec::new(),
        };
        let campaign = value_campaign(&store, &template);
        let customer = store.customer(id).unwrap();
        (store, campaign, customer)
    }

    #[test]
    fn planning_and_sending_describe_the_same_content() {
        let (store, campaign, customer) = store_with(
            "Ann Lee",
            "\n  Hello {{ name }},  \nLeave: {{ unsubscribe_url }}\n",
        );
        let mailer = mailer();
        let now = DateTime::UNIX_EPOCH;

        let planned = mailer.content(&store, &campaign, &customer).unwrap();
        let (rendered, sent) = mailer
            .render_with_content(&store, &campaign, &customer, now)
            .unwrap();

        let expected = Content {
            greeting: Some("Hello Ann Lee,".to_owned()),
            personalised: true,
        };
        assert_eq!(planned, expected);
        assert_eq!(sent, expected);
        assert!(rendered.text.contains("https://example.com/unsubscribe/"));
        assert_eq!(rendered.subject, "News for Ann Lee");
    }

    #[test]
    fn content_ignores_name_inside_link() {
        // The customer's name appears in the message only as part of the links.
        let (store, campaign, customer) = store_with("example", "Hi there\n{{ unsubscribe_url }}");
        let mailer = mailer();

        let planned = mailer.content(&store, &campaign, &customer).unwrap();
        let (_, sent) = mailer
            .render_with_content(&store, &campaign, &customer, DateTime::UNIX_EPOCH)
            .unwrap();

        let expected = Content {
            greeting: Some("Hi there".to_owned()),
            personalised: false,
        };
        assert_eq!(planned, expected);
        assert_eq!(sent, expected);
    }

    #[test]
    fn missing_fields_fail_the_text_alone_too() {
        let (store, mut campaign, customer) = store_with("Ann", "Hello {{ name }}");
        let template = StoredTemplate {
            source: TemplateSource {
                subject: "Your {{ plan }} plan".to_owned(),
                text: "Hello {{ name }}".to_owned(),
                html: None,
            },
            fields: vec!["plan".to_owned()],
        };
        campaign.template = serde_json::to_string(&template).unwrap();

        let error = mailer().content(&store, &campaign, &customer).unwrap_err();

        assert_eq!(
            format!("{error:#}"),
            "customer has no value for field `plan`, which the template uses"
        );
    }
}

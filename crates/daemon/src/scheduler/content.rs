//! Campaign messages: the stored template, rendering per customer, and the proposal the
//! rules decide.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

    /// Renders the campaign's message for one customer, with links issued at `now`.
    ///
    /// # Errors
    ///
    /// Fails when the customer lacks a field the template uses, or the store fails.
    pub fn render(
        &self,
        store: &Store,
        campaign: &Campaign,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        let template = self.template(campaign)?;
        let fields = store.customer_fields(customer.id)?;
        let links = self.composer.links(customer.id, now);
        let data = TemplateData {
            name: customer.name.clone(),
            email: customer.email.clone(),
            account: customer.account.map(|account| account.to_string()),
            fields,
            unsubscribe_url: links.unsubscribe_url,
            preferences_url: links.preferences_url,
        };
        Ok(template.render(&data)?)
    }
}

/// Describes the content for the content rules: the first line of the text as the greeting, and whether
/// the message mentions the customer's name or uses an imported field.
pub fn content_of(rendered: &Rendered, customer: &Customer, template: &Template) -> Content {
    let greeting = rendered
        .text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned);
    let names_customer = customer
        .name
        .as_deref()
        .is_some_and(|name| !name.is_empty() && rendered.text.contains(name));
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

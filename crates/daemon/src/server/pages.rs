//! The pages customers open from links in messages: one-click unsubscribe and the
//! preference centre. Plain server-rendered HTML that works without JavaScript.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Months, NaiveTime, Utc};
use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;
use tact_delivery::token::LinkPurpose;
use tact_domain::{
    Actor, Bucket, Channel, ConsentChange, ConsentMark, ConsentSource, Customer, CustomerId,
    LocalWindow, Preferences, Topic,
};

use super::{ApiError, AppState};
use crate::ops;

/// Channels offered in the preference centre besides those the policy names.
const STANDARD_CHANNELS: [(&str, &str); 3] = [
    ("email", "Email"),
    ("phone", "Phone calls"),
    ("sms", "Text messages"),
];

/// Pauses offered, in calendar months.
const PAUSE_MONTHS: [u32; 3] = [1, 3, 6];

/// Loads the page templates, with HTML auto-escaping.
pub fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| AutoEscape::Html);
    let templates = [
        ("layout.html", include_str!("../../templates/layout.html")),
        (
            "unsubscribe.html",
            include_str!("../../templates/unsubscribe.html"),
        ),
        (
            "preferences.html",
            include_str!("../../templates/preferences.html"),
        ),
        (
            "not_found.html",
            include_str!("../../templates/not_found.html"),
        ),
    ];
    for (name, source) in templates {
        if let Err(error) = environment.add_template(name, source) {
            // The templates are part of the binary, so this is caught by the page tests.
            tracing::error!(template = name, error = %error, "invalid page template");
        }
    }
    environment
}

/// Builds the routes of the pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences_page).post(save_preferences),
        )
}

/// A page response; errors render as a page too, never as JSON.
enum PageError {
    NotFound,
    Invalid(String),
    Internal(ApiError),
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::NotFound(_) => PageError::NotFound,
            other => PageError::Internal(other),
        }
    }
}

fn render(
    state: &AppState,
    name: &str,
    values: minijinja::Value,
) -> Result<Html<String>, PageError> {
    state
        .inner
        .pages
        .get_template(name)
        .and_then(|template| template.render(values))
        .map(Html)
        .map_err(|error| PageError::Internal(ApiError::Internal(error.into())))
}

/// Headers of every page. The URL carries the customer's token, so no page is cached, sent
/// as a referrer or framed by another site, and the pages load nothing from elsewhere.
const PAGE_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
];

fn respond(state: &AppState, result: Result<Response, PageError>) -> Response {
    let mut response = page_response(state, result);
    let headers = response.headers_mut();
    for (name, value) in PAGE_HEADERS {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}

fn page_response(state: &AppState, result: Result<Response, PageError>) -> Response {
    match result {
        Ok(response) => response,
        Err(PageError::NotFound) => {
            let page = render(state, "not_found.html", context! {})
                .map(IntoResponse::into_response)
                .unwrap_or_else(|_| "link not valid".into_response());
            (StatusCode::NOT_FOUND, page).into_response()
        }
        Err(PageError::Invalid(message)) => (StatusCode::BAD_REQUEST, message).into_response(),
        Err(PageError::Internal(error)) => error.into_response(),
    }
}

/// Checks a link token; any failure looks the same to the visitor: 404.
fn verify(state: &AppState, token: &str, purpose: LinkPurpose) -> Result<CustomerId, PageError> {
    let max_age = state.settings().config.links.max_age.duration();
    state
        .inner
        .links
        .verify(token, purpose, state.now(), max_age)
        .map_err(|error| {
            tracing::debug!(error = %error, "rejected a link token");
            PageError::NotFound
        })
}

fn link(state: &AppState, path: &str, customer: CustomerId, purpose: LinkPurpose) -> String {
    let token = state.inner.links.sign(purpose, customer, state.now());
    let base = state
        .settings()
        .config
        .http
        .public_url
        .trim_end_matches('/');
    format!("{base}/{path}/{token}")
}

async fn unsubscribe_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let customer = verify(&state, &token, LinkPurpose::Unsubscribe)?;
        // A genuine token for a customer that no longer exists is as invalid as a forged one.
        state
            .with_store(move |store| Ok(store.customer(customer)?))
            .await?;
        let page = render(
            &state,
            "unsubscribe.html",
            context! {
                done => false,
                action => format!("/unsubscribe/{token}"),
                preferences_url => link(&state, "preferences", customer, LinkPurpose::Preferences),
            },
        )?;
        Ok(page.into_response())
    }
    .await;
    respond(&state, result)
}

/// One-click unsubscribe (RFC 8058): a POST whose form body contains
/// `List-Unsubscribe=One-Click` opts the customer out of all marketing. Repeating it
/// changes nothing.
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Bytes,
) -> Response {
    let result = async {
        let customer = verify(&state, &token, LinkPurpose::Unsubscribe)?;
        if !is_one_click(&form) {
            return Err(PageError::Invalid(
                "expected the form field List-Unsubscribe=One-Click\n".to_owned(),
            ));
        }
        let now = state.now();
        state
            .with_store(move |store| Ok(ops::unsubscribe_from_marketing(store, customer, now)?))
            .await?;
        tracing::info!(customer.id = customer.0, "customer unsubscribed");
        let page = render(
            &state,
            "unsubscribe.html",
            context! {
                done => true,
                preferences_url => link(&state, "preferences", customer, LinkPurpose::Preferences),
            },
        )?;
        Ok(page.into_response())
    }
    .await;
    respond(&state, result)
}

/// Checks for the RFC 8058 field `List-Unsubscribe=One-Click`, sent either as
/// `application/x-www-form-urlencoded` or as a `multipart/form-data` part.
fn is_one_click(body: &[u8]) -> bool {
    let url_encoded = form_urlencoded::parse(body)
        .any(|(key, value)| key == "List-Unsubscribe" && value == "One-Click");
    if url_encoded {
        return true;
    }
    // A multipart part is a header block naming the field, an empty line, then the value.
    let text = String::from_utf8_lossy(body);
    text.split("name=\"List-Unsubscribe\"").skip(1).any(|part| {
        part.split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .is_some_and(|(_, rest)| rest.trim_start().starts_with("One-Click"))
    })
}

/// One option of a radio or checkbox group.
#[derive(Debug, Serialize)]
struct Choice {
    value: String,
    label: String,
    checked: bool,
}

fn choice(value: impl Into<String>, label: impl Into<String>, checked: bool) -> Choice {
    Choice {
        value: value.into(),
        label: label.into(),
        checked,
    }
}

fn bucket_label(bucket: Bucket) -> &'static str {
    match bucket {
        Bucket::Weekly => "About once a week",
        Bucket::Monthly => "About once a month",
        Bucket::Quarterly => "About once a quarter",
        Bucket::TwiceAYear => "Twice a year",
        Bucket::Yearly => "Once a year",
    }
}

fn offered_channels(state: &AppState) -> Vec<(String, String)> {
    let mut channels: Vec<(String, String)> = STANDARD_CHANNELS
        .iter()
        .map(|(name, label)| ((*name).to_owned(), (*label).to_owned()))
        .collect();
    let policy = &state.settings().policy;
    for channel in policy
        .channel_weights
        .keys()
        .chain(policy.channel_caps.keys())
    {
        if !channels.iter().any(|(name, _)| name == channel.as_str()) {
            channels.push((channel.as_str().to_owned(), channel.as_str().to_owned()));
        }
    }
    channels
}

/// Upper-cases the first letter, for labels made from names such as `newsletter`.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn format_time(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

fn preferences_context(
    state: &AppState,
    token: &str,
    customer: &Customer,
    preferences: &Preferences,
    saved: bool,
    error: Option<String>,
) -> minijinja::Value {
    let frequencies: Vec<Choice> = Bucket::ALL
        .into_iter()
        .map(|bucket| {
            choice(
                bucket.as_str(),
                bucket_label(bucket),
                preferences.bucket == Some(bucket),
            )
        })
        .collect();
    let topics: Vec<Choice> = state
        .settings()
        .policy
        .topics
        .iter()
        .map(|topic| {
            let label = capitalise(&topic.as_str().replace(['_', '-'], " "));
            choice(
                topic.as_str(),
                label,
                !preferences.topic_opt_outs.contains_key(topic),
            )
        })
        .collect();
    let channels: Vec<Choice> = offered_channels(state)
        .into_iter()
        .map(|(name, label)| {
            let allowed = Channel::parse(&name)
                .map(|channel| !preferences.channel_opt_outs.contains_key(&channel))
                .unwrap_or(true);
            choice(name, label, allowed)
        })
        .collect();
    let now = state.now();
    let paused_until = preferences.paused_until.filter(|until| *until > now);
    let mut pauses = vec![choice("none", "No break", paused_until.is_none())];
    if let Some(until) = paused_until {
        let local = until.with_timezone(&customer.time_zone).format("%-d %B %Y");
        pauses.push(choice("keep", format!("Keep my break until {local}"), true));
    }
    for months in PAUSE_MONTHS {
        let label = if months == 1 {
            "1 month".to_owned()
        } else {
            format!("{months} months")
        };
        pauses.push(choice(
            months.to_string(),
            format!("A break of {label}"),
            false,
        ));
    }
    let window = preferences.window.as_ref();
    context! {
        action => format!("/preferences/{token}"),
        saved,
        error,
        frequencies,
        topics,
        channels,
        pauses,
        time_zone => customer.time_zone.name(),
        window_start => window.map(|w| format_time(w.start)).unwrap_or_default(),
        window_end => window.map(|w| format_time(w.end)).unwrap_or_default(),
        stop_marketing => preferences.marketing_opt_out.is_some(),
    }
}

async fn preferences_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let customer_id = verify(&state, &token, LinkPurpose::Preferences)?;
        let (customer, preferences) = state
            .with_store(move |store| {
                Ok((
                    store.customer(customer_id)?,
                    store.preferences(customer_id)?,
                ))
            })
            .await?;
        let values = preferences_context(&state, &token, &customer, &preferences, false, None);
        Ok(render(&state, "preferences.html", values)?.into_response())
    }
    .await;
    respond(&state, result)
}

/// The fields the preference form submitted.
#[derive(Debug, Default)]
struct PreferenceForm {
    frequency: Option<String>,
    topics: Vec<String>,
    channels: Vec<String>,
    window_start: String,
    window_end: String,
    pause: String,
    stop_marketing: bool,
}

impl PreferenceForm {
    fn parse(body: &[u8]) -> PreferenceForm {
        let mut form = PreferenceForm::default();
        for (key, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "frequency" => form.frequency = Some(value),
                "topic" => form.topics.push(value),
                "channel" => form.channels.push(value),
                "window_start" => form.window_start = value,
                "window_end" => form.window_end = value,
                "pause" => form.pause = value,
                "stop_marketing" => form.stop_marketing = value == "yes",
                _ => {}
            }
        }
        form
    }
}

/// Turns the submitted form into the consent changes that differ from `current`.
fn changes_from_form(
    form: &PreferenceForm,
    current: &Preferences,
    topics: &[Topic],
    channels: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Vec<ConsentChange>, String> {
    let mut changes = Vec::new();

    if let Some(frequency) = &form.frequency {
        let bucket =
            Bucket::parse(frequency).ok_or_else(|| format!("Unknown frequency {frequency:?}."))?;
        if current.bucket != Some(bucket) {
            changes.push(ConsentChange::Bucket {
                bucket: Some(bucket),
            });
        }
    }

    for topic in topics {
        let allowed = form.topics.iter().any(|chosen| chosen == topic.as_str());
        if allowed == current.topic_opt_outs.contains_key(topic) {
            changes.push(ConsentChange::Topic {
                topic: topic.clone(),
                allowed,
            });
        }
    }

    for (name, _) in channels {
        let Ok(channel) = Channel::parse(name) else {
            continue;
        };
        let allowed = form.channels.iter().any(|chosen| chosen == name);
        if allowed == current.channel_opt_outs.contains_key(&channel) {
            changes.push(ConsentChange::Channel { channel, allowed });
        }
    }

    let window = parse_window(&form.window_start, &form.window_end)?;
    if window != current.window {
        changes.push(ConsentChange::Window { window });
    }

    match form.pause.as_str() {
        "" | "keep" => {}
        "none" => {
            if current.paused_until.is_some_and(|until| until > now) {
                changes.push(ConsentChange::Pause { until: None });
            }
        }
        months => {
            let months: u32 = months
                .parse()
                .ok()
                .filter(|months| PAUSE_MONTHS.contains(months))
                .ok_or_else(|| format!("Unknown break length {months:?}."))?;
            let until = now.checked_add_months(Months::new(months));
            changes.push(ConsentChange::Pause { until });
        }
    }

    if form.stop_marketing != current.marketing_opt_out.is_some() {
        changes.push(ConsentChange::Marketing {
            allowed: !form.stop_marketing,
        });
    }
    Ok(changes)
}

fn parse_window(start: &str, end: &str) -> Result<Option<LocalWindow>, String> {
    if start.is_empty() && end.is_empty() {
        return Ok(None);
    }
    let parse = |text: &str, which: &str| {
        NaiveTime::parse_from_str(text, "%H:%M")
            .map_err(|_| format!("Enter the {which} time as hours and minutes, such as 09:00."))
    };
    let start = parse(start, "start")?;
    let end = parse(end, "end")?;
    if start == end {
        return Err("The start and end time must differ.".to_owned());
    }
    Ok(Some(LocalWindow {
        start,
        end,
        days: Vec::new(),
    }))
}

async fn save_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let customer_id = verify(&state, &token, LinkPurpose::Preferences)?;
        let form = PreferenceForm::parse(&body);
        let now = state.now();
        let topics = state.settings().policy.topics.clone();
        let channels = offered_channels(&state);
        let (customer, preferences, error) = state
            .with_store(move |store| {
                let customer = store.customer(customer_id)?;
                let current = store.preferences(customer_id)?;
                match changes_from_form(&form, &current, &topics, &channels, now) {
                    Ok(changes) => {
                        let mark = ConsentMark {
                            actor: Actor::Customer,
                            source: ConsentSource::PreferenceCentre,
                            at: now,
                        };
                        let saved = ops::apply_changes(store, customer_id, &changes, mark)?;
                        Ok((customer, saved, None))
                    }
                    Err(message) => Ok((customer, current, Some(message))),
                }
            })
            .await?;
        let saved = error.is_none();
        if saved {
            tracing::info!(customer.id = customer_id.0, "customer saved preferences");
        }
        let status = if saved {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let values = preferences_context(&state, &token, &customer, &preferences, saved, error);
        Ok((status, render(&state, "preferences.html", values)?).into_response())
    }
    .await;
    respond(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn channels() -> Vec<(String, String)> {
        vec![
            ("email".into(), "Email".into()),
            ("sms".into(), "Text".into()),
        ]
    }

    #[test]
    fn form_without_changes_changes_nothing() {
        let form = PreferenceForm::parse(b"topic=news&channel=email&channel=sms&pause=none");
        let topics = [Topic::parse("news").unwrap()];

        let changes =
            changes_from_form(&form, &Preferences::default(), &topics, &channels(), now());

        assert_eq!(changes.unwrap(), Vec::new());
    }

    #[test]
    fn form_collects_every_change() {
        let body = b"frequency=quarterly&channel=email&window_start=09%3A00&window_end=17%3A30\
                     &pause=3&stop_marketing=yes";
        let form = PreferenceForm::parse(body);
        let topics = [Topic::parse("news").unwrap()];

        let changes =
            changes_from_form(&form, &Preferences::default(), &topics, &channels(), now());

        let window = LocalWindow {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
            days: Vec::new(),
        };
        assert_eq!(
            changes.unwrap(),
            vec![
                ConsentChange::Bucket {
                    bucket: Some(Bucket::Quarterly)
                },
                ConsentChange::Topic {
                    topic: topics[0].clone(),
                    allowed: false
                },
                ConsentChange::Channel {
                    channel: Channel::SMS,
                    allowed: false
                },
                ConsentChange::Window {
                    window: Some(window)
                },
                ConsentChange::Pause {
                    until: Some(Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap())
                },
                ConsentChange::Marketing { allowed: false },
            ]
        );
    }

    #[test]
    fn form_rejects_half_window() {
        let form = PreferenceForm::parse(b"window_start=09%3A00");

        let error = changes_from_form(&form, &Preferences::default(), &[], &channels(), now());

        assert_eq!(
            error.unwrap_err(),
            "Enter the end time as hours and minutes, such as 09:00."
        );
    }

    #[test]
    fn one_click_accepts_both_encodings() {
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
                         One-Click\r\n--b--\r\n";

        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(multipart.as_bytes()));
        assert!(!is_one_click(b"List-Unsubscribe=Maybe"));
        assert!(!is_one_click(b""));
    }

    #[test]
    fn page_templates_compile() {
        let environment = environment();

        for name in [
            "layout.html",
            "unsubscribe.html",
            "preferences.html",
            "not_found.html",
        ] {
            assert!(environment.get_template(name).is_ok(), "{name}");
        }
    }
}

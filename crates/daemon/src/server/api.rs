//! The JSON API under `/api/v1`. Every route needs the bearer token.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tact_domain::{Actor, CampaignId, ConsentChange, ConsentMark, ConsentSource, Customer};
use tact_storage::{NewCustomer, Recorded, Store};

use super::{ApiError, AppState};
use crate::ops::{self, ContactInput, OpError, ProposalInput, SignalInput};

impl From<OpError> for ApiError {
    fn from(error: OpError) -> Self {
        match error {
            OpError::NotFound(what) => ApiError::NotFound(what),
            OpError::Invalid(message) => ApiError::BadRequest(message),
            OpError::Conflict(message) => ApiError::Conflict(message),
            OpError::Storage(error) => ApiError::Internal(error.into()),
        }
    }
}

impl From<tact_storage::Error> for ApiError {
    fn from(error: tact_storage::Error) -> Self {
        OpError::from(error).into()
    }
}

/// Builds the routes of the API, without the auth layer.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/decisions", post(create_decision))
        .route("/contacts", post(create_contact))
        .route("/signals", post(create_signal))
        .route(
            "/customers/{external_id}",
            get(get_customer).put(put_customer),
        )
        .route(
            "/customers/{external_id}/preferences",
            get(get_preferences).patch(patch_preferences),
        )
        .route("/campaigns/{id}", get(get_campaign))
}

/// Turns a JSON body rejection into a 422 whose message names the problem and what to send.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| ApiError::BadRequest(rejection_message(&rejection)))
}

/// Describes a rejected JSON body in the API's words instead of the framework's.
fn rejection_message(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            format!("invalid request body: {detail}")
        }
        JsonRejection::JsonSyntaxError(_) => {
            let detail = text
                .strip_prefix("Failed to parse the request body as JSON: ")
                .unwrap_or(&text);
            format!("the request body is not valid JSON: {detail}")
        }
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON, sent with the header \
             Content-Type: application/json"
                .to_owned()
        }
        _ => text,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    customer: String,
    channel: String,
    purpose: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    offer: bool,
    #[serde(default)]
    duration_s: u32,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    record: bool,
}

async fn create_decision(
    State(state): State<AppState>,
    payload: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<tact_domain::Decision>, ApiError> {
    let request = body(payload)?;
    let requested_at = request.at;
    let policy = state.settings().policy.clone();
    let input = ProposalInput {
        customer: request.customer,
        channel: request.channel,
        purpose: request.purpose,
        topic: request.topic,
        offer: request.offer,
        duration_s: request.duration_s,
    };
    let record = request.record;
    let clock = state.clone();
    let decision = state
        .with_store(move |store| {
            // Read the clock under the store lock. Otherwise a request that gets the lock later
            // can carry an earlier time, and its view leaves out the contact booked before it.
            let at = requested_at.unwrap_or_else(|| clock.now());
            ops::decide(store, &policy, &input, at, record).map_err(Into::into)
        })
        .await?;
    Ok(Json(decision))
}

async fn create_contact(
    State(state): State<AppState>,
    payload: Result<Json<ContactInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input = body(payload)?;
    let now = state.now();
    let id = state
        .with_store(move |store| ops::record_contact(store, &input, now).map_err(Into::into))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn create_signal(
    State(state): State<AppState>,
    payload: Result<Json<SignalInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input = body(payload)?;
    let now = state.now();
    let recorded = state
        .with_store(move |store| ops::record_signal(store, &input, now).map_err(Into::into))
        .await?;
    let (status, new) = match recorded {
        Recorded::New => (StatusCode::CREATED, true),
        Recorded::Duplicate => (StatusCode::OK, false),
    };
    Ok((status, Json(json!({ "recorded": new }))))
}

fn customer_json(store: &Store, customer: &Customer) -> Result<Value, ApiError> {
    let fields = store.customer_fields(customer.id)?;
    let account = match customer.account {
        Some(account) => json!(account.0),
        None => Value::Null,
    };
    Ok(json!({
        "id": customer.id.0,
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "timezone": customer.time_zone.name(),
        "locale": customer.locale,
        "account": account,
        "bucket": customer.bucket,
        "fields": fields,
    }))
}

async fn get_customer(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let value = state
        .with_store(move |store| {
            let customer = ops::customer(store, &external_id)?;
            customer_json(store, &customer)
        })
        .await?;
    Ok(Json(value))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    fields: Map<String, Value>,
}

async fn put_customer(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
    payload: Result<Json<CustomerRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = body(payload)?;
    let mut customer = NewCustomer::new(external_id.clone());
    customer.name = request.name;
    customer.email = request.email;
    customer.phone = request.phone;
    customer.fields = request.fields;
    if let Some(zone) = request.timezone {
        customer.time_zone = zone.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "timezone: unknown time zone {zone:?}; use an IANA name such as Europe/Berlin"
            ))
        })?;
    }
    if let Some(locale) = request.locale {
        customer.locale = locale;
    }
    state
        .with_store(move |store| {
            let existed = store.customer_by_external_id(&external_id).is_ok();
            if let Some(account) = &request.account {
                customer.account = Some(store.upsert_account(account)?);
            }
            store.upsert_customer(&customer)?;
            let stored = ops::customer(store, &external_id)?;
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(customer_json(store, &stored)?)))
        })
        .await
}

async fn get_preferences(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let value = state
        .with_store(move |store| {
            let customer = ops::customer(store, &external_id)?;
            let preferences = store.preferences(customer.id)?;
            serde_json::to_value(preferences).map_err(|error| ApiError::Internal(error.into()))
        })
        .await?;
    Ok(Json(value))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ApiActor {
    Customer,
    Staff,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferencesPatch {
    #[serde(default = "default_actor")]
    actor: ApiActor,
    changes: Vec<ConsentChange>,
}

fn default_actor() -> ApiActor {
    ApiActor::Staff
}

async fn patch_preferences(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
    payload: Result<Json<PreferencesPatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let patch = body(payload)?;
    let mark = ConsentMark {
        actor: match patch.actor {
            ApiActor::Customer => Actor::Customer,
            ApiActor::Staff => Actor::Staff,
        },
        source: ConsentSource::Api,
        at: state.now(),
    };
    let value = state
        .with_store(move |store| {
            let customer = ops::customer(store, &external_id)?;
            let preferences = ops::apply_changes(store, customer.id, &patch.changes, mark)?;
            serde_json::to_value(preferences).map_err(|error| ApiError::Internal(error.into()))
        })
        .await?;
    Ok(Json(value))
}

async fn get_campaign(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::BadPath(format!(
            "invalid campaign id {id:?}: use the number that campaign create gave"
        ))
    })?;
    let value = state
        .with_store(move |store| {
            crate::commands::campaign::status_json(store, CampaignId(id)).map_err(Into::into)
        })
        .await?;
    Ok(Json(value))
}

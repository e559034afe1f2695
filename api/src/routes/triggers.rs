//! Triggers: `POST|GET /v1/triggers`, `DELETE /v1/triggers/{id}`. A trigger runs a
//! helper on the contact of each matching CRM event (e.g. "tag VIP applied" → score_it).

use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use crate::routes::account::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::team::Permission;
use mfh_processors::store::triggers::Trigger;
use mfh_schemas::CrmEventKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The triggers of `GET /v1/triggers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerList {
    /// The account's triggers.
    pub triggers: Vec<Trigger>,
}

/// The body of `POST /v1/triggers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// contact_created, contact_updated, contact_deleted, tag_applied or tag_removed.
    pub event: String,
    /// Only this connection's events (default: any of the account's).
    #[serde(default)]
    pub connection_id: Option<String>,
    /// For tag events: only this tag (id or name).
    #[serde(default)]
    pub tag: Option<String>,
    /// The helper to run.
    pub helper: String,
    /// Its config.
    #[serde(default)]
    pub config: Option<Value>,
}

fn field(f: &str, m: impl Into<String>) -> FieldError {
    FieldError {
        field: f.into(),
        message: m.into(),
    }
}

/// `POST /v1/triggers`: 201 with the trigger; the helper's config is validated now.
///
/// # Errors
/// 403 without `ManageConnections`; 422 with every field error (the helper's included).
#[utoipa::path(
    post,
    operation_id = "triggers_create",
    path = "/triggers",
    tag = "helpers",
    request_body = CreateTrigger,
    responses(
        (status = 201, description = "The trigger; its helper config was validated", body = Trigger),
        (status = 422, description = "An unknown event, helper or connection, or an invalid config (every problem listed)", body = crate::openapi::Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<CreateTrigger>,
) -> Result<(StatusCode, Json<Trigger>), ApiError> {
    caller.require(Permission::ManageConnections)?;
    let mut errors = Vec::new();
    let event = CrmEventKind::parse(body.event.trim()).filter(|k| *k != CrmEventKind::Other);
    if event.is_none() {
        errors.push(field(
            "event",
            "must be contact_created, contact_updated, contact_deleted, tag_applied or tag_removed",
        ));
    }
    let tag = body.tag.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if tag.is_some()
        && !matches!(
            event,
            Some(CrmEventKind::TagApplied | CrmEventKind::TagRemoved)
        )
    {
        errors.push(field("tag", "only tag events filter by tag"));
    }
    let config = body.config.unwrap_or_else(|| json!({}));
    match mfh_processors::helpers::registry::find(&body.helper) {
        None => errors.push(field("helper", format!("unknown helper {}", body.helper))),
        Some(h) => {
            if let Err(e) = h.build_json(&config) {
                errors.extend(e.errors.into_iter().map(|e| FieldError {
                    field: format!("config.{}", e.field),
                    message: e.message,
                }));
            }
        }
    }
    if let Some(c) = &body.connection_id
        && state
            .store
            .account_connection(&caller.account_id, c)
            .await?
            .is_none()
    {
        errors.push(field("connection_id", format!("no connection {c}")));
    }
    let Some(event) = event.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid {
            message: "invalid trigger".into(),
            errors,
        });
    };
    let t = Trigger {
        trigger_id: format!("trg_{}", uuid::Uuid::new_v4().simple()),
        account_id: caller.account_id.clone(),
        connection_id: body.connection_id,
        event,
        tag: tag.map(str::to_owned),
        helper: body.helper,
        config_json: config.to_string(),
        created_at: mfh_pipeline::now_millis(),
    };
    state.store.put_trigger(&t).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// `GET /v1/triggers`.
///
/// # Errors
/// 403 without `ReadData`.
#[utoipa::path(
    get,
    operation_id = "triggers_list",
    path = "/triggers",
    tag = "helpers",
    responses(
        (status = 200, description = "The account's triggers", body = TriggerList),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<TriggerList>, ApiError> {
    caller.require(Permission::ReadData)?;
    let triggers = state.store.triggers_of(&caller.account_id).await?;
    Ok(Json(TriggerList { triggers }))
}

/// `DELETE /v1/triggers/{id}`: 204.
///
/// # Errors
/// 404 when the account has no such trigger.
#[utoipa::path(
    delete,
    operation_id = "triggers_delete",
    path = "/triggers/{id}",
    tag = "helpers",
    params(("id" = String, Path, description = "Trigger id (trg_…)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such trigger in this account", body = crate::openapi::Problem),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageConnections)?;
    if !id.starts_with("trg_") || !state.store.delete_trigger(&caller.account_id, &id).await? {
        return Err(ApiError::NotFound(format!("trigger {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

//! Saved helpers: `POST|GET /v1/helpers`, `GET|PATCH|DELETE /v1/helpers/{id}`,
//! `POST /v1/helpers/{id}/copy` and `POST /v1/helpers/{id}/rotate-url`.
//!
//! A saved helper is a helper type with a name, a config and a CRM connection. Its
//! config is validated on every save with every problem listed, and its unset
//! `<outcome>_goal` settings are derived from its id ([`mfh_processors::helpers::goals`]).
//! Each has a secret run URL ([`super::run`]) that a CRM automation calls; the token is
//! stored as a hash (and sealed with the credentials key, so the URL can be shown again).

use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::routes::account::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::helpers::{FieldError, goals};
use mfh_processors::store::executions::{ExecutionQuery, ExecutionView};
use mfh_processors::store::helpers::{HelperFilter, HelperWriteError, SavedHelper};
use mfh_processors::store::team::Permission;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How many recent failures a helper's view lists.
const LAST_FAILURES: i32 = 5;

/// The body of `POST /v1/helpers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHelper {
    /// A name the user recognises, e.g. "Tag VIP buyers".
    pub name: String,
    /// The helper type (`GET /v1/helper-types`).
    pub helper: String,
    /// Its config.
    #[serde(default)]
    pub config: Option<Value>,
    /// The CRM connection it runs against (`sandbox` or a `conn_…`).
    pub connection_id: String,
    /// Whether its run URL runs it (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

const fn yes() -> bool {
    true
}

/// The body of `PATCH /v1/helpers/{id}`: the fields to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchHelper {
    /// A new name.
    pub name: Option<String>,
    /// A new config, replacing the old one.
    pub config: Option<Value>,
    /// Another connection.
    pub connection_id: Option<String>,
    /// Pause (false) or resume (true).
    pub enabled: Option<bool>,
}

/// Filters of `GET /v1/helpers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this helper type.
    pub helper: Option<String>,
    /// Only this connection.
    pub connection_id: Option<String>,
    /// Only enabled (true) or paused (false) helpers.
    pub enabled: Option<bool>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A saved helper as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HelperView {
    /// The helper.
    #[serde(flatten)]
    pub helper: SavedHelper,
    /// The URL a CRM automation calls (POST or GET, no headers needed); absent when it
    /// cannot be shown again (no credentials key configured: it was shown at creation).
    pub run_url: Option<String>,
    /// The API goal call names it can fire.
    pub goals: Vec<String>,
    /// Its newest failed executions (only on `GET /v1/helpers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failures: Option<Vec<FailureView>>,
}

/// A failed execution in a helper's view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailureView {
    /// The execution.
    pub execution_id: String,
    /// Its contact.
    pub contact_id: String,
    /// When it was requested, Unix ms.
    pub requested_at: i64,
    /// The error class.
    pub error_kind: Option<String>,
    /// What went wrong.
    pub error_message: Option<String>,
}

impl From<ExecutionView> for FailureView {
    fn from(e: ExecutionView) -> Self {
        Self {
            execution_id: e.execution_id,
            contact_id: e.contact_id,
            requested_at: e.requested_at,
            error_kind: e.error_kind,
            error_message: e.error_message,
        }
    }
}

fn field(f: &str, m: impl Into<String>) -> FieldError {
    FieldError::new(f, m)
}

/// A new run token for `helper_id`: the id, a dot and 256 random bits (base64url).
fn new_token(helper_id: &str) -> String {
    use base64::Engine;
    let secret: [u8; 32] = rand::random();
    format!(
        "{helper_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    )
}

fn seal_context(helper_id: &str) -> String {
    format!("run_token:{helper_id}")
}

/// The token's hash and, when a key is configured, its sealed form.
fn protect(state: &AppState, helper_id: &str, token: &str) -> (String, Option<String>) {
    let sealed = state
        .connectors
        .cipher()
        .and_then(|c| c.seal(token.as_bytes(), &seal_context(helper_id)).ok());
    (mfh_processors::store::api_keys::hash_key(token), sealed)
}

/// The absolute run URL of `token`.
#[must_use]
pub fn run_url(state: &AppState, token: &str) -> String {
    format!(
        "{}/v1/run/{token}",
        state.cfg.public_url.trim_end_matches('/')
    )
}

fn view(state: &AppState, h: SavedHelper, token: Option<&str>) -> HelperView {
    let shown = token.map(str::to_owned).or_else(|| {
        let sealed = h.token_sealed.as_deref()?;
        let plain = state
            .connectors
            .cipher()?
            .open(sealed, &seal_context(&h.helper_id))
            .ok()?;
        String::from_utf8(plain).ok()
    });
    HelperView {
        run_url: shown.map(|t| run_url(state, &t)),
        goals: goals::goal_names(&h.config),
        helper: h,
        last_failures: None,
    }
}

/// Checks a name, a type, a config (with its derived goals filled in) and a connection;
/// returns the config to store.
async fn checked(
    state: &AppState,
    account_id: &str,
    helper_id: &str,
    name: &str,
    helper: &str,
    config: Option<Value>,
    connection_id: &str,
) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    if name.trim().is_empty() || name.chars().count() > 200 {
        errors.push(field("name", "must be 1-200 characters"));
    }
    let mut config = config.unwrap_or_else(|| json!({}));
    match mfh_processors::helpers::find(helper) {
        None => errors.push(field(
            "helper",
            format!("unknown helper type {helper:?}; GET /v1/helper-types lists them"),
        )),
        Some(_) if !config.is_object() => errors.push(field("config", "must be an object")),
        Some(h) => {
            goals::fill_default_goals(h, &mut config, helper_id);
            if let Err(e) = h.build_json(&config) {
                errors.extend(
                    e.errors
                        .into_iter()
                        .map(|e| field(&format!("config.{}", e.field), e.message)),
                );
            }
        }
    }
    let known = mfh_processors::connectors::sandbox::is_sandbox(connection_id)
        || (!connection_id.is_empty()
            && connection_id.len() <= 256
            && state
                .store
                .account_connection(account_id, connection_id)
                .await?
                .is_some());
    if !known {
        errors.push(field(
            "connection_id",
            format!("no connection {connection_id:?} in this account (GET /v1/connections)"),
        ));
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ApiError::Invalid {
            message: "invalid helper".into(),
            errors,
        })
    }
}

fn write_error(e: HelperWriteError, helper_id: &str) -> ApiError {
    match e {
        HelperWriteError::NoSlot => {
            ApiError::Forbidden("every helper slot of the plan is in use".into())
        }
        HelperWriteError::NotFound => ApiError::NotFound(format!("helper {helper_id}")),
        HelperWriteError::Changed => ApiError::Conflict(format!(
            "helper {helper_id} changed meanwhile; read it again"
        )),
        HelperWriteError::Store(e) => e.into(),
    }
}

async fn save_new(
    state: &AppState,
    caller: &Caller,
    mut h: SavedHelper,
) -> Result<(StatusCode, Json<HelperView>), ApiError> {
    let account = state
        .store
        .account(&caller.account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {}", caller.account_id)))?;
    let slots = account.billing.limits().helpers.map(u64::from);
    let token = new_token(&h.helper_id);
    (h.token_hash, h.token_sealed) = protect(state, &h.helper_id, &token);
    match state.store.create_helper(&h, slots).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(view(state, h, Some(&token))))),
        Err(HelperWriteError::NoSlot) => {
            let refused = mfh_processors::billing::LimitExceeded {
                kind: mfh_processors::billing::LimitKind::Helpers,
                limit: slots.unwrap_or(0),
                plan: account.billing.plan,
                current: state.store.helper_slots_used(&caller.account_id).await?,
            };
            Err(ApiError::Forbidden(format!(
                "{refused}: delete a helper or upgrade"
            )))
        }
        Err(e) => Err(write_error(e, &h.helper_id)),
    }
}

fn new_helper_id() -> String {
    format!("hlp_{:016x}", rand::random::<u64>())
}

/// `POST /v1/helpers`: 201 with the helper and its run URL.
///
/// # Errors
/// 403 without `RunHelpers` or with every helper slot in use; 422 with every problem.
#[utoipa::path(
    post,
    operation_id = "helpers_create",
    path = "/helpers",
    tag = "helpers",
    request_body = CreateHelper,
    responses(
        (status = 201, description = "The helper, with its run URL", body = HelperView),
        (status = 403, description = "The role may not run helpers, or every helper slot of the plan is in use", body = crate::openapi::Problem),
        (status = 422, description = "Unknown helper type or connection, or an invalid config (every problem listed)", body = crate::openapi::Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<CreateHelper>,
) -> Result<(StatusCode, Json<HelperView>), ApiError> {
    caller.require(Permission::RunHelpers)?;
    let helper_id = new_helper_id();
    let config = checked(
        &state,
        &caller.account_id,
        &helper_id,
        &body.name,
        &body.helper,
        body.config,
        &body.connection_id,
    )
    .await?;
    let now = mfh_pipeline::now_millis();
    let h = SavedHelper {
        helper_id,
        account_id: caller.account_id.clone(),
        name: body.name.trim().to_owned(),
        helper: body.helper,
        config,
        connection_id: body.connection_id,
        enabled: body.enabled,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        execution_count: 0,
        failure_count: 0,
        last_executed_at: None,
        last_failed_at: None,
        token_hash: String::new(),
        token_sealed: None,
    };
    save_new(&state, &caller, h).await
}

async fn live(state: &AppState, caller: &Caller, id: &str) -> Result<SavedHelper, ApiError> {
    if !id.starts_with("hlp_") || id.len() > 64 {
        return Err(ApiError::NotFound(format!("helper {id}")));
    }
    state
        .store
        .account_helper(&caller.account_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("helper {id}")))
}

/// `GET /v1/helpers`: the account's helpers, newest first.
///
/// # Errors
/// 400 for a bad filter or cursor; 403 without `ReadData`.
#[utoipa::path(
    get,
    operation_id = "helpers_list",
    path = "/helpers",
    tag = "helpers",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of helpers, newest first", body = HelperPage),
        (status = 400, description = "A bad filter or cursor", body = crate::openapi::Problem),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<HelperPage>, ApiError> {
    caller.require(Permission::ReadData)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    let filter = HelperFilter {
        helper: q.helper.as_deref(),
        connection_id: q.connection_id.as_deref(),
        enabled: q.enabled,
    };
    let page = state
        .store
        .list_helpers(&caller.account_id, &filter, limit, q.cursor.as_deref())
        .await
        .map_err(bad_cursor)?;
    let items: Vec<HelperView> = page
        .items
        .into_iter()
        .map(|h| view(&state, h, None))
        .collect();
    Ok(Json(HelperPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// A page of `GET /v1/helpers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HelperPage {
    /// Newest first.
    pub items: Vec<HelperView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A cursor this API did not issue is the caller's mistake.
pub(crate) fn bad_cursor(e: mfh_processors::store::StoreError) -> ApiError {
    match e {
        mfh_processors::store::StoreError::Corrupt { message, .. }
            if message == "invalid cursor" =>
        {
            ApiError::BadRequest("invalid cursor".into())
        }
        e => e.into(),
    }
}

/// `GET /v1/helpers/{id}`: the helper with its run URL, goals, stats and last failures.
///
/// # Errors
/// 404 when the account has no such live helper.
#[utoipa::path(
    get,
    operation_id = "helpers_get_one",
    path = "/helpers/{id}",
    tag = "helpers",
    params(("id" = String, Path, description = "Saved helper id (hlp_…)")),
    responses(
        (status = 200, description = "The helper with its run URL, goals, counts and last failures", body = HelperView),
        (status = 404, description = "No such live helper in this account", body = crate::openapi::Problem),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<HelperView>, ApiError> {
    caller.require(Permission::ReadData)?;
    let h = live(&state, &caller, &id).await?;
    let failures = state
        .store
        .list_executions(
            &caller.account_id,
            &ExecutionQuery {
                helper_id: Some(&id),
                status: Some("failed"),
                ..ExecutionQuery::default()
            },
            LAST_FAILURES,
            None,
        )
        .await?;
    let mut v = view(&state, h, None);
    v.last_failures = Some(failures.items.into_iter().map(Into::into).collect());
    Ok(Json(v))
}

/// `PATCH /v1/helpers/{id}`: changes name, config, connection or enabled; the config is
/// validated as on create. The helper's state (rotations, counters) is kept.
///
/// # Errors
/// 404, 409 when it changed meanwhile, 422 with every problem.
#[utoipa::path(
    patch,
    operation_id = "helpers_patch",
    path = "/helpers/{id}",
    tag = "helpers",
    params(("id" = String, Path, description = "Saved helper id (hlp_…)")),
    request_body = PatchHelper,
    responses(
        (status = 200, description = "The changed helper", body = HelperView),
        (status = 404, description = "No such live helper in this account", body = crate::openapi::Problem),
        (status = 409, description = "It changed meanwhile; read it again", body = crate::openapi::Problem),
        (status = 422, description = "An invalid change (every problem listed)", body = crate::openapi::Problem),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<PatchHelper>,
) -> Result<Json<HelperView>, ApiError> {
    caller.require(Permission::RunHelpers)?;
    let mut h = live(&state, &caller, &id).await?;
    let previous = h.updated_at;
    if let Some(n) = body.name {
        h.name = n.trim().to_owned();
    }
    if let Some(c) = body.connection_id {
        h.connection_id = c;
    }
    if let Some(e) = body.enabled {
        h.enabled = e;
    }
    let config = body.config.unwrap_or_else(|| h.config.clone());
    h.config = checked(
        &state,
        &caller.account_id,
        &id,
        &h.name,
        &h.helper,
        Some(config),
        &h.connection_id,
    )
    .await?;
    h.updated_at = mfh_pipeline::now_millis().max(previous + 1);
    state
        .store
        .update_helper(&h, previous)
        .await
        .map_err(|e| write_error(e, &id))?;
    Ok(Json(view(&state, h, None)))
}

/// `DELETE /v1/helpers/{id}`: 204; gone from lists, its URL answers 410, its executions
/// stay, its slot is free.
///
/// # Errors
/// 404 when the account has no such live helper.
#[utoipa::path(
    delete,
    operation_id = "helpers_delete",
    path = "/helpers/{id}",
    tag = "helpers",
    params(("id" = String, Path, description = "Saved helper id (hlp_…)")),
    responses(
        (status = 204, description = "Deleted: its run URL answers 410, its executions stay"),
        (status = 404, description = "No such live helper in this account", body = crate::openapi::Problem),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::RunHelpers)?;
    live(&state, &caller, &id).await?;
    state
        .store
        .delete_helper(&caller.account_id, &id, mfh_pipeline::now_millis())
        .await
        .map_err(|e| write_error(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/helpers/{id}/copy`: 201 with a new helper of the same type, config and
/// connection, named "… (copy)", with its own URL, goals and state.
///
/// # Errors
/// 403 with every slot in use; 404.
#[utoipa::path(
    post,
    operation_id = "helpers_copy",
    path = "/helpers/{id}/copy",
    tag = "helpers",
    params(("id" = String, Path, description = "Saved helper id (hlp_…)")),
    responses(
        (status = 201, description = "The copy, with its own run URL", body = HelperView),
        (status = 403, description = "Every helper slot of the plan is in use", body = crate::openapi::Problem),
        (status = 404, description = "No such live helper in this account", body = crate::openapi::Problem),
    )
)]
pub async fn copy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<(StatusCode, Json<HelperView>), ApiError> {
    caller.require(Permission::RunHelpers)?;
    let src = live(&state, &caller, &id).await?;
    let helper_id = new_helper_id();
    let now = mfh_pipeline::now_millis();
    let mut config = src.config.clone();
    goals::rederive_goals(&mut config, &src.helper_id, &helper_id);
    let name: String = format!("{} (copy)", src.name).chars().take(200).collect();
    let h = SavedHelper {
        helper_id,
        name,
        config,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        execution_count: 0,
        failure_count: 0,
        last_executed_at: None,
        last_failed_at: None,
        token_hash: String::new(),
        token_sealed: None,
        ..src
    };
    save_new(&state, &caller, h).await
}

/// `POST /v1/helpers/{id}/rotate-url`: a new run URL; the old one answers 401 at once.
///
/// # Errors
/// 404.
#[utoipa::path(
    post,
    operation_id = "helpers_rotate_url",
    path = "/helpers/{id}/rotate-url",
    tag = "helpers",
    params(("id" = String, Path, description = "Saved helper id (hlp_…)")),
    responses(
        (status = 200, description = "The helper with its new run URL; the old one stops working", body = HelperView),
        (status = 404, description = "No such live helper in this account", body = crate::openapi::Problem),
    )
)]
pub async fn rotate_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<HelperView>, ApiError> {
    caller.require(Permission::RunHelpers)?;
    let mut h = live(&state, &caller, &id).await?;
    let token = new_token(&id);
    let (hash, sealed) = protect(&state, &id, &token);
    let now = mfh_pipeline::now_millis().max(h.updated_at + 1);
    state
        .store
        .rotate_helper_token(&caller.account_id, &id, &hash, sealed.as_deref(), now)
        .await
        .map_err(|e| write_error(e, &id))?;
    (h.token_hash, h.token_sealed, h.updated_at) = (hash, sealed, now);
    Ok(Json(view(&state, h, Some(&token))))
}

//! `POST /v1/executions`, `GET /v1/executions/{id}`, `GET /v1/executions`,
//! `POST /v1/executions/{id}/retry`; [`accept`] queues for every API path.

use crate::AppState;
use crate::auth::Account;
use crate::error::{ApiError, AppJson, AppPath, AppQuery};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mfh_processors::admission;
use mfh_processors::context::Scope;
use mfh_processors::helpers::FieldError;
use mfh_processors::router::{Rejection, Validated, validate};
use mfh_processors::store::api_keys::{Idempotency, IdempotencyClaim};
use mfh_processors::store::executions::{ExecutionPage, ExecutionQuery, ExecutionView};
use mfh_schemas::ExecutionRequested;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The body of `POST /v1/executions`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// Helper name.
    pub helper: String,
    /// Helper config.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// CRM connection.
    pub connection_id: String,
    /// Contact id in that CRM.
    pub contact_id: String,
    /// Optional trigger payload.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Query of `POST /v1/executions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// Return the changes without making them.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to an accepted execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The execution's id.
    pub execution_id: String,
    /// `queued`, or for a repeat of a finished request its final status.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Where to read the result.
    pub href: String,
}

pub(crate) fn invalid(r: Rejection) -> ApiError {
    match r {
        Rejection::InvalidConfig(e) => ApiError::Invalid {
            message: format!("invalid config for {}", e.helper),
            errors: e.errors,
        },
        Rejection::UnknownHelper(h) => ApiError::Invalid {
            message: format!("unknown helper {h:?}; GET /v1/helper-types lists them"),
            errors: vec![FieldError::new("helper", "unknown helper")],
        },
        other => ApiError::Invalid {
            message: other.to_string(),
            errors: vec![],
        },
    }
}

fn check_ids(body: &CreateExecution) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (field, v) in [
        ("connection_id", &body.connection_id),
        ("contact_id", &body.contact_id),
        ("helper", &body.helper),
    ] {
        if v.trim().is_empty() || v.len() > 256 || v.contains(':') {
            errors.push(FieldError::new(
                field,
                "must be 1-256 characters without ':'",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            message: "invalid request".into(),
            errors,
        })
    }
}

/// What a dry run would do: the helper ran against the contact, nothing was changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Always true.
    pub dry_run: bool,
    /// Helper type.
    pub helper: String,
    /// The contact it ran against.
    pub contact_id: String,
    /// Whether the helper succeeded.
    pub success: bool,
    /// Its summary.
    pub message: String,
    /// Its outputs.
    #[schema(value_type = Object)]
    pub output: serde_json::Map<String, serde_json::Value>,
    /// The changes it would make.
    pub changes: Vec<mfh_processors::helpers::Change>,
    /// The executions it would start after it.
    pub follow_ups: Vec<mfh_processors::helpers::FollowUp>,
}

/// Accepts an execution (202) or, with `?dry_run=true`, runs the helper without applying
/// its changes (200).
///
/// # Errors
/// 4xx for a bad request, 503 when the broker or store is down.
#[utoipa::path(
    post,
    operation_id = "executions_create",
    path = "/executions",
    tag = "executions",
    params(
        CreateQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Repeating a request with the same key returns the first execution (1-255 characters)"),
    ),
    request_body = CreateExecution,
    responses(
        (status = 202, description = "Queued, or a repeat of an earlier request", body = Accepted),
        (status = 200, description = "The dry run's result (`?dry_run=true`)", body = DryRun),
        (status = 404, description = "Unknown connection or contact (dry run)", body = crate::openapi::Problem),
        (status = 409, description = "The idempotency key was used for another request", body = crate::openapi::Problem),
        (status = 422, description = "Unknown helper, invalid config or ids", body = crate::openapi::Problem),
        (status = 503, description = "The broker or store is down; retry", body = crate::openapi::Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(Account(account)): Extension<Account>,
    AppQuery(q): AppQuery<CreateQuery>,
    headers: HeaderMap,
    AppJson(body): AppJson<CreateExecution>,
) -> Result<Response, ApiError> {
    check_ids(&body)?;
    if !body.config.is_object() {
        return Err(ApiError::Invalid {
            message: "config must be a JSON object".into(),
            errors: vec![FieldError::new("config", "must be an object")],
        });
    }
    let req = ExecutionRequested {
        execution_id: uuid::Uuid::now_v7().to_string(),
        account_id: account.clone(),
        contact_id: body.contact_id.clone(),
        connection_id: body.connection_id.clone(),
        helper: body.helper.clone(),
        config_json: body.config.to_string(),
        input_json: body.input.as_ref().map(ToString::to_string),
        requested_at: mfh_pipeline::now_millis(),
        source: "api".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    };
    let valid = validate(&req, state.max_chain_depth).map_err(invalid)?;
    if q.dry_run {
        return dry_run(&state, &req, valid).await;
    }
    let dedup = match headers.get("idempotency-key") {
        Some(key) => Some(Dedup {
            key: idempotency_key(key)?.to_owned(),
            fingerprint: hex::encode(Sha256::digest(
                serde_json::to_vec(&body).unwrap_or_default(),
            )),
            window: None,
        }),
        None => None,
    };
    accept(&state, req, None, dedup).await
}

/// An `Idempotency-Key` header's value.
pub(crate) fn idempotency_key(v: &axum::http::HeaderValue) -> Result<&str, ApiError> {
    v.to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1-255 visible ASCII characters".into())
        })
}

/// How a repeated request is recognised: the same key and fingerprint within the
/// window (forever without one) get the first execution.
pub(crate) struct Dedup {
    /// The key, unique in the account.
    pub key: String,
    /// What the request said; the same key with another fingerprint is a conflict.
    pub fingerprint: String,
    /// How long a delivery counts as a repeat.
    pub window: Option<std::time::Duration>,
}

/// Admits a validated request against its account's plan (403 naming the limit),
/// recognises a repeat, records it queued and produces it: the one way every API path
/// (REST, run URL, retry) queues an execution. Answers 202 with the execution id.
pub(crate) async fn accept(
    state: &AppState,
    mut req: ExecutionRequested,
    retry_of: Option<&str>,
    dedup: Option<Dedup>,
) -> Result<Response, ApiError> {
    // Decided here, with a clear 403, and counted here when the execution id is final:
    // always without an Idempotency-Key, and with one when its claim is new (the quiet
    // path). The record is then sealed and the router does not admit it again. A repeat
    // resolves to an earlier id below; it is checked here and counted (once) by the
    // router, like what direct producers write.
    let now = chrono::Utc::now();
    let meter = dedup.is_none();
    let admission_req = admission::Request {
        account_id: &req.account_id,
        execution_id: &req.execution_id,
        now,
    };
    // Usually one request: the count, the queued row and the idempotency claim in one
    // transaction. Should the claim be taken (a repeat), nothing is written, the repeat
    // is resolved below, and the router counts it.
    let claim = dedup.as_ref().map(|d| IdempotencyClaim {
        key: &d.key,
        fingerprint: &d.fingerprint,
        window: d.window,
    });
    let mut writes = vec![state.store.queued_put(&req, retry_of)?];
    if let Some(c) = &claim {
        writes.push(
            state
                .store
                .idempotency_claim(&req.account_id, &req.execution_id, c)?,
        );
    }
    let decision = admission::admit_writing(&state.store, admission_req, meter, writes).await?;
    let admitted = match decision {
        Ok(admitted) => admitted,
        Err(refusal) => return Err(ApiError::Forbidden(refusal.to_string())),
    };
    let counted = (meter || admitted.wrote).then(|| Counted {
        account_id: req.account_id.clone(),
        month: admission::month_of(now),
        execution_id: req.execution_id.clone(),
    });
    if let Some(alert) = &admitted.usage_alert {
        let topic = state.kafka.topics().notifications();
        let record = mfh_processors::billing_processor::notification_record(&req.account_id, alert);
        if let Err(e) = crate::produce::record(state, &topic, &req.account_id, &record).await {
            refund(state, counted.as_ref()).await;
            return Err(e);
        }
    }
    let queued = if admitted.wrote {
        Idempotency::New
    } else {
        match state.store.put_queued(&req, retry_of, claim).await {
            Ok(q) => q,
            Err(e) => {
                refund(state, counted.as_ref()).await;
                return Err(e.into());
            }
        }
    };
    match queued {
        Idempotency::New => {}
        Idempotency::Existing { fingerprint: f, .. }
            if dedup.as_ref().is_some_and(|d| d.fingerprint != f) =>
        {
            return Err(ApiError::Conflict(
                "Idempotency-Key was used for a different request".into(),
            ));
        }
        Idempotency::Existing { execution_id, .. } => {
            let prev = state
                .store
                .get_execution(&req.account_id, &execution_id)
                .await?;
            // A finished execution is the answer: producing it again would run a
            // redelivery whose result could replace the one the caller saw.
            // One that never reached the topic is not finished: the repeat queues it.
            let never_queued = prev
                .as_ref()
                .is_some_and(|p| p.error_kind.as_deref() == Some(NOT_QUEUED));
            match prev.as_ref().map(|p| p.status.as_str()) {
                Some("succeeded") => return Ok(accepted(execution_id, "succeeded")),
                Some("failed") if !never_queued => return Ok(accepted(execution_id, "failed")),
                _ => {}
            }
            // Otherwise produce again under the same id: a first attempt may have
            // stopped before producing, and a duplicate is absorbed by its id.
            if let Some(prev) = prev {
                req.requested_at = prev.requested_at;
            }
            req.execution_id = execution_id;
            state.store.put_queued(&req, retry_of, None).await?;
            if never_queued {
                state
                    .store
                    .mark_queued_again(&req.execution_id, NOT_QUEUED)
                    .await?;
            }
        }
    }
    if let Err(e) = produce(state, &req, counted.is_some()).await {
        // The caller hears 503 and may send it again; meanwhile the execution shows why
        // it is not running instead of `queued` forever, and is not billed. A produce
        // that timed out yet landed still runs (uncounted), and its result replaces
        // this mark.
        refund(state, counted.as_ref()).await;
        let reason = format!("accepted but not queued ({e}); send the request again");
        if let Err(mark) = state
            .store
            .mark_not_queued(
                &req.execution_id,
                mfh_pipeline::now_millis(),
                NOT_QUEUED,
                &reason,
            )
            .await
        {
            tracing::warn!(execution = %req.execution_id, error = %mark, "Could not mark an execution that was not queued.");
        }
        return Err(e);
    }
    Ok(accepted(req.execution_id, "queued"))
}

/// An execution the API counted against its account's month.
struct Counted {
    account_id: String,
    month: String,
    execution_id: String,
}

/// Takes back the count of an execution that will not run because the API could not
/// queue it; the caller hears 503 and may send it again.
async fn refund(state: &AppState, counted: Option<&Counted>) {
    let Some(c) = counted else { return };
    if let Err(e) = state
        .store
        .uncount_execution(&c.account_id, &c.month, &c.execution_id)
        .await
    {
        tracing::warn!(execution = %c.execution_id, error = %e, "Could not take back the count of an execution that was not queued.");
    }
}

/// The error kind of an execution the API accepted but could not produce.
const NOT_QUEUED: &str = "not_queued";

/// 202 naming the execution, its status and where to read it.
fn accepted(execution_id: String, status: &'static str) -> Response {
    let body = Accepted {
        href: format!("/v1/executions/{execution_id}"),
        execution_id,
        status,
    };
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// Produces the request; `sealed` when this API admitted and counted it.
async fn produce(state: &AppState, req: &ExecutionRequested, sealed: bool) -> Result<(), ApiError> {
    let topic = state.kafka.topics().requested();
    if sealed {
        crate::produce::admitted_record(state, &topic, &req.key(), req).await
    } else {
        crate::produce::record(state, &topic, &req.key(), req).await
    }
}

async fn dry_run(
    state: &AppState,
    req: &ExecutionRequested,
    valid: Validated,
) -> Result<Response, ApiError> {
    let conn = state
        .connectors
        .resolve(&req.account_id, &req.connection_id)
        .await
        .map_err(|e| match e {
            mfh_processors::connectors::CrmError::NotFound { object } => ApiError::NotFound(object),
            other => ApiError::Unavailable(other.to_string()),
        })?;
    let contact = conn
        .get_contact(&req.contact_id)
        .await
        .map_err(|e| match e {
            mfh_processors::connectors::CrmError::NotFound { object } => ApiError::NotFound(object),
            other => ApiError::Unavailable(other.to_string()),
        })?;
    let scope = Scope::new(&state.store, &state.files, req, &valid.instance);
    let overlay = scope.dry_run_state();
    let ctx = scope.ctx(
        req,
        valid.input.as_ref(),
        &state.http,
        conn.as_ref(),
        &state.vendors,
        &overlay,
        true,
    );
    let outcome = valid
        .step
        .run(&ctx, &contact)
        .await
        .map_err(|e| ApiError::Invalid {
            message: e.to_string(),
            errors: vec![],
        })?;
    let body = DryRun {
        dry_run: true,
        helper: req.helper.clone(),
        contact_id: req.contact_id.clone(),
        success: outcome.success,
        message: outcome.message,
        output: outcome.output,
        changes: outcome.changes,
        follow_ups: outcome.follow_ups,
    };
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// One execution of the caller's account.
///
/// # Errors
/// 404 when unknown or another account's.
#[utoipa::path(
    get,
    operation_id = "executions_get_one",
    path = "/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionView),
        (status = 404, description = "No such execution in this account", body = crate::openapi::Problem),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Extension(Account(account)): Extension<Account>,
    AppPath(id): AppPath<String>,
) -> Result<axum::Json<ExecutionView>, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound(format!("execution {id}")));
    }
    state
        .store
        .get_execution(&account, &id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound(format!("execution {id}")))
}

/// Query of the history listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this helper type.
    pub helper: Option<String>,
    /// Only this saved helper.
    pub helper_id: Option<String>,
    /// Only this contact.
    pub contact_id: Option<String>,
    /// Only this status: queued, throttled, succeeded or failed.
    pub status: Option<String>,
    /// Requested at or after this time (RFC 3339, or Unix ms).
    pub since: Option<String>,
    /// Requested before this time (RFC 3339, or Unix ms).
    pub until: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn instant(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.map(str::trim) else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>()
        && ms >= 0
    {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp_millis().max(0)))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{field} must be an RFC 3339 time (2026-12-03T10:00:00Z) or Unix milliseconds"
            ))
        })
}

/// The caller's executions, newest first.
///
/// # Errors
/// 400 for a bad filter or cursor.
#[utoipa::path(
    get,
    operation_id = "executions_list",
    path = "/executions",
    tag = "executions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of executions, newest first", body = ExecutionPage),
        (status = 400, description = "A bad filter or cursor", body = crate::openapi::Problem),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(Account(account)): Extension<Account>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<axum::Json<ExecutionPage>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    if let Some(s) = &q.status
        && !["queued", "throttled", "succeeded", "failed"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "status must be queued, throttled, succeeded or failed".into(),
        ));
    }
    let query = ExecutionQuery {
        helper: q.helper.as_deref(),
        helper_id: q.helper_id.as_deref(),
        contact_id: q.contact_id.as_deref(),
        status: q.status.as_deref(),
        since: instant("since", q.since.as_deref())?,
        until: instant("until", q.until.as_deref())?,
    };
    let page = state
        .store
        .list_executions(&account, &query, limit, q.cursor.as_deref())
        .await
        .map_err(crate::routes::helpers::bad_cursor)?;
    Ok(axum::Json(page))
}

/// `POST /v1/executions/{id}/retry`: runs a failed execution of a saved helper again,
/// as a new execution linked to it (`retry_of`), with the helper's current config and
/// connection and the first execution's contact and input.
///
/// # Errors
/// 404 for an unknown execution; 409 when it did not fail, has no saved helper, or the
/// helper was deleted or paused.
#[utoipa::path(
    post,
    operation_id = "executions_retry",
    path = "/executions/{id}/retry",
    tag = "executions",
    params(("id" = String, Path, description = "The failed execution")),
    responses(
        (status = 202, description = "The retry, queued (asking again returns the same one)", body = Accepted),
        (status = 404, description = "No such execution in this account", body = crate::openapi::Problem),
        (status = 409, description = "It did not fail, ran an inline config, or its helper is deleted or paused", body = crate::openapi::Problem),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<crate::routes::account::Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    caller.require(mfh_processors::store::team::Permission::RunHelpers)?;
    let account = caller.account_id.clone();
    let first = if id.len() > 64 {
        None
    } else {
        state.store.get_execution(&account, &id).await?
    }
    .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
    if first.status != "failed" {
        return Err(ApiError::Conflict(format!(
            "execution {id} is {}; only a failed execution is retried",
            first.status
        )));
    }
    let helper_id = first.helper_id.clone().ok_or_else(|| {
        ApiError::Conflict(format!(
            "execution {id} ran an inline config, which is not kept; send it again with POST /v1/executions"
        ))
    })?;
    let saved = state
        .store
        .account_helper(&account, &helper_id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("helper {helper_id} was deleted")))?;
    if !saved.enabled {
        return Err(ApiError::Conflict(format!("helper {helper_id} is paused")));
    }
    let req = ExecutionRequested {
        execution_id: uuid::Uuid::now_v7().to_string(),
        account_id: account,
        contact_id: first.contact_id,
        connection_id: saved.connection_id.clone(),
        helper: saved.helper.clone(),
        config_json: saved.config.to_string(),
        input_json: first.input.as_ref().map(ToString::to_string),
        requested_at: mfh_pipeline::now_millis(),
        source: "retry".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: Some(helper_id),
    };
    validate(&req, state.max_chain_depth).map_err(invalid)?;
    // One retry per failed execution: asking twice returns the first retry.
    let dedup = Dedup {
        key: format!("retry:{id}"),
        fingerprint: id.clone(),
        window: None,
    };
    accept(&state, req, Some(&id), Some(dedup)).await
}

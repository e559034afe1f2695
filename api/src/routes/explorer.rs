//! `POST /v1/explorer/query`: SQL over the caller's own lake tables.

use crate::AppState;
use crate::auth::Account;
use crate::error::{ApiError, AppJson};
use crate::explorer::{ExplorerError, Limits, QueryResult, run_query};
use axum::extract::State;
use axum::{Extension, Json};
use mfh_processors::lake::CONTACTS_TABLE;
use serde::Deserialize;

/// The body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One SQL statement; the table `executions` holds the caller's executions and
    /// `contacts` the latest state of the caller's CRM contacts.
    pub sql: String,
    /// Rows returned at most (capped by the server's limit).
    pub max_rows: Option<usize>,
}

/// Runs the query.
///
/// # Errors
/// 400 for SQL DuckDB rejects or that reaches outside the caller's data, 422 for a
/// timeout (loading the caller's files included), 429 while the process already runs
/// `api.explorer_max_concurrent` queries.
#[utoipa::path(
    post,
    operation_id = "explorer_query",
    path = "/explorer/query",
    tag = "explorer",
    request_body = QueryBody,
    responses(
        (status = 200, description = "The rows", body = QueryResult),
        (status = 400, description = "SQL DuckDB rejects, or that reaches outside the caller's data", body = crate::openapi::Problem),
        (status = 422, description = "The query ran past its time", body = crate::openapi::Problem),
        (status = 429, description = "Too many queries are running; retry", body = crate::openapi::Problem),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    Extension(Account(account)): Extension<Account>,
    AppJson(body): AppJson<QueryBody>,
) -> Result<Json<QueryResult>, ApiError> {
    if body.sql.trim().is_empty() || body.sql.len() > 64 * 1024 {
        return Err(ApiError::BadRequest(
            "sql must be 1 to 65536 characters".into(),
        ));
    }
    let cfg = state.cfg.clone();
    let timeout = cfg.explorer_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    // Each query is a DuckDB with its own memory limit on the blocking pool: without a
    // cap, a burst of queries multiplies that limit by the pool's size.
    let slot = tokio::time::timeout(
        SLOT_WAIT.min(timeout),
        state.explorer_slots.clone().acquire_owned(),
    )
    .await
    .map_err(|_| ApiError::Rejected {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        detail: format!(
            "the explorer is running its {} queries at once; try again in a moment",
            cfg.explorer_max_concurrent
        ),
    })?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let timed_out = || ApiError::Invalid {
        message: "query timed out".into(),
        errors: vec![],
    };
    let scratch = tempfile::tempdir().map_err(|e| ApiError::Internal(e.to_string()))?;
    let materialized = tokio::time::timeout_at(deadline, async {
        let files = state
            .lake
            .materialize_account(&account, scratch.path())
            .await?;
        let contact_files = state
            .lake
            .table(CONTACTS_TABLE)
            .materialize_account(&account, scratch.path())
            .await?;
        Ok::<_, mfh_processors::lake::LakeError>((files, contact_files))
    })
    .await
    .map_err(|_| timed_out())?;
    let (files, contact_files) =
        materialized.map_err(|e| ApiError::Unavailable(mfh_pipeline::report(&e)))?;
    let limits = Limits {
        max_rows: body
            .max_rows
            .unwrap_or(cfg.explorer_max_rows)
            .min(cfg.explorer_max_rows),
        max_bytes: cfg.explorer_max_bytes,
        timeout: deadline.saturating_duration_since(tokio::time::Instant::now()),
        memory_limit: cfg.explorer_memory_limit.clone(),
    };
    let res = tokio::task::spawn_blocking(move || {
        let r = run_query(&files, &contact_files, &body.sql, &limits);
        // The scratch copies (S3 lakes) and the slot live until the query is done.
        drop(scratch);
        drop(slot);
        r
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match res {
        Ok(r) => Ok(Json(r)),
        Err(ExplorerError::Sql(m)) => Err(ApiError::BadRequest(m)),
        Err(ExplorerError::Timeout) => Err(timed_out()),
        Err(ExplorerError::Internal(m)) => Err(ApiError::Internal(m)),
    }
}

/// Longest a query waits for one of the explorer's slots.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

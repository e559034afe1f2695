//! `POST /v1/explorer/query`: SQL over the caller's own lake tables.

use crate::AppState;
use crate::auth::Account;
use crate::error::{ApiError, AppJson};
use crate::explorer::{ExplorerError, QueryResult, run_query};
use axum::extract::State;
use axum::{Extension, Json};
use mfh_processors::lake::CONTACTS_TABLE;
use serde::Deserialize;

/// The body.
#[derive(Debug, Deserialize)]
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
/// 400 for SQL DuckDB rejects or that reaches outside the caller's data, 408-like 422
/// for a timeout.
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
    let max_rows = body
        .max_rows
        .unwrap_or(state.cfg.explorer_max_rows)
        .min(state.cfg.explorer_max_rows);
    let scratch = tempfile::tempdir().map_err(|e| ApiError::Internal(e.to_string()))?;
    let files = state
        .lake
        .materialize_account(&account, scratch.path())
        .await
        .map_err(|e| ApiError::Unavailable(mfh_pipeline::report(&e)))?;
    let contact_files = state
        .lake
        .table(CONTACTS_TABLE)
        .materialize_account(&account, scratch.path())
        .await
        .map_err(|e| ApiError::Unavailable(mfh_pipeline::report(&e)))?;
    let cfg = state.cfg.clone();
    let res = tokio::task::spawn_blocking(move || {
        let r = run_query(
            &files,
            &contact_files,
            &body.sql,
            max_rows,
            cfg.explorer_timeout,
            &cfg.explorer_memory_limit,
        );
        // The scratch copies (S3 lakes) live until the query is done.
        drop(scratch);
        r
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match res {
        Ok(r) => Ok(Json(r)),
        Err(ExplorerError::Sql(m)) => Err(ApiError::BadRequest(m)),
        Err(ExplorerError::Timeout) => Err(ApiError::Invalid {
            message: "query timed out".into(),
            errors: vec![],
        }),
        Err(ExplorerError::Internal(m)) => Err(ApiError::Internal(m)),
    }
}

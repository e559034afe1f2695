//! `POST|GET /v1/api-keys` and `DELETE /v1/api-keys/{key_id}`.

use super::*;
use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::store::api_keys::ApiKeyView;

/// `POST /v1/api-keys`: 201 with the key, shown this once.
///
/// # Errors
/// 403 without `ManageKeys`, for a role above the caller's, or at the plan's `api_keys`
/// limit (the message names it); 422 with every field error.
#[utoipa::path(
    post,
    operation_id = "keys_create_key",
    path = "/api-keys",
    tag = "account",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key: shown this once", body = NewKey),
        (status = 403, description = "The role may not manage keys or grant that role, or the plan's key limit is reached", body = crate::openapi::Problem),
        (status = 422, description = "A bad name or role", body = crate::openapi::Problem),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    caller.require(Permission::ManageKeys)?;
    let (name, role) = validate_new_key(&body).map_err(invalid)?;
    let role = role.unwrap_or(Role::Admin);
    may_grant(caller.role, role)?;
    let id = &caller.account_id;
    let account = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {id}")))?;
    let active = state.store.count_active_api_keys(id).await?;
    let b = &account.billing;
    check_limit(b.plan, &b.limits(), LimitKind::ApiKeys, active)
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let issued = state.store.issue_api_key(id, &name, role).await?;
    let v = issued.view;
    let key = NewKey {
        key_id: v.key_id,
        name: v.name,
        key: issued.key,
        prefix: v.prefix,
        role,
        created_at: v.created_at,
    };
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /v1/api-keys`: the account's keys, newest first, without secrets.
///
/// # Errors
/// 403 without `ManageKeys`.
#[utoipa::path(
    get,
    operation_id = "keys_list_keys",
    path = "/api-keys",
    tag = "account",
    responses(
        (status = 200, description = "The account's keys", body = KeyList),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<KeyList>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let api_keys: Vec<ApiKeyView> = state.store.list_api_keys(&caller.account_id).await?;
    Ok(Json(KeyList { api_keys }))
}

/// The keys of `GET /v1/api-keys`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Newest first, without secrets.
    pub api_keys: Vec<ApiKeyView>,
}

/// `DELETE /v1/api-keys/{key_id}`: 204.
///
/// # Errors
/// 403 without `ManageKeys` or for a key ranking above the caller; 404 when the account
/// has no such key.
#[utoipa::path(
    delete,
    operation_id = "keys_revoke_key",
    path = "/api-keys/{key_id}",
    tag = "account",
    params(("key_id" = String, Path, description = "The key's public id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The key ranks above the caller", body = crate::openapi::Problem),
        (status = 404, description = "No such key in this account", body = crate::openapi::Problem),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(key_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let not_found = || ApiError::NotFound(format!("API key {key_id}"));
    if !key_id.starts_with("key_") || key_id.len() > 64 {
        return Err(not_found());
    }
    let id = &caller.account_id;
    let key = state
        .store
        .find_api_key(id, &key_id)
        .await?
        .ok_or_else(not_found)?;
    if key.role > caller.role {
        return Err(ApiError::Forbidden(format!(
            "the {} role may not revoke a key with the {} role",
            caller.role, key.role
        )));
    }
    if state.store.revoke_api_key(id, &key_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

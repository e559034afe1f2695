//! Authentication. An API key comes as `X-Api-Key: <key>` or `Authorization: Bearer
//! <key>`; it is hashed and looked up, and the caller's account id and role are put in
//! the request's extensions; the key's last use is recorded (at most once a minute). With
//! `api.jwks_url` set, a bearer JWT signs a dashboard user in instead ([`crate::jwt`]).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The authenticated account of a request.
#[derive(Debug, Clone)]
pub struct Account(pub String);

/// Rejects requests without a valid key.
///
/// # Errors
/// [`ApiError::Unauthorized`], or [`ApiError::Unavailable`] when the key store is down.
pub async fn require_api_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = req.headers();
    let credential = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 8192)
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
    if let Some(jwks) = &state.jwks
        && crate::jwt::looks_like_jwt(&credential)
    {
        let caller = dashboard_user(&state, jwks, &credential).await?;
        req.extensions_mut()
            .insert(Account(caller.account_id.clone()));
        req.extensions_mut().insert(caller);
        return Ok(next.run(req).await);
    }
    let key = Some(credential)
        .filter(|k| k.len() <= 256)
        .ok_or(ApiError::Unauthorized)?;
    let p = state
        .store
        .principal_for_key(&key)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = mfh_pipeline::now_millis();
    // At most one write per key per minute; a failure must not fail the request.
    if p.needs_touch(now)
        && let Err(e) = state.store.touch_api_key(&p.key_hash, now).await
    {
        tracing::warn!(error = ?e, "Could not record the API key's last use.");
    }
    req.extensions_mut().insert(Account(p.account_id.clone()));
    req.extensions_mut().insert(crate::routes::account::Caller {
        account_id: p.account_id,
        role: p.role,
        principal: p.key_id.unwrap_or_else(|| "api_key".into()),
    });
    Ok(next.run(req).await)
}

/// The caller a dashboard token speaks for: a member of the account the token names, with
/// the member's role. An invited member signs in with the invited address.
async fn dashboard_user(
    state: &AppState,
    jwks: &crate::jwt::Jwks,
    token: &str,
) -> Result<crate::routes::account::Caller, ApiError> {
    let id = jwks.verify(token).await.map_err(|e| match e {
        crate::jwt::JwtError::Invalid(reason) => {
            tracing::info!(reason, "Bearer token refused.");
            ApiError::Unauthorized
        }
        e @ crate::jwt::JwtError::KeysUnavailable(_) => {
            ApiError::Unavailable(mfh_pipeline::report(&e))
        }
    })?;
    let member = state
        .store
        .member(&id.account_id, &id.email)
        .await?
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "{} is not a member of account {}",
                id.email, id.account_id
            ))
        })?;
    Ok(crate::routes::account::Caller {
        account_id: id.account_id,
        role: member.role,
        principal: id.email,
    })
}

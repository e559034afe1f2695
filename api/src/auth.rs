//! API-key authentication. The key comes as `X-Api-Key: <key>` or
//! `Authorization: Bearer <key>`; it is hashed and looked up, and the caller's account id
//! and role are put in the request's extensions; the key's last use is recorded (at most
//! once a minute).

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
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
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

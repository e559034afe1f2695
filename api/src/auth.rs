//! API-key authentication. The key comes as `X-Api-Key: <key>` or
//! `Authorization: Bearer <key>`; it is hashed and looked up, and the caller's account id
//! is put in the request's extensions.

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
    let account = state
        .store
        .account_for_key(&key)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    req.extensions_mut().insert(Account(account));
    Ok(next.run(req).await)
}

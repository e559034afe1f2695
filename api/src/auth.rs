//! Authentication. An API key comes as `X-Api-Key: <key>` or `Authorization: Bearer
//! <key>`; it is hashed and looked up, and the caller's account id and role are put in
//! the request's extensions; the key's last use is recorded (at most once a minute). With
//! `api.jwks_url` set, a bearer JWT signs a dashboard user in instead ([`crate::jwt`]).
//! Without either header, the dashboard's session cookie signs the user in
//! ([`crate::routes::auth`]); a request it makes that changes state must carry the
//! session's CSRF token in `X-CSRF-Token`, which another site's page cannot read.

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
    let has_header = headers.contains_key("x-api-key")
        || headers.contains_key(axum::http::header::AUTHORIZATION);
    if !has_header
        && let Some(token) =
            crate::routes::auth::cookie(headers, crate::routes::auth::SESSION_COOKIE)
    {
        let token = token.to_owned();
        return session_user(&state, req, next, &token).await;
    }
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

/// Signs the request in by its session cookie: the session must be live, its user still
/// a member of the session's account (with the member's current role), and a
/// state-changing request must echo the session's CSRF token.
async fn session_user(
    state: &AppState,
    mut req: Request,
    next: Next,
    token: &str,
) -> Result<Response, ApiError> {
    if token.len() != 64 {
        return Err(ApiError::Unauthorized);
    }
    let hash = mfh_processors::store::api_keys::hash_key(token);
    let session = state
        .store
        .session(&hash, mfh_pipeline::now_millis())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let sent = req
            .headers()
            .get(crate::routes::auth::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return Err(ApiError::Forbidden(format!(
                "a signed-in request that changes something must send the session's CSRF \
                 token in the {} header",
                crate::routes::auth::CSRF_HEADER
            )));
        }
    }
    let member = state
        .store
        .member(&session.account_id, &session.email)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    req.extensions_mut()
        .insert(Account(session.account_id.clone()));
    req.extensions_mut().insert(crate::routes::account::Caller {
        account_id: session.account_id.clone(),
        role: member.role,
        principal: session.email.clone(),
    });
    req.extensions_mut()
        .insert(crate::routes::auth::SignedIn { session });
    Ok(next.run(req).await)
}

/// Equality that takes as long for every pair of equal-length inputs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

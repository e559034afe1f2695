//! Password reset by an emailed one-time link: `POST /v1/auth/password-reset` `{email}`
//! (202 whether or not the address has a user) and
//! `POST /v1/auth/password-reset/confirm` `{token, password}`. Using the link sets the
//! password, proves the address and ends every session of the user.

use super::{
    EmailBody, client_ip, invalid, issue_link, limit, link_refused, notify, password, plain_email,
    token_hash,
};
use crate::AppState;
use crate::error::{ApiError, AppJson};
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use mfh_processors::billing::NotificationKind;
use mfh_processors::store::users::{LinkPurpose, LinkUse};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

/// The body of `POST /v1/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The link's token.
    #[serde(default)]
    pub token: String,
    /// The new password, under the sign-up policy.
    #[serde(default)]
    pub password: String,
}

/// `POST /v1/auth/password-reset`: 202; a link goes to the address if it has a user.
///
/// # Errors
/// 429 past the limits.
#[utoipa::path(
    post,
    operation_id = "reset_request",
    path = "/auth/password-reset",
    tag = "auth",
    request_body = super::EmailBody,
    responses(
        (status = 202, description = "A one-time link goes to the address if it has a user"),
        (status = 429, description = "Too many requests for this address; see Retry-After", body = crate::openapi::Problem),
    )
)]
pub async fn request(
    State(state): State<AppState>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
    AppJson(body): AppJson<EmailBody>,
) -> Result<StatusCode, ApiError> {
    let address = plain_email(&body.email);
    limit(
        &state,
        address.as_deref(),
        client_ip(ci.as_deref()).as_deref(),
    )?;
    let Some(user) = (match &address {
        Some(a) => state.store.user(a).await?,
        None => None,
    }) else {
        return Ok(StatusCode::ACCEPTED);
    };
    let (hash, url) = issue_link(&state, LinkPurpose::Reset, &user.email, None).await?;
    let minutes = state.cfg.auth.reset_link_ttl.as_secs() / 60;
    notify(
        &state,
        &user.default_account,
        NotificationKind::PasswordReset,
        format!("password_reset:{}", &hash[..16]),
        Some(&user.email),
        json!({ "email": user.email, "reset_url": url, "expires_minutes": minutes }),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/auth/password-reset/confirm`: 204; the new password is set and every
/// session of the user ends.
///
/// # Errors
/// 422 for a password the policy refuses (the link stays usable), 400 for an unknown
/// link, 410 for an expired or used one.
#[utoipa::path(
    post,
    operation_id = "reset_confirm",
    path = "/auth/password-reset/confirm",
    tag = "auth",
    request_body = Confirm,
    responses(
        (status = 204, description = "The password is set and every session of the user ended"),
        (status = 400, description = "Not a link this API issued", body = crate::openapi::Problem),
        (status = 410, description = "The link expired or was used", body = crate::openapi::Problem),
        (status = 422, description = "A password under the policy", body = crate::openapi::Problem),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    AppJson(body): AppJson<Confirm>,
) -> Result<StatusCode, ApiError> {
    let hash = token_hash(&body.token, "password reset")?;
    let link = state.store.link(&hash).await?;
    let email = link.as_ref().map_or("", |l| l.email.as_str());
    if let Some(e) = password::check("password", &body.password, email) {
        return Err(invalid(vec![e]));
    }
    let phc = password::hash(body.password).await?;
    let now = mfh_pipeline::now_millis();
    match state.store.use_link(&hash, LinkPurpose::Reset, now).await? {
        LinkUse::Used(link) => {
            state.store.set_password_hash(&link.email, &phc).await?;
            state.store.verify_user(&link.email, now).await?;
            let ended = state.store.delete_sessions_of(&link.email).await?;
            tracing::info!(ended, "Password reset; the user's sessions ended.");
            Ok(StatusCode::NO_CONTENT)
        }
        other => Err(link_refused(&other, "password reset")),
    }
}

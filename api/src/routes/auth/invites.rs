//! Accepting a team invitation by its emailed one-time link: `GET /v1/auth/invites/{token}`
//! shows what it is for; `POST /v1/auth/invites/accept` `{token, name?, password?}` makes
//! the invited member active with the invited role, creating the user (verified: the link
//! proves the address) when the address has none. The account joined becomes the one the
//! user's sign-ins open.

use super::{invalid, link_refused, password, token_hash};
use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use axum::Json;
use axum::extract::State;
use mfh_processors::helpers::FieldError;
use mfh_processors::store::team::Role;
use mfh_processors::store::users::{LinkPurpose, LinkUse, OneTimeLink, User};
use serde::{Deserialize, Serialize};

/// What an invite link is for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteInfo {
    /// The invited address.
    pub email: String,
    /// The account.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// The role it grants.
    pub role: Role,
    /// Whether the address has a user already (then no name or password is asked).
    pub user_exists: bool,
}

/// The body of `POST /v1/auth/invites/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// The link's token.
    #[serde(default)]
    pub token: String,
    /// The new user's name (required when the address has no user).
    pub name: Option<String>,
    /// The new user's password (required when the address has no user).
    pub password: Option<String>,
}

/// The answer to an accepted invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Joined {
    /// The member's address.
    pub email: String,
    /// The account joined.
    pub account_id: String,
    /// The role held there.
    pub role: Role,
}

/// The invite behind `hash` while it can still be used.
async fn open_invite(state: &AppState, hash: &str) -> Result<(OneTimeLink, String), ApiError> {
    let now = mfh_pipeline::now_millis();
    let found = match state.store.link(hash).await? {
        Some(l) if l.purpose != LinkPurpose::Invite => LinkUse::Unknown,
        Some(l) if l.used_at.is_some() => LinkUse::AlreadyUsed,
        Some(l) if l.expires_at <= now => LinkUse::Expired,
        Some(l) => match l.account_id.clone() {
            Some(a) => return Ok((l, a)),
            None => LinkUse::Unknown,
        },
        None => LinkUse::Unknown,
    };
    Err(link_refused(&found, "invitation"))
}

/// `GET /v1/auth/invites/{token}`.
///
/// # Errors
/// 400 for an unknown link, 410 for an expired or used one.
#[utoipa::path(
    get,
    operation_id = "invites_show",
    path = "/auth/invites/{token}",
    tag = "auth",
    params(("token" = String, Path, description = "The invite link's token")),
    responses(
        (status = 200, description = "What the invite is for", body = InviteInfo),
        (status = 400, description = "Not a link this API issued", body = crate::openapi::Problem),
        (status = 410, description = "The invite expired, was used or withdrawn", body = crate::openapi::Problem),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
) -> Result<Json<InviteInfo>, ApiError> {
    let (link, account_id) = open_invite(&state, &token_hash(&token, "invitation")?).await?;
    let account_name = state
        .store
        .account(&account_id)
        .await?
        .map(|a| a.name)
        .unwrap_or_default();
    Ok(Json(InviteInfo {
        user_exists: state.store.user(&link.email).await?.is_some(),
        role: link.role.unwrap_or(Role::Member),
        email: link.email,
        account_id,
        account_name,
    }))
}

/// `POST /v1/auth/invites/accept`.
///
/// # Errors
/// 422 when a new user's name or password is missing or refused (the link stays
/// usable), 400 for an unknown link, 410 for an expired, used or withdrawn invitation.
#[utoipa::path(
    post,
    operation_id = "invites_accept",
    path = "/auth/invites/accept",
    tag = "auth",
    request_body = Accept,
    responses(
        (status = 200, description = "Joined: the member (and the user, if new) exists with the invited role", body = Joined),
        (status = 400, description = "Not a link this API issued", body = crate::openapi::Problem),
        (status = 410, description = "The invite expired, was used or withdrawn", body = crate::openapi::Problem),
        (status = 422, description = "A new user needs a name and a password under the policy", body = crate::openapi::Problem),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    AppJson(body): AppJson<Accept>,
) -> Result<Json<Joined>, ApiError> {
    let hash = token_hash(&body.token, "invitation")?;
    let (link, account_id) = open_invite(&state, &hash).await?;
    let existing = state.store.user(&link.email).await?;
    let mut new_user = None;
    if existing.is_none() {
        let mut errors = Vec::new();
        let name = body.name.as_deref().unwrap_or_default().trim().to_owned();
        if !(1..=200).contains(&name.chars().count()) || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "must be 1-200 characters"));
        }
        let pw = body.password.unwrap_or_default();
        errors.extend(password::check("password", &pw, &link.email));
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        new_user = Some((name, password::hash(pw).await?));
    }
    let now = mfh_pipeline::now_millis();
    let link = match state
        .store
        .use_link(&hash, LinkPurpose::Invite, now)
        .await?
    {
        LinkUse::Used(l) => l,
        other => return Err(link_refused(&other, "invitation")),
    };
    let member = state
        .store
        .join_member(&account_id, &link.email, now)
        .await?
        .ok_or_else(|| ApiError::Gone("this invitation was withdrawn".into()))?;
    match new_user {
        Some((name, password_hash)) => {
            let user = User {
                email: link.email.clone(),
                name,
                password_hash,
                verified_at: Some(now),
                created_at: now,
                default_account: account_id.clone(),
            };
            // Created meanwhile by a sign-up of the same address: that user keeps their
            // password and joins like an existing user.
            if !state.store.create_user(&user).await? {
                state
                    .store
                    .set_default_account(&link.email, &account_id)
                    .await?;
            }
        }
        None => {
            state
                .store
                .set_default_account(&link.email, &account_id)
                .await?;
            state.store.verify_user(&link.email, now).await?;
        }
    }
    Ok(Json(Joined {
        email: member.email,
        account_id,
        role: member.role,
    }))
}

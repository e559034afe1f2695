//! Self-service accounts: `POST /v1/auth/register`, `/verify`, `/verify/resend`,
//! `/login`, `/logout`, `GET /v1/auth/me`, password reset ([`reset`]) and invite
//! acceptance ([`invites`]).
//!
//! A sign-in is a session: a random token in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when `api.public_url` is https), stored only as its SHA-256, with an expiry.
//! Requests the session makes that change state must echo its CSRF token in
//! `X-CSRF-Token` ([`crate::auth`] checks it); the token is in the sign-in answer, in
//! `GET /v1/auth/me` and in the script-readable `mfh_csrf` cookie. API keys and JWKS
//! bearer tokens work beside sessions.
//!
//! Answers never tell whether an address has an account, except sign-up's 409 (which a
//! sign-up form cannot avoid); reset and resend always answer 202.

pub mod invites;
pub mod limits;
pub mod password;
pub mod reset;

use crate::AppState;
use crate::error::{ApiError, AppJson};
use crate::routes::account::email_shape_ok;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mfh_processors::billing::{BillingState, NotificationKind, TRIAL_DAYS};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::api_keys::hash_key;
use mfh_processors::store::users::{LinkPurpose, LinkUse, OneTimeLink, Session, User, new_secret};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;

/// The session cookie.
pub const SESSION_COOKIE: &str = "mfh_session";
/// The cookie carrying the session's CSRF token, readable by the dashboard's script.
pub const CSRF_COOKIE: &str = "mfh_csrf";
/// The header a cookie-authenticated state change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request signed in by a session cookie (beside its [`Caller`]).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session as stored.
    pub session: Session,
}

/// The body of `POST /v1/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The owner's email; they sign in with it.
    #[serde(default)]
    pub email: String,
    /// At least 10 characters, not a common breached password.
    #[serde(default)]
    pub password: String,
    /// The owner's name.
    #[serde(default)]
    pub name: String,
    /// The new account's name.
    #[serde(default)]
    pub account_name: String,
}

/// The answer to a sign-up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    /// The owner's email.
    pub email: String,
    /// The new trial account.
    pub account_id: String,
    /// Whether the emailed link must be opened before signing in.
    pub verification_required: bool,
}

/// The body of `POST /v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user's email.
    #[serde(default)]
    pub email: String,
    /// The password.
    #[serde(default)]
    pub password: String,
}

/// A one-time link's token, as the dashboard posts it from the link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The `token` of the link.
    #[serde(default)]
    pub token: String,
}

/// A body naming only an email address (resend, reset request).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    /// The address.
    #[serde(default)]
    pub email: String,
}

/// `GET /v1/auth/me`: who is signed in, where.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user.
    pub user: MeUser,
    /// The account the session acts in.
    pub account: MeAccount,
    /// The user's role there.
    pub role: mfh_processors::store::team::Role,
    /// The account's plan.
    pub plan: mfh_processors::billing::Plan,
    /// Where the account stands with billing.
    pub status: mfh_processors::billing::AccountStatus,
    /// The token state-changing requests send in `X-CSRF-Token`.
    pub csrf_token: String,
}

/// The user part of [`Me`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeUser {
    /// Lower-case email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the address is verified.
    pub verified: bool,
}

/// The account part of [`Me`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeAccount {
    /// The account id.
    pub account_id: String,
    /// Display name.
    pub name: String,
}

/// The client's address, for the per-IP limit (`None` without connect info, in tests of
/// the router alone).
pub(crate) fn client_ip(ci: Option<&ConnectInfo<SocketAddr>>) -> Option<String> {
    ci.map(|ConnectInfo(a)| a.ip().to_string())
}

/// Takes one attempt from the limits, or answers 429 with `Retry-After`.
pub(crate) fn limit(
    state: &AppState,
    email: Option<&str>,
    ip: Option<&str>,
) -> Result<(), ApiError> {
    state.auth_limits.attempt(email, ip).map_err(|wait| {
        let secs = wait.as_secs().saturating_add(1);
        ApiError::TooManyRequests {
            detail: format!("too many attempts; try again in {secs} s"),
            retry_after_secs: secs,
        }
    })
}

pub(crate) fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::Invalid {
        message: "invalid request".into(),
        errors,
    }
}

fn text(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = v.trim();
    if !(1..=max).contains(&t.chars().count()) || t.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            format!("must be 1-{max} characters without control characters"),
        ));
    }
    t.to_owned()
}

pub(crate) fn email(field: &str, v: &str, errors: &mut Vec<FieldError>) -> String {
    let e = v.trim().to_lowercase();
    if !email_shape_ok(&e) {
        errors.push(FieldError::new(
            field,
            "must be an email address such as ada@example.com",
        ));
    }
    e
}

/// The lower-case address of a body that only needs one, `None` when it cannot be one
/// (such bodies answer 202 regardless, so nothing more is said).
fn plain_email(v: &str) -> Option<String> {
    let e = v.trim().to_lowercase();
    email_shape_ok(&e).then_some(e)
}

/// The `Set-Cookie` values of a session: the `HttpOnly` token and the readable CSRF
/// token; `max_age` 0 clears both.
fn cookies(state: &AppState, token: &str, csrf: &str, max_age: u64) -> [HeaderValue; 2] {
    let secure = if state.cfg.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let make = |name: &str, value: &str, http_only: &str| {
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax{http_only}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("mfh_invalid=1"))
    };
    [
        make(SESSION_COOKIE, token, "; HttpOnly"),
        make(CSRF_COOKIE, csrf, ""),
    ]
}

/// The value of cookie `name` in the request's `Cookie` headers.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A one-time link for `purpose` to `email`, stored, and its URL in the dashboard.
pub(crate) async fn issue_link(
    state: &AppState,
    purpose: LinkPurpose,
    email: &str,
    invite: Option<(&str, mfh_processors::store::team::Role)>,
) -> Result<(String, String), ApiError> {
    let token = new_secret();
    let now = mfh_pipeline::now_millis();
    let a = &state.cfg.auth;
    let (ttl, page) = match purpose {
        LinkPurpose::Verify => (a.verify_link_ttl, "verify"),
        LinkPurpose::Reset => (a.reset_link_ttl, "reset"),
        LinkPurpose::Invite => (a.invite_link_ttl, "invite"),
    };
    let link = OneTimeLink {
        token_hash: hash_key(&token),
        purpose,
        email: email.to_owned(),
        account_id: invite.map(|(a, _)| a.to_owned()),
        role: invite.map(|(_, r)| r),
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        used_at: None,
    };
    state.store.create_link(&link).await?;
    let base = state.cfg.public_url.trim_end_matches('/');
    Ok((link.token_hash, format!("{base}/{page}?token={token}")))
}

/// Asks the notifier for one email to `recipient` (`None`: the account's billing email).
pub(crate) async fn notify(
    state: &AppState,
    account_id: &str,
    kind: NotificationKind,
    id: String,
    recipient: Option<&str>,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let n = mfh_schemas::Notification {
        notification_id: id,
        account_id: account_id.to_owned(),
        kind: kind.as_str().into(),
        recipient: recipient.map(str::to_owned),
        data_json: data.to_string(),
        created_at: mfh_pipeline::now_millis(),
    };
    crate::produce::record(state, &state.kafka.topics().notifications(), account_id, &n).await
}

/// Sends a verification link to `user`.
async fn send_verification(state: &AppState, user: &User) -> Result<(), ApiError> {
    let (hash, url) = issue_link(state, LinkPurpose::Verify, &user.email, None).await?;
    let hours = state.cfg.auth.verify_link_ttl.as_secs() / 3600;
    notify(
        state,
        &user.default_account,
        NotificationKind::EmailVerification,
        format!("email_verification:{}", &hash[..16]),
        Some(&user.email),
        json!({ "name": user.name, "verify_url": url, "expires_hours": hours }),
    )
    .await
}

/// `POST /v1/auth/register`: 201; the account is a new trial with the owner as its only
/// member, its sandbox CRM seeded with the demo contacts; a verification link and the
/// welcome email are sent.
///
/// # Errors
/// 422 with every field error, 409 for a registered email, 429 past the per-IP limit.
#[utoipa::path(
    post,
    operation_id = "auth_register",
    path = "/auth/register",
    tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "A trial account and its owner; the verification email is sent", body = Registered),
        (status = 409, description = "The address already has a user", body = crate::openapi::Problem),
        (status = 422, description = "A bad email or name, or a password under the policy (every problem listed)", body = crate::openapi::Problem),
        (status = 429, description = "Too many sign-ups from this address; see Retry-After", body = crate::openapi::Problem),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
    AppJson(body): AppJson<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let mut errors = Vec::new();
    let address = email("email", &body.email, &mut errors);
    let name = text("name", &body.name, 200, &mut errors);
    let account_name = text("account_name", &body.account_name, 200, &mut errors);
    errors.extend(password::check("password", &body.password, &address));
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    limit(&state, None, client_ip(ci.as_deref()).as_deref())?;
    let now = mfh_pipeline::now_millis();
    let user = User {
        email: address.clone(),
        name,
        password_hash: password::hash(body.password).await?,
        verified_at: None,
        created_at: now,
        default_account: format!("acct_{}", &new_secret()[..16]),
    };
    let trial = BillingState::new_trial(now / 1000);
    if !state
        .store
        .register_owner(&user, &account_name, &trial)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "{address} already has an account: sign in, or reset the password"
        )));
    }
    let account_id = user.default_account.clone();
    if let Some(seed) = &state.sandbox_seed {
        mfh_processors::connectors::sandbox::Sandbox::new(
            state.store.clone(),
            &account_id,
            "sandbox",
        )
        .seed(seed)
        .await
        .map_err(|e| ApiError::Unavailable(mfh_pipeline::report(&e)))?;
    }
    send_verification(&state, &user).await?;
    let welcome = json!({ "name": user.name, "trial_days": TRIAL_DAYS });
    notify(
        &state,
        &account_id,
        NotificationKind::Welcome,
        format!("welcome:{account_id}"),
        Some(&address),
        welcome,
    )
    .await?;
    tracing::info!(account = %account_id, "Account registered.");
    let verification_required = state.cfg.auth.require_verified_email;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            email: address,
            account_id,
            verification_required,
        }),
    ))
}

/// The problem for a one-time link that could not be used.
pub(crate) fn link_refused(found: &LinkUse, what: &str) -> ApiError {
    match found {
        LinkUse::Expired => {
            ApiError::Gone(format!("this {what} link has expired; ask for a new one"))
        }
        LinkUse::AlreadyUsed => ApiError::Gone(format!("this {what} link was used already")),
        LinkUse::Unknown | LinkUse::Used(_) => {
            ApiError::BadRequest(format!("this is not a valid {what} link"))
        }
    }
}

/// The store key of a link token, or a 400 when it cannot be one.
pub(crate) fn token_hash(token: &str, what: &str) -> Result<String, ApiError> {
    let t = token.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash_key(t))
    } else {
        Err(ApiError::BadRequest(format!(
            "this is not a valid {what} link"
        )))
    }
}

/// A verified address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verified {
    /// The address.
    pub email: String,
    /// Always true.
    pub verified: bool,
}

/// `POST /v1/auth/verify` `{token}`: the address is verified.
///
/// # Errors
/// 400 for an unknown link, 410 for an expired or used one.
#[utoipa::path(
    post,
    operation_id = "auth_verify",
    path = "/auth/verify",
    tag = "auth",
    request_body = TokenBody,
    responses(
        (status = 200, description = "The address is verified", body = Verified),
        (status = 400, description = "Not a link this API issued", body = crate::openapi::Problem),
        (status = 410, description = "The link expired or was used", body = crate::openapi::Problem),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    AppJson(body): AppJson<TokenBody>,
) -> Result<Json<Verified>, ApiError> {
    let hash = token_hash(&body.token, "verification")?;
    let now = mfh_pipeline::now_millis();
    match state
        .store
        .use_link(&hash, LinkPurpose::Verify, now)
        .await?
    {
        LinkUse::Used(link) => {
            state.store.verify_user(&link.email, now).await?;
            Ok(Json(Verified {
                email: link.email,
                verified: true,
            }))
        }
        other => Err(link_refused(&other, "verification")),
    }
}

/// `POST /v1/auth/verify/resend` `{email}`: 202, and a new link when the address is a
/// user's that is not verified yet.
///
/// # Errors
/// 429 past the limits.
#[utoipa::path(
    post,
    operation_id = "auth_resend_verification",
    path = "/auth/verify/resend",
    tag = "auth",
    request_body = EmailBody,
    responses(
        (status = 202, description = "A new link goes to the address if it has an unverified user"),
        (status = 429, description = "Too many requests for this address; see Retry-After", body = crate::openapi::Problem),
    )
)]
pub async fn resend_verification(
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
    if let Some(a) = address
        && let Some(user) = state.store.user(&a).await?
        && user.verified_at.is_none()
    {
        send_verification(&state, &user).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/auth/login`: 200 with [`Me`] and the session cookies.
///
/// # Errors
/// 401 for a wrong address or password (the same answer), 403 before the address is
/// verified (when `api.auth.require_verified_email`) or without an account to open, 429
/// past the limits.
#[utoipa::path(
    post,
    operation_id = "auth_login",
    path = "/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in: the mfh_session (HttpOnly) and mfh_csrf cookies are set", body = Me),
        (status = 401, description = "Wrong email or password", body = crate::openapi::Problem),
        (status = 403, description = "The address is not verified yet", body = crate::openapi::Problem),
        (status = 422, description = "Not an email address", body = crate::openapi::Problem),
        (status = 429, description = "Too many attempts for this address or from this IP; see Retry-After", body = crate::openapi::Problem),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
    AppJson(body): AppJson<Login>,
) -> Result<Response, ApiError> {
    let address = body.email.trim().to_lowercase();
    if address.is_empty() || body.password.is_empty() || address.len() > 254 {
        return Err(invalid(vec![FieldError::new(
            "",
            "email and password are required",
        )]));
    }
    limit(&state, Some(&address), client_ip(ci.as_deref()).as_deref())?;
    let user = state.store.user(&address).await?;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = body.password.chars().take(password::MAX_LEN).collect();
    if !password::verify(password, phc).await? {
        return Err(ApiError::Unauthenticated("wrong email or password".into()));
    }
    let Some(user) = user else {
        return Err(ApiError::Unauthenticated("wrong email or password".into()));
    };
    if state.cfg.auth.require_verified_email && user.verified_at.is_none() {
        return Err(ApiError::Forbidden(format!(
            "confirm your email address first: open the link we sent to {address} \
             (POST /v1/auth/verify/resend sends a new one)"
        )));
    }
    let member = state.store.member(&user.default_account, &address).await?;
    if member.is_none() {
        return Err(ApiError::Forbidden(
            "this user is no longer a member of any account".into(),
        ));
    }
    let token = new_secret();
    let now = mfh_pipeline::now_millis();
    let ttl = state.cfg.auth.session_ttl;
    let session = Session {
        token_hash: hash_key(&token),
        email: address,
        account_id: user.default_account.clone(),
        csrf: new_secret(),
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    };
    state.store.create_session(&session).await?;
    let me = me_of(&state, &session).await?;
    let mut resp = Json(me).into_response();
    for c in cookies(&state, &token, &session.csrf, ttl.as_secs()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

async fn me_of(state: &AppState, session: &Session) -> Result<Me, ApiError> {
    let user = state
        .store
        .user(&session.email)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let member = state
        .store
        .member(&session.account_id, &session.email)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let account = state
        .store
        .account(&session.account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {}", session.account_id)))?;
    Ok(Me {
        user: MeUser {
            email: user.email,
            name: user.name,
            verified: user.verified_at.is_some(),
        },
        account: MeAccount {
            account_id: account.account_id,
            name: account.name,
        },
        role: member.role,
        plan: account.billing.plan,
        status: account.billing.status,
        csrf_token: session.csrf.clone(),
    })
}

/// `GET /v1/auth/me`: the signed-in user, their account and role.
///
/// # Errors
/// 401 unless the request is signed in by a session.
#[utoipa::path(
    get,
    operation_id = "auth_me",
    path = "/auth/me",
    tag = "auth",
    responses(
        (status = 200, description = "The signed-in user, their account, role and plan", body = Me),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    signed_in: Option<Extension<SignedIn>>,
) -> Result<Json<Me>, ApiError> {
    let Some(Extension(s)) = signed_in else {
        return Err(ApiError::Unauthorized);
    };
    me_of(&state, &s.session).await.map(Json)
}

/// `POST /v1/auth/logout`: 204; the session ends and its cookies are cleared.
///
/// # Errors
/// 401 unless the request is signed in by a session.
#[utoipa::path(
    post,
    operation_id = "auth_logout",
    path = "/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "The session ended and its cookies are cleared"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    signed_in: Option<Extension<SignedIn>>,
) -> Result<Response, ApiError> {
    let Some(Extension(s)) = signed_in else {
        return Err(ApiError::Unauthorized);
    };
    state.store.delete_session(&s.session.token_hash).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for c in cookies(&state, "", "", 0) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mfh_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("mfh_csrf=def"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("def"));
        assert_eq!(cookie(&h, "mfh"), None);
    }

    #[test]
    fn link_tokens_must_look_like_ours() {
        assert!(token_hash(&"a".repeat(64), "x").is_ok());
        assert!(token_hash("short", "x").is_err());
        assert!(token_hash(&"z".repeat(64), "x").is_err());
    }
}

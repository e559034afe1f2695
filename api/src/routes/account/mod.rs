//! The account's own resources: `GET|PATCH /v1/account`, `POST|GET /v1/api-keys`,
//! `DELETE /v1/api-keys/{key_id}`, `POST /v1/team/invites`, `GET /v1/team` and
//! `PATCH|DELETE /v1/team/{email}`.
//!
//! Every handler checks the caller's [`Permission`] first, then validates the whole body
//! and reports every field error at once. Roles rank `member < admin < owner`: nobody
//! grants a role above their own, and only an owner changes, removes or appoints an owner.

use crate::AppState;
use crate::error::{ApiError, AppJson};
use axum::extract::State;
use axum::{Extension, Json};
use mfh_processors::billing::{AccountStatus, LimitKind, Limits, Plan, check_limit};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::team::{
    Member, MemberChange, MemberStatus, Permission, Role, TeamError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod keys;
pub mod prefs;
pub mod team;
#[cfg(test)]
mod tests;

pub use keys::{create_key, list_keys, revoke_key};
pub use prefs::{get_prefs, put_prefs};
pub use team::{invite, list_team, remove_member, set_member_role, team_invite_notification};

/// Who is calling. The auth middleware puts it in the request's extensions next to
/// [`crate::auth::Account`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's account.
    pub account_id: String,
    /// What the caller may do: the API key's role.
    pub role: Role,
    /// Who acts, for `invited_by`: the key id (`key_…`), later a dashboard user's email.
    pub principal: String,
}

impl Caller {
    /// Refuses unless the caller's role allows `p`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the role and what it may not do.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.can(p) {
            return Ok(());
        }
        let what = match p {
            Permission::ManageKeys => "manage API keys",
            Permission::ManageTeam => "manage the team",
            Permission::ManageBilling => "manage billing",
            Permission::ManageConnections => "manage CRM connections",
            Permission::RunHelpers => "run helpers",
            Permission::ReadData => "read data",
        };
        Err(ApiError::Forbidden(format!(
            "the {} role may not {what}",
            self.role
        )))
    }
}

/// The body of `PATCH /v1/account`; absent fields are left as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    /// Display name, 1-200 characters.
    pub name: Option<String>,
    /// Where billing emails go.
    pub billing_email: Option<String>,
}

/// The body of `POST /v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to recognise the key by, 1-100 characters.
    #[serde(default)]
    pub name: String,
    /// The key's role (default `admin`), at most the caller's.
    pub role: Option<String>,
}

/// The body of `POST /v1/team/invites`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// Who to invite.
    #[serde(default)]
    pub email: String,
    /// `owner`, `admin` or `member`.
    #[serde(default)]
    pub role: String,
}

/// The body of `PATCH /v1/team/{email}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `owner`, `admin` or `member`.
    #[serde(default)]
    pub role: String,
}

/// The account as `GET /v1/account` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// The account id.
    pub account_id: String,
    /// Display name.
    pub name: String,
    /// Where billing emails go.
    pub billing_email: Option<String>,
    /// The plan whose limits apply.
    pub plan: Plan,
    /// Where the account stands with billing.
    pub status: AccountStatus,
    /// When the trial ends or ended, Unix seconds.
    pub trial_ends_at: Option<i64>,
    /// The plan's limits; `null` is unlimited.
    pub limits: Limits,
    /// What counts against them.
    pub usage: Usage,
}

/// What counts against the limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// The metering month, `YYYY-MM` (UTC).
    pub month: String,
    /// Executions counted this month.
    pub executions: u64,
    /// Keys not revoked.
    pub api_keys: u64,
    /// Saved helpers (not deleted): the plan's helper slots in use.
    pub helpers: u64,
    /// Executions this month past the plan's limit: billed as overage on paid plans
    /// (trial and free stop at the limit instead).
    pub overage: u64,
}

/// The answer to `POST /v1/api-keys`: the only time the key is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// Public id, for listing and revocation.
    pub key_id: String,
    /// The name given.
    pub name: String,
    /// The key itself.
    pub key: String,
    /// Its first 8 characters.
    pub prefix: String,
    /// The role it acts with.
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
}

fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::Invalid {
        message: "invalid request".into(),
        errors,
    }
}

/// Whether `e` looks like an email address: one `@`, a local part of 1-64 characters and
/// a dotted domain of letters, digits and hyphens, 254 characters at most, no spaces.
pub fn email_shape_ok(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    e.len() <= 254
        && (1..=64).contains(&local.len())
        && !local.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && domain.split('.').all(label_ok)
}

fn check_text(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = v.trim();
    if !(1..=max).contains(&t.chars().count()) || t.chars().any(char::is_control) {
        let msg = format!("must be 1-{max} characters without control characters");
        errors.push(FieldError::new(field, msg));
    }
    t.to_owned()
}

fn check_email(field: &str, v: &str, errors: &mut Vec<FieldError>) -> String {
    let t = v.trim();
    if !email_shape_ok(t) {
        errors.push(FieldError::new(
            field,
            "must be an email address such as ada@example.com",
        ));
    }
    t.to_owned()
}

fn check_role(field: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<Role> {
    let role = Role::parse(v.trim());
    if role.is_none() {
        errors.push(FieldError::new(field, "must be owner, admin or member"));
    }
    role
}

fn done<T>(value: T, errors: Vec<FieldError>) -> Result<T, Vec<FieldError>> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// The trimmed name and billing email to set.
///
/// # Errors
/// Every field error.
pub fn validate_profile(
    b: &PatchAccount,
) -> Result<(Option<String>, Option<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = b
        .name
        .as_deref()
        .map(|v| check_text("name", v, 200, &mut errors));
    let email = b
        .billing_email
        .as_deref()
        .map(|v| check_email("billing_email", v, &mut errors));
    done((name, email), errors)
}

/// The key's name and role (`None` for the default).
///
/// # Errors
/// Every field error.
pub fn validate_new_key(b: &CreateKey) -> Result<(String, Option<Role>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = check_text("name", &b.name, 100, &mut errors);
    let role = b
        .role
        .as_deref()
        .and_then(|v| check_role("role", v, &mut errors));
    done((name, role), errors)
}

/// The invitee's lower-cased email and role.
///
/// # Errors
/// Every field error.
pub fn validate_invite(b: &Invite) -> Result<(String, Role), Vec<FieldError>> {
    let mut errors = Vec::new();
    let email = check_email("email", &b.email, &mut errors).to_lowercase();
    let role = check_role("role", &b.role, &mut errors);
    match role {
        Some(role) if errors.is_empty() => Ok((email, role)),
        _ => Err(errors),
    }
}

/// Refuses to hand out `role` when it ranks above the caller's.
///
/// # Errors
/// [`ApiError::Forbidden`].
pub fn may_grant(actor: Role, role: Role) -> Result<(), ApiError> {
    if role > actor {
        return Err(ApiError::Forbidden(format!(
            "the {actor} role may not grant the {role} role"
        )));
    }
    Ok(())
}

/// Whether `actor` may apply `change` to a member whose role is `target` (for an invite,
/// pass `Role::Member` and the invited role). Only an owner changes, removes or appoints
/// an owner. Whether the account keeps an owner is the store's check.
///
/// # Errors
/// [`ApiError::Forbidden`].
pub fn authorize_change(actor: Role, target: Role, change: MemberChange) -> Result<(), ApiError> {
    if !actor.can(Permission::ManageTeam) {
        return Err(ApiError::Forbidden(format!(
            "the {actor} role may not manage the team"
        )));
    }
    let appoints_owner = change == MemberChange::SetRole(Role::Owner);
    if (target == Role::Owner || appoints_owner) && actor != Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner may change, remove or appoint an owner".into(),
        ));
    }
    if let MemberChange::SetRole(role) = change {
        may_grant(actor, role)?;
    }
    Ok(())
}

async fn profile(state: &AppState, account_id: &str) -> Result<Profile, ApiError> {
    let a = state
        .store
        .account(account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {account_id}")))?;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let executions = state.store.executions_in_month(account_id, &month).await?;
    let limit = a.billing.limits().executions_per_month;
    let usage = Usage {
        executions,
        api_keys: state.store.count_active_api_keys(account_id).await?,
        helpers: state.store.helper_slots_used(account_id).await?,
        overage: limit.map_or(0, |l| executions.saturating_sub(l)),
        month,
    };
    Ok(Profile {
        limits: a.billing.limits(),
        account_id: a.account_id,
        name: a.name,
        billing_email: a.billing_email,
        plan: a.billing.plan,
        status: a.billing.status,
        trial_ends_at: a.billing.trial_ends_at,
        usage,
    })
}

/// `GET /v1/account`.
///
/// # Errors
/// 403 without `ReadData`, 404 when the account has no record.
#[utoipa::path(
    get,
    operation_id = "account_get_account",
    path = "/account",
    tag = "account",
    responses(
        (status = 200, description = "The account, its plan, limits and usage", body = Profile),
        (status = 404, description = "The account has no record", body = crate::openapi::Problem),
    )
)]
pub async fn get_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Profile>, ApiError> {
    caller.require(Permission::ReadData)?;
    profile(&state, &caller.account_id).await.map(Json)
}

/// `PATCH /v1/account`: the name needs `ManageTeam`, the billing email `ManageBilling`.
///
/// # Errors
/// 403, 422 with every field error, 404 when the account has no record.
#[utoipa::path(
    patch,
    operation_id = "account_patch_account",
    path = "/account",
    tag = "account",
    request_body = PatchAccount,
    responses(
        (status = 200, description = "The changed account", body = Profile),
        (status = 403, description = "The name needs the team role, the billing email the billing role", body = crate::openapi::Problem),
        (status = 422, description = "An invalid name or email (every problem listed)", body = crate::openapi::Problem),
    )
)]
pub async fn patch_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<PatchAccount>,
) -> Result<Json<Profile>, ApiError> {
    caller.require(Permission::ReadData)?;
    if body.name.is_some() {
        caller.require(Permission::ManageTeam)?;
    }
    if body.billing_email.is_some() {
        caller.require(Permission::ManageBilling)?;
    }
    let (name, email) = validate_profile(&body).map_err(invalid)?;
    let id = &caller.account_id;
    state
        .store
        .update_profile(id, name.as_deref(), email.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {id}")))?;
    profile(&state, id).await.map(Json)
}

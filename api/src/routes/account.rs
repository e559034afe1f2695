//! The account's own resources: `GET|PATCH /v1/account`, `POST|GET /v1/api-keys`,
//! `DELETE /v1/api-keys/{key_id}`, `POST /v1/team/invites`, `GET /v1/team` and
//! `PATCH|DELETE /v1/team/{email}`.
//!
//! Every handler checks the caller's [`Permission`] first, then validates the whole body
//! and reports every field error at once. Roles rank `member < admin < owner`: nobody
//! grants a role above their own, and only an owner changes, removes or appoints an owner.

use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::billing::{AccountStatus, LimitKind, Limits, Plan, check_limit};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::team::{
    ApiKeyView, Member, MemberChange, MemberStatus, Permission, Role, TeamError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    /// Display name, 1-200 characters.
    pub name: Option<String>,
    /// Where billing emails go.
    pub billing_email: Option<String>,
}

/// The body of `POST /v1/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to recognise the key by, 1-100 characters.
    #[serde(default)]
    pub name: String,
    /// The key's role (default `admin`), at most the caller's.
    pub role: Option<String>,
}

/// The body of `POST /v1/team/invites`.
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `owner`, `admin` or `member`.
    #[serde(default)]
    pub role: String,
}

/// The account as `GET /v1/account` shows it.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct Usage {
    /// The metering month, `YYYY-MM` (UTC).
    pub month: String,
    /// Executions counted this month.
    pub executions: u64,
    /// Keys not revoked.
    pub api_keys: u64,
    /// Helper instances in use.
    pub helpers: u64,
}

/// The answer to `POST /v1/api-keys`: the only time the key is shown.
#[derive(Debug, Serialize)]
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

/// The `team_invite` notification of a member. Its id is
/// `team_invite:{email}:{invited_at}`, so re-sending one invitation sends one email.
pub fn team_invite_notification(
    account_id: &str,
    account_name: Option<&str>,
    m: &Member,
    inviter: Option<&str>,
) -> mfh_schemas::Notification {
    let data = json!({
        "email": m.email,
        "role": m.role.as_str(),
        "account_name": account_name,
        "inviter": inviter,
    });
    mfh_schemas::Notification {
        notification_id: format!("team_invite:{}:{}", m.email, m.invited_at),
        account_id: account_id.to_owned(),
        kind: "team_invite".into(),
        recipient: Some(m.email.clone()),
        data_json: data.to_string(),
        created_at: mfh_pipeline::now_millis(),
    }
}

fn team_error(e: TeamError) -> ApiError {
    match e {
        TeamError::Store(e) => e.into(),
        TeamError::NotMember { email } => ApiError::NotFound(format!("member {email}")),
        other => ApiError::Conflict(other.to_string()),
    }
}

/// The member key of a path's email; 404 when it cannot be one (DynamoDB refuses empty
/// or oversized keys).
fn member_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    if email_shape_ok(&email) {
        Ok(email)
    } else {
        Err(ApiError::NotFound(format!("member {email}")))
    }
}

async fn profile(state: &AppState, account_id: &str) -> Result<Profile, ApiError> {
    let a = state
        .store
        .account(account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {account_id}")))?;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = Usage {
        executions: state.store.executions_in_month(account_id, &month).await?,
        api_keys: state.store.count_active_api_keys(account_id).await?,
        helpers: state.store.helper_instances(account_id).await?,
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

/// `POST /v1/api-keys`: 201 with the key, shown this once.
///
/// # Errors
/// 403 without `ManageKeys`, for a role above the caller's, or at the plan's `api_keys`
/// limit (the message names it); 422 with every field error.
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
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let keys: Vec<ApiKeyView> = state.store.list_api_keys(&caller.account_id).await?;
    Ok(Json(json!({ "api_keys": keys })))
}

/// `DELETE /v1/api-keys/{key_id}`: 204.
///
/// # Errors
/// 403 without `ManageKeys` or for a key ranking above the caller; 404 when the account
/// has no such key.
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

/// `POST /v1/team/invites`: 201 with the member, status `invited`. Repeating an
/// invitation that is still open answers the same member.
///
/// # Errors
/// 403, 422 with every field error, 409 when the email is a member already.
pub async fn invite(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<Invite>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    caller.require(Permission::ManageTeam)?;
    let (email, role) = validate_invite(&body).map_err(invalid)?;
    authorize_change(caller.role, Role::Member, MemberChange::SetRole(role))?;
    let id = &caller.account_id;
    let new = Member::invited(
        email,
        role,
        caller.principal.as_str(),
        mfh_pipeline::now_millis(),
    );
    let member = match state.store.add_member(id, &new).await {
        Ok(()) => new,
        Err(TeamError::AlreadyMember { email }) => match state.store.member(id, &email).await? {
            Some(m) if m.status == MemberStatus::Invited && m.role == role => m,
            _ => return Err(ApiError::Conflict(format!("{email} is already a member"))),
        },
        Err(e) => return Err(team_error(e)),
    };
    let account_name = state.store.account(id).await?.map(|a| a.name);
    let inviter = caller
        .principal
        .contains('@')
        .then_some(caller.principal.as_str());
    let n = team_invite_notification(id, account_name.as_deref(), &member, inviter);
    crate::produce::record(&state, &state.kafka.topics().notifications(), id, &n).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// `GET /v1/team`: the members, by email.
///
/// # Errors
/// 403 without `ReadData`.
pub async fn list_team(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::ReadData)?;
    let members = state.store.list_members(&caller.account_id).await?;
    Ok(Json(json!({ "members": members })))
}

/// `PATCH /v1/team/{email}`: the member with the new role.
///
/// # Errors
/// 403, 422 for a bad role, 404 for a non-member, 409 when the account would lose its
/// last owner or the team changed meanwhile.
pub async fn set_member_role(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(email): AppPath<String>,
    AppJson(body): AppJson<SetRole>,
) -> Result<Json<Member>, ApiError> {
    caller.require(Permission::ManageTeam)?;
    let mut errors = Vec::new();
    let Some(role) = check_role("role", &body.role, &mut errors) else {
        return Err(invalid(errors));
    };
    let (id, email) = (&caller.account_id, member_email(&email)?);
    let target = state.store.member(id, &email).await?;
    let target = target.ok_or_else(|| ApiError::NotFound(format!("member {email}")))?;
    authorize_change(caller.role, target.role, MemberChange::SetRole(role))?;
    let member = state
        .store
        .set_role(id, &email, role)
        .await
        .map_err(team_error)?;
    Ok(Json(member))
}

/// `DELETE /v1/team/{email}`: 204.
///
/// # Errors
/// 403, 404 for a non-member, 409 when the account would lose its last owner.
pub async fn remove_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(email): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageTeam)?;
    let (id, email) = (&caller.account_id, member_email(&email)?);
    let target = state.store.member(id, &email).await?;
    let target = target.ok_or_else(|| ApiError::NotFound(format!("member {email}")))?;
    authorize_change(caller.role, target.role, MemberChange::Remove)?;
    state
        .store
        .remove_member(id, &email)
        .await
        .map_err(team_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mfh_processors::store::team::Permission::{
        ManageBilling, ManageKeys, ManageTeam, ReadData, RunHelpers,
    };
    use mfh_processors::store::team::check_owner_kept;

    #[test]
    fn role_permission_matrix() {
        let all = [ManageKeys, ManageTeam, ManageBilling, RunHelpers, ReadData];
        for p in all {
            assert!(Role::Owner.can(p), "owner {p:?}");
            assert_eq!(Role::Admin.can(p), p != ManageBilling, "admin {p:?}");
            assert_eq!(
                Role::Member.can(p),
                matches!(p, RunHelpers | ReadData),
                "member {p:?}"
            );
        }
    }

    #[test]
    fn roles_rank_and_round_trip() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn emails() {
        for ok in ["ada@example.com", "a.b+c@mail.example.co.uk", "x@a-b.io"] {
            assert!(email_shape_ok(ok), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
        ] {
            assert!(!email_shape_ok(bad), "{bad}");
        }
        for bad in [
            "a@b@example.com",
            "ada@-x.com",
            "ada@example..com",
            long.as_str(),
        ] {
            assert!(!email_shape_ok(bad), "{bad}");
        }
    }

    #[test]
    fn profile_validation_lists_every_error_and_trims() {
        let bad = PatchAccount {
            name: Some("  ".into()),
            billing_email: Some("nope".into()),
        };
        let errors = validate_profile(&bad).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "billing_email"]);
        let long = PatchAccount {
            name: Some("n".repeat(201)),
            billing_email: None,
        };
        assert!(validate_profile(&long).is_err());
        let good = PatchAccount {
            name: Some(format!(" {} ", "n".repeat(200))),
            billing_email: Some(" Bill@Example.com ".into()),
        };
        let (name, email) = validate_profile(&good).unwrap();
        assert_eq!(name.unwrap().len(), 200);
        assert_eq!(email.as_deref(), Some("Bill@Example.com"));
        let none = PatchAccount {
            name: None,
            billing_email: None,
        };
        assert_eq!(validate_profile(&none).unwrap(), (None, None));
    }

    #[test]
    fn key_and_invite_validation() {
        let body: CreateKey = serde_json::from_str(r#"{"role":"root"}"#).unwrap();
        assert_eq!(validate_new_key(&body).unwrap_err().len(), 2);
        let body: CreateKey = serde_json::from_str(r#"{"name":"ci"}"#).unwrap();
        assert_eq!(validate_new_key(&body).unwrap(), ("ci".to_owned(), None));
        assert!(serde_json::from_str::<CreateKey>(r#"{"name":"ci","scope":"x"}"#).is_err());
        let body: Invite = serde_json::from_str("{}").unwrap();
        assert_eq!(validate_invite(&body).unwrap_err().len(), 2);
        let body: Invite =
            serde_json::from_str(r#"{"email":" Ada@Example.COM ","role":"admin"}"#).unwrap();
        assert_eq!(
            validate_invite(&body).unwrap(),
            ("ada@example.com".to_owned(), Role::Admin)
        );
    }

    #[test]
    fn grants_and_member_changes() {
        let forbidden = |r: Result<(), ApiError>| matches!(r, Err(ApiError::Forbidden(_)));
        assert!(may_grant(Role::Admin, Role::Admin).is_ok());
        assert!(forbidden(may_grant(Role::Admin, Role::Owner)));
        assert!(forbidden(may_grant(Role::Member, Role::Admin)));
        let set = MemberChange::SetRole;
        assert!(authorize_change(Role::Admin, Role::Member, set(Role::Admin)).is_ok());
        assert!(authorize_change(Role::Admin, Role::Admin, MemberChange::Remove).is_ok());
        assert!(forbidden(authorize_change(
            Role::Admin,
            Role::Owner,
            set(Role::Admin)
        )));
        assert!(forbidden(authorize_change(
            Role::Admin,
            Role::Owner,
            MemberChange::Remove
        )));
        assert!(forbidden(authorize_change(
            Role::Admin,
            Role::Member,
            set(Role::Owner)
        )));
        assert!(forbidden(authorize_change(
            Role::Member,
            Role::Member,
            MemberChange::Remove
        )));
        assert!(authorize_change(Role::Owner, Role::Owner, set(Role::Admin)).is_ok());
        assert!(authorize_change(Role::Owner, Role::Member, set(Role::Owner)).is_ok());
    }

    #[test]
    fn the_last_active_owner_is_kept() {
        let owner = Member::active("o@example.com", Role::Owner, 1);
        let last = |c| check_owner_kept(&owner, c, 0);
        assert!(matches!(
            last(MemberChange::Remove),
            Err(TeamError::LastOwner)
        ));
        let demote = MemberChange::SetRole(Role::Admin);
        assert!(matches!(last(demote), Err(TeamError::LastOwner)));
        assert!(last(MemberChange::SetRole(Role::Owner)).is_ok());
        assert!(check_owner_kept(&owner, demote, 1).is_ok());
        let invited = Member::invited("i@example.com", Role::Owner, "key_1", 1);
        assert!(check_owner_kept(&invited, MemberChange::Remove, 0).is_ok());
        let admin = Member::active("a@example.com", Role::Admin, 1);
        assert!(check_owner_kept(&admin, MemberChange::Remove, 0).is_ok());
    }

    #[test]
    fn invite_notification_is_addressed_to_the_invitee() {
        let m = Member::invited("ada@example.com", Role::Admin, "key_1", 42);
        let n = team_invite_notification("acct", Some("Acme"), &m, None);
        assert_eq!(n.notification_id, "team_invite:ada@example.com:42");
        assert_eq!(n.kind, "team_invite");
        assert_eq!(n.recipient.as_deref(), Some("ada@example.com"));
        let data: Value = serde_json::from_str(&n.data_json).unwrap();
        assert_eq!(data["account_name"], "Acme");
        assert_eq!(data["role"], "admin");
    }
}

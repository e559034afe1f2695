//! `POST /v1/team/invites`, `GET /v1/team` and `PATCH|DELETE /v1/team/{email}`.

use super::*;
use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};

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

/// `POST /v1/team/invites`: 201 with the member, status `invited`. Repeating an
/// invitation that is still open answers the same member.
///
/// # Errors
/// 403, 422 with every field error, 409 when the email is a member already.
#[utoipa::path(
    post,
    operation_id = "team_invite",
    path = "/team/invites",
    tag = "account",
    request_body = Invite,
    responses(
        (status = 201, description = "The member, status invited; the invite email carries a one-time accept link", body = Member),
        (status = 403, description = "The role may not manage the team, or may not grant that role", body = crate::openapi::Problem),
        (status = 409, description = "Already a member", body = crate::openapi::Problem),
        (status = 422, description = "A bad email or role", body = crate::openapi::Problem),
    )
)]
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
    let (_, invite_url) = crate::routes::auth::issue_link(
        &state,
        mfh_processors::store::users::LinkPurpose::Invite,
        &member.email,
        Some((id, member.role)),
    )
    .await?;
    let mut n = team_invite_notification(id, account_name.as_deref(), &member, inviter);
    if let Ok(mut data) = serde_json::from_str::<Value>(&n.data_json) {
        data["invite_url"] = invite_url.into();
        n.data_json = data.to_string();
    }
    crate::produce::record(&state, &state.kafka.topics().notifications(), id, &n).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// `GET /v1/team`: the members, by email.
///
/// # Errors
/// 403 without `ReadData`.
#[utoipa::path(
    get,
    operation_id = "team_list_team",
    path = "/team",
    tag = "account",
    responses(
        (status = 200, description = "The members", body = Team),
    )
)]
pub async fn list_team(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Team>, ApiError> {
    caller.require(Permission::ReadData)?;
    let members = state.store.list_members(&caller.account_id).await?;
    Ok(Json(Team { members }))
}

/// The members of `GET /v1/team`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Team {
    /// By email.
    pub members: Vec<Member>,
}

/// `PATCH /v1/team/{email}`: the member with the new role.
///
/// # Errors
/// 403, 422 for a bad role, 404 for a non-member, 409 when the account would lose its
/// last owner or the team changed meanwhile.
#[utoipa::path(
    patch,
    operation_id = "team_set_member_role",
    path = "/team/{email}",
    tag = "account",
    params(("email" = String, Path, description = "The member's email")),
    request_body = SetRole,
    responses(
        (status = 200, description = "The member with the new role", body = Member),
        (status = 403, description = "The role may not make this change", body = crate::openapi::Problem),
        (status = 404, description = "Not a member", body = crate::openapi::Problem),
        (status = 409, description = "The account would lose its last owner, or the team changed meanwhile", body = crate::openapi::Problem),
        (status = 422, description = "A bad role", body = crate::openapi::Problem),
    )
)]
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
#[utoipa::path(
    delete,
    operation_id = "team_remove_member",
    path = "/team/{email}",
    tag = "account",
    params(("email" = String, Path, description = "The member's email")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "The role may not make this change", body = crate::openapi::Problem),
        (status = 404, description = "Not a member", body = crate::openapi::Problem),
        (status = 409, description = "The account would lose its last owner", body = crate::openapi::Problem),
    )
)]
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

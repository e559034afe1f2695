//! `GET|PUT /v1/account/notification-preferences`: which emails the account receives.
//! Sign-up, password and invite emails and the billing-critical notices are always sent
//! and listed in `always_sent`.

use super::Caller;
use crate::AppState;
use crate::error::{ApiError, AppJson};
use axum::extract::State;
use axum::{Extension, Json};
use mfh_processors::billing::{NotificationKind, NotificationPrefs};
use mfh_processors::store::team::Permission;
use serde::Serialize;

/// The preferences and what they cannot turn off.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preferences {
    /// Each category's switch.
    #[serde(flatten)]
    pub prefs: NotificationPrefs,
    /// The notification kinds no preference turns off.
    pub always_sent: Vec<NotificationKind>,
}

fn answer(prefs: NotificationPrefs) -> Json<Preferences> {
    Json(Preferences {
        prefs,
        always_sent: NotificationPrefs::always_sent(),
    })
}

/// `GET /v1/account/notification-preferences`.
///
/// # Errors
/// 403 without `ReadData`, 404 when the account has no record.
#[utoipa::path(
    get,
    operation_id = "prefs_get_prefs",
    path = "/account/notification-preferences",
    tag = "account",
    responses(
        (status = 200, description = "Each category's switch, and what is always sent", body = Preferences),
    )
)]
pub async fn get_prefs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Preferences>, ApiError> {
    caller.require(Permission::ReadData)?;
    let a = state
        .store
        .account(&caller.account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {}", caller.account_id)))?;
    Ok(answer(a.notification_prefs))
}

/// `PUT /v1/account/notification-preferences`: absent categories are switched on.
///
/// # Errors
/// 403 without `ManageTeam`, 422 for unknown fields or non-booleans.
#[utoipa::path(
    put,
    operation_id = "prefs_put_prefs",
    path = "/account/notification-preferences",
    tag = "account",
    request_body = NotificationPrefs,
    responses(
        (status = 200, description = "The saved preferences", body = Preferences),
        (status = 403, description = "The role may not change them", body = crate::openapi::Problem),
        (status = 422, description = "Unknown categories or values that are not booleans", body = crate::openapi::Problem),
    )
)]
pub async fn put_prefs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(prefs): AppJson<NotificationPrefs>,
) -> Result<Json<Preferences>, ApiError> {
    caller.require(Permission::ManageTeam)?;
    if !state
        .store
        .set_notification_prefs(&caller.account_id, &prefs)
        .await?
    {
        return Err(ApiError::NotFound(format!("account {}", caller.account_id)));
    }
    Ok(answer(prefs))
}

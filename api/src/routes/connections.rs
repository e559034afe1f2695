//! CRM connections: `POST|GET /v1/connections`, `GET|DELETE /v1/connections/{id}`,
//! `POST /v1/connections/{id}/health`, `POST|GET /v1/connections/{id}/sync`,
//! `POST /v1/connections/{id}/oauth/start` and the vendors' redirect back,
//! `GET /v1/oauth/callback`.
//!
//! Secrets go in once and never come back out: API tokens are sealed at rest, the
//! webhook token is shown once at creation and stored as a hash, and OAuth states are
//! one-time, expiring and stored hashed.

use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use crate::routes::account::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::billing::{LimitKind, check_limit};
use mfh_processors::connectors::config::Platform;
use mfh_processors::connectors::registry::{Connection, required_settings};
use mfh_processors::connectors::vendor::{Credentials, OAuthClient};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::connections::hash_token;
use mfh_processors::store::syncs::SyncState;
use mfh_processors::store::team::Permission;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /v1/connections`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// keap, gohighlevel, activecampaign, ontraport or hubspot.
    pub platform: String,
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Vendor settings (`api_url`, `location_id`, `tag_property`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Token credentials; omit for an OAuth connection authorised afterwards.
    #[serde(default)]
    pub credentials: Option<CredentialsIn>,
}

/// Credentials a caller may hand over directly.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIn {
    /// A bearer token (Keap PAT/SAK, GoHighLevel private integration, HubSpot private app).
    #[serde(default)]
    pub token: Option<String>,
    /// ActiveCampaign's API token.
    #[serde(default)]
    pub api_token: Option<String>,
    /// Ontraport's API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Ontraport's app id.
    #[serde(default)]
    pub app_id: Option<String>,
}

fn field(f: &str, m: impl Into<String>) -> FieldError {
    FieldError {
        field: f.into(),
        message: m.into(),
    }
}

fn credentials_for(
    platform: Platform,
    c: Option<&CredentialsIn>,
    errors: &mut Vec<FieldError>,
) -> Option<Credentials> {
    let present = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let c = c?;
    let creds = match platform {
        Platform::Activecampaign => {
            present(&c.api_token).map(|token| Credentials::ApiToken { token })
        }
        Platform::Ontraport => match (present(&c.api_key), present(&c.app_id)) {
            (Some(api_key), Some(app_id)) => Some(Credentials::ApiKeyAndAppId { api_key, app_id }),
            _ => None,
        },
        Platform::Keap => present(&c.token).map(|key| Credentials::KeapApiKey { key }),
        _ => present(&c.token).map(|token| Credentials::Bearer { token }),
    };
    if creds.is_none() {
        let need = match platform {
            Platform::Activecampaign => "api_token",
            Platform::Ontraport => "api_key and app_id",
            _ => "token",
        };
        errors.push(field(
            "credentials",
            format!("{} connections need {need}", platform.as_str()),
        ));
    }
    creds
}

/// A connection as the API shows it: never its credentials.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// `conn_…`.
    pub connection_id: String,
    /// keap, gohighlevel, activecampaign, ontraport or hubspot.
    pub platform: String,
    /// A display name.
    pub name: String,
    /// `pending_authorization`, `active` or `error`.
    pub status: String,
    /// Vendor settings that are not secret.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// When it was created, Unix ms.
    pub created_at: i64,
    /// Where the CRM delivers its webhooks (with `?token=` only in the answer to a create).
    pub webhook_url: String,
    /// The webhook token: only in the answer to a create, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_token: Option<String>,
}

/// `GET /v1/connections/{id}`: the connection and its contact sync.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionDetail {
    /// The connection.
    #[serde(flatten)]
    pub connection: ConnectionView,
    /// Its latest sync; null before the first.
    pub sync: Option<SyncState>,
}

/// The connections of `GET /v1/connections`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    /// Newest first.
    pub connections: Vec<ConnectionView>,
}

/// A connection's contact sync.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncView {
    /// The sync; null before the first.
    pub sync: Option<SyncState>,
}

/// The answer to a health check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// The connection.
    pub connection_id: String,
    /// Whether the CRM accepted an authenticated call.
    pub ok: bool,
    /// The connection's status now.
    pub status: String,
    /// What the CRM answered, when it refused.
    pub error: Option<HealthError>,
}

/// A CRM's refusal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthError {
    /// The error class: auth, rate_limited, unavailable, …
    pub kind: String,
    /// The CRM's message.
    pub message: String,
}

/// Where to send the user to authorise a connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthStart {
    /// The vendor's authorisation page, with this connection's one-time state.
    pub authorize_url: String,
    /// The one-time state.
    pub state: String,
    /// When the state expires, Unix ms.
    pub expires_at: i64,
}

/// An authorised connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Authorised {
    /// The connection.
    pub connection_id: String,
    /// `active`.
    pub status: String,
}

fn view(state: &AppState, c: &Connection) -> ConnectionView {
    let base = format!(
        "{}/v1/webhooks/crm/{}",
        state.cfg.public_url.trim_end_matches('/'),
        c.platform.as_str(),
    );
    ConnectionView {
        connection_id: c.connection_id.clone(),
        platform: c.platform.as_str().to_owned(),
        name: c.name.clone(),
        status: c.status.clone(),
        settings: c.settings.clone(),
        created_at: c.created_at,
        // GoHighLevel and HubSpot take one URL per app, set once by the operator in the
        // app's settings; events find their connection by location or portal.
        webhook_url: if c.platform.app_level_webhooks() {
            base
        } else {
            format!("{base}/{}", c.connection_id)
        },
        webhook_token: None,
    }
}

/// Asks the CRM which location or portal the connection reaches and records it, so
/// app-level webhook events find it; `None` for vendors that deliver per connection.
///
/// # Errors
/// The CRM's or the store's failure.
pub(crate) async fn learn_vendor_account(
    state: &AppState,
    conn: &Connection,
) -> Result<Option<String>, ApiError> {
    if !conn.platform.app_level_webhooks() {
        return Ok(None);
    }
    let crm = state
        .connectors
        .connector_for(conn.clone())
        .map_err(|e| crm_refusal(e, "the connection"))?;
    let Some(account) = crm
        .vendor_account()
        .await
        .map_err(|e| crm_refusal(e, "the connection's account"))?
    else {
        return Ok(None);
    };
    state
        .store
        .set_vendor_account(&conn.connection_id, conn.platform, &account)
        .await?;
    Ok(Some(account))
}

/// [`learn_vendor_account`] where a failure must not fail the caller (the connection
/// works; its webhooks are routed once a health check or delivery learns the account).
async fn try_learn_vendor_account(state: &AppState, conn: &Connection) {
    if let Err(e) = learn_vendor_account(state, conn).await {
        tracing::warn!(connection = %conn.connection_id, error = %e, "The connection's vendor account is not known yet; its webhooks wait for it.");
    }
}

fn vendors(state: &AppState) -> Result<(), ApiError> {
    if state.connectors.crm_config().is_none() {
        return Err(ApiError::Unavailable(
            "vendor CRMs are not enabled in this deployment".into(),
        ));
    }
    Ok(())
}

/// 244 random bits from two v4 UUIDs (the OS generator), hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `POST /v1/connections`: 201 with the connection and its webhook token, shown once.
///
/// # Errors
/// 403 without `ManageConnections` or at the plan's `connections` limit; 422 with every
/// field error.
#[utoipa::path(
    post,
    operation_id = "connections_create",
    path = "/connections",
    tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, description = "The connection, with its webhook token (shown once)", body = ConnectionView),
        (status = 403, description = "The role may not manage connections, or the plan's connection limit is reached", body = crate::openapi::Problem),
        (status = 422, description = "An unknown platform, or missing settings or credentials (every problem listed)", body = crate::openapi::Problem),
        (status = 503, description = "Vendor CRMs are not enabled in this deployment", body = crate::openapi::Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    caller.require(Permission::ManageConnections)?;
    vendors(&state)?;
    let mut errors = Vec::new();
    let platform = Platform::parse(body.platform.trim());
    if platform.is_none() {
        errors.push(field(
            "platform",
            "must be one of keap, gohighlevel, activecampaign, ontraport, hubspot",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if name.chars().count() > 200 {
        errors.push(field("name", "at most 200 characters"));
    }
    let mut creds = None;
    if let Some(p) = platform {
        for s in required_settings(p) {
            if body
                .settings
                .get(*s)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
            {
                errors.push(field(
                    &format!("settings.{s}"),
                    format!("{} connections need it", p.as_str()),
                ));
            }
        }
        if let Some(url) = body.settings.get("api_url").and_then(Value::as_str)
            && reqwest::Url::parse(url)
                .map(|u| !matches!(u.scheme(), "https" | "http"))
                .unwrap_or(true)
        {
            errors.push(field("settings.api_url", "must be an http(s) URL"));
        }
        if body.credentials.is_some() || !p.supports_oauth() {
            creds = credentials_for(p, body.credentials.as_ref(), &mut errors);
        }
    }
    let Some(platform) = platform.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid {
            message: "invalid connection".into(),
            errors,
        });
    };
    let account_id = &caller.account_id;
    let account = state
        .store
        .account(account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {account_id}")))?;
    let existing = state.store.connections_of(account_id).await?.len() as u64;
    let b = &account.billing;
    check_limit(b.plan, &b.limits(), LimitKind::Connections, existing)
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let conn = Connection {
        account_id: account_id.clone(),
        connection_id: format!("conn_{}", uuid::Uuid::new_v4().simple()),
        platform,
        name: if name.is_empty() {
            platform.as_str().to_owned()
        } else {
            name
        },
        settings: body.settings,
        status: if creds.is_some() {
            "active"
        } else {
            "pending_authorization"
        }
        .into(),
        created_at: mfh_pipeline::now_millis(),
    };
    let token = random_token();
    let cipher = state
        .connectors
        .cipher()
        .ok_or_else(|| ApiError::Unavailable("no cipher".into()))?;
    state
        .store
        .create_connection(&conn, creds.as_ref(), &hash_token(&token), cipher)
        .await?;
    if conn.status == "active" {
        try_learn_vendor_account(&state, &conn).await;
    }
    let mut v = view(&state, &conn);
    if !platform.signs_webhooks() {
        v.webhook_url = format!("{}?token={token}", v.webhook_url);
    }
    v.webhook_token = Some(token);
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/connections`: the account's connections, newest first.
///
/// # Errors
/// 403 without `ReadData`.
#[utoipa::path(
    get,
    operation_id = "connections_list",
    path = "/connections",
    tag = "connections",
    responses(
        (status = 200, description = "The account's connections, newest first", body = ConnectionList),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ConnectionList>, ApiError> {
    caller.require(Permission::ReadData)?;
    let conns = state.store.connections_of(&caller.account_id).await?;
    let connections = conns.iter().map(|c| view(&state, c)).collect();
    Ok(Json(ConnectionList { connections }))
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Connection, ApiError> {
    if !id.starts_with("conn_") || id.len() > 64 {
        return Err(ApiError::NotFound(format!("connection {id}")));
    }
    state
        .store
        .account_connection(&caller.account_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("connection {id}")))
}

/// `GET /v1/connections/{id}`: the connection with its sync progress.
///
/// # Errors
/// 404 when the account has no such connection.
#[utoipa::path(
    get,
    operation_id = "connections_get_one",
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 200, description = "The connection and its sync", body = ConnectionDetail),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<ConnectionDetail>, ApiError> {
    caller.require(Permission::ReadData)?;
    let c = owned(&state, &caller, &id).await?;
    Ok(Json(ConnectionDetail {
        connection: view(&state, &c),
        sync: state.store.sync_state(&id).await?,
    }))
}

/// `DELETE /v1/connections/{id}`: 204.
///
/// # Errors
/// 404 when the account has no such connection.
#[utoipa::path(
    delete,
    operation_id = "connections_delete",
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageConnections)?;
    owned(&state, &caller, &id).await?;
    if !state
        .store
        .delete_connection(&caller.account_id, &id)
        .await?
    {
        return Err(ApiError::NotFound(format!("connection {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connections/{id}/health`: one authenticated call to the CRM; 200 with
/// `ok` and the CRM's error, and the connection's status updated to match.
///
/// # Errors
/// 404 when the account has no such connection.
#[utoipa::path(
    post,
    operation_id = "connections_health",
    path = "/connections/{id}/health",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 200, description = "Whether the CRM accepted an authenticated call; the status is updated to match", body = Health),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<Health>, ApiError> {
    caller.require(Permission::ReadData)?;
    let c = owned(&state, &caller, &id).await?;
    let result = match state.connectors.connector_for(c.clone()) {
        Ok(crm) => crm.healthcheck().await,
        Err(e) => Err(e),
    };
    let (ok, status, error) = match &result {
        Ok(()) => (true, "active", None),
        Err(e) if c.status == "pending_authorization" => (false, "pending_authorization", Some(e)),
        Err(e) => (false, "error", Some(e)),
    };
    if status != c.status {
        state.store.set_connection_status(&id, status).await?;
    }
    if ok {
        try_learn_vendor_account(&state, &c).await;
    }
    Ok(Json(Health {
        connection_id: id,
        ok,
        status: status.into(),
        error: error.map(|e| HealthError {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }),
    }))
}

/// `POST /v1/connections/{id}/sync`: 202; asks for a full sync (a running one is left
/// to finish).
///
/// # Errors
/// 404 when the account has no such connection; 409 before it is authorised.
#[utoipa::path(
    post,
    operation_id = "connections_request_sync",
    path = "/connections/{id}/sync",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 202, description = "A full contact sync is requested (a running one is left to finish)", body = SyncView),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
        (status = 409, description = "The connection is not authorised yet", body = crate::openapi::Problem),
    )
)]
pub async fn request_sync(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<(StatusCode, Json<SyncView>), ApiError> {
    caller.require(Permission::ManageConnections)?;
    let c = owned(&state, &caller, &id).await?;
    if c.status != "active" {
        return Err(ApiError::Conflict(format!(
            "connection {id} is {}; authorise it first",
            c.status
        )));
    }
    let s = state
        .store
        .request_sync(&caller.account_id, &id, mfh_pipeline::now_millis())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(SyncView { sync: Some(s) })))
}

/// `GET /v1/connections/{id}/sync`: the sync's progress.
///
/// # Errors
/// 404 when the account has no such connection.
#[utoipa::path(
    get,
    operation_id = "connections_sync_progress",
    path = "/connections/{id}/sync",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 200, description = "The sync's progress", body = SyncView),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
    )
)]
pub async fn sync_progress(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<SyncView>, ApiError> {
    caller.require(Permission::ReadData)?;
    owned(&state, &caller, &id).await?;
    Ok(Json(SyncView {
        sync: state.store.sync_state(&id).await?,
    }))
}

/// `POST /v1/connections/{id}/oauth/start`: the vendor's authorisation URL with a
/// one-time `state` that expires after `crm.oauth_state_ttl`.
///
/// # Errors
/// 404 for an unknown connection; 409 for a vendor without OAuth or without a
/// configured client.
#[utoipa::path(
    post,
    operation_id = "connections_oauth_start",
    path = "/connections/{id}/oauth/start",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…)")),
    responses(
        (status = 200, description = "Send the user's browser to authorize_url", body = OAuthStart),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
        (status = 409, description = "OAuth is not available for this CRM here", body = crate::openapi::Problem),
    )
)]
pub async fn oauth_start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<OAuthStart>, ApiError> {
    caller.require(Permission::ManageConnections)?;
    vendors(&state)?;
    let c = owned(&state, &caller, &id).await?;
    let crm = state
        .connectors
        .crm_config()
        .ok_or_else(|| ApiError::Unavailable("no CRM config".into()))?;
    let v = crm.vendor(c.platform);
    if !c.platform.supports_oauth() || v.oauth().is_none() || v.authorize_url.is_empty() {
        return Err(ApiError::Conflict(format!(
            "OAuth is not available for {} here",
            c.platform.as_str()
        )));
    }
    let oauth_state = random_token();
    let ttl = i64::try_from(crm.oauth_state_ttl.as_millis()).unwrap_or(600_000);
    let expires_at = mfh_pipeline::now_millis() + ttl;
    state
        .store
        .put_oauth_state(&oauth_state, &caller.account_id, &id, expires_at)
        .await?;
    let mut url = reqwest::Url::parse(&v.authorize_url)
        .map_err(|e| ApiError::Unavailable(format!("authorize_url: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &v.client_id)
        .append_pair("redirect_uri", &crm.oauth_redirect_url)
        .append_pair("scope", &v.scopes.join(" "))
        .append_pair("state", &oauth_state);
    Ok(Json(OAuthStart {
        authorize_url: url.to_string(),
        state: oauth_state,
        expires_at,
    }))
}

/// A tag in a CRM's catalog.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagView {
    /// The id helpers' configs name.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its category, if the CRM has them.
    pub category: Option<String>,
}

/// The tags of `GET /v1/connections/{id}/tags`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagList {
    /// As the CRM lists them.
    pub tags: Vec<TagView>,
}

/// What a CRM's refusal means to the API's caller (never 401: the caller's own
/// credentials were fine).
fn crm_refusal(e: mfh_processors::connectors::CrmError, what: &str) -> ApiError {
    use mfh_processors::connectors::CrmError as E;
    match e {
        E::NotFound { object } => ApiError::NotFound(object),
        E::Unsupported { .. } => ApiError::Conflict(format!(
            "this CRM cannot list its {what} here; type the id instead"
        )),
        E::Auth(m) => ApiError::Conflict(format!(
            "the CRM refused the connection's credentials ({m}); connect it again"
        )),
        E::Invalid { .. } => ApiError::BadGateway(e.to_string()),
        E::RateLimited { .. } | E::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
    }
}

/// `GET /v1/connections/{id}/tags`: the CRM's tag catalog, for the helper form's tag
/// picker (`sandbox` names the account's sandbox CRM).
///
/// # Errors
/// 404 for an unknown connection; 409 when the CRM cannot list tags or refuses the
/// credentials; 503 while it is unavailable.
#[utoipa::path(
    get,
    path = "/connections/{id}/tags",
    operation_id = "connections_tags",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id (conn_…), or sandbox")),
    responses(
        (status = 200, description = "The CRM's tags", body = TagList),
        (status = 404, description = "No such connection in this account", body = crate::openapi::Problem),
        (status = 409, description = "The CRM cannot list its tags, or refused the connection's credentials", body = crate::openapi::Problem),
        (status = 503, description = "The CRM is unavailable or rate limiting; retry", body = crate::openapi::Problem),
    )
)]
pub async fn tags(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppPath(id): AppPath<String>,
) -> Result<Json<TagList>, ApiError> {
    caller.require(Permission::ReadData)?;
    if !mfh_processors::connectors::sandbox::is_sandbox(&id) {
        owned(&state, &caller, &id).await?;
    }
    let crm = state
        .connectors
        .resolve(&caller.account_id, &id)
        .await
        .map_err(|e| crm_refusal(e, "tags"))?;
    let tags = crm.list_tags().await.map_err(|e| crm_refusal(e, "tags"))?;
    Ok(Json(TagList {
        tags: tags
            .into_iter()
            .map(|t| TagView {
                id: t.id,
                name: t.name,
                category: t.category,
            })
            .collect(),
    }))
}

/// The vendor's redirect back.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The authorisation code.
    #[serde(default)]
    pub code: Option<String>,
    /// The state from `oauth/start`.
    #[serde(default)]
    pub state: Option<String>,
    /// The vendor's error, when the user refused.
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /v1/oauth/callback`: exchanges the code for tokens, seals them on the connection
/// and marks it active. Needs no API key: the state proves which connection it is.
///
/// # Errors
/// 400 for a missing, unknown, used or expired state, or a refused code.
#[utoipa::path(
    get,
    operation_id = "connections_oauth_callback",
    path = "/oauth/callback",
    tag = "connections",
    params(Callback),
    responses(
        (status = 200, description = "The connection is authorised (JSON callers)", body = Authorised),
        (status = 303, description = "A browser (Accept: text/html) returns to /connections?connected=ID or ?oauth_error=…"),
        (status = 400, description = "A missing, unknown, used or expired state, or a refused code", body = crate::openapi::Problem),
        (status = 502, description = "The CRM's token endpoint failed", body = crate::openapi::Problem),
    )
)]
pub async fn oauth_callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    crate::error::AppQuery(q): crate::error::AppQuery<Callback>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let result = finish_oauth(&state, q).await;
    if !browser {
        return result.map(Json).into_response();
    }
    // The user's browser comes back to the dashboard's connections page, told how it went.
    let query = match result {
        Ok(v) => format!("connected={}", v.connection_id),
        Err(e) => serde_urlencoded::to_string([("oauth_error", e.to_string())])
            .unwrap_or_else(|_| "oauth_error=failed".into()),
    };
    axum::response::Redirect::to(&format!("/connections?{query}")).into_response()
}

async fn finish_oauth(state: &AppState, q: Callback) -> Result<Authorised, ApiError> {
    let state = state.clone();
    vendors(&state)?;
    if let Some(e) = q.error {
        return Err(ApiError::BadRequest(format!(
            "the CRM refused the authorisation: {e}"
        )));
    }
    let (Some(code), Some(s)) = (q.code, q.state) else {
        return Err(ApiError::BadRequest("code and state are required".into()));
    };
    let (account_id, connection_id, expires_at) = state
        .store
        .take_oauth_state(&s)
        .await?
        .ok_or_else(|| ApiError::BadRequest("unknown or already used OAuth state".into()))?;
    if expires_at < mfh_pipeline::now_millis() {
        return Err(ApiError::BadRequest(
            "the OAuth state has expired; start again".into(),
        ));
    }
    let conn = state
        .store
        .account_connection(&account_id, &connection_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest("the connection was deleted".into()))?;
    let crm = state
        .connectors
        .crm_config()
        .ok_or_else(|| ApiError::Unavailable("no CRM config".into()))?;
    let oauth: OAuthClient = crm
        .vendor(conn.platform)
        .oauth()
        .ok_or_else(|| ApiError::Unavailable("no OAuth client configured".into()))?;
    let http = state
        .connectors
        .http()
        .ok_or_else(|| ApiError::Unavailable("no HTTP client".into()))?;
    let tokens = oauth
        .token(
            http,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &crm.oauth_redirect_url),
            ],
        )
        .await
        .map_err(|e| match e {
            mfh_processors::connectors::CrmError::Auth(m) => ApiError::BadRequest(m),
            other => ApiError::BadGateway(other.to_string()),
        })?;
    let mut conn = conn;
    // The user may pick another sub-account at GoHighLevel's chooselocation than the
    // one typed in: the token's location is the one every call must name.
    if let Some(loc) = tokens.location_id.as_deref().map(str::trim)
        && conn.platform == Platform::Gohighlevel
        && !loc.is_empty()
        && conn.setting("location_id") != Some(loc)
    {
        conn.settings
            .insert("location_id".into(), Value::String(loc.to_owned()));
        state
            .store
            .set_connection_settings(&connection_id, &conn.settings)
            .await?;
    }
    let creds = OAuthClient::credentials(tokens, "", mfh_pipeline::now_millis());
    let cipher = state
        .connectors
        .cipher()
        .ok_or_else(|| ApiError::Unavailable("no cipher".into()))?;
    state
        .store
        .set_connection_credentials(&conn, &creds, None, cipher)
        .await?;
    state
        .store
        .set_connection_status(&connection_id, "active")
        .await?;
    try_learn_vendor_account(&state, &conn).await;
    Ok(Authorised {
        connection_id,
        status: "active".into(),
    })
}

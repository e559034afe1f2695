//! `POST /v1/webhooks/crm/{platform}/{connection_id}` and, for GoHighLevel and
//! HubSpot, `POST /v1/webhooks/crm/{platform}`: a CRM's webhook delivery.
//!
//! HubSpot and GoHighLevel deliveries must carry a valid signature made within the
//! replay window, and an exact replay of an accepted signature is refused. Both vendors
//! send every installed location's or portal's events to one URL per app, so each event
//! goes to the connections that reach the location or portal it names (learnt when the
//! connection is made), whichever URL it arrived at; an event naming one no connection
//! reaches is acknowledged and counted, never attributed to anyone. Keap,
//! ActiveCampaign and Ontraport sign nothing, so their deliveries must carry the
//! connection's webhook token (`?token=`, compared by hash). Each event is normalised
//! into a `CrmEvent`, deduplicated by the vendor's event id, and answered 200 only after
//! its record is durably produced; the CRM event processor does the rest.

use crate::AppState;
use crate::error::{ApiError, AppPath};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use mfh_processors::connectors::config::Platform;
use mfh_processors::connectors::registry::Connection;
use mfh_processors::crm_webhooks::ParsedEvent;
use mfh_processors::crm_webhooks::{self, Delivery, Headers, Secrets, WebhookError};
use mfh_processors::store::connections::hash_token;
use mfh_schemas::CrmEvent;
use std::collections::HashMap;

struct HeaderView<'a>(&'a HeaderMap);

impl Headers for HeaderView<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

fn refused(e: &WebhookError) -> ApiError {
    match e {
        WebhookError::Malformed { .. } => ApiError::BadRequest(e.to_string()),
        WebhookError::NotConfigured(_) => ApiError::Unavailable(e.to_string()),
        WebhookError::BadSignature(_) | WebhookError::Stale { .. } => {
            ApiError::Unauthenticated(e.to_string())
        }
    }
}

/// The answer to a CRM delivery.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CrmReceipt {
    /// Events put on the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u32>,
    /// Events received before, skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u32>,
    /// Events naming a location or portal no connection reaches: acknowledged, dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrouted: Option<u32>,
    /// True for Keap's subscription handshake (its X-Hook-Secret is echoed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<bool>,
}

/// Checks a signed vendor's delivery to `path` (below `/v1`) and refuses a replay; the
/// signature's key, to be marked once the delivery's events are on the pipeline.
async fn verify_signed(
    state: &AppState,
    p: Platform,
    path: &str,
    uri: &Uri,
    view: &HeaderView<'_>,
    body: &[u8],
    now: i64,
) -> Result<Option<String>, ApiError> {
    let crm = state
        .connectors
        .crm_config()
        .ok_or_else(|| ApiError::NotFound(format!("webhook {path}")))?;
    // The vendor signed the URL it called; inside the nested router `uri` has lost its
    // `/v1` prefix, so the path is rebuilt from the route.
    let url = format!(
        "{}/v1{path}{}",
        state.cfg.public_url.trim_end_matches('/'),
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let delivery = Delivery {
        method: "POST",
        url: &url,
        body,
        content_type: view.get("content-type").unwrap_or_default(),
    };
    let secrets = Secrets {
        hubspot_client_secret: crm.hubspot.client_secret.clone(),
        ghl_ed25519_public_key: crm.gohighlevel.webhook_public_key.clone(),
    };
    crm_webhooks::verify(p, &delivery, view, &secrets, now, crm.webhook_replay_window)
        .map_err(|e| refused(&e))?;
    let Some(sig) = crm_webhooks::signature_of(p, view) else {
        return Ok(None);
    };
    let key = format!("sig:{sig}");
    if state.store.crm_event_seen(&key).await? {
        return Err(ApiError::Conflict(
            "this signed delivery was already accepted (replay)".into(),
        ));
    }
    Ok(Some(key))
}

fn parse(p: Platform, view: &HeaderView<'_>, body: &[u8]) -> Result<Vec<ParsedEvent>, ApiError> {
    let delivery = Delivery {
        method: "POST",
        url: "",
        body,
        content_type: view.get("content-type").unwrap_or_default(),
    };
    crm_webhooks::parse(p, &delivery).map_err(|e| refused(&e))
}

/// The connection whose URL a delivery arrived at, with the vendor account it reaches;
/// `None` at the vendor app's URL.
type Arrival = Option<(Connection, Option<String>)>;

/// The connections an event belongs to. One naming a vendor account goes to the
/// connections reaching it, whatever URL it came to; one naming none (an unsigned
/// vendor, or a signed vendor's event without the id) goes to the URL's connection.
async fn targets(
    state: &AppState,
    p: Platform,
    arrival: &Arrival,
    event: &ParsedEvent,
    found: &mut HashMap<String, Vec<Connection>>,
) -> Result<Vec<Connection>, ApiError> {
    let Some(acc) = event
        .vendor_account
        .as_ref()
        .filter(|_| p.app_level_webhooks())
    else {
        return Ok(arrival.iter().map(|(c, _)| c.clone()).collect());
    };
    if !found.contains_key(acc) {
        let mut at = state.store.connections_at(p, acc).await?;
        // The index may lag a connection whose account was recorded just now.
        if let Some((c, Some(own))) = arrival
            && own == acc
            && !at.iter().any(|x| x.connection_id == c.connection_id)
        {
            at.push(c.clone());
        }
        found.insert(acc.clone(), at);
    }
    Ok(found.get(acc).cloned().unwrap_or_default())
}

/// Puts each event on the pipeline once per connection it belongs to.
async fn deliver(
    state: &AppState,
    p: Platform,
    arrival: &Arrival,
    events: Vec<ParsedEvent>,
    signature: Option<String>,
    now: i64,
) -> Result<CrmReceipt, ApiError> {
    let platform = p.as_str();
    let topic = state.kafka.topics().crm_events();
    let (mut received, mut duplicates, mut unrouted) = (0, 0, 0);
    let mut found = HashMap::new();
    for e in events {
        let to = targets(state, p, arrival, &e, &mut found).await?;
        if to.is_empty() {
            unrouted += 1;
            state
                .metrics
                .crm_events_unrouted
                .get_or_create(&mfh_pipeline::metrics::PlatformLabels {
                    platform: platform.to_owned(),
                })
                .inc();
            tracing::warn!(platform, vendor_account = ?e.vendor_account, "CRM event for no connection acknowledged and dropped.");
            continue;
        }
        for conn in to {
            let connection_id = &conn.connection_id;
            let event_id = crm_webhooks::sha256_hex(
                format!("{platform}/{connection_id}/{}", e.vendor_event_id).as_bytes(),
            );
            if state.store.crm_event_seen(&event_id).await? {
                duplicates += 1;
                continue;
            }
            let record = CrmEvent {
                event_id: event_id.clone(),
                vendor_event_id: e.vendor_event_id.clone(),
                account_id: conn.account_id.clone(),
                connection_id: connection_id.clone(),
                platform: platform.to_owned(),
                kind: e.kind,
                contact_id: e.contact_id.clone(),
                tag_id: e.tag_id.clone(),
                tag_name: e.tag_name.clone(),
                vendor_event_type: e.vendor_event_type.clone(),
                occurred_at: e.occurred_at.unwrap_or(now),
                received_at: now,
                payload_json: e.payload.to_string(),
            };
            crate::produce::record(state, &topic, &record.key(), &record).await?;
            state.store.mark_crm_event(&event_id, now).await?;
            received += 1;
        }
    }
    if let Some(sig) = signature {
        state.store.mark_crm_event(&sig, now).await?;
    }
    Ok(CrmReceipt {
        received: Some(received),
        duplicates: Some(duplicates),
        unrouted: (unrouted > 0).then_some(unrouted),
        handshake: None,
    })
}

/// Receives one delivery at a connection's URL.
///
/// # Errors
/// 404 for an unknown platform or connection, 401 for a bad signature, a stale
/// timestamp or a wrong token, 409 for a replayed signature, 400 for an unreadable body,
/// 503 when the broker or store is down (the vendor retries).
#[utoipa::path(
    post,
    operation_id = "crm_webhooks_receive",
    path = "/webhooks/crm/{platform}/{connection_id}",
    tag = "webhooks",
    params(("platform" = String, Path, description = "keap, gohighlevel, activecampaign, ontraport or hubspot"), ("connection_id" = String, Path, description = "The connection (conn_…)"), ("token" = Option<String>, Query, description = "The connection's webhook token, for CRMs that do not sign")),
    request_body(content = Object, description = "The CRM's delivery, as the CRM sends it (JSON or form)"),
    responses(
        (status = 200, description = "The events were put on the pipeline (duplicates skipped; GoHighLevel and HubSpot events go to the connections reaching the location or portal they name), or Keap's handshake was answered", body = CrmReceipt),
        (status = 400, description = "An unreadable body", body = crate::openapi::Problem),
        (status = 401, description = "A bad signature, a stale timestamp or a wrong token", body = crate::openapi::Problem),
        (status = 404, description = "Unknown platform or connection", body = crate::openapi::Problem),
        (status = 409, description = "A replayed signed delivery", body = crate::openapi::Problem),
        (status = 503, description = "The broker or store is down (the vendor retries)", body = crate::openapi::Problem),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    AppPath((platform, connection_id)): AppPath<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("webhook {platform}/{connection_id}"));
    let p = Platform::parse(&platform).ok_or_else(not_found)?;
    state.connectors.crm_config().ok_or_else(not_found)?;
    if !connection_id.starts_with("conn_") || connection_id.len() > 64 {
        return Err(not_found());
    }
    let target = state
        .store
        .webhook_target(&connection_id)
        .await?
        .filter(|t| t.connection.platform == p)
        .ok_or_else(not_found)?;
    let now = mfh_pipeline::now_millis();
    let view = HeaderView(&headers);
    let mut signature = None;
    if p.signs_webhooks() {
        let path = format!("/webhooks/crm/{platform}/{connection_id}");
        signature = verify_signed(&state, p, &path, &uri, &view, &body, now).await?;
    } else {
        let token = query
            .get("token")
            .map(String::as_str)
            .or_else(|| view.get("x-mfh-webhook-token"))
            .unwrap_or_default();
        let ok = target.token_hash.as_ref().is_some_and(|h| {
            crm_webhooks::constant_time_eq(h.as_bytes(), hash_token(token).as_bytes())
        });
        if token.is_empty() || !ok {
            return Err(ApiError::Unauthenticated(
                "the webhook token is missing or wrong".into(),
            ));
        }
    }
    // Keap's subscription handshake: echo the secret, process nothing.
    if p == Platform::Keap
        && let Some(secret) = headers.get("x-hook-secret")
    {
        let mut resp = Json(CrmReceipt {
            received: None,
            duplicates: None,
            unrouted: None,
            handshake: Some(true),
        })
        .into_response();
        resp.headers_mut().insert(
            "x-hook-secret",
            HeaderValue::from_bytes(secret.as_bytes())
                .map_err(|_| ApiError::BadRequest("unreadable X-Hook-Secret".into()))?,
        );
        return Ok(resp);
    }
    let events = parse(p, &view, &body)?;
    let own = match target.vendor_account {
        Some(a) => Some(a),
        // A connection made before mfh recorded vendor accounts: learnt once, here.
        None if p.app_level_webhooks() && events.iter().any(|e| e.vendor_account.is_some()) => {
            crate::routes::connections::learn_vendor_account(&state, &target.connection)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?
        }
        None => None,
    };
    let arrival = Some((target.connection, own));
    Ok(Json(deliver(&state, p, &arrival, events, signature, now).await?).into_response())
}

/// Receives a GoHighLevel or HubSpot delivery at the vendor app's one webhook URL.
///
/// # Errors
/// 404 for a vendor that delivers per connection, 401 for a bad signature or a stale
/// timestamp, 409 for a replayed signature, 400 for an unreadable body, 503 when the
/// broker or store is down (the vendor retries).
#[utoipa::path(
    post,
    operation_id = "crm_webhooks_receive_app",
    path = "/webhooks/crm/{platform}",
    tag = "webhooks",
    params(("platform" = String, Path, description = "gohighlevel or hubspot")),
    request_body(content = Object, description = "The CRM's signed delivery, as the CRM sends it"),
    responses(
        (status = 200, description = "Each event was put on the pipeline for the connections reaching the location or portal it names; events for none are counted in `unrouted`", body = CrmReceipt),
        (status = 400, description = "An unreadable body", body = crate::openapi::Problem),
        (status = 401, description = "A bad signature or a stale timestamp", body = crate::openapi::Problem),
        (status = 404, description = "Not a vendor with app-level webhooks", body = crate::openapi::Problem),
        (status = 409, description = "A replayed signed delivery", body = crate::openapi::Problem),
        (status = 503, description = "The broker or store is down, or the signing key is not configured (the vendor retries)", body = crate::openapi::Problem),
    )
)]
pub async fn receive_app(
    State(state): State<AppState>,
    AppPath(platform): AppPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CrmReceipt>, ApiError> {
    let p = Platform::parse(&platform)
        .filter(|p| p.app_level_webhooks())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "webhook {platform}: only gohighlevel and hubspot deliver to one URL per app; \
                 other CRMs use the connection's webhook URL"
            ))
        })?;
    let now = mfh_pipeline::now_millis();
    let view = HeaderView(&headers);
    let path = format!("/webhooks/crm/{platform}");
    let signature = verify_signed(&state, p, &path, &uri, &view, &body, now).await?;
    let events = parse(p, &view, &body)?;
    Ok(Json(
        deliver(&state, p, &None, events, signature, now).await?,
    ))
}

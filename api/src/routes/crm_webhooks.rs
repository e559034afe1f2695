//! `POST /v1/webhooks/crm/{platform}/{connection_id}`: a CRM's webhook delivery.
//!
//! HubSpot and GoHighLevel deliveries must carry a valid signature made within the
//! replay window, and an exact replay of an accepted signature is refused. Keap,
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
    /// True for Keap's subscription handshake (its X-Hook-Secret is echoed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<bool>,
}

/// Receives one delivery.
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
        (status = 200, description = "The events were put on the pipeline (duplicates skipped), or Keap's handshake was answered", body = CrmReceipt),
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
    let crm = state.connectors.crm_config().ok_or_else(not_found)?;
    if !connection_id.starts_with("conn_") || connection_id.len() > 64 {
        return Err(not_found());
    }
    let (conn, token_hash) = state
        .store
        .connection_with_token_hash(&connection_id)
        .await?
        .filter(|(c, _)| c.platform == p)
        .ok_or_else(not_found)?;
    let now = mfh_pipeline::now_millis();
    let view = HeaderView(&headers);
    let mut signature = None;
    if p.signs_webhooks() {
        // The vendor signed the URL it called; inside the nested router `uri` has lost
        // its `/v1` prefix, so the path is rebuilt from the route.
        let url = format!(
            "{}/v1/webhooks/crm/{platform}/{connection_id}{}",
            state.cfg.public_url.trim_end_matches('/'),
            uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let content_type = view.get("content-type").unwrap_or_default();
        let delivery = Delivery {
            method: "POST",
            url: &url,
            body: &body,
            content_type,
        };
        let secrets = Secrets {
            hubspot_client_secret: crm.hubspot.client_secret.clone(),
            ghl_ed25519_public_key: crm.gohighlevel.webhook_public_key.clone(),
        };
        crm_webhooks::verify(
            p,
            &delivery,
            &view,
            &secrets,
            now,
            crm.webhook_replay_window,
        )
        .map_err(|e| refused(&e))?;
        if let Some(sig) = crm_webhooks::signature_of(p, &view) {
            let key = format!("sig:{sig}");
            if state.store.crm_event_seen(&key).await? {
                return Err(ApiError::Conflict(
                    "this signed delivery was already accepted (replay)".into(),
                ));
            }
            signature = Some(key);
        }
    } else {
        let token = query
            .get("token")
            .map(String::as_str)
            .or_else(|| view.get("x-mfh-webhook-token"))
            .unwrap_or_default();
        let ok = token_hash.is_some_and(|h| {
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
    let content_type = view.get("content-type").unwrap_or_default().to_owned();
    let delivery = Delivery {
        method: "POST",
        url: "",
        body: &body,
        content_type: &content_type,
    };
    let events = crm_webhooks::parse(p, &delivery).map_err(|e| refused(&e))?;
    let topic = state.kafka.topics().crm_events();
    let (mut received, mut duplicates) = (0, 0);
    for e in events {
        let event_id = crm_webhooks::sha256_hex(
            format!("{platform}/{connection_id}/{}", e.vendor_event_id).as_bytes(),
        );
        if state.store.crm_event_seen(&event_id).await? {
            duplicates += 1;
            continue;
        }
        let record = CrmEvent {
            event_id: event_id.clone(),
            vendor_event_id: e.vendor_event_id,
            account_id: conn.account_id.clone(),
            connection_id: connection_id.clone(),
            platform: platform.clone(),
            kind: e.kind,
            contact_id: e.contact_id,
            tag_id: e.tag_id,
            tag_name: e.tag_name,
            vendor_event_type: e.vendor_event_type,
            occurred_at: e.occurred_at.unwrap_or(now),
            received_at: now,
            payload_json: e.payload.to_string(),
        };
        crate::produce::record(&state, &topic, &record.key(), &record).await?;
        state.store.mark_crm_event(&event_id, now).await?;
        received += 1;
    }
    if let Some(sig) = signature {
        state.store.mark_crm_event(&sig, now).await?;
    }
    Ok(Json(CrmReceipt {
        received: Some(received),
        duplicates: Some(duplicates),
        handshake: None,
    })
    .into_response())
}

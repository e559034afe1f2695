//! `POST /v1/webhooks/stripe`: verifies a Stripe delivery on its raw bytes, drops
//! duplicates by event id, finds the account and produces a `StripeEvent` keyed by it.
//! The billing processor does the rest, so the answer is fast.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use mfh_processors::billing::{BillingEvent, parse_event_bytes};
use mfh_schemas::StripeEvent;
use serde_json::Value;
use stripe_webhook::{Webhook, WebhookError};

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header, or one without `t` and `v1`.
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    /// The timestamp is outside the 300-second tolerance.
    #[error("the Stripe-Signature timestamp {0} is outside the 300-second tolerance")]
    Stale(i64),
    /// No `v1` signature matches any configured secret.
    #[error("no v1 signature in Stripe-Signature matches the endpoint secret")]
    Mismatch,
}

/// Verifies `header` over the raw `payload` with async-stripe's verifier (HMAC-SHA256 of
/// `"{t}.{payload}"`, 300-second tolerance around `now`). Stripe sends one `v1` per
/// active secret while secrets roll, and mfh may hold several secrets; each pair is
/// tried, and any match verifies.
///
/// # Errors
/// [`SignatureError`].
pub fn verify(
    payload: &str,
    header: &str,
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1s = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) if !v.is_empty() => v1s.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1s.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut stale = false;
    for secret in secrets {
        for v1 in &v1s {
            let one = format!("t={t},v1={v1}");
            match Webhook::construct_event_with_timestamp(payload, &one, secret, now) {
                // The signature is checked before the body is parsed into async-stripe's
                // types, so a parse error means a verified body whose shape (API
                // version) differs from the SDK's; mfh reads both shapes itself.
                Ok(_) | Err(WebhookError::BadParse(_)) => return Ok(()),
                Err(WebhookError::BadTimestamp(_)) => stale = true,
                Err(_) => {}
            }
        }
    }
    Err(if stale {
        SignatureError::Stale(t)
    } else {
        SignatureError::Mismatch
    })
}

/// The answer to a Stripe delivery.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StripeReceipt {
    /// Always true: Stripe need not send it again.
    pub received: bool,
    /// Stripe's event id.
    pub event_id: String,
    /// The account it concerns (absent for a duplicate or a dead-lettered event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// True when the event was received before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Why it went to the dead-letter topic instead (`unknown_account`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<String>,
}

/// Receives one Stripe delivery.
///
/// # Errors
/// 400 for a bad signature or body, 503 when webhooks are not configured or the broker
/// or store is down (Stripe retries).
#[utoipa::path(
    post,
    operation_id = "stripe_receive",
    path = "/webhooks/stripe",
    tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=… (HMAC-SHA256 of t.body, 300 s tolerance)")),
    request_body(content = Object, description = "A Stripe event, exactly as Stripe sent it", content_type = "application/json"),
    responses(
        (status = 200, description = "Received (or a duplicate, or dead-lettered for an unknown account)", body = StripeReceipt),
        (status = 400, description = "A missing, stale or wrong Stripe-Signature, or a body that is not UTF-8", body = crate::openapi::Problem),
        (status = 422, description = "A verified body that is not a Stripe event", body = crate::openapi::Problem),
        (status = 503, description = "Webhooks are not configured, or the broker or store is down (Stripe retries)", body = crate::openapi::Problem),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<StripeReceipt>, ApiError> {
    let secrets = &state.billing.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(ApiError::Unavailable(
            "billing.stripe_webhook_secrets is not configured".into(),
        ));
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(SignatureError::Malformed.to_string()))?;
    let payload = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let now = chrono::Utc::now().timestamp();
    verify(payload, header, secrets, now).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let event = parse_event_bytes(&body).map_err(|e| ApiError::Invalid {
        message: format!("not a Stripe event: {e}"),
        errors: vec![],
    })?;
    if state.store.stripe_event_seen(&event.event_id).await? {
        return Ok(axum::Json(StripeReceipt {
            received: true,
            event_id: event.event_id,
            account_id: None,
            duplicate: Some(true),
            dead_lettered: None,
        }));
    }
    let Some(account) = account_of(&state, &event).await? else {
        // Stripe would retry a refusal for days; nothing here will ever know the
        // customer, so the event goes to the dead-letter topic for an operator instead.
        crate::produce::dead_letter(
            &state,
            "webhook.stripe",
            "unknown_account",
            &format!(
                "{} {}: no account_id metadata and no account linked to customer {:?}",
                event.event_type,
                event.event_id,
                event.customer()
            ),
            &body,
        )
        .await?;
        state
            .store
            .record_stripe_event(&event.event_id, &event.event_type)
            .await?;
        return Ok(axum::Json(StripeReceipt {
            received: true,
            event_id: event.event_id,
            account_id: None,
            duplicate: None,
            dead_lettered: Some("unknown_account".into()),
        }));
    };
    if let Some(customer) = event.customer() {
        state.store.link_customer(customer, &account).await?;
    }
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let record = StripeEvent {
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        account_id: account.clone(),
        created: event.created,
        livemode: raw["livemode"].as_bool().unwrap_or(false),
        api_version: raw["api_version"].as_str().map(str::to_owned),
        event_json: payload.to_owned(),
        received_at: mfh_pipeline::now_millis(),
    };
    let topic = state.kafka.topics().stripe_events();
    // Produced first, recorded after: a crash in between makes Stripe's retry produce
    // it again, which the billing processor absorbs; the other order could lose it.
    crate::produce::record(&state, &topic, &account, &record).await?;
    state
        .store
        .record_stripe_event(&event.event_id, &event.event_type)
        .await?;
    Ok(axum::Json(StripeReceipt {
        received: true,
        event_id: event.event_id,
        account_id: Some(account),
        duplicate: None,
        dead_lettered: None,
    }))
}

/// The account an event concerns: its metadata or checkout reference, else the account
/// linked to its customer.
async fn account_of(state: &AppState, event: &BillingEvent) -> Result<Option<String>, ApiError> {
    if let Some(a) = event
        .account_hint()
        .filter(|a| !a.is_empty() && a.len() <= 256)
    {
        return Ok(Some(a.to_owned()));
    }
    match event.customer() {
        Some(c) => Ok(state.store.account_for_customer(c).await?),
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1714560000,"data":{"object":{"id":"in_1"}}}"#;

    fn secrets() -> Vec<String> {
        vec!["whsec_test".into()]
    }

    #[test]
    fn a_valid_signature_verifies() {
        let h = Webhook::generate_test_header(BODY, "whsec_test", Some(1000));
        assert_eq!(verify(BODY, &h, &secrets(), 1100), Ok(()));
    }

    #[test]
    fn a_wrong_secret_or_a_changed_body_is_refused() {
        let h = Webhook::generate_test_header(BODY, "whsec_other", Some(1000));
        assert_eq!(
            verify(BODY, &h, &secrets(), 1000),
            Err(SignatureError::Mismatch)
        );
        let h = Webhook::generate_test_header(BODY, "whsec_test", Some(1000));
        let changed = BODY.replace("in_1", "in_2");
        assert_eq!(
            verify(&changed, &h, &secrets(), 1000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_timestamp_is_refused() {
        let h = Webhook::generate_test_header(BODY, "whsec_test", Some(1000));
        assert_eq!(
            verify(BODY, &h, &secrets(), 1301),
            Err(SignatureError::Stale(1000))
        );
    }

    #[test]
    fn any_v1_of_a_rolled_secret_verifies() {
        let good = Webhook::generate_test_header(BODY, "whsec_test", Some(1000));
        let good_v1 = good.split("v1=").nth(1).unwrap();
        let h = format!("t=1000,v1={good_v1},v1=deadbeef,v0=abc");
        assert_eq!(verify(BODY, &h, &secrets(), 1000), Ok(()));
        let h = format!("t=1000,v1=deadbeef,v1={good_v1}");
        assert_eq!(verify(BODY, &h, &secrets(), 1000), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for h in ["", "garbage", "t=abc,v1=00", "t=1000", "v1=00"] {
            assert_eq!(
                verify(BODY, h, &secrets(), 1000),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
    }
}

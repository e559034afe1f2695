//! HubSpot deliveries: a JSON array of events, signed with v3 (HMAC-SHA256 of method,
//! URI, body and timestamp, keyed with the app's client secret, base64).

use super::{
    Delivery, Headers, ParsedEvent, Secrets, WebhookError, check_window, constant_time_eq,
    malformed, text,
};
use base64::Engine;
use mfh_schemas::CrmEventKind;
use std::time::Duration;

const P: &str = "hubspot";

/// HubSpot signs the URI with these characters decoded (its request-validation guide).
fn decode_uri(uri: &str) -> String {
    const PAIRS: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = uri.to_owned();
    for (from, to) in PAIRS {
        out = out.replace(from, to).replace(&from.to_lowercase(), to);
    }
    out
}

/// The v3 signature of a request.
#[must_use]
pub fn sign_v3(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(method.as_bytes());
    ctx.update(decode_uri(uri).as_bytes());
    ctx.update(body);
    ctx.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref())
}

pub(super) fn verify(
    d: &Delivery<'_>,
    headers: &dyn Headers,
    secrets: &Secrets,
    now_ms: i64,
    window: Duration,
) -> Result<(), WebhookError> {
    if secrets.hubspot_client_secret.is_empty() {
        return Err(WebhookError::NotConfigured(P));
    }
    let sig = headers
        .get("x-hubspot-signature-v3")
        .ok_or_else(|| WebhookError::BadSignature("X-HubSpot-Signature-v3 is missing".into()))?;
    let ts = headers.get("x-hubspot-request-timestamp").ok_or_else(|| {
        WebhookError::BadSignature("X-HubSpot-Request-Timestamp is missing".into())
    })?;
    let ts_ms: i64 = ts
        .trim()
        .parse()
        .map_err(|_| WebhookError::BadSignature("the timestamp is not a number".into()))?;
    check_window(ts_ms, now_ms, window)?;
    let expected = sign_v3(
        &secrets.hubspot_client_secret,
        d.method,
        d.url,
        d.body,
        ts.trim(),
    );
    if !constant_time_eq(expected.as_bytes(), sig.trim().as_bytes()) {
        return Err(WebhookError::BadSignature(
            "X-HubSpot-Signature-v3 does not match".into(),
        ));
    }
    Ok(())
}

pub(super) fn parse(body: &[u8]) -> Result<Vec<ParsedEvent>, WebhookError> {
    let events: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| malformed(P, format!("expected a JSON array: {e}")))?;
    events
        .into_iter()
        .map(|e| {
            let sub = e
                .get("subscriptionType")
                .and_then(|v| v.as_str())
                .ok_or_else(|| malformed(P, "an event has no subscriptionType"))?
                .to_owned();
            let id = e
                .get("eventId")
                .and_then(text)
                .ok_or_else(|| malformed(P, "an event has no eventId"))?;
            let contact = e.get("objectId").and_then(text).unwrap_or_default();
            let kind = match sub.as_str() {
                "contact.creation" | "contact.restore" => CrmEventKind::ContactCreated,
                "contact.deletion" | "contact.privacyDeletion" => CrmEventKind::ContactDeleted,
                "contact.propertyChange" | "contact.merge" | "contact.associationChange" => {
                    CrmEventKind::ContactUpdated
                }
                _ => CrmEventKind::Other,
            };
            Ok(ParsedEvent {
                vendor_event_id: id,
                kind,
                contact_id: contact,
                // Each event names the portal it came from (the v1 request-validation
                // example body: `"portalId":62515`).
                vendor_account: e.get("portalId").and_then(text),
                tag_id: None,
                tag_name: None,
                vendor_event_type: sub,
                occurred_at: e.get("occurredAt").and_then(serde_json::Value::as_i64),
                payload: e,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const URL: &str = "https://mfh.example/v1/webhooks/crm/hubspot/conn_1";

    fn headers(sig: &str, ts: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("x-hubspot-signature-v3".to_owned(), sig.to_owned()),
            ("x-hubspot-request-timestamp".to_owned(), ts.to_owned()),
        ])
    }

    #[test]
    fn v3_signatures_verify_and_wrong_or_stale_ones_do_not() {
        let body = br#"[{"eventId":1,"subscriptionType":"contact.creation","objectId":123,"occurredAt":1}]"#;
        let secrets = Secrets {
            hubspot_client_secret: "app-secret".into(),
            ..Secrets::default()
        };
        let d = Delivery {
            method: "POST",
            url: URL,
            body,
            content_type: "application/json",
        };
        let now = 1_700_000_000_000_i64;
        let w = Duration::from_secs(300);
        let sig = sign_v3("app-secret", "POST", URL, body, &now.to_string());
        assert_eq!(
            verify(&d, &headers(&sig, &now.to_string()), &secrets, now, w),
            Ok(())
        );
        let wrong = sign_v3("other", "POST", URL, body, &now.to_string());
        assert!(matches!(
            verify(&d, &headers(&wrong, &now.to_string()), &secrets, now, w),
            Err(WebhookError::BadSignature(_))
        ));
        let old = now - 301_000;
        let sig_old = sign_v3("app-secret", "POST", URL, body, &old.to_string());
        assert!(matches!(
            verify(&d, &headers(&sig_old, &old.to_string()), &secrets, now, w),
            Err(WebhookError::Stale { .. })
        ));
        // A changed body breaks the signature.
        let tampered = Delivery { body: b"[]", ..d };
        assert!(
            verify(
                &tampered,
                &headers(&sig, &now.to_string()),
                &secrets,
                now,
                w
            )
            .is_err()
        );
    }

    #[test]
    fn events_map_to_kinds() {
        let body = br#"[{"eventId":1,"subscriptionType":"contact.creation","objectId":123,"occurredAt":5},
            {"eventId":2,"subscriptionType":"contact.propertyChange","objectId":123,"propertyName":"email"},
            {"eventId":3,"subscriptionType":"contact.deletion","objectId":9}]"#;
        let e = parse(body).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].kind, CrmEventKind::ContactCreated);
        assert_eq!(e[0].occurred_at, Some(5));
        assert_eq!(e[1].kind, CrmEventKind::ContactUpdated);
        assert_eq!(
            (e[2].kind, e[2].contact_id.as_str()),
            (CrmEventKind::ContactDeleted, "9")
        );
        assert!(parse(b"{}").is_err());
        let e = parse(br#"[{"eventId":4,"subscriptionType":"contact.creation","objectId":1,"portalId":62515}]"#).unwrap();
        assert_eq!(e[0].vendor_account.as_deref(), Some("62515"));
        assert_eq!(parse(body).unwrap()[0].vendor_account, None);
    }
}

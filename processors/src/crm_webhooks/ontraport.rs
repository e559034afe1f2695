//! Ontraport deliveries: JSON (`{webhook_id, event: {type, tag_id}, data: {id}, timestamp}`,
//! shape partly unconfirmed, reference §4.4 [U]) or flat form fields; unsigned.

use super::{ParsedEvent, WebhookError, malformed, sha256_hex, text};
use mfh_schemas::CrmEventKind;
use serde_json::Value;

const P: &str = "ontraport";

pub(super) fn parse(body: &[u8], content_type: &str) -> Result<Vec<ParsedEvent>, WebhookError> {
    let v: Value = if content_type.contains("x-www-form-urlencoded") {
        let m: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
            .into_owned()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Value::Object(m)
    } else {
        serde_json::from_slice(body).map_err(|e| malformed(P, e.to_string()))?
    };
    let ty = v
        .pointer("/event/type")
        .or_else(|| v.get("event_type"))
        .or_else(|| v.get("type"))
        .and_then(text)
        .ok_or_else(|| malformed(P, "no event type"))?;
    // `object_create(0)` style names carry their argument in parentheses.
    let (name, arg) = match ty.split_once('(') {
        Some((n, a)) => (n.to_owned(), Some(a.trim_end_matches(')').to_owned())),
        None => (ty.clone(), None),
    };
    let kind = match name.as_str() {
        "object_create" => CrmEventKind::ContactCreated,
        "object_update" | "field_update" => CrmEventKind::ContactUpdated,
        "object_delete" => CrmEventKind::ContactDeleted,
        "sub_tag" => CrmEventKind::TagApplied,
        "unsub_tag" => CrmEventKind::TagRemoved,
        _ => CrmEventKind::Other,
    };
    let contact = v
        .pointer("/data/id")
        .or_else(|| v.get("contact_id"))
        .or_else(|| v.get("id"))
        .and_then(text)
        .unwrap_or_default();
    let tag = matches!(kind, CrmEventKind::TagApplied | CrmEventKind::TagRemoved)
        .then(|| {
            v.pointer("/event/tag_id")
                .or_else(|| v.get("tag_id"))
                .and_then(text)
                .or(arg)
        })
        .flatten();
    let occurred = v
        .get("timestamp")
        .and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()))
        .map(|s| {
            if s < 10_000_000_000 {
                s.saturating_mul(1000)
            } else {
                s
            }
        });
    Ok(vec![ParsedEvent {
        vendor_event_id: sha256_hex(body),
        kind,
        contact_id: contact,
        vendor_account: None,
        tag_id: tag,
        tag_name: None,
        vendor_event_type: ty,
        occurred_at: occurred,
        payload: v,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor's timestamp at the edge of the integer range is a value, not a panic.
    #[test]
    fn an_extreme_timestamp_does_not_overflow() {
        let body = br#"{"event":{"type":"sub_tag","tag_id":"5"},"data":{"id":"123"},"timestamp":-9223372036854775808}"#;
        let e = parse(body, "application/json").unwrap();
        assert_eq!(e[0].occurred_at, Some(i64::MIN));
        assert!(
            super::super::check_window(
                i64::MIN,
                1_773_576_000_000,
                std::time::Duration::from_secs(300)
            )
            .is_err()
        );
        assert!(
            super::super::check_window(i64::MAX, -1, std::time::Duration::from_secs(300)).is_err()
        );
    }

    #[test]
    fn json_and_form_deliveries_parse() {
        let body = br#"{"webhook_id":"12","object_type_id":"0","event":{"type":"sub_tag","tag_id":"5"},"data":{"id":"123","email":"a@b.com"},"timestamp":1714560000}"#;
        let e = parse(body, "application/json").unwrap();
        assert_eq!(e[0].kind, CrmEventKind::TagApplied);
        assert_eq!(e[0].tag_id.as_deref(), Some("5"));
        assert_eq!(e[0].contact_id, "123");
        assert_eq!(e[0].occurred_at, Some(1_714_560_000_000));
        let form = parse(
            b"type=object_create(0)&id=77",
            "application/x-www-form-urlencoded",
        )
        .unwrap();
        assert_eq!(
            (form[0].kind, form[0].contact_id.as_str()),
            (CrmEventKind::ContactCreated, "77")
        );
        assert!(parse(b"{}", "application/json").is_err());
    }
}

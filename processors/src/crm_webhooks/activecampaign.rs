//! ActiveCampaign deliveries: form-encoded with PHP-style bracketed keys
//! (`contact[id]`, `contact[tags]`), unsigned, never JSON.

use super::{ParsedEvent, WebhookError, malformed, rfc3339_ms, sha256_hex};
use mfh_schemas::CrmEventKind;
use std::collections::BTreeMap;

const P: &str = "activecampaign";

pub(super) fn parse(body: &[u8]) -> Result<Vec<ParsedEvent>, WebhookError> {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let ty = form
        .get("type")
        .cloned()
        .ok_or_else(|| malformed(P, "no type field (is it form-encoded?)"))?;
    // Deal events name the contact inside the deal.
    let contact = form
        .get("contact[id]")
        .or_else(|| form.get("deal[contactid]"))
        .cloned()
        .unwrap_or_default();
    let kind = match ty.as_str() {
        "subscribe" => CrmEventKind::ContactCreated,
        "update" | "unsubscribe" | "subscriber_note" => CrmEventKind::ContactUpdated,
        "contact_tag_added" => CrmEventKind::TagApplied,
        "contact_tag_removed" => CrmEventKind::TagRemoved,
        _ => CrmEventKind::Other,
    };
    let tag = matches!(kind, CrmEventKind::TagApplied | CrmEventKind::TagRemoved)
        .then(|| {
            form.get("tag")
                .or_else(|| form.get("contact[tag]"))
                .cloned()
        })
        .flatten()
        .filter(|t| !t.trim().is_empty());
    let payload = serde_json::to_value(&form).unwrap_or_default();
    Ok(vec![ParsedEvent {
        // AC sends no event id; one delivery is identified by its bytes.
        vendor_event_id: sha256_hex(body),
        kind,
        contact_id: contact,
        vendor_account: None,
        tag_id: None,
        tag_name: tag,
        vendor_event_type: ty,
        occurred_at: form.get("date_time").and_then(|d| occurred_at(d)),
        payload,
    }])
}

/// `date_time` is RFC 3339, or `YYYY-MM-DD HH:MM:SS` (UTC) on older accounts.
fn occurred_at(s: &str) -> Option<i64> {
    rfc3339_ms(s).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_with_bracketed_keys_parse() {
        let body = b"type=contact_tag_added&date_time=2024-05-01T12:00:00-05:00&initiated_from=admin&contact%5Bid%5D=42&contact%5Bemail%5D=a%40b.com&contact%5Btags%5D=vip%2C+lead&tag=vip";
        let e = parse(body).unwrap();
        assert_eq!(e[0].kind, CrmEventKind::TagApplied);
        assert_eq!(e[0].contact_id, "42");
        assert_eq!(e[0].tag_name.as_deref(), Some("vip"));
        assert_eq!(e[0].occurred_at, Some(1_714_582_800_000));
        assert!(parse(br#"{"type":"x"}"#).is_err());
        let old =
            parse(b"type=update&date_time=2024-05-01+17%3A00%3A00&contact%5Bid%5D=7").unwrap();
        assert_eq!(old[0].occurred_at, Some(1_714_582_800_000));
        assert_eq!(old[0].kind, CrmEventKind::ContactUpdated);
    }
}

//! Keap REST hook deliveries: `{event_key, object_keys: [{id, timestamp}]}`, ids only;
//! unsigned, so the connection's URL token authenticates them and the contact is
//! re-read. The handshake (`X-Hook-Secret` echo) is answered by the API.

use super::{ParsedEvent, WebhookError, malformed, rfc3339_ms, sha256_hex, text};
use mfh_schemas::CrmEventKind;

const P: &str = "keap";

pub(super) fn parse(body: &[u8]) -> Result<Vec<ParsedEvent>, WebhookError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(P, e.to_string()))?;
    let key = v
        .get("event_key")
        .and_then(|k| k.as_str())
        .ok_or_else(|| malformed(P, "no event_key"))?
        .to_owned();
    let objects = v
        .get("object_keys")
        .and_then(|o| o.as_array())
        .ok_or_else(|| malformed(P, "no object_keys"))?;
    let kind = match key.as_str() {
        "contact.add" => CrmEventKind::ContactCreated,
        "contact.edit" => CrmEventKind::ContactUpdated,
        "contact.delete" | "contact.redact" => CrmEventKind::ContactDeleted,
        // "contactGroup" is Keap's word for a tag.
        "contactGroup.applied" => CrmEventKind::TagApplied,
        "contactGroup.removed" => CrmEventKind::TagRemoved,
        _ => CrmEventKind::Other,
    };
    let tag_event = matches!(kind, CrmEventKind::TagApplied | CrmEventKind::TagRemoved);
    let mut out = Vec::new();
    for o in objects {
        let id = o.get("id").and_then(text).unwrap_or_default();
        let ts = o
            .get("timestamp")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        // The shape of tag events is unconfirmed (reference §1.5 [U]): take the contact
        // ids from whichever of the observed keys is present, else treat `id` as the tag.
        let contacts: Vec<String> = if tag_event {
            ["contact_ids", "contactIds"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|c| c.as_array()))
                .map(|a| a.iter().filter_map(text).collect())
                .or_else(|| {
                    ["contact_id", "contactId"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(text))
                        .map(|c| vec![c])
                })
                .unwrap_or_default()
        } else {
            vec![id.clone()]
        };
        let tag_id = if tag_event {
            ["tag_id", "tagId"]
                .iter()
                .find_map(|k| o.get(*k).and_then(text))
                .or_else(|| Some(id.clone()))
        } else {
            None
        };
        for c in contacts {
            out.push(ParsedEvent {
                vendor_event_id: sha256_hex(format!("{key}/{id}/{c}/{ts}").as_bytes()),
                kind,
                contact_id: c,
                vendor_account: None,
                tag_id: tag_id.clone(),
                tag_name: None,
                vendor_event_type: key.clone(),
                occurred_at: rfc3339_ms(ts),
                payload: o.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_contact_and_tag_events_split_per_contact() {
        let body = br#"{"event_key":"contact.edit","object_type":"contact","object_keys":[
            {"id":123,"timestamp":"2024-05-01T12:00:00Z"},{"id":124,"timestamp":"2024-05-01T12:00:01Z"}],"api_url":""}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].kind, e[0].contact_id.as_str()),
            (CrmEventKind::ContactUpdated, "123")
        );
        assert_eq!(e[0].occurred_at, Some(1_714_564_800_000));
        assert_ne!(e[0].vendor_event_id, e[1].vendor_event_id);
        // The same delivery again has the same ids (deduplicated downstream).
        assert_eq!(
            parse(body).unwrap()[0].vendor_event_id,
            e[0].vendor_event_id
        );
        let tag = br#"{"event_key":"contactGroup.applied","object_keys":[{"id":91,"contact_ids":[5,6],"timestamp":"2024-05-01T12:00:00Z"}]}"#;
        let t = parse(tag).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].tag_id.as_deref(), Some("91"));
        assert_eq!(t[1].kind, CrmEventKind::TagApplied);
        assert!(parse(b"not json").is_err());
    }
}

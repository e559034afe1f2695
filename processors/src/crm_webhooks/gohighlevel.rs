//! GoHighLevel deliveries: flat JSON with a `type`, signed over the raw body with
//! Ed25519 (`X-GHL-Signature`, current) or RSA-SHA256 PKCS#1 v1.5 (`X-WH-Signature`,
//! legacy, with GHL's published key); the official SDK tries the first, then the second.
//! The body's `timestamp` bounds replays and its `webhookId` identifies the delivery.

use super::{
    Delivery, Headers, ParsedEvent, Secrets, WebhookError, check_window, malformed, rfc3339_ms,
    sha256_hex, text,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mfh_schemas::CrmEventKind;
use ring::signature::{ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use std::time::Duration;

const P: &str = "gohighlevel";

/// GHL's published RSA key for `X-WH-Signature` (reference/crm-apis.md §2.5).
const LEGACY_RSA_PEM: &str = "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC\
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6\
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB\
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv\
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF\
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU\
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp\
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN\
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC\
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ\
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk\
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==";

/// The base64 between PEM armour lines (or the text itself when it has none).
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    B64.decode(b64).ok()
}

/// The raw 32-byte Ed25519 key from base64 of the raw key or of its SPKI (PEM).
fn ed25519_key(configured: &str) -> Option<Vec<u8>> {
    let der = pem_body(configured)?;
    match der.len() {
        32 => Some(der),
        // SPKI: a 12-byte header, then the key.
        44 => der.get(12..).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// The PKCS#1 `RSAPublicKey` inside an SPKI structure, which is what ring verifies with.
fn spki_to_pkcs1(der: &[u8]) -> Option<&[u8]> {
    fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
        let tag = *b.first()?;
        let first = *b.get(1)?;
        if first < 0x80 {
            return Some((tag, usize::from(first), 2));
        }
        let n = usize::from(first & 0x7f);
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        Some((tag, len, 2 + n))
    }
    let (tag, _, outer) = header(der)?;
    if tag != 0x30 {
        return None;
    }
    let rest = der.get(outer..)?;
    let (tag, alg_len, alg_hdr) = header(rest)?;
    if tag != 0x30 {
        return None;
    }
    let rest = rest.get(alg_hdr + alg_len..)?;
    let (tag, bits_len, bits_hdr) = header(rest)?;
    if tag != 0x03 {
        return None;
    }
    // Skip the unused-bits byte.
    rest.get(bits_hdr + 1..bits_hdr + bits_len)
}

pub(super) fn verify(
    d: &Delivery<'_>,
    headers: &dyn Headers,
    secrets: &Secrets,
    now_ms: i64,
    window: Duration,
) -> Result<(), WebhookError> {
    let bad = |m: &str| WebhookError::BadSignature(m.to_owned());
    let ed25519 = headers.get("x-ghl-signature");
    let legacy = headers.get("x-wh-signature");
    // GHL-SDK `webhook-manager.ts`: with X-GHL-Signature present and a key configured
    // it verifies that and never falls back; without a key it falls back to RSA.
    if let Some(sig) = ed25519.filter(|_| !secrets.ghl_ed25519_public_key.is_empty()) {
        let key = ed25519_key(&secrets.ghl_ed25519_public_key)
            .ok_or_else(|| bad("the configured Ed25519 key is unreadable"))?;
        let sig = B64
            .decode(sig.trim())
            .map_err(|_| bad("X-GHL-Signature is not base64"))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(d.body, &sig)
            .map_err(|_| bad("X-GHL-Signature does not match"))?;
    } else if let Some(sig) = legacy {
        let der = pem_body(LEGACY_RSA_PEM).ok_or_else(|| bad("legacy key unreadable"))?;
        let pkcs1 = spki_to_pkcs1(&der).ok_or_else(|| bad("legacy key unreadable"))?;
        let sig = B64
            .decode(sig.trim())
            .map_err(|_| bad("X-WH-Signature is not base64"))?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs1)
            .verify(d.body, &sig)
            .map_err(|_| bad("X-WH-Signature does not match"))?;
    } else if ed25519.is_some() {
        return Err(WebhookError::NotConfigured(P));
    } else {
        return Err(bad("neither X-GHL-Signature nor X-WH-Signature is present"));
    }
    // Only a signed body's timestamp is trustworthy, so the window is checked after.
    let v: serde_json::Value =
        serde_json::from_slice(d.body).map_err(|e| malformed(P, e.to_string()))?;
    if let Some(ts) = v.get("timestamp") {
        let ms = ts
            .as_i64()
            .or_else(|| ts.as_str().and_then(rfc3339_ms))
            .ok_or_else(|| malformed(P, "timestamp is neither ms nor RFC 3339"))?;
        check_window(ms, now_ms, window)?;
    }
    Ok(())
}

pub(super) fn parse(body: &[u8]) -> Result<Vec<ParsedEvent>, WebhookError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(P, e.to_string()))?;
    let ty = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| malformed(P, "no type"))?
        .to_owned();
    let kind = match ty.as_str() {
        "ContactCreate" => CrmEventKind::ContactCreated,
        "ContactDelete" => CrmEventKind::ContactDeleted,
        // GHL sends the contact's whole tag list, not which tag changed, so a tag update
        // is a contact update here.
        "ContactUpdate" | "ContactTagUpdate" | "ContactDndUpdate" => CrmEventKind::ContactUpdated,
        _ => CrmEventKind::Other,
    };
    let contact = if ty.starts_with("Contact") {
        v.get("id").and_then(text)
    } else {
        v.get("contactId").and_then(text)
    }
    .unwrap_or_default();
    let id = v
        .get("webhookId")
        .and_then(text)
        .unwrap_or_else(|| sha256_hex(body));
    let occurred = v
        .get("timestamp")
        .and_then(|t| t.as_i64().or_else(|| t.as_str().and_then(rfc3339_ms)));
    Ok(vec![ParsedEvent {
        vendor_event_id: id,
        kind,
        contact_id: contact,
        // Every GHL event names its location (GHL-docs `docs/webhook events/*.md`).
        vendor_account: v.get("locationId").and_then(text),
        tag_id: None,
        tag_name: None,
        vendor_event_type: ty,
        occurred_at: occurred,
        payload: v,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use std::collections::BTreeMap;

    #[test]
    fn ed25519_signatures_verify_and_others_do_not() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let secrets = Secrets {
            ghl_ed25519_public_key: B64.encode(pair.public_key().as_ref()),
            ..Secrets::default()
        };
        let now = 1_700_000_000_000_i64;
        let body =
            format!(r#"{{"type":"ContactCreate","id":"c1","webhookId":"w1","timestamp":{now}}}"#);
        let d = Delivery {
            method: "POST",
            url: "https://x/",
            body: body.as_bytes(),
            content_type: "application/json",
        };
        let sig = B64.encode(pair.sign(body.as_bytes()).as_ref());
        let h = BTreeMap::from([("x-ghl-signature".to_owned(), sig)]);
        let w = Duration::from_secs(300);
        assert_eq!(verify(&d, &h, &secrets, now, w), Ok(()));
        assert!(matches!(
            verify(&d, &h, &secrets, now + 400_000, w),
            Err(WebhookError::Stale { .. })
        ));
        let forged = BTreeMap::from([(
            "x-ghl-signature".to_owned(),
            B64.encode(pair.sign(b"something else").as_ref()),
        )]);
        assert!(matches!(
            verify(&d, &forged, &secrets, now, w),
            Err(WebhookError::BadSignature(_))
        ));
        // The legacy RSA header with a signature GHL's key did not make.
        let legacy = BTreeMap::from([("x-wh-signature".to_owned(), B64.encode([7u8; 512]))]);
        assert!(matches!(
            verify(&d, &legacy, &secrets, now, w),
            Err(WebhookError::BadSignature(_))
        ));
        assert!(verify(&d, &BTreeMap::new(), &secrets, now, w).is_err());
        // Without a configured key, X-GHL-Signature cannot be checked: with no legacy
        // header either, the delivery is refused as unverifiable, not accepted.
        let unkeyed = Secrets::default();
        assert_eq!(
            verify(&d, &h, &unkeyed, now, w),
            Err(WebhookError::NotConfigured(P))
        );
        let both = BTreeMap::from([
            ("x-ghl-signature".to_owned(), h["x-ghl-signature"].clone()),
            ("x-wh-signature".to_owned(), B64.encode([7u8; 512])),
        ]);
        // With a key, Ed25519 decides alone (no RSA fallback that a forged legacy header
        // could exploit); without one, the legacy header is what is checked.
        assert_eq!(verify(&d, &both, &secrets, now, w), Ok(()));
        assert!(matches!(
            verify(&d, &both, &unkeyed, now, w),
            Err(WebhookError::BadSignature(_))
        ));
        let e = parse(body.as_bytes()).unwrap();
        assert_eq!(e[0].vendor_event_id, "w1");
        assert_eq!(e[0].kind, CrmEventKind::ContactCreated);
        assert_eq!(e[0].contact_id, "c1");
    }

    #[test]
    fn the_published_ed25519_key_is_the_default_and_parses() {
        let crm = crate::connectors::config::CrmConfig::default();
        assert_eq!(
            crm.gohighlevel.webhook_public_key,
            crate::connectors::config::GHL_WEBHOOK_PUBLIC_KEY
        );
        assert_eq!(
            ed25519_key(crate::connectors::config::GHL_WEBHOOK_PUBLIC_KEY).map(|k| k.len()),
            Some(32)
        );
    }

    #[test]
    fn events_name_their_location() {
        let e = parse(br#"{"type":"ContactUpdate","locationId":"loc_9","id":"c1"}"#).unwrap();
        assert_eq!(e[0].vendor_account.as_deref(), Some("loc_9"));
        let e = parse(br#"{"type":"NoteCreate","contactId":"c2"}"#).unwrap();
        assert_eq!(
            (e[0].vendor_account.as_deref(), e[0].contact_id.as_str()),
            (None, "c2")
        );
    }

    #[test]
    fn the_published_legacy_key_parses() {
        let der = pem_body(LEGACY_RSA_PEM).unwrap();
        let pkcs1 = spki_to_pkcs1(&der).unwrap();
        assert_eq!(pkcs1[0], 0x30);
        assert!(pkcs1.len() > 512);
    }
}

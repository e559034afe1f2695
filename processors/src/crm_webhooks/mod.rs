//! CRM webhook deliveries: checking that a delivery really comes from the vendor, and
//! reading it into normalised events.
//!
//! HubSpot (v3 HMAC with its 5-minute window) and GoHighLevel (Ed25519, or the legacy
//! RSA signature) sign their deliveries; Keap, ActiveCampaign and Ontraport sign nothing,
//! so their deliveries must carry the connection's unguessable webhook token, and every
//! payload is treated as a hint: the contact is re-read through the API before the lake
//! or a trigger acts on it.

mod activecampaign;
mod gohighlevel;
mod hubspot;
mod keap;
mod ontraport;

pub use hubspot::sign_v3 as hubspot_sign_v3;

use crate::connectors::config::Platform;
use mfh_schemas::CrmEventKind;
use std::time::Duration;

/// One delivery as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The full URL the vendor called (scheme, host, path and query).
    pub url: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// The `Content-Type`.
    pub content_type: &'a str,
}

/// What verifies signed deliveries.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// HubSpot: the app's client secret.
    pub hubspot_client_secret: String,
    /// GoHighLevel: the Ed25519 public key of `X-GHL-Signature` (base64 of 32 bytes, or
    /// PEM).
    pub ghl_ed25519_public_key: String,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No signature, a wrong one, or one made with another key.
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    /// The signed timestamp is outside the replay window.
    #[error("the delivery's timestamp is outside the {window_secs}-second replay window")]
    Stale {
        /// The window.
        window_secs: u64,
    },
    /// The body is not what this vendor sends.
    #[error("unreadable {platform} webhook body: {reason}")]
    Malformed {
        /// The vendor.
        platform: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The deployment lacks what verifies this vendor's deliveries.
    #[error("{0} webhooks cannot be verified: no secret configured")]
    NotConfigured(&'static str),
}

/// Headers by lower-case name.
pub trait Headers {
    /// The header's value, if present and text.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

/// Checks a signed vendor's signature and replay window. Unsigned vendors pass here;
/// their webhook token is checked by the caller against the connection.
///
/// # Errors
/// [`WebhookError`] saying what failed.
pub fn verify(
    platform: Platform,
    delivery: &Delivery<'_>,
    headers: &dyn Headers,
    secrets: &Secrets,
    now_ms: i64,
    window: Duration,
) -> Result<(), WebhookError> {
    match platform {
        Platform::Hubspot => hubspot::verify(delivery, headers, secrets, now_ms, window),
        Platform::Gohighlevel => gohighlevel::verify(delivery, headers, secrets, now_ms, window),
        Platform::Keap | Platform::Activecampaign | Platform::Ontraport => Ok(()),
    }
}

/// The signature a replay would repeat, for signed vendors: a delivery whose signature
/// was already accepted is a replay (a vendor's own retry is signed afresh).
#[must_use]
pub fn signature_of(platform: Platform, headers: &dyn Headers) -> Option<String> {
    let h = match platform {
        Platform::Hubspot => headers.get("x-hubspot-signature-v3"),
        Platform::Gohighlevel => headers
            .get("x-ghl-signature")
            .or_else(|| headers.get("x-wh-signature")),
        _ => None,
    }?;
    Some(sha256_hex(h.as_bytes()))
}

/// One event read from a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The vendor's id of the event, or a hash of what identifies it.
    pub vendor_event_id: String,
    /// What happened.
    pub kind: CrmEventKind,
    /// The contact.
    pub contact_id: String,
    /// The vendor account the event belongs to, for vendors with app-level webhooks
    /// (GoHighLevel's `locationId`, HubSpot's `portalId`).
    pub vendor_account: Option<String>,
    /// The tag's id, for tag events.
    pub tag_id: Option<String>,
    /// The tag's name, when sent.
    pub tag_name: Option<String>,
    /// The vendor's event name.
    pub vendor_event_type: String,
    /// When it happened (ms), if the vendor says.
    pub occurred_at: Option<i64>,
    /// The event as JSON.
    pub payload: serde_json::Value,
}

/// Reads a delivery into events.
///
/// # Errors
/// [`WebhookError::Malformed`].
pub fn parse(
    platform: Platform,
    delivery: &Delivery<'_>,
) -> Result<Vec<ParsedEvent>, WebhookError> {
    match platform {
        Platform::Hubspot => hubspot::parse(delivery.body),
        Platform::Gohighlevel => gohighlevel::parse(delivery.body),
        Platform::Keap => keap::parse(delivery.body),
        Platform::Activecampaign => activecampaign::parse(delivery.body),
        Platform::Ontraport => ontraport::parse(delivery.body, delivery.content_type),
    }
}

/// Lower-case hex of the SHA-256 of `b`: event ids, signature digests, token hashes.
#[must_use]
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Compares in time independent of where the inputs differ.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn malformed(platform: &'static str, reason: impl Into<String>) -> WebhookError {
    WebhookError::Malformed {
        platform,
        reason: reason.into(),
    }
}

fn check_window(ts_ms: i64, now_ms: i64, window: Duration) -> Result<(), WebhookError> {
    let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    // A timestamp so far off that the difference overflows is outside any window.
    if now_ms
        .checked_sub(ts_ms)
        .is_none_or(|d| d.unsigned_abs() > w)
    {
        return Err(WebhookError::Stale {
            window_secs: window.as_secs(),
        });
    }
    Ok(())
}

/// An id or number as text.
fn text(v: &serde_json::Value) -> Option<String> {
    crate::connectors::vendor::text(v).filter(|s| !s.is_empty())
}

/// RFC 3339 text as ms.
fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

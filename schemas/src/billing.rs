//! Billing records: verified Stripe events and the notifications they cause.

use serde::{Deserialize, Serialize};

/// A verified Stripe webhook event (`io.mfh.billing.StripeEvent`), keyed by account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeEvent {
    /// Stripe's `evt_…` id.
    pub event_id: String,
    /// The event type, e.g. `invoice.paid`.
    pub event_type: String,
    /// The mfh account it concerns.
    pub account_id: String,
    /// The event's `created`, Unix seconds.
    pub created: i64,
    /// Live or test mode.
    pub livemode: bool,
    /// The API version that shaped `data.object`.
    pub api_version: Option<String>,
    /// The whole event as Stripe sent it.
    pub event_json: String,
    /// When mfh received it, Unix milliseconds.
    pub received_at: i64,
}

/// An email to send (`io.mfh.notification.Notification`), keyed by account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Deterministic from its cause, so one cause sends one email.
    pub notification_id: String,
    /// The account.
    pub account_id: String,
    /// The template, e.g. `payment_failed`.
    pub kind: String,
    /// An address, or `None` for the account's billing email.
    pub recipient: Option<String>,
    /// Template values as a JSON object.
    pub data_json: String,
    /// When it was requested, Unix milliseconds.
    pub created_at: i64,
}

crate::avro_record!(StripeEvent, "stripe_event.avsc");
crate::avro_record!(Notification, "notification.avsc");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AvroRecord, wire};

    #[test]
    fn stripe_event_round_trips() {
        let e = StripeEvent {
            event_id: "evt_1".into(),
            event_type: "invoice.paid".into(),
            account_id: "acct".into(),
            created: 1_714_560_000,
            livemode: false,
            api_version: Some("2025-03-31.basil".into()),
            event_json: r#"{"id":"evt_1"}"#.into(),
            received_at: 1_714_560_000_123,
        };
        let bytes = wire::encode(&e, 7).unwrap();
        let back: StripeEvent = wire::decode_body(StripeEvent::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn notification_round_trips() {
        let n = Notification {
            notification_id: "subscription_created:sub_1".into(),
            account_id: "acct".into(),
            kind: "subscription_created".into(),
            recipient: None,
            data_json: "{}".into(),
            created_at: 5,
        };
        let bytes = wire::encode(&n, 8).unwrap();
        let back: Notification = wire::decode_body(Notification::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, n);
    }
}

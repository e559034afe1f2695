//! Normalises a raw Stripe webhook event into a [`BillingEvent`].
//!
//! `data.object` follows the API version pinned on the webhook endpoint, so both the field
//! locations from before the 2025-03-31 "Basil" version and the current ones are read
//! (see `crm-apis.md` §6.2). Every field is read through an accessor that yields `None` for a
//! missing field or a value of the wrong type, so no JSON input can panic.

use serde_json::Value;

mod objects;
mod read;

pub use objects::{Card, Charge, CheckoutSession, Invoice, Subscription, SubscriptionStatus};
use read::{Obj, card, charge, checkout, invoice, path, subscription, text};

/// `checkout.session.completed`
pub const CHECKOUT_SESSION_COMPLETED: &str = "checkout.session.completed";
/// `customer.subscription.created`
pub const SUBSCRIPTION_CREATED: &str = "customer.subscription.created";
/// `customer.subscription.updated`
pub const SUBSCRIPTION_UPDATED: &str = "customer.subscription.updated";
/// `customer.subscription.deleted`
pub const SUBSCRIPTION_DELETED: &str = "customer.subscription.deleted";
/// `customer.subscription.trial_will_end`
pub const SUBSCRIPTION_TRIAL_WILL_END: &str = "customer.subscription.trial_will_end";
/// `invoice.paid`
pub const INVOICE_PAID: &str = "invoice.paid";
/// `invoice.payment_failed`
pub const INVOICE_PAYMENT_FAILED: &str = "invoice.payment_failed";
/// `customer.source.expiring` (there is no `payment_method.expiring`).
pub const CUSTOMER_SOURCE_EXPIRING: &str = "customer.source.expiring";
/// `charge.refunded`
pub const CHARGE_REFUNDED: &str = "charge.refunded";

/// The nine event types the billing processor handles; the webhook endpoint enables these.
pub const HANDLED_EVENT_TYPES: [&str; 9] = [
    CHECKOUT_SESSION_COMPLETED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_DELETED,
    SUBSCRIPTION_TRIAL_WILL_END,
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    CUSTOMER_SOURCE_EXPIRING,
    CHARGE_REFUNDED,
];

/// Why a Stripe event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("stripe event body is not JSON")]
    NotJson,
    /// The envelope lacks `id`, `type`, `created` or `data.object`, or has it with the
    /// wrong JSON type.
    #[error("stripe event lacks `{field}` or it has the wrong type")]
    MissingEnvelopeField {
        /// The envelope field.
        field: &'static str,
    },
    /// `data.object` lacks a field this event type needs.
    #[error(
        "stripe event {event_id} ({event_type}) lacks `data.object.{field}` or it has the wrong type"
    )]
    MissingObjectField {
        /// The event's `id`.
        event_id: String,
        /// The event's `type`.
        event_type: String,
        /// The object field.
        field: &'static str,
    },
}

/// A Stripe event reduced to what billing uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingEvent {
    /// `evt_…`; the webhook records it to drop duplicate deliveries.
    pub event_id: String,
    /// The Stripe event type, such as `invoice.paid`.
    pub event_type: String,
    /// The event's `created`, in unix seconds.
    pub created: i64,
    /// The timestamp ordering states of the object, in unix seconds. Stripe objects carry
    /// no `updated_at`, and Stripe creates the event when the object changes, so this is
    /// the event's `created`. It has one-second resolution and a checkout creates several
    /// events in the same second, so [`crate::billing::apply`] breaks ties by
    /// [`SubscriptionStatus::progress`].
    pub object_ts: i64,
    /// The event's payload.
    pub kind: BillingEventKind,
}

/// The payload of a [`BillingEvent`], by event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingEventKind {
    /// `checkout.session.completed`
    CheckoutCompleted(CheckoutSession),
    /// `customer.subscription.created`, `.updated` or `.deleted`
    SubscriptionChanged(Subscription),
    /// `customer.subscription.trial_will_end`; `trial_end` is always set.
    TrialWillEnd(Subscription),
    /// `invoice.paid`
    InvoicePaid(Invoice),
    /// `invoice.payment_failed`
    InvoicePaymentFailed(Invoice),
    /// `customer.source.expiring`
    SourceExpiring(Card),
    /// `charge.refunded`
    ChargeRefunded(Charge),
    /// Any other event type: nothing to do, and not an error.
    Other,
}

impl BillingEvent {
    /// The account id the event names: `metadata.account_id` (also from an invoice's
    /// subscription details), else a checkout's `client_reference_id`. `None` means the
    /// account has to be found by [`BillingEvent::customer`].
    pub fn account_hint(&self) -> Option<&str> {
        match &self.kind {
            BillingEventKind::CheckoutCompleted(s) => s
                .account_id_metadata
                .as_deref()
                .or(s.client_reference_id.as_deref()),
            BillingEventKind::SubscriptionChanged(s) | BillingEventKind::TrialWillEnd(s) => {
                s.account_id_metadata.as_deref()
            }
            BillingEventKind::InvoicePaid(i) | BillingEventKind::InvoicePaymentFailed(i) => {
                i.account_id_metadata.as_deref()
            }
            BillingEventKind::ChargeRefunded(c) => c.account_id_metadata.as_deref(),
            BillingEventKind::SourceExpiring(_) | BillingEventKind::Other => None,
        }
    }

    /// The Stripe customer (`cus_…`) the event is about, if it names one.
    pub fn customer(&self) -> Option<&str> {
        match &self.kind {
            BillingEventKind::CheckoutCompleted(s) => s.customer.as_deref(),
            BillingEventKind::SubscriptionChanged(s) | BillingEventKind::TrialWillEnd(s) => {
                s.customer.as_deref()
            }
            BillingEventKind::InvoicePaid(i) | BillingEventKind::InvoicePaymentFailed(i) => {
                i.customer.as_deref()
            }
            BillingEventKind::SourceExpiring(c) => c.customer.as_deref(),
            BillingEventKind::ChargeRefunded(c) => c.customer.as_deref(),
            BillingEventKind::Other => None,
        }
    }
}

/// Reads a whole Stripe event envelope.
///
/// # Errors
/// [`ParseError`] when the envelope lacks `id`, `type`, `created` or `data.object`, or
/// when `data.object` lacks the id (or, for subscriptions, the status) its type needs.
pub fn parse_event(raw: &Value) -> Result<BillingEvent, ParseError> {
    let envelope = |field| ParseError::MissingEnvelopeField { field };
    let event_id = text(raw.get("id")).ok_or_else(|| envelope("id"))?;
    let event_type = text(raw.get("type")).ok_or_else(|| envelope("type"))?;
    let created = raw
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| envelope("created"))?;
    let object = path(raw, &["data", "object"])
        .filter(|o| o.is_object())
        .ok_or_else(|| envelope("data.object"))?;
    let obj = Obj {
        v: object,
        event_id: &event_id,
        event_type: &event_type,
    };
    let kind = match event_type.as_str() {
        CHECKOUT_SESSION_COMPLETED => BillingEventKind::CheckoutCompleted(checkout(&obj)?),
        SUBSCRIPTION_CREATED | SUBSCRIPTION_UPDATED | SUBSCRIPTION_DELETED => {
            BillingEventKind::SubscriptionChanged(subscription(&obj)?)
        }
        SUBSCRIPTION_TRIAL_WILL_END => {
            let sub = subscription(&obj)?;
            if sub.trial_end.is_none() {
                return Err(obj.missing("trial_end"));
            }
            BillingEventKind::TrialWillEnd(sub)
        }
        INVOICE_PAID => BillingEventKind::InvoicePaid(invoice(&obj)?),
        INVOICE_PAYMENT_FAILED => BillingEventKind::InvoicePaymentFailed(invoice(&obj)?),
        CUSTOMER_SOURCE_EXPIRING => BillingEventKind::SourceExpiring(card(&obj)?),
        CHARGE_REFUNDED => BillingEventKind::ChargeRefunded(charge(&obj)?),
        _ => BillingEventKind::Other,
    };
    Ok(BillingEvent {
        event_id,
        event_type,
        created,
        object_ts: created,
        kind,
    })
}

/// Reads a Stripe event from the raw webhook body.
///
/// # Errors
/// [`ParseError::NotJson`] when the body is not JSON, else as [`parse_event`].
pub fn parse_event_bytes(body: &[u8]) -> Result<BillingEvent, ParseError> {
    let raw: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    parse_event(&raw)
}

#[cfg(test)]
mod tests;

//! Readers for each `data.object` type. Each field goes through an accessor that yields
//! `None` for a missing field or a value of the wrong type, so no input can panic.

use super::{
    Card, Charge, CheckoutSession, Invoice, ParseError, SUBSCRIPTION_DELETED, Subscription,
    SubscriptionStatus,
};
use serde_json::Value;

pub(super) fn checkout(o: &Obj<'_>) -> Result<CheckoutSession, ParseError> {
    Ok(CheckoutSession {
        session_id: o.required("id")?,
        customer: o.id("customer"),
        subscription: o.id("subscription"),
        client_reference_id: o.text("client_reference_id"),
        customer_email: o
            .text("customer_email")
            .or_else(|| o.at(&["customer_details", "email"])),
        account_id_metadata: o.at(&["metadata", "account_id"]),
        mode: o.text("mode").unwrap_or_default(),
        payment_status: o.text("payment_status").unwrap_or_default(),
    })
}

pub(super) fn subscription(o: &Obj<'_>) -> Result<Subscription, ParseError> {
    let items = || {
        path(o.v, &["items", "data"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let current_period_end = o.int("current_period_end").or_else(|| {
        items()
            .filter_map(|i| i.get("current_period_end").and_then(Value::as_i64))
            .max()
    });
    Ok(Subscription {
        subscription_id: o.required("id")?,
        customer: o.id("customer"),
        status: SubscriptionStatus::parse(&o.required("status")?),
        price_ids: items()
            .filter_map(|i| id(i.get("price")).or_else(|| id(i.get("plan"))))
            .collect(),
        current_period_end,
        trial_end: o.int("trial_end"),
        cancel_at_period_end: o.v.get("cancel_at_period_end").and_then(Value::as_bool)
            == Some(true),
        deleted: o.event_type == SUBSCRIPTION_DELETED,
        latest_invoice: o.id("latest_invoice"),
        account_id_metadata: o.at(&["metadata", "account_id"]),
    })
}

pub(super) fn invoice(o: &Obj<'_>) -> Result<Invoice, ParseError> {
    let basil_sub = path(o.v, &["parent", "subscription_details", "subscription"]);
    Ok(Invoice {
        invoice_id: o.required("id")?,
        customer: o.id("customer"),
        subscription: o.id("subscription").or_else(|| id(basil_sub)),
        amount_paid: o.int("amount_paid").unwrap_or(0),
        amount_due: o.int("amount_due").unwrap_or(0),
        currency: o.text("currency").unwrap_or_default(),
        billing_reason: o.text("billing_reason"),
        attempt_count: o.int("attempt_count").unwrap_or(0),
        next_payment_attempt: o.int("next_payment_attempt"),
        hosted_invoice_url: o.text("hosted_invoice_url"),
        customer_email: o.text("customer_email"),
        account_id_metadata: o
            .at(&["metadata", "account_id"])
            .or_else(|| o.at(&["subscription_details", "metadata", "account_id"]))
            .or_else(|| o.at(&["parent", "subscription_details", "metadata", "account_id"])),
    })
}

pub(super) fn card(o: &Obj<'_>) -> Result<Card, ParseError> {
    // A Card has the fields at the top; a card Source has them under `card`.
    let field = |name: &str| o.v.get(name).or_else(|| path(o.v, &["card", name]));
    Ok(Card {
        source_id: o.required("id")?,
        customer: o.id("customer"),
        brand: text(field("brand")),
        last4: text(field("last4")),
        exp_month: field("exp_month").and_then(Value::as_i64),
        exp_year: field("exp_year").and_then(Value::as_i64),
    })
}

pub(super) fn charge(o: &Obj<'_>) -> Result<Charge, ParseError> {
    Ok(Charge {
        charge_id: o.required("id")?,
        customer: o.id("customer"),
        amount: o.int("amount").unwrap_or(0),
        amount_refunded: o.int("amount_refunded").unwrap_or(0),
        fully_refunded: o.v.get("refunded").and_then(Value::as_bool) == Some(true),
        currency: o.text("currency").unwrap_or_default(),
        email: o
            .at(&["billing_details", "email"])
            .or_else(|| o.text("receipt_email")),
        account_id_metadata: o.at(&["metadata", "account_id"]),
    })
}

/// `data.object` with the event's identity, for error messages.
pub(super) struct Obj<'a> {
    pub(super) v: &'a Value,
    pub(super) event_id: &'a str,
    pub(super) event_type: &'a str,
}

impl Obj<'_> {
    pub(super) fn missing(&self, field: &'static str) -> ParseError {
        ParseError::MissingObjectField {
            event_id: self.event_id.to_owned(),
            event_type: self.event_type.to_owned(),
            field,
        }
    }
    fn required(&self, field: &'static str) -> Result<String, ParseError> {
        self.text(field).ok_or_else(|| self.missing(field))
    }
    fn text(&self, field: &str) -> Option<String> {
        text(self.v.get(field))
    }
    fn at(&self, keys: &[&str]) -> Option<String> {
        text(path(self.v, keys))
    }
    fn id(&self, field: &str) -> Option<String> {
        id(self.v.get(field))
    }
    fn int(&self, field: &str) -> Option<i64> {
        self.v.get(field).and_then(Value::as_i64)
    }
}

/// A non-empty string value.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    v?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An id given as a string or as an expanded object with an `id`.
fn id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => text(o.get("id")),
        other => text(Some(other)),
    }
}

pub(super) fn path<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

//! Stripe webhook fixtures for the billing tests, shaped like Stripe's sample payloads, in
//! the pre-Basil (`2024-06-20`) and Basil (`2025-03-31.basil`) API versions.
#![allow(clippy::unwrap_used)]

use super::plans::{Plan, PriceMap};
use super::stripe_event::{BillingEvent, parse_event};
use serde_json::{Value, json};

pub(crate) const CUSTOMER: &str = "cus_NffrFeUfNV2Hib";
pub(crate) const ACCOUNT: &str = "acc_01HZX3K4";
pub(crate) const SUB: &str = "sub_1MowQVLkdIwHu7ixeRlqHVzs";
pub(crate) const PRICE_START: &str = "price_1MowQULkdIwHu7ixraBm864M";
pub(crate) const PRICE_GROW: &str = "price_1MowQULkdIwHu7ixGrow0001";
pub(crate) const PRICE_DELIVER: &str = "price_1MowQULkdIwHu7ixDeliv001";
pub(crate) const INVOICE_URL: &str = "https://invoice.stripe.com/i/acct_1M2JTk/test_YWNjdF8x";
/// 2026-05-01T00:00:00Z
pub(crate) const T0: i64 = 1_777_593_600;
const MONTH: i64 = 30 * 86_400;

pub(crate) fn prices() -> PriceMap {
    [
        (PRICE_START, Plan::Start),
        (PRICE_GROW, Plan::Grow),
        (PRICE_DELIVER, Plan::Deliver),
    ]
    .into_iter()
    .map(|(p, plan)| (p.to_owned(), plan))
    .collect()
}

pub(crate) fn parse(raw: &Value) -> BillingEvent {
    parse_event(raw).unwrap()
}

pub(crate) fn envelope(event_type: &str, created: i64, basil: bool, object: Value) -> Value {
    let tag = object["id"].as_str().unwrap_or("x").to_owned();
    json!({
        "id": format!("evt_{tag}_{event_type}_{created}"),
        "object": "event",
        "api_version": if basil { "2025-03-31.basil" } else { "2024-06-20" },
        "created": created,
        "type": event_type,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": "req_8TtZ3x", "idempotency_key": "5b2c1d4e" },
        "data": { "object": object, "previous_attributes": {} },
    })
}

pub(crate) fn checkout_completed(sub: &str, created: i64) -> Value {
    envelope(
        "checkout.session.completed",
        created,
        true,
        json!({
            "id": "cs_test_a1Yb2Zc3", "object": "checkout.session", "mode": "subscription",
            "status": "complete", "payment_status": "paid", "customer": CUSTOMER,
            "customer_email": null,
            "customer_details": { "email": "ada@example.com", "name": "Ada Lovelace", "phone": null },
            "client_reference_id": ACCOUNT, "subscription": sub, "invoice": "in_1MtHbELkdIwHu7ix",
            "payment_intent": null, "amount_total": 4900, "amount_subtotal": 4900,
            "currency": "usd", "metadata": {},
        }),
    )
}

/// A subscription event; a `trialing` one ends its trial 3 days after `created`.
pub(crate) fn subscription(
    event_type: &str,
    status: &str,
    price: &str,
    created: i64,
    basil: bool,
) -> Value {
    let period_end = created + MONTH;
    let trial_end = (status == "trialing").then_some(created + 3 * 86_400);
    let mut item = json!({
        "id": "si_NaMLxL3ND8ZmvZ", "object": "subscription_item", "quantity": 1,
        "price": { "id": price, "object": "price", "product": "prod_NWjs8kKbJWmuuc",
                   "unit_amount": 4900, "currency": "usd", "recurring": { "interval": "month" } },
    });
    let mut sub = json!({
        "id": SUB, "object": "subscription", "customer": CUSTOMER, "status": status,
        "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
        "trial_start": trial_end.map(|_| created), "trial_end": trial_end,
        "latest_invoice": "in_1MtHbELkdIwHu7ix", "default_payment_method": "pm_1MowQT",
        "metadata": { "account_id": ACCOUNT },
    });
    if basil {
        item["current_period_start"] = json!(created);
        item["current_period_end"] = json!(period_end);
    } else {
        sub["current_period_start"] = json!(created);
        sub["current_period_end"] = json!(period_end);
    }
    sub["items"] = json!({ "object": "list", "data": [item], "has_more": false });
    envelope(event_type, created, basil, sub)
}

/// An invoice event: `invoice.paid` pays 4900, `invoice.payment_failed` leaves it due.
pub(crate) fn invoice(event_type: &str, invoice_id: &str, created: i64, basil: bool) -> Value {
    let paid = event_type == "invoice.paid";
    let mut inv = json!({
        "id": invoice_id, "object": "invoice", "customer": CUSTOMER,
        "customer_email": "ada@example.com", "status": if paid { "paid" } else { "open" },
        "amount_due": 4900, "amount_paid": if paid { 4900 } else { 0 },
        "amount_remaining": if paid { 0 } else { 4900 }, "currency": "usd",
        "billing_reason": "subscription_cycle", "attempt_count": if paid { 1 } else { 2 },
        "next_payment_attempt": if paid { Value::Null } else { json!(created + 3 * 86_400) },
        "hosted_invoice_url": INVOICE_URL, "invoice_pdf": format!("{INVOICE_URL}/pdf"),
        "period_start": created - MONTH, "period_end": created, "metadata": {},
    });
    if basil {
        inv["parent"] = json!({ "type": "subscription_details", "subscription_details": {
            "subscription": SUB, "metadata": { "account_id": ACCOUNT } } });
    } else {
        inv["subscription"] = json!(SUB);
        inv["subscription_details"] = json!({ "metadata": { "account_id": ACCOUNT } });
    }
    envelope(event_type, created, basil, inv)
}

pub(crate) fn source_expiring(created: i64) -> Value {
    envelope(
        "customer.source.expiring",
        created,
        false,
        json!({
            "id": "card_1MvoiELkdIwHu7ixOeFGbN9D", "object": "card", "brand": "Visa",
            "last4": "4242", "exp_month": 5, "exp_year": 2026, "funding": "credit",
            "customer": CUSTOMER, "country": "US", "metadata": {},
        }),
    )
}

pub(crate) fn charge_refunded(amount_refunded: i64, created: i64) -> Value {
    envelope(
        "charge.refunded",
        created,
        true,
        json!({
            "id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge", "amount": 4900,
            "amount_refunded": amount_refunded, "refunded": amount_refunded >= 4900,
            "currency": "usd", "customer": CUSTOMER, "payment_intent": "pi_3MmlLrLkdIwHu7ix",
            "billing_details": { "email": "ada@example.com", "name": "Ada Lovelace" },
            "receipt_email": null, "metadata": {},
        }),
    )
}

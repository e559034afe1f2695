#![allow(clippy::unwrap_used)]

use super::*;
use crate::billing::fixtures::{
    ACCOUNT, CUSTOMER, INVOICE_URL, PRICE_GROW, SUB, T0, charge_refunded, checkout_completed,
    envelope, invoice, parse, source_expiring, subscription,
};
use serde_json::json;

#[test]
fn checkout_session_completed() {
    let ev = parse(&checkout_completed(SUB, T0));
    assert_eq!(ev.event_type, CHECKOUT_SESSION_COMPLETED);
    assert_eq!((ev.created, ev.object_ts), (T0, T0));
    let BillingEventKind::CheckoutCompleted(s) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(s.session_id, "cs_test_a1Yb2Zc3");
    assert_eq!(s.subscription.as_deref(), Some(SUB));
    assert_eq!(s.customer_email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        (s.mode.as_str(), s.payment_status.as_str()),
        ("subscription", "paid")
    );
    assert_eq!(ev.account_hint(), Some(ACCOUNT));
    assert_eq!(ev.customer(), Some(CUSTOMER));
}

#[test]
fn subscription_events_in_both_shapes() {
    for basil in [false, true] {
        for t in [
            SUBSCRIPTION_CREATED,
            SUBSCRIPTION_UPDATED,
            SUBSCRIPTION_DELETED,
        ] {
            let ev = parse(&subscription(t, "active", PRICE_GROW, T0, basil));
            let BillingEventKind::SubscriptionChanged(s) = &ev.kind else {
                panic!("{ev:?}")
            };
            assert_eq!(s.subscription_id, SUB);
            assert_eq!(s.status, SubscriptionStatus::Active);
            assert_eq!(s.price_ids, [PRICE_GROW]);
            assert_eq!(
                s.current_period_end,
                Some(T0 + 30 * 86_400),
                "basil {basil}"
            );
            assert_eq!(s.deleted, t == SUBSCRIPTION_DELETED);
            assert_eq!(s.latest_invoice.as_deref(), Some("in_1MtHbELkdIwHu7ix"));
            assert_eq!(ev.account_hint(), Some(ACCOUNT));
            assert_eq!(ev.customer(), Some(CUSTOMER));
        }
    }
}

#[test]
fn basil_period_end_is_the_latest_item_and_customer_may_be_expanded() {
    let mut raw = subscription(SUBSCRIPTION_UPDATED, "past_due", PRICE_GROW, T0, true);
    let obj = &mut raw["data"]["object"];
    let mut second = obj["items"]["data"][0].clone();
    second["current_period_end"] = json!(T0 + 99);
    second["price"] = json!("price_addon");
    obj["items"]["data"]
        .as_array_mut()
        .unwrap()
        .insert(0, second);
    obj["customer"] = json!({ "id": CUSTOMER, "object": "customer", "email": "a@b.c" });
    obj["cancel_at_period_end"] = json!(true);
    let ev = parse(&raw);
    let BillingEventKind::SubscriptionChanged(s) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(s.current_period_end, Some(T0 + 30 * 86_400));
    assert_eq!(s.price_ids, ["price_addon", PRICE_GROW]);
    assert_eq!(s.status, SubscriptionStatus::PastDue);
    assert!(s.cancel_at_period_end);
    assert_eq!(ev.customer(), Some(CUSTOMER));
}

#[test]
fn trial_will_end_needs_trial_end() {
    let ev = parse(&subscription(
        SUBSCRIPTION_TRIAL_WILL_END,
        "trialing",
        PRICE_GROW,
        T0,
        true,
    ));
    let BillingEventKind::TrialWillEnd(s) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(s.trial_end, Some(T0 + 3 * 86_400));
    let raw = subscription(SUBSCRIPTION_TRIAL_WILL_END, "active", PRICE_GROW, T0, true);
    let err = parse_event(&raw).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::MissingObjectField {
                field: "trial_end",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invoices_in_both_shapes() {
    for basil in [false, true] {
        let ev = parse(&invoice(INVOICE_PAID, "in_paid", T0, basil));
        let BillingEventKind::InvoicePaid(i) = &ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(i.subscription.as_deref(), Some(SUB), "basil {basil}");
        assert_eq!((i.amount_paid, i.currency.as_str()), (4900, "usd"));
        assert_eq!(i.billing_reason.as_deref(), Some("subscription_cycle"));
        assert_eq!(ev.account_hint(), Some(ACCOUNT), "basil {basil}");

        let ev = parse(&invoice(INVOICE_PAYMENT_FAILED, "in_failed", T0, basil));
        let BillingEventKind::InvoicePaymentFailed(i) = &ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(i.subscription.as_deref(), Some(SUB));
        assert_eq!((i.attempt_count, i.amount_due), (2, 4900));
        assert_eq!(i.next_payment_attempt, Some(T0 + 3 * 86_400));
        assert_eq!(i.hosted_invoice_url.as_deref(), Some(INVOICE_URL));
        assert_eq!(i.customer_email.as_deref(), Some("ada@example.com"));
    }
}

#[test]
fn invoice_subscription_may_be_expanded() {
    let mut raw = invoice(INVOICE_PAID, "in_1", T0, false);
    raw["data"]["object"]["subscription"] = json!({ "id": SUB, "object": "subscription" });
    let ev = parse(&raw);
    let BillingEventKind::InvoicePaid(i) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(i.subscription.as_deref(), Some(SUB));
}

#[test]
fn card_and_source_expiring() {
    let ev = parse(&source_expiring(T0));
    let BillingEventKind::SourceExpiring(c) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (c.brand.as_deref(), c.last4.as_deref()),
        (Some("Visa"), Some("4242"))
    );
    assert_eq!((c.exp_month, c.exp_year), (Some(5), Some(2026)));
    assert_eq!(ev.customer(), Some(CUSTOMER));
    assert_eq!(ev.account_hint(), None);

    let source = json!({ "id": "src_1", "object": "source", "customer": CUSTOMER,
        "card": { "brand": "MasterCard", "last4": "4444", "exp_month": 12, "exp_year": 2027 } });
    let ev = parse(&envelope(CUSTOMER_SOURCE_EXPIRING, T0, false, source));
    let BillingEventKind::SourceExpiring(c) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!((c.last4.as_deref(), c.exp_month), (Some("4444"), Some(12)));
}

#[test]
fn charge_refunded_partial_and_full() {
    let ev = parse(&charge_refunded(1000, T0));
    let BillingEventKind::ChargeRefunded(c) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (c.amount, c.amount_refunded, c.fully_refunded),
        (4900, 1000, false)
    );
    assert_eq!(c.email.as_deref(), Some("ada@example.com"));
    let ev = parse(&charge_refunded(4900, T0));
    let BillingEventKind::ChargeRefunded(c) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert!(c.fully_refunded);
}

#[test]
fn other_types_are_not_errors() {
    let ev = parse(&envelope(
        "invoice.finalized",
        T0,
        true,
        json!({ "id": "in_1" }),
    ));
    assert_eq!(ev.kind, BillingEventKind::Other);
    assert_eq!((ev.account_hint(), ev.customer()), (None, None));
}

#[test]
fn envelope_errors_name_the_field() {
    let good = invoice(INVOICE_PAID, "in_1", T0, true);
    for (field, bad) in [
        ("id", json!(7)),
        ("type", json!(null)),
        ("created", json!("yesterday")),
        ("data", json!({ "object": [] })),
    ] {
        let mut raw = good.clone();
        raw[field] = bad;
        let want = if field == "data" {
            "data.object"
        } else {
            field
        };
        assert_eq!(
            parse_event(&raw),
            Err(ParseError::MissingEnvelopeField { field: want })
        );
        assert!(parse_event(&raw).unwrap_err().to_string().contains(want));
    }
    let mut raw = good;
    raw["data"]["object"]["id"] = json!(["in_1"]);
    let err = parse_event(&raw).unwrap_err();
    assert!(err.to_string().contains("data.object.id"), "{err}");
}

#[test]
fn garbage_never_panics() {
    let garbage = [
        json!(null),
        json!(1),
        json!("evt"),
        json!([]),
        json!([1, {"id": "x"}]),
        json!({}),
        json!({ "id": null, "items": "x", "customer": 5, "status": ["active"] }),
        json!({ "id": "x", "status": 1, "items": { "data": "nope" }, "parent": [] }),
        json!({ "id": "x", "status": "active", "items": { "data": [null, 1, { "price": 5 }] },
                "current_period_end": "soon", "trial_end": 1.5, "metadata": "acc" }),
        json!({ "id": "x", "customer": { "id": 9 }, "subscription": { "id": null },
                "card": "c", "billing_details": null, "amount": "9", "refunded": "yes" }),
    ];
    let types = HANDLED_EVENT_TYPES
        .iter()
        .copied()
        .chain(["invoice.created", ""]);
    for t in types {
        for object in &garbage {
            let raw =
                json!({ "id": "evt_1", "type": t, "created": T0, "data": { "object": object } });
            let _ = parse_event(&raw);
            let _ =
                parse_event(&json!({ "id": "evt_1", "type": t, "created": T0, "data": object }));
            let _ = parse_event(object);
        }
    }
    assert_eq!(parse_event_bytes(b"{not json"), Err(ParseError::NotJson));
    assert!(parse_event_bytes(checkout_completed(SUB, T0).to_string().as_bytes()).is_ok());
}

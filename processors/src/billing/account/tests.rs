#![allow(clippy::unwrap_used)]

use super::*;
use crate::billing::access::{Blocked, executions_allowed, expire_trial};
use crate::billing::fixtures::{
    CUSTOMER, INVOICE_URL, PRICE_DELIVER, PRICE_GROW, PRICE_START, SUB, T0, charge_refunded,
    checkout_completed, envelope, invoice, parse, prices, source_expiring, subscription,
};
use crate::billing::stripe_event::{
    INVOICE_PAID, INVOICE_PAYMENT_FAILED, SUBSCRIPTION_DELETED, SUBSCRIPTION_TRIAL_WILL_END,
    SUBSCRIPTION_UPDATED,
};
use crate::billing::templates::render;

const UPDATED: &str = SUBSCRIPTION_UPDATED;
const DAY: i64 = 86_400;

fn run(state: &BillingState, raw: &Value) -> Applied {
    apply(state, &parse(raw), &prices(), T0)
}

/// Applies the events in order; returns the final state and every notification.
fn run_all(raws: &[Value]) -> (BillingState, Vec<NotificationIntent>) {
    let mut state = BillingState::new_trial(T0 - 10 * DAY);
    let mut all = Vec::new();
    for raw in raws {
        let applied = run(&state, raw);
        state = applied.state;
        all.extend(applied.notifications);
    }
    (state, all)
}

fn keys(notes: &[NotificationIntent]) -> Vec<&str> {
    notes.iter().map(|n| n.dedup_key.as_str()).collect()
}

fn active(price: &str, at: i64, basil: bool) -> Value {
    subscription(UPDATED, "active", price, at, basil)
}

#[test]
fn subscription_created_sets_the_plan_and_announces_once() {
    for basil in [false, true] {
        let created = subscription(SUBSCRIPTION_CREATED, "active", PRICE_GROW, T0, basil);
        let first = run(&BillingState::new_trial(T0 - DAY), &created);
        let st = &first.state;
        assert_eq!((st.plan, st.status), (Plan::Grow, AccountStatus::Active));
        assert_eq!(st.subscription_id.as_deref(), Some(SUB));
        assert_eq!(st.stripe_customer.as_deref(), Some(CUSTOMER));
        assert_eq!(st.current_period_end, Some(T0 + 30 * DAY), "basil {basil}");
        assert_eq!(
            keys(&first.notifications),
            [format!("subscription_created:{SUB}")]
        );
        assert_eq!(first.notifications[0].data["plan_name"], "Grow");
        assert!(first.changed && first.ignored_reason.is_none());

        let again = run(&first.state, &created);
        assert!(!again.changed && again.notifications.is_empty());
    }
}

#[test]
fn checkout_and_subscription_created_in_either_order_announce_once() {
    for basil in [false, true] {
        let checkout = checkout_completed(SUB, T0);
        let created = subscription(SUBSCRIPTION_CREATED, "active", PRICE_GROW, T0, basil);
        for events in [[checkout.clone(), created.clone()], [created, checkout]] {
            let (state, notes) = run_all(&events);
            assert_eq!(keys(&notes), [format!("subscription_created:{SUB}")]);
            assert_eq!(notes[0].kind, NotificationKind::SubscriptionCreated);
            assert_eq!(
                (state.plan, state.status),
                (Plan::Grow, AccountStatus::Active)
            );
            assert_eq!(state.subscription_id.as_deref(), Some(SUB));
        }
    }
}

#[test]
fn an_older_update_after_a_newer_one_does_nothing() {
    for basil in [false, true] {
        let (state, _) = run_all(&[active(PRICE_GROW, T0 + 100, basil)]);
        let late = run(&state, &active(PRICE_DELIVER, T0 + 50, basil));
        assert_eq!((late.changed, late.ignored_reason), (false, Some("stale")));
        assert_eq!(late.state.plan, Plan::Grow);
        assert!(late.notifications.is_empty());
    }
}

#[test]
fn equal_timestamps_prefer_the_more_advanced_status() {
    let past_due = subscription(UPDATED, "past_due", PRICE_GROW, T0, true);
    let (state, _) = run_all(std::slice::from_ref(&past_due));
    let tie = run(&state, &active(PRICE_GROW, T0, true));
    assert_eq!(tie.ignored_reason, Some("stale"));
    let (state, _) = run_all(&[active(PRICE_GROW, T0, true), past_due]);
    assert_eq!(state.status, AccountStatus::PastDue);
    let deleted = subscription(SUBSCRIPTION_DELETED, "canceled", PRICE_GROW, T0, true);
    let (state, _) = run_all(&[active(PRICE_GROW, T0, true), deleted]);
    assert_eq!(state.status, AccountStatus::Expired);
    assert_eq!(
        run(&state, &active(PRICE_GROW, T0, true)).ignored_reason,
        Some("stale")
    );
}

#[test]
fn cancellation_returns_to_an_expired_trial() {
    let ended = T0 + 200;
    let deleted = subscription(SUBSCRIPTION_DELETED, "canceled", PRICE_GROW, ended, false);
    let (state, notes) = run_all(&[active(PRICE_GROW, T0, false), deleted.clone()]);
    assert_eq!(
        (state.plan, state.status),
        (Plan::Trial, AccountStatus::Expired)
    );
    assert_eq!(
        (
            state.subscription_id.as_deref(),
            state.subscription_ended_at
        ),
        (None, Some(ended))
    );
    assert!(state.trial_ends_at.unwrap() <= ended);
    let cancelled: Vec<_> = notes
        .iter()
        .filter(|n| n.kind == NotificationKind::SubscriptionCancelled)
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0].dedup_key,
        format!("subscription_cancelled:{SUB}")
    );
    assert_eq!(cancelled[0].data["plan_name"], "Grow");
    let again = run(&state, &deleted);
    assert_eq!(
        (again.changed, again.ignored_reason),
        (false, Some("subscription already ended"))
    );
    assert!(matches!(
        executions_allowed(&state, ended),
        Err(Blocked::SubscriptionEnded { .. })
    ));
    assert!(expire_trial(&state, i64::MAX).is_none());
}

#[test]
fn past_due_then_recovered_sends_one_recovery_in_either_order() {
    let failed = invoice(INVOICE_PAYMENT_FAILED, "in_f", T0 + 10, true);
    let sub_past_due = subscription(UPDATED, "past_due", PRICE_GROW, T0 + 10, true);
    let paid = invoice(INVOICE_PAID, "in_f", T0 + 500, false);
    let sub_active = active(PRICE_GROW, T0 + 500, true);
    let start = active(PRICE_GROW, T0, true);
    let orders = [
        [
            start.clone(),
            failed.clone(),
            sub_past_due.clone(),
            paid.clone(),
            sub_active.clone(),
        ],
        [start, sub_past_due, failed, sub_active, paid],
    ];
    for events in orders {
        let mut state = BillingState::new_trial(T0 - DAY);
        let mut notes = Vec::new();
        for (i, raw) in events.iter().enumerate() {
            let applied = run(&state, raw);
            state = applied.state;
            notes.extend(applied.notifications);
            if i == 2 {
                assert_eq!(state.status, AccountStatus::PastDue);
                assert_eq!(state.past_due_invoice.as_deref(), Some("in_f"));
                assert!(executions_allowed(&state, T0).is_ok());
            }
        }
        assert_eq!(state.status, AccountStatus::Active);
        let failed_note = notes
            .iter()
            .find(|n| n.kind == NotificationKind::PaymentFailed)
            .unwrap();
        assert_eq!(failed_note.dedup_key, "payment_failed:in_f:2");
        assert_eq!(failed_note.data["hosted_invoice_url"], INVOICE_URL);
        let rendered = render(NotificationKind::PaymentFailed, &failed_note.data);
        assert!(rendered.html.contains(INVOICE_URL) && rendered.text.contains("49.00 USD"));
        let recovered: Vec<_> = notes
            .iter()
            .filter(|n| n.kind == NotificationKind::PaymentRecovered)
            .collect();
        assert_eq!(
            keys(&notes)
                .iter()
                .filter(|k| k.starts_with("payment_recovered"))
                .count(),
            1
        );
        assert_eq!(recovered[0].dedup_key, "payment_recovered:in_f");
        assert!(keys(&notes).contains(&"payment_receipt:in_f"));
    }
}

#[test]
fn a_payment_failure_older_than_a_payment_is_stale() {
    let (state, _) = run_all(&[
        active(PRICE_GROW, T0, true),
        invoice(INVOICE_PAID, "in_2", T0 + 100, true),
    ]);
    let late = run(
        &state,
        &invoice(INVOICE_PAYMENT_FAILED, "in_2", T0 + 50, true),
    );
    assert_eq!(
        (late.ignored_reason, late.state.status),
        (Some("stale"), AccountStatus::Active)
    );
    assert!(late.notifications.is_empty());
}

#[test]
fn upgrades_and_downgrades_follow_plan_rank() {
    let (state, notes) = run_all(&[
        subscription(SUBSCRIPTION_CREATED, "active", PRICE_START, T0, false),
        active(PRICE_GROW, T0 + 10, false),
        active(PRICE_DELIVER, T0 + 20, true),
        active(PRICE_START, T0 + 30, true),
        active("price_unknown", T0 + 40, true),
    ]);
    assert_eq!(state.plan, Plan::Start);
    let kinds: Vec<_> = notes.iter().map(|n| n.kind).collect();
    use NotificationKind as K;
    assert_eq!(
        kinds,
        [
            K::SubscriptionCreated,
            K::PlanUpgraded,
            K::PlanUpgraded,
            K::PlanDowngraded
        ]
    );
    assert_eq!(
        notes[1].dedup_key,
        format!("plan_upgraded:{SUB}:start:grow:{}", T0 + 10)
    );
    assert_eq!(
        (&notes[3].data["from"], &notes[3].data["to"]),
        (&json!("deliver"), &json!("start"))
    );
}

#[test]
fn stripe_trial_keeps_the_paid_plan_and_never_expires_by_the_job() {
    let trialing = subscription(SUBSCRIPTION_CREATED, "trialing", PRICE_GROW, T0, true);
    let (state, notes) = run_all(&[trialing]);
    assert_eq!(
        (state.plan, state.status),
        (Plan::Grow, AccountStatus::Trialing)
    );
    assert_eq!(state.trial_ends_at, Some(T0 + 3 * DAY));
    assert_eq!(notes.len(), 1);
    assert!(expire_trial(&state, T0 + 30 * DAY).is_none());
}

#[test]
fn trial_will_end_warns_unless_late() {
    let raw = subscription(
        SUBSCRIPTION_TRIAL_WILL_END,
        "trialing",
        PRICE_GROW,
        T0,
        false,
    );
    let state = BillingState::default();
    let a = run(&state, &raw);
    assert_eq!(
        keys(&a.notifications),
        [format!("trial_ending:{SUB}:{}", T0 + 3 * DAY)]
    );
    assert_eq!(a.notifications[0].data["trial_end_date"], "2026-05-04");
    let late = apply(&state, &parse(&raw), &prices(), T0 + 4 * DAY);
    assert_eq!(late.ignored_reason, Some("trial already ended"));
}

#[test]
fn card_expiring_and_refunds_have_stable_keys() {
    let state = BillingState::default();
    let card = run(&state, &source_expiring(T0));
    assert_eq!(
        keys(&card.notifications),
        ["card_expiring:card_1MvoiELkdIwHu7ixOeFGbN9D:2026-05"]
    );
    assert!(!card.changed);
    let partial = run(&state, &charge_refunded(1000, T0));
    let full = run(&state, &charge_refunded(4900, T0 + 5));
    assert_eq!(
        keys(&partial.notifications),
        ["refund:ch_3MmlLrLkdIwHu7ix0snN0B15:1000"]
    );
    assert_eq!(
        keys(&full.notifications),
        ["refund:ch_3MmlLrLkdIwHu7ix0snN0B15:4900"]
    );
    assert_eq!(
        partial.notifications[0].data["refunded_display"],
        "10.00 USD"
    );
    assert_eq!(full.notifications[0].data["fully_refunded"], true);
}

#[test]
fn incomplete_foreign_and_unknown_events_change_nothing() {
    let (state, _) = run_all(&[active(PRICE_GROW, T0, true)]);
    let incomplete = subscription(SUBSCRIPTION_CREATED, "incomplete", PRICE_GROW, T0 + 5, true);
    let fresh = run(&BillingState::default(), &incomplete);
    assert_eq!(
        (fresh.changed, fresh.ignored_reason),
        (false, Some("subscription incomplete"))
    );

    for (event_type, status) in [(SUBSCRIPTION_DELETED, "canceled"), (UPDATED, "active")] {
        let mut other = subscription(event_type, status, PRICE_DELIVER, T0 + 5, true);
        other["data"]["object"]["id"] = json!("sub_other");
        let a = run(&state, &other);
        assert_eq!(
            a.ignored_reason,
            Some("not the account's current subscription")
        );
        assert!(!a.changed && a.notifications.is_empty());
    }

    let other = run(
        &state,
        &envelope("customer.updated", T0 + 5, true, json!({ "id": CUSTOMER })),
    );
    assert_eq!(
        (other.changed, other.ignored_reason),
        (false, Some("unhandled event type"))
    );
}

#[test]
fn notifications_render_and_serialize() {
    let (_, notes) = run_all(&[
        checkout_completed(SUB, T0),
        active(PRICE_GROW, T0, true),
        invoice(INVOICE_PAID, "in_3", T0 + 1, true),
    ]);
    assert_eq!(notes.len(), 2);
    for n in &notes {
        let back: NotificationIntent =
            serde_json::from_value(serde_json::to_value(n).unwrap()).unwrap();
        assert_eq!(&back, n);
        assert!(!render(n.kind, &n.data).subject.is_empty());
    }
    let state = BillingState::new_trial(T0);
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["status"], "trialing");
    assert_eq!(
        serde_json::from_value::<BillingState>(json!({ "plan": "grow" }))
            .unwrap()
            .plan,
        Plan::Grow
    );
}

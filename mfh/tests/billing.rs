//! Billing through the whole pipeline on real sockets: signed Stripe deliveries →
//! `POST /v1/webhooks/stripe` → broker → billing processor → DynamoDB, notifications →
//! notifier → a real SMTP listener on 127.0.0.1; plan limits on the API and on the
//! direct-producer path.
#![allow(clippy::unwrap_used)]

mod support;

use mfh::stack::Processors;
use mfh_processors::billing::{AccountStatus, BillingState, Plan};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::TestStack;
use support::smtp::Inbox;

const SECRET: &str = "whsec_test_mfh";
const PRICE_START: &str = "price_start_1";
const PRICE_GROW: &str = "price_grow_1";

async fn billing_stack() -> (TestStack, Inbox) {
    let cancel = mfh_pipeline::CancellationToken::new();
    let (smtp, inbox) = support::smtp::start(&cancel).await;
    let t = TestStack::start_configured(Some(Processors::All), |cfg| {
        cfg.billing.stripe_webhook_secrets = vec![SECRET.into()];
        cfg.billing.prices = [(PRICE_START, Plan::Start), (PRICE_GROW, Plan::Grow)]
            .into_iter()
            .map(|(p, plan)| (p.to_owned(), plan))
            .collect();
        cfg.billing.email.smtp_url = smtp.clone();
        cfg.billing.trial_check_interval = Duration::from_secs(3600);
    })
    .await;
    // The SMTP listener lives as long as the test process.
    std::mem::forget(cancel);
    (t, inbox)
}

/// A new trial account with a billing email and its own Stripe customer id.
async fn trial_account(t: &TestStack) -> (String, String) {
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let now = chrono::Utc::now().timestamp();
    t.stack
        .services
        .store
        .create_account(
            &account,
            "Ada's",
            Some("ada@example.com"),
            &BillingState::new_trial(now),
        )
        .await
        .unwrap();
    (account.clone(), format!("cus_{account}"))
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": created,
           "type": kind, "livemode": false, "pending_webhooks": 1, "data": {"object": object}})
}

fn subscription(account: &str, customer: &str, status: &str, price: &str) -> Value {
    json!({"id": format!("sub_{account}"), "object": "subscription", "customer": customer,
           "status": status, "cancel_at_period_end": false, "metadata": {"account_id": account},
           "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": price},
                     "current_period_end": 1_900_000_000}]}})
}

fn checkout(account: &str, customer: &str) -> Value {
    json!({"id": format!("cs_{account}"), "object": "checkout.session", "mode": "subscription",
           "status": "complete", "payment_status": "paid", "customer": customer,
           "client_reference_id": account, "subscription": format!("sub_{account}"),
           "amount_total": 4900, "currency": "usd", "metadata": {}})
}

fn invoice(account: &str, customer: &str, id: &str, paid: bool) -> Value {
    json!({"id": id, "object": "invoice", "customer": customer, "customer_email": "ada@example.com",
           "status": if paid {"paid"} else {"open"}, "amount_due": 4900,
           "amount_paid": if paid {4900} else {0}, "currency": "usd", "attempt_count": 1,
           "billing_reason": "subscription_cycle",
           "hosted_invoice_url": format!("https://invoice.stripe.com/i/{id}"),
           "parent": {"type": "subscription_details", "subscription_details": {
               "subscription": format!("sub_{account}"), "metadata": {"account_id": account}}}})
}

/// Delivers `body` signed at `signed_at` (now when `None`); returns status and answer.
async fn deliver_signed(
    t: &TestStack,
    body: &Value,
    signed_at: Option<i64>,
    secret: &str,
) -> (u16, Value) {
    let raw = body.to_string();
    let sig = stripe_webhook::Webhook::generate_test_header(&raw, secret, signed_at);
    let r = t
        .http
        .post(format!("{}/v1/webhooks/stripe", t.base))
        .header("stripe-signature", sig)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn deliver(t: &TestStack, body: &Value) -> Value {
    let (status, answer) = deliver_signed(t, body, None, SECRET).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Polls the account until `pred` holds.
async fn wait_billing(
    t: &TestStack,
    account: &str,
    pred: impl Fn(&BillingState) -> bool,
) -> BillingState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = t
            .stack
            .services
            .store
            .account(account)
            .await
            .unwrap()
            .unwrap();
        if pred(&a.billing) {
            return a.billing;
        }
        assert!(
            Instant::now() < deadline,
            "billing of {account} never matched: {:?}",
            a.billing
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_mail(inbox: &Inbox, needle: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<String> = inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.data.contains(needle))
            .map(|m| m.data.clone())
            .collect();
        if got.len() >= count {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} mail(s) containing {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_stale_timestamps_and_garbage_are_refused_with_a_problem() {
    let (t, _inbox) = billing_stack().await;
    let (account, customer) = trial_account(&t).await;
    let body = event(
        "evt_bad_1",
        "invoice.paid",
        1_800_000_000,
        invoice(&account, &customer, "in_b", true),
    );
    let (s, p) = deliver_signed(&t, &body, None, "whsec_wrong").await;
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("signature"), "{p}");
    let stale = chrono::Utc::now().timestamp() - 301;
    let (s, p) = deliver_signed(&t, &body, Some(stale), SECRET).await;
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("tolerance"), "{p}");
    let r = t
        .http
        .post(format!("{}/v1/webhooks/stripe", t.base))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (s, p) = deliver_signed(&t, &json!({"hello": "world"}), None, SECRET).await;
    assert_eq!(s, 422, "{p}");
    // A replay of a verified delivery is answered 200 and changes nothing.
    let first = deliver(&t, &body).await;
    assert!(first["duplicate"].is_null(), "{first}");
    let again = deliver(&t, &body).await;
    assert_eq!(again["duplicate"], true, "{again}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_and_subscription_created_together_send_one_email_in_either_order() {
    let (t, inbox) = billing_stack().await;
    let now = chrono::Utc::now().timestamp();
    for checkout_first in [true, false] {
        let (account, customer) = trial_account(&t).await;
        let co = event(
            &format!("evt_co_{account}"),
            "checkout.session.completed",
            now,
            checkout(&account, &customer),
        );
        let sc = event(
            &format!("evt_sc_{account}"),
            "customer.subscription.created",
            now,
            subscription(&account, &customer, "active", PRICE_START),
        );
        let (a, b) = if checkout_first {
            (&co, &sc)
        } else {
            (&sc, &co)
        };
        let (ra, rb) = tokio::join!(deliver(&t, a), deliver(&t, b));
        assert_eq!(ra["account_id"], account.as_str(), "{ra}");
        assert_eq!(rb["account_id"], account.as_str(), "{rb}");
        let b = wait_billing(&t, &account, |b| {
            b.plan == Plan::Start && b.status == AccountStatus::Active
        })
        .await;
        assert_eq!(b.stripe_customer.as_deref(), Some(customer.as_str()));
        let id = format!("subscription_created_sub_{account}");
        wait_mail(&inbox, &id, 1).await;
        // Give a second email every chance to arrive before counting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            wait_mail(&inbox, &id, 1).await.len(),
            1,
            "checkout first: {checkout_first}"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_deliveries_never_move_an_account_back() {
    let (t, inbox) = billing_stack().await;
    let (account, customer) = trial_account(&t).await;
    let newer = event(
        "evt_new",
        "customer.subscription.updated",
        2_000_000_200,
        subscription(&account, &customer, "active", PRICE_GROW),
    );
    let older = event(
        "evt_old",
        "customer.subscription.updated",
        2_000_000_100,
        subscription(&account, &customer, "active", PRICE_START),
    );
    deliver(&t, &newer).await;
    wait_billing(&t, &account, |b| b.plan == Plan::Grow).await;
    deliver(&t, &older).await;
    // The older event is processed (a marker event after it proves it) and ignored.
    let marker = event(
        "evt_marker",
        "invoice.paid",
        2_000_000_300,
        invoice(&account, &customer, "in_m", true),
    );
    deliver(&t, &marker).await;
    wait_mail(&inbox, "payment_receipt_in_m", 1).await;
    let b = t
        .stack
        .services
        .store
        .account(&account)
        .await
        .unwrap()
        .unwrap()
        .billing;
    assert_eq!(b.plan, Plan::Grow, "{b:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_failure_and_recovery_cancellation_and_the_other_events() {
    let (t, inbox) = billing_stack().await;
    let (account, customer) = trial_account(&t).await;
    let now = chrono::Utc::now().timestamp();
    deliver(
        &t,
        &event(
            "evt_s1",
            "customer.subscription.created",
            now,
            subscription(&account, &customer, "active", PRICE_START),
        ),
    )
    .await;
    wait_billing(&t, &account, |b| b.status == AccountStatus::Active).await;
    deliver(
        &t,
        &event(
            "evt_f1",
            "invoice.payment_failed",
            now + 10,
            invoice(&account, &customer, "in_f", false),
        ),
    )
    .await;
    wait_billing(&t, &account, |b| b.status == AccountStatus::PastDue).await;
    let failed = wait_mail(&inbox, "payment_failed", 1).await;
    assert!(
        failed[0].contains("https://invoice.stripe.com/i/in_f"),
        "{}",
        failed[0]
    );
    deliver(
        &t,
        &event(
            "evt_p1",
            "invoice.paid",
            now + 20,
            invoice(&account, &customer, "in_f", true),
        ),
    )
    .await;
    wait_billing(&t, &account, |b| b.status == AccountStatus::Active).await;
    wait_mail(&inbox, "payment_recovered", 1).await;
    // trial_will_end, card expiring (found by the customer alone), refund.
    let mut trialing = subscription(&account, &customer, "trialing", PRICE_START);
    trialing["trial_end"] = json!(now + 3 * 86_400);
    deliver(
        &t,
        &event(
            "evt_tw",
            "customer.subscription.trial_will_end",
            now + 30,
            trialing,
        ),
    )
    .await;
    wait_mail(&inbox, "trial_ending", 1).await;
    let card = json!({"id": "card_1", "object": "card", "brand": "Visa", "last4": "4242",
                      "exp_month": 12, "exp_year": 2026, "customer": customer});
    let answer = deliver(
        &t,
        &event("evt_ce", "customer.source.expiring", now + 40, card),
    )
    .await;
    assert_eq!(answer["account_id"], account.as_str(), "{answer}");
    wait_mail(&inbox, "card_expiring", 1).await;
    let charge = json!({"id": "ch_1", "object": "charge", "amount": 4900, "amount_refunded": 4900,
                        "refunded": true, "currency": "usd", "customer": customer});
    deliver(&t, &event("evt_rf", "charge.refunded", now + 50, charge)).await;
    wait_mail(&inbox, "refund", 1).await;
    // Cancelled: back to an expired trial, and executions are refused on every path.
    let mut ended = subscription(&account, &customer, "canceled", PRICE_START);
    ended["ended_at"] = json!(now + 60);
    deliver(
        &t,
        &event("evt_del", "customer.subscription.deleted", now + 60, ended),
    )
    .await;
    let b = wait_billing(&t, &account, |b| b.status == AccountStatus::Expired).await;
    assert_eq!(b.plan, Plan::Trial);
    wait_mail(&inbox, "subscription_cancelled", 1).await;
    let key = t
        .stack
        .services
        .store
        .create_api_key(&account, "k")
        .await
        .unwrap();
    let (s, p) = t
        .post("/v1/executions", &key, &json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox", "contact_id": "1"}))
        .await;
    assert_eq!(s, 403, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("choose a plan"),
        "{p}"
    );
    t.stop().await;
}

/// Sets the account's metered executions of `month` to `n`, as if it had run them.
async fn set_month_count(store: &mfh_processors::store::Store, account: &str, month: &str, n: u64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    store
        .client
        .put_item()
        .table_name(store.table(mfh_processors::store::USAGE))
        .item("account_id", AttributeValue::S(account.to_owned()))
        .item(
            "item",
            AttributeValue::S(mfh_processors::store::usage::executions_item(month)),
        )
        .item("count", AttributeValue::N(n.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_limits_hold_on_the_api_and_on_direct_producers() {
    let (t, inbox) = billing_stack().await;
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let store = &t.stack.services.store;
    let free = BillingState {
        plan: Plan::Free,
        status: AccountStatus::Active,
        ..BillingState::default()
    };
    store
        .create_account(&account, "Free", Some("free@example.com"), &free)
        .await
        .unwrap();
    mfh_processors::connectors::sandbox::Sandbox::new(store.clone(), &account, "sandbox")
        .seed(&support::seed())
        .await
        .unwrap();
    let key = store.create_api_key(&account, "k").await.unwrap();
    let limit = Plan::Free.limits().helpers.unwrap() as usize;
    // Saved helpers up to the plan's limit are created; one more is refused.
    let saved = json!({"name": "h", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"});
    for _ in 0..limit {
        let (s, p) = t.post("/v1/helpers", &key, &saved).await;
        assert_eq!(s, 201, "{p}");
    }
    let (s, p) = t.post("/v1/helpers", &key, &saved).await;
    assert_eq!(s, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("helpers"), "{p}");
    // Inline configs take no helper slot: more distinct ones than the limit all run.
    for i in 0..=limit {
        let body = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": [format!("{}", 101 + i)]}, "connection_id": "sandbox", "contact_id": "1"});
        let (s, p) = t.post("/v1/executions", &key, &body).await;
        assert_eq!(s, 202, "{p}");
        t.wait_done(p["execution_id"].as_str().unwrap(), &key).await;
    }
    // The monthly execution limit: fill the month's meter to the limit, then one more.
    let month = mfh_processors::admission::month_of(chrono::Utc::now());
    let cap = Plan::Free.limits().executions_per_month.unwrap();
    set_month_count(store, &account, &month, cap).await;
    let over = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["999"]}, "connection_id": "sandbox", "contact_id": "1"});
    let (s, p) = t.post("/v1/executions", &key, &over).await;
    assert_eq!(s, 403, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("executions per month"),
        "{p}"
    );
    // The same request written straight to the topic is refused by the router: a failed
    // result naming the limit, not a lost record.
    let req = mfh_schemas::ExecutionRequested {
        execution_id: uuid::Uuid::now_v7().to_string(),
        account_id: account.clone(),
        contact_id: "1".into(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: over["config"].to_string(),
        input_json: None,
        requested_at: mfh_pipeline::now_millis(),
        source: "direct".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    };
    let svc = &t.stack.services;
    let topic = svc.kafka.topics().requested();
    svc.produce(&topic, &req.key(), &req).await.unwrap();
    let done = t.wait_done(&req.execution_id, &key).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_kind"], "limit_exceeded", "{done}");
    // The failure asks for the day's execution alert for the helper, sent once.
    let alert = wait_mail(&inbox, &format!("{account}.execution_alert_tag_it_"), 1).await;
    assert!(alert[0].contains("free@example.com"));
    // A paid plan past its limit runs on and shows the overage (Stripe bills it).
    let paid = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let start = BillingState {
        plan: Plan::Start,
        status: AccountStatus::Active,
        ..BillingState::default()
    };
    store
        .create_account(&paid, "Paid", Some("paid@example.com"), &start)
        .await
        .unwrap();
    mfh_processors::connectors::sandbox::Sandbox::new(store.clone(), &paid, "sandbox")
        .seed(&support::seed())
        .await
        .unwrap();
    let paid_key = store.create_api_key(&paid, "k").await.unwrap();
    let start_cap = Plan::Start.limits().executions_per_month.unwrap();
    set_month_count(store, &paid, &month, start_cap).await;
    let (s, p) = t.post("/v1/executions", &paid_key, &over).await;
    assert_eq!(s, 202, "{p}");
    let done = t
        .wait_done(p["execution_id"].as_str().unwrap(), &paid_key)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, profile) = t.get("/v1/account", &paid_key).await;
    assert_eq!(profile["usage"]["overage"], 1, "{profile}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_trial_expires_once_with_one_email() {
    let (t, inbox) = billing_stack().await;
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let long_ago = chrono::Utc::now().timestamp() - 15 * 86_400;
    t.stack
        .services
        .store
        .create_account(
            &account,
            "Old",
            Some("old@example.com"),
            &BillingState::new_trial(long_ago),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let svc = &t.stack.services;
    let (a, b) = tokio::join!(
        mfh_processors::trial_expiry::run_once(svc, now),
        mfh_processors::trial_expiry::run_once(svc, now)
    );
    let expired: Vec<String> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .filter(|x| *x == account)
        .collect();
    assert_eq!(expired, vec![account.clone()]);
    let third = mfh_processors::trial_expiry::run_once(svc, now)
        .await
        .unwrap();
    assert!(!third.contains(&account));
    let st = svc.store.account(&account).await.unwrap().unwrap().billing;
    assert_eq!(st.status, AccountStatus::Expired);
    wait_mail(&inbox, &format!("{account}.trial_expired"), 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        wait_mail(&inbox, &format!("{account}.trial_expired"), 1)
            .await
            .len(),
        1
    );
    t.stop().await;
}

async fn send(
    t: &TestStack,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = t
        .http
        .request(method, format!("{}{path}", t.base))
        .header("x-api-key", key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_team_are_managed_per_account_within_roles_and_limits() {
    use mfh_processors::store::team::Role;
    use reqwest::Method;
    let (t, inbox) = billing_stack().await;
    let store = &t.stack.services.store;
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let free = BillingState {
        plan: Plan::Free,
        status: AccountStatus::Active,
        ..BillingState::default()
    };
    let rec = store
        .create_account(&account, "Acme", Some("owner@acme.example"), &free)
        .await
        .unwrap();
    let owner = store
        .issue_api_key(&account, "owner", Role::Owner)
        .await
        .unwrap()
        .key;
    let (s, p) = send(&t, Method::GET, "/v1/account", &owner, None).await;
    assert_eq!((s, p["plan"].as_str()), (200, Some("free")), "{p}");
    // Free allows one key, which the owner key is.
    let (s, p) = send(
        &t,
        Method::POST,
        "/v1/api-keys",
        &owner,
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(s, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("API keys"), "{p}");
    let start = BillingState {
        plan: Plan::Start,
        ..free
    };
    assert!(
        store
            .write_billing(&account, &start, rec.version)
            .await
            .unwrap()
    );
    let (s, created) = send(
        &t,
        Method::POST,
        "/v1/api-keys",
        &owner,
        Some(json!({"name": "ci", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let member_key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    // The list never shows a secret; the index behind it is eventually consistent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, list) = send(&t, Method::GET, "/v1/api-keys", &owner, None).await;
        assert_eq!(s, 200, "{list}");
        assert!(!list.to_string().contains(&member_key));
        if list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_id"] == key_id.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A member key runs helpers but manages nothing.
    let (s, _) = send(&t, Method::GET, "/v1/account", &member_key, None).await;
    assert_eq!(s, 200);
    let (s, p) = send(
        &t,
        Method::POST,
        "/v1/team/invites",
        &member_key,
        Some(json!({"email": "eve@example.com", "role": "owner"})),
    )
    .await;
    assert_eq!(s, 403, "{p}");
    // Another account cannot see or revoke this account's key.
    let (_, other_key) = t.add_account().await;
    let (s, _) = send(
        &t,
        Method::DELETE,
        &format!("/v1/api-keys/{key_id}"),
        &other_key,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &t,
        Method::DELETE,
        &format!("/v1/api-keys/{key_id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, p) = send(&t, Method::GET, "/v1/account", &member_key, None).await;
    assert_eq!(s, 401, "{p}");
    // Team: invite (with its email), list, change role, remove; bad input is a 422 problem.
    let (s, p) = send(
        &t,
        Method::POST,
        "/v1/team/invites",
        &owner,
        Some(json!({"email": "not an email", "role": "boss"})),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
    let (s, m) = send(
        &t,
        Method::POST,
        "/v1/team/invites",
        &owner,
        Some(json!({"email": "bob@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201, "{m}");
    let mail = wait_mail(&inbox, &format!("{account}.team_invite_bob_example.com"), 1).await;
    assert!(mail[0].contains("bob@example.com"));
    let (s, team) = send(&t, Method::GET, "/v1/team", &owner, None).await;
    assert_eq!(s, 200);
    assert!(team.to_string().contains("bob@example.com"), "{team}");
    let (s, m) = send(
        &t,
        Method::PATCH,
        "/v1/team/bob@example.com",
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!((s, m["role"].as_str()), (200, Some("admin")), "{m}");
    let (s, _) = send(&t, Method::DELETE, "/v1/team/bob@example.com", &owner, None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&t, Method::DELETE, "/v1/team/bob@example.com", &owner, None).await;
    assert_eq!(s, 404);
    t.stop().await;
}

/// Review finding 12: count-and-check is one conditional write. Twenty requests racing
/// for the month's last execution: exactly one is counted, the meter stops at the limit,
/// and a redelivery of the counted one is recognised rather than refused or counted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_at_the_limit_cannot_all_pass() {
    use mfh_processors::store::usage::Counted;
    let t = TestStack::start().await;
    let store = &t.stack.services.store;
    let month = mfh_processors::admission::month_of(chrono::Utc::now());
    let cap = 10;
    set_month_count(store, &t.account, &month, cap - 1).await;
    let ids: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut racing = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (store, account, month) = (store.clone(), t.account.clone(), month.clone());
        racing.spawn(async move {
            let c = store
                .count_execution(&account, &month, &id, Some(cap))
                .await
                .unwrap();
            (id, c)
        });
    }
    let mut counted = Vec::new();
    while let Some(r) = racing.join_next().await {
        let (id, c) = r.unwrap();
        match c {
            Counted::New => counted.push(id),
            Counted::OverLimit => {}
            Counted::Before => panic!("{id} was never counted before"),
        }
    }
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(
        store.executions_in_month(&t.account, &month).await.unwrap(),
        cap
    );
    let again = store
        .count_execution(&t.account, &month, &counted[0], Some(cap))
        .await
        .unwrap();
    assert_eq!(again, Counted::Before);
    assert_eq!(
        store.executions_in_month(&t.account, &month).await.unwrap(),
        cap
    );
    t.stop().await;
}

/// The API admits and counts what it accepts and seals the record, so the router does not
/// count it again; the 80% usage alert it crosses is sent from there. What an idempotent
/// repeat or a direct producer writes is counted by the router, and a seal a producer
/// made up or copied from another record is no seal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_counts_once_and_its_seal_cannot_be_forged() {
    let (t, inbox) = billing_stack().await;
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let store = &t.stack.services.store;
    let free = BillingState {
        plan: Plan::Free,
        status: AccountStatus::Active,
        ..BillingState::default()
    };
    store
        .create_account(&account, "Free", Some("free@example.com"), &free)
        .await
        .unwrap();
    mfh_processors::connectors::sandbox::Sandbox::new(store.clone(), &account, "sandbox")
        .seed(&support::seed())
        .await
        .unwrap();
    let key = store.create_api_key(&account, "k").await.unwrap();
    let month = mfh_processors::admission::month_of(chrono::Utc::now());
    let cap = Plan::Free.limits().executions_per_month.unwrap();
    let at_80 = (cap * 80).div_ceil(100);
    set_month_count(store, &account, &month, at_80 - 3).await;
    let body = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox", "contact_id": "1"});
    // Three through the API: the third takes the month to 80%.
    for _ in 0..3 {
        let (s, p) = t.post("/v1/executions", &key, &body).await;
        assert_eq!(s, 202, "{p}");
        let done = t.wait_done(p["execution_id"].as_str().unwrap(), &key).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    assert_eq!(
        store.executions_in_month(&account, &month).await.unwrap(),
        at_80
    );
    let alert = wait_mail(&inbox, "usage_alert", 1).await;
    assert!(alert[0].contains("free@example.com"), "{}", alert[0]);
    // An idempotent request and its repeat: counted once, by the router.
    for _ in 0..2 {
        let r = t
            .http
            .post(format!("{}/v1/executions", t.base))
            .header("x-api-key", &key)
            .header("idempotency-key", "once-only")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let p: serde_json::Value = r.json().await.unwrap();
        t.wait_done(p["execution_id"].as_str().unwrap(), &key).await;
    }
    assert_eq!(
        store.executions_in_month(&account, &month).await.unwrap(),
        at_80 + 1
    );
    // At the limit, records written straight to the topic with a made-up seal, and with
    // the seal of another record, are refused by the router like any direct producer's.
    set_month_count(store, &account, &month, cap).await;
    let svc = &t.stack.services;
    let topic = svc.kafka.topics().requested();
    let request = |id: &str| mfh_schemas::ExecutionRequested {
        execution_id: id.to_owned(),
        account_id: account.clone(),
        contact_id: "1".into(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: body["config"].to_string(),
        input_json: None,
        requested_at: mfh_pipeline::now_millis(),
        source: "direct".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    };
    let other = svc
        .avro
        .encode(&topic.value_subject(), &request("other"))
        .await
        .unwrap();
    let copied = svc.seal.tag(&other);
    for (n, tag) in [vec![7u8; 32], copied].into_iter().enumerate() {
        let req = request(&uuid::Uuid::now_v7().to_string());
        let bytes = svc.avro.encode(&topic.value_subject(), &req).await.unwrap();
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: mfh_processors::admission::ADMITTED_HEADER,
            value: Some(tag.as_slice()),
        });
        svc.producer
            .send(
                rdkafka::producer::FutureRecord::to(&topic.name)
                    .key(&req.key())
                    .payload(&bytes)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let done = t.wait_done(&req.execution_id, &key).await;
        assert_eq!(done["status"], "failed", "seal {n}: {done}");
        assert_eq!(done["error_kind"], "limit_exceeded", "seal {n}: {done}");
    }
    t.stop().await;
}

//! Checkout and Billing Portal sessions on real sockets: the API → async-stripe → a local
//! server on 127.0.0.1 that answers as Stripe documents (`POST /v1/checkout/sessions`,
//! `POST /v1/billing_portal/sessions`: a bearer secret key, a form-encoded body, the
//! documented session objects, and Stripe's error objects).
#![allow(clippy::unwrap_used)]
// `json!` recurses about three levels per object entry; the Checkout Session has ~60.
#![recursion_limit = "256"]

mod support;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfh_processors::billing::{AccountStatus, BillingState, Plan};
use mfh_processors::store::team::Role;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::TestStack;

const SECRET_KEY: &str = "sk_test_mfh_checkout";
const PRICE_START: &str = "price_start_1";
const PRICE_GROW: &str = "price_grow_1";
/// A customer the stub's Stripe no longer knows: it answers 400 `resource_missing`.
const GONE_CUSTOMER: &str = "cus_deleted";
const DAY: i64 = 86_400;

type Form = HashMap<String, String>;

/// What the stub received: (path, form fields), in order.
#[derive(Default)]
struct Stub {
    calls: Mutex<Vec<(String, Form)>>,
}

impl Stub {
    fn last(&self, path: &str) -> Form {
        let calls = self.calls.lock().unwrap();
        let found = calls.iter().rev().find(|(p, _)| p == path);
        found
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("no call to {path}"))
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

/// Percent-decodes one `application/x-www-form-urlencoded` component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn parse_form(body: &str) -> Form {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Stripe's error object, as its API answers a refused request.
fn stripe_error(status: StatusCode, message: &str, param: Option<&str>) -> Response {
    let code = (status == StatusCode::BAD_REQUEST).then_some("resource_missing");
    let body = json!({"error": {"type": "invalid_request_error", "code": code,
        "message": message, "param": param,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_test"}});
    (status, axum::Json(body)).into_response()
}

/// What every Stripe endpoint checks first: the secret key as a bearer token, a form
/// body. `Some` is the refusal.
fn refusal(headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(format!("Bearer {SECRET_KEY}").as_str()) {
        let msg = "Invalid API Key provided: sk_test_****";
        return Some(stripe_error(StatusCode::UNAUTHORIZED, msg, None));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if ct != Some("application/x-www-form-urlencoded") {
        let msg = "Invalid request: the body must be form-encoded";
        return Some(stripe_error(StatusCode::BAD_REQUEST, msg, None));
    }
    None
}

fn field(form: &Form, key: &str) -> Value {
    form.get(key).map_or(Value::Null, |v| json!(v))
}

async fn create_checkout_session(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    let form = parse_form(&body);
    let path = "/v1/checkout/sessions".to_owned();
    stub.calls.lock().unwrap().push((path, form.clone()));
    if form.get("customer").map(String::as_str) == Some(GONE_CUSTOMER) {
        let msg = format!("No such customer: '{GONE_CUSTOMER}'");
        return stripe_error(StatusCode::BAD_REQUEST, &msg, Some("customer"));
    }
    let id = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
    let now = chrono::Utc::now().timestamp();
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((k.to_owned(), json!(v)))
        })
        .collect();
    // The Checkout Session object; every field async-stripe requires is present.
    axum::Json(json!({
        "id": id, "object": "checkout.session", "adaptive_pricing": null,
        "after_expiration": null, "allow_promotion_codes": null, "amount_subtotal": 4900,
        "amount_total": 4900,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "cancel_url": field(&form, "cancel_url"),
        "client_reference_id": field(&form, "client_reference_id"), "client_secret": null,
        "consent": null, "consent_collection": null, "created": now, "currency": "usd",
        "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                        "terms_of_service_acceptance": null},
        "customer": field(&form, "customer"), "customer_creation": null,
        "customer_details": null, "customer_email": field(&form, "customer_email"),
        "discounts": [], "expires_at": now + DAY, "invoice": null, "invoice_creation": null,
        "livemode": false, "locale": null, "metadata": metadata, "mode": "subscription",
        "payment_intent": null, "payment_link": null, "payment_method_collection": "always",
        "payment_method_options": null, "payment_method_types": ["card"],
        "payment_status": "unpaid", "phone_number_collection": null, "recovered_from": null,
        "setup_intent": null, "shipping_address_collection": null, "shipping_cost": null,
        "shipping_options": [], "status": "open", "submit_type": null, "subscription": null,
        "success_url": field(&form, "success_url"), "total_details": null, "ui_mode": null,
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
    }))
    .into_response()
}

async fn create_portal_session(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    let form = parse_form(&body);
    let path = "/v1/billing_portal/sessions".to_owned();
    stub.calls.lock().unwrap().push((path, form.clone()));
    let Some(customer) = form.get("customer") else {
        let msg = "Missing required param: customer.";
        return stripe_error(StatusCode::BAD_REQUEST, msg, Some("customer"));
    };
    let id = format!("bps_test_{}", uuid::Uuid::new_v4().simple());
    // The Billing Portal Session object, every field present.
    axum::Json(json!({
        "id": id, "object": "billing_portal.session", "configuration": "bpc_test_default",
        "created": chrono::Utc::now().timestamp(), "customer": customer,
        "customer_account": null, "flow": null, "livemode": false, "locale": null,
        "on_behalf_of": null, "return_url": field(&form, "return_url"),
        "url": format!("https://billing.stripe.com/p/session/{id}"),
    }))
    .into_response()
}

/// Starts the Stripe stand-in on 127.0.0.1:0; it lives as long as the test's runtime.
async fn start_stripe() -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    let app = axum::Router::new()
        .route(
            "/v1/checkout/sessions",
            axum::routing::post(create_checkout_session),
        )
        .route(
            "/v1/billing_portal/sessions",
            axum::routing::post(create_portal_session),
        )
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, stub)
}

/// The API only (checkout touches the API, the store and Stripe, no processor), with
/// Stripe pointed at the stand-in. Deliver has no price configured.
async fn checkout_stack() -> (TestStack, Arc<Stub>) {
    let (base, stub) = start_stripe().await;
    let t = TestStack::start_configured(None, |cfg| {
        cfg.billing.stripe_secret_key = SECRET_KEY.into();
        cfg.billing.stripe_api_base = base;
        cfg.billing.prices = [(PRICE_START, Plan::Start), (PRICE_GROW, Plan::Grow)]
            .into_iter()
            .map(|(p, plan)| (p.to_owned(), plan))
            .collect();
    })
    .await;
    (t, stub)
}

/// A new account with `billing`, and its owner's and a member's keys.
async fn account(t: &TestStack, billing: &BillingState) -> (String, String, String) {
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let store = &t.stack.services.store;
    store
        .create_account(&account, "Ada's", Some("ada@example.com"), billing)
        .await
        .unwrap();
    let owner = store.issue_api_key(&account, "owner", Role::Owner).await;
    let member = store.issue_api_key(&account, "member", Role::Member).await;
    (account, owner.unwrap().key, member.unwrap().key)
}

fn paid(customer: &str, now: i64) -> BillingState {
    BillingState {
        plan: Plan::Start,
        status: AccountStatus::Active,
        stripe_customer: Some(customer.to_owned()),
        // A trial end left over from before the purchase must not carry.
        trial_ends_at: Some(now + 10 * DAY),
        ..BillingState::default()
    }
}

/// POSTs `body`; returns the status, the content type and the answer.
async fn post(t: &TestStack, path: &str, key: &str, body: &Value) -> (u16, String, Value) {
    let r = t
        .http
        .post(format!("{}{path}", t.base))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map_or("", |v| v.to_str().unwrap());
    let ct = ct.to_owned();
    (status, ct, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_carries_the_trial_and_tags_the_session_with_the_account() {
    let (t, stub) = checkout_stack().await;
    let now = chrono::Utc::now().timestamp();
    // Four days into the 14-day trial: ten days left.
    let trial = BillingState::new_trial(now - 4 * DAY);
    let trial_ends_at = trial.trial_ends_at.unwrap();
    let (acct, owner, member) = account(&t, &trial).await;
    let start = json!({"plan": "start"});

    let (s, _, p) = post(&t, "/v1/billing/checkout", &member, &start).await;
    assert_eq!(s, 403, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("manage billing"),
        "{p}"
    );
    let (s, _, p) = post(&t, "/v1/billing/checkout", &owner, &json!({"plan": "free"})).await;
    assert_eq!(s, 422, "{p}");
    let (s, _, p) = post(
        &t,
        "/v1/billing/checkout",
        &owner,
        &json!({"plan": "deliver"}),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    let why = p["errors"][0]["message"].as_str().unwrap();
    assert!(why.contains("no Stripe price is configured"), "{p}");
    assert_eq!(stub.count(), 0, "refused requests must not reach Stripe");

    let (s, _, session) = post(&t, "/v1/billing/checkout", &owner, &start).await;
    assert_eq!(s, 201, "{session}");
    let id = session["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"), "{session}");
    assert_eq!(
        session["url"],
        format!("https://checkout.stripe.com/c/pay/{id}")
    );
    let form = stub.last("/v1/checkout/sessions");
    let get = |k: &str| form.get(k).map(String::as_str);
    assert_eq!(get("mode"), Some("subscription"), "{form:?}");
    assert_eq!(get("line_items[0][price]"), Some(PRICE_START), "{form:?}");
    assert_eq!(get("line_items[0][quantity]"), Some("1"), "{form:?}");
    assert_eq!(get("client_reference_id"), Some(acct.as_str()), "{form:?}");
    assert_eq!(get("metadata[account_id]"), Some(acct.as_str()), "{form:?}");
    let sub_account = get("subscription_data[metadata][account_id]");
    assert_eq!(sub_account, Some(acct.as_str()), "{form:?}");
    let trial_end = trial_ends_at.to_string();
    assert_eq!(
        get("subscription_data[trial_end]"),
        Some(trial_end.as_str()),
        "{form:?}"
    );
    assert_eq!(
        get("subscription_data[trial_period_days]"),
        None,
        "{form:?}"
    );
    assert_eq!(get("customer_email"), Some("ada@example.com"), "{form:?}");
    assert_eq!(get("customer"), None, "{form:?}");
    let success = t.cfg.billing.checkout_success_url.as_str();
    assert_eq!(get("success_url"), Some(success), "{form:?}");
    let cancel = t.cfg.billing.checkout_cancel_url.as_str();
    assert_eq!(get("cancel_url"), Some(cancel), "{form:?}");

    // A paid account: its customer, no trial.
    let (acct, owner, _) = account(&t, &paid("cus_paid_1", now)).await;
    let (s, _, session) = post(&t, "/v1/billing/checkout", &owner, &json!({"plan": "grow"})).await;
    assert_eq!(s, 201, "{session}");
    let form = stub.last("/v1/checkout/sessions");
    let get = |k: &str| form.get(k).map(String::as_str);
    assert_eq!(get("line_items[0][price]"), Some(PRICE_GROW), "{form:?}");
    assert_eq!(get("customer"), Some("cus_paid_1"), "{form:?}");
    assert_eq!(get("customer_email"), None, "{form:?}");
    assert_eq!(get("client_reference_id"), Some(acct.as_str()), "{form:?}");
    let sub_account = get("subscription_data[metadata][account_id]");
    assert_eq!(sub_account, Some(acct.as_str()), "{form:?}");
    let trial_keys: Vec<&String> = form
        .keys()
        .filter(|k| k.starts_with("subscription_data[trial"))
        .collect();
    assert!(trial_keys.is_empty(), "{form:?}");

    // Stripe refuses (400): a 502 problem with Stripe's message, never a 500.
    let (_, owner, _) = account(&t, &paid(GONE_CUSTOMER, now)).await;
    let (s, ct, p) = post(&t, "/v1/billing/checkout", &owner, &start).await;
    assert_eq!(s, 502, "{p}");
    assert_eq!(ct, "application/problem+json");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("No such customer: 'cus_deleted'"), "{p}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_needs_a_stripe_customer() {
    let (t, stub) = checkout_stack().await;
    let now = chrono::Utc::now().timestamp();
    let (_, trial_owner, _) = account(&t, &BillingState::new_trial(now)).await;
    let (s, _, p) = post(&t, "/v1/billing/portal", &trial_owner, &json!({})).await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(
        p["detail"], "no Stripe customer yet; start a checkout first",
        "{p}"
    );
    assert_eq!(stub.count(), 0);

    let (_, owner, member) = account(&t, &paid("cus_portal_1", now)).await;
    let (s, _, p) = post(&t, "/v1/billing/portal", &member, &json!({})).await;
    assert_eq!(s, 403, "{p}");
    let (s, _, session) = post(&t, "/v1/billing/portal", &owner, &json!({})).await;
    assert_eq!(s, 201, "{session}");
    let id = session["id"].as_str().unwrap();
    assert!(id.starts_with("bps_test_"), "{session}");
    let url = format!("https://billing.stripe.com/p/session/{id}");
    assert_eq!(session["url"], url);
    let form = stub.last("/v1/billing_portal/sessions");
    assert_eq!(
        form.get("customer").map(String::as_str),
        Some("cus_portal_1")
    );
    let back = t.cfg.billing.portal_return_url.as_str();
    assert_eq!(
        form.get("return_url").map(String::as_str),
        Some(back),
        "{form:?}"
    );
    t.stop().await;
}

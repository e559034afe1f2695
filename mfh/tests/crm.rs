//! Vendor CRMs end to end, over real sockets: connections through the API, a full sync
//! from a local vendor server into the lake's `contacts` table, signed and token-checked
//! webhooks keeping it current (deletes included), triggers running helpers on CRM
//! events, and the foundation helpers running against two vendor connectors.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod support;

use mfh::stack::Processors;
use mfh_processors::connectors::vendor::{Credentials, RateLimit};
use mfh_processors::connectors::{activecampaign, hubspot, keap};
use serde_json::{Value, json};
use std::time::Duration;
use support::TestStack;

const HUBSPOT_SECRET: &str = "fake-secret";

/// A stack whose vendors point at the fakes (OAuth client `fake-client`/`fake-secret`),
/// with limits high enough that the fakes, not the published limits, set the pace.
async fn stack(hubspot: &str, keap: &str) -> TestStack {
    let (h, k) = (hubspot.to_owned(), keap.to_owned());
    TestStack::start_configured(Some(Processors::All), move |cfg| {
        let fast = RateLimit::new(1000, Duration::from_secs(1));
        for (v, base) in [(&mut cfg.crm.hubspot, &h), (&mut cfg.crm.keap, &k)] {
            v.api_base.clone_from(base);
            v.token_url = format!("{base}/oauth/token");
            v.authorize_url = format!("{base}/oauth/authorize");
            v.client_id = "fake-client".into();
            v.client_secret = "fake-secret".into();
            v.rate_limit = fast;
        }
        cfg.crm.activecampaign.rate_limit = fast;
        cfg.crm.sync_interval = Duration::ZERO;
    })
    .await
}

fn token_of(c: &Credentials) -> Value {
    match c {
        Credentials::Bearer { token } | Credentials::KeapApiKey { key: token } => {
            json!({ "token": token })
        }
        Credentials::ApiToken { token } => json!({ "api_token": token }),
        Credentials::ApiKeyAndAppId { api_key, app_id } => {
            json!({ "api_key": api_key, "app_id": app_id })
        }
        Credentials::OAuth { access_token, .. } => json!({ "token": access_token }),
    }
}

async fn connect(t: &TestStack, platform: &str, creds: &Credentials, settings: Value) -> Value {
    let (status, body) = t
        .post(
            "/v1/connections",
            &t.key,
            &json!({"platform": platform, "credentials": token_of(creds), "settings": settings}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn sync_and_wait(t: &TestStack, id: &str, n: u64) {
    let (status, body) = t
        .post(&format!("/v1/connections/{id}/sync"), &t.key, &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, s) = t.get(&format!("/v1/connections/{id}/sync"), &t.key).await;
        if s["sync"]["status"] == "done" {
            assert_eq!(s["sync"]["synced"], json!(n), "{s}");
            break;
        }
        assert!(s["sync"]["status"] != "failed", "{s}");
        assert!(
            std::time::Instant::now() < deadline,
            "sync did not finish: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a HubSpot v3-signed delivery as HubSpot would.
async fn hubspot_delivery(t: &TestStack, path: &str, body: &str, ts: i64, secret: &str) -> u16 {
    let url = format!("{}{path}", t.cfg.api.public_url.trim_end_matches('/'));
    let sig = mfh_processors::crm_webhooks::hubspot_sign_v3(
        secret,
        "POST",
        &url,
        body.as_bytes(),
        &ts.to_string(),
    );
    t.http
        .post(format!("{}{path}", t.base))
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", sig)
        .header("x-hubspot-request-timestamp", ts.to_string())
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_fills_the_lake_and_signed_webhooks_keep_it_current() {
    let fake = hubspot::fake::start(250).await;
    let keap_fake = keap::fake::start(1).await;
    let t = stack(&fake.base, &keap_fake.base).await;
    let conn = connect(
        &t,
        "hubspot",
        &hubspot::fake::FakeServer::credentials(),
        json!({}),
    )
    .await;
    let id = conn["connection_id"].as_str().unwrap().to_owned();
    assert!(
        conn["webhook_token"]
            .as_str()
            .is_some_and(|s| s.len() >= 32)
    );
    // The connection's credentials never come back out.
    let (_, listed) = t.get("/v1/connections", &t.key).await;
    assert!(!listed.to_string().contains("webhook_token"));
    assert_eq!(listed["connections"][0]["status"], "active");
    let (status, health) = t
        .post(&format!("/v1/connections/{id}/health"), &t.key, &json!({}))
        .await;
    assert_eq!((status, &health["ok"]), (200, &json!(true)), "{health}");

    sync_and_wait(&t, &id, 250).await;
    t.wait_sql(&t.key, "select count(*) from contacts", json!(250))
        .await;

    // The CRM changes one contact and deletes another; HubSpot tells us, signed.
    let ids = fake.contact_ids();
    let (changed, deleted) = (ids[0].clone(), ids[1].clone());
    fake.set_field(&changed, "firstname", "Changed");
    fake.delete_contact(&deleted);
    let path = format!("/v1/webhooks/crm/hubspot/{id}");
    let body = json!([
        {"eventId": 11, "subscriptionType": "contact.propertyChange", "objectId": changed, "propertyName": "firstname", "occurredAt": 1},
        {"eventId": 12, "subscriptionType": "contact.deletion", "objectId": deleted, "occurredAt": 2}
    ])
    .to_string();
    let now = mfh_pipeline::now_millis();
    assert_eq!(
        hubspot_delivery(&t, &path, &body, now, HUBSPOT_SECRET).await,
        200
    );
    // The same signed delivery again is a replay.
    assert_eq!(
        hubspot_delivery(&t, &path, &body, now, HUBSPOT_SECRET).await,
        409
    );
    // HubSpot's own retry is signed afresh: accepted, and its events are duplicates.
    assert_eq!(
        hubspot_delivery(&t, &path, &body, now + 1, HUBSPOT_SECRET).await,
        200
    );
    // A wrong secret and a stale timestamp are refused.
    assert_eq!(hubspot_delivery(&t, &path, &body, now, "wrong").await, 401);
    let stale = now - 6 * 60 * 1000;
    assert_eq!(
        hubspot_delivery(&t, &path, &body, stale, HUBSPOT_SECRET).await,
        401
    );

    t.wait_sql(&t.key, "select count(*) from contacts", json!(249))
        .await;
    t.wait_sql(
        &t.key,
        &format!("select first_name from contacts where contact_id = '{changed}'"),
        json!("Changed"),
    )
    .await;
    // Another account sees none of it.
    let (_, other_key) = t.add_account().await;
    t.wait_sql(&other_key, "select count(*) from contacts", json!(0))
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_vendors_need_the_connection_token_and_triggers_run_helpers() {
    let hub = hubspot::fake::start(1).await;
    let kf = keap::fake::start(5).await;
    let acf = activecampaign::fake::start(5).await;
    let t = stack(&hub.base, &kf.base).await;
    let api_url = acf.base.trim_end_matches("/api/3").to_owned();
    let conn = connect(
        &t,
        "activecampaign",
        &activecampaign::fake::FakeServer::credentials(),
        json!({"api_url": api_url}),
    )
    .await;
    let id = conn["connection_id"].as_str().unwrap().to_owned();
    let token = conn["webhook_token"].as_str().unwrap().to_owned();
    let contact = acf.contact_ids()[0].clone();
    let crm = t
        .stack
        .services
        .connectors
        .resolve(&t.account, &id)
        .await
        .unwrap();
    let tags = crm.list_tags().await.unwrap();
    let (vip, follow_up) = (tags[0].clone(), tags[1].clone());

    // "When tag VIP is applied, apply the follow-up tag."
    let (status, trig) = t
        .post(
            "/v1/triggers",
            &t.key,
            &json!({"event": "tag_applied", "tag": vip.name, "connection_id": id,
                    "helper": "tag_it", "config": {"action": "apply", "tag_ids": [follow_up.id]}}),
        )
        .await;
    assert_eq!(status, 201, "{trig}");
    let (status, bad) = t
        .post(
            "/v1/triggers",
            &t.key,
            &json!({"event": "tag_exploded", "helper": "tag_it", "config": {"bogus": 1}}),
        )
        .await;
    assert_eq!(status, 422, "{bad}");

    let form = format!(
        "type=contact_tag_added&date_time=2024-05-01T12%3A00%3A00-05%3A00&contact%5Bid%5D={contact}&tag={}",
        url_encode(&vip.name)
    );
    let send = |q: String, body: String| {
        let http = t.http.clone();
        let url = format!("{}/v1/webhooks/crm/activecampaign/{id}{q}", t.base);
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(String::new(), form.clone()).await, 401);
    assert_eq!(send("?token=wrong".into(), form.clone()).await, 401);
    assert_eq!(send(format!("?token={token}"), form.clone()).await, 200);
    // A redelivery is a duplicate and starts nothing again.
    assert_eq!(send(format!("?token={token}"), form.clone()).await, 200);
    // ActiveCampaign never sends JSON: a clear 400 with a problem body.
    let r = t
        .http
        .post(format!(
            "{}/v1/webhooks/crm/activecampaign/{id}?token={token}",
            t.base
        ))
        .header("content-type", "application/json")
        .body(r#"{"contact": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // Unknown platforms and connections, or a connection under the wrong platform: 404.
    for path in [
        "/v1/webhooks/crm/salesforce/conn_x".to_owned(),
        "/v1/webhooks/crm/activecampaign/conn_unknown".to_owned(),
        format!("/v1/webhooks/crm/ontraport/{id}"),
    ] {
        let r = t
            .http
            .post(format!("{}{path}", t.base))
            .body("x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }

    // The trigger ran tag_it on the contact in ActiveCampaign.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = crm.get_contact(&contact).await.unwrap();
        if c.has_tag(&follow_up.id) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trigger did not apply the tag: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.wait_sql(
        &t.key,
        "select count(*) from executions where source = 'trigger' and status = 'succeeded'",
        json!(1),
    )
    .await;
    t.stop().await;
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The foundation helpers, configured for the vendor's own tags and fields.
fn foundation(tag_a: &str, tag_b: &str, hook: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("tag_it", json!({"action": "apply", "tag_ids": [tag_a]})),
        (
            "clear_tags",
            json!({"mode": "specific", "tag_ids": [tag_a]}),
        ),
        (
            "score_it",
            json!({"rules": [{"tag_id": tag_b, "points": 10}], "target_field": "job_title"}),
        ),
        (
            "copy_it",
            json!({"source_field": "email", "target_field": "website", "overwrite": true}),
        ),
        (
            "name_parse_it",
            json!({"source_field": "company", "fix_case": true}),
        ),
        (
            "date_calc",
            json!({"operation": "add_days", "field": "birthday", "source_default_now": true, "amount": 30, "target_field": "city"}),
        ),
        (
            "format_it",
            json!({"field": "first_name", "format": "uppercase"}),
        ),
        (
            "math_it",
            json!({"field": "postal_code", "operation": "add", "operand": 1}),
        ),
        (
            "split_it_basic",
            json!({"split_type": "tag_split", "split_tag_a": tag_a, "split_tag_b": tag_b}),
        ),
        (
            "hook_it",
            json!({"url": hook, "fields": ["email", "first_name"]}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_foundation_helpers_run_against_hubspot_and_keap() {
    let hub = hubspot::fake::start(3).await;
    let kf = keap::fake::start(3).await;
    let t = stack(&hub.base, &kf.base).await;
    let (hook, _) = support::start_vendor_stub(&t.cancel).await;
    for (platform, creds, contact) in [
        (
            "hubspot",
            hubspot::fake::FakeServer::credentials(),
            hub.contact_ids()[0].clone(),
        ),
        (
            "keap",
            keap::fake::FakeServer::credentials(),
            kf.contact_ids()[0].clone(),
        ),
    ] {
        let conn = connect(&t, platform, &creds, json!({})).await;
        let id = conn["connection_id"].as_str().unwrap().to_owned();
        let crm = t
            .stack
            .services
            .connectors
            .resolve(&t.account, &id)
            .await
            .unwrap();
        let tags = crm.list_tags().await.unwrap();
        assert!(tags.len() >= 2, "{platform} fake needs two tags: {tags:?}");
        let mut ids = Vec::new();
        for (helper, config) in foundation(&tags[0].id, &tags[1].id, &format!("{hook}/hook")) {
            let (status, body) = t
                .post(
                    "/v1/executions",
                    &t.key,
                    &json!({"helper": helper, "config": config, "connection_id": id, "contact_id": contact}),
                )
                .await;
            assert_eq!(status, 202, "{platform} {helper}: {body}");
            ids.push((helper, body["execution_id"].as_str().unwrap().to_owned()));
        }
        let mut succeeded = Vec::new();
        for (helper, exec) in ids {
            let done = t.wait_done(&exec, &t.key).await;
            if done["status"] == "succeeded" {
                succeeded.push(helper);
            } else {
                eprintln!("{platform} {helper}: {done}");
            }
            assert_ne!(
                done["error_kind"], "crm_unsupported",
                "{platform} {helper}: {done}"
            );
        }
        assert_eq!(
            succeeded.len(),
            10,
            "{platform}: only {succeeded:?} succeeded"
        );
        let c = crm.get_contact(&contact).await.unwrap();
        // copy_it and format_it reached the CRM.
        assert_eq!(c.field("website"), c.field("email"), "{platform}: {c:?}");
        assert_eq!(
            c.field("first_name").map(str::to_owned),
            c.field("first_name").map(str::to_uppercase),
            "{platform}: {c:?}"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connects_once_per_state_and_refreshes_expired_tokens() {
    let hub = hubspot::fake::start(1).await;
    let kf = keap::fake::start(2).await;
    let t = stack(&hub.base, &kf.base).await;
    let (status, conn) = t
        .post(
            "/v1/connections",
            &t.key,
            &json!({"platform": "keap", "name": "Keap (OAuth)"}),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    assert_eq!(conn["status"], "pending_authorization");
    let id = conn["connection_id"].as_str().unwrap().to_owned();
    // Not authorised yet: a sync is refused and the health check says why.
    let (status, _) = t
        .post(&format!("/v1/connections/{id}/sync"), &t.key, &json!({}))
        .await;
    assert_eq!(status, 409);
    let (_, health) = t
        .post(&format!("/v1/connections/{id}/health"), &t.key, &json!({}))
        .await;
    assert_eq!(health["ok"], json!(false), "{health}");

    let (status, start) = t
        .post(
            &format!("/v1/connections/{id}/oauth/start"),
            &t.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{start}");
    let url = start["authorize_url"].as_str().unwrap();
    let state = start["state"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", kf.base)),
        "{url}"
    );
    assert!(url.contains("client_id=fake-client") && url.contains("response_type=code"));
    assert!(url.contains(&format!("state={state}")));

    let callback = |q: String| {
        let http = t.http.clone();
        let url = format!("{}/v1/oauth/callback?{q}", t.base);
        async move {
            let r = http.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(callback("code=abc&state=forged".into()).await.0, 400);
    let (status, body) = callback(format!("code=abc&state={state}")).await;
    assert_eq!((status, &body["status"]), (200, &json!("active")), "{body}");
    // A state works once.
    let (status, again) = callback(format!("code=abc&state={state}")).await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["status"], 400);

    let (_, health) = t
        .post(&format!("/v1/connections/{id}/health"), &t.key, &json!({}))
        .await;
    assert_eq!(health["ok"], json!(true), "{health}");
    // Keap's REST hook handshake: the secret is echoed, with the connection's token only.
    let token = conn["webhook_token"].as_str().unwrap();
    let hook = format!("{}/v1/webhooks/crm/keap/{id}", t.base);
    let r = t
        .http
        .post(format!("{hook}?token={token}"))
        .header("x-hook-secret", "s3cret-handshake")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-hook-secret"], "s3cret-handshake");
    let r = t
        .http
        .post(hook)
        .header("x-hook-secret", "s3cret-handshake")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("x-hook-secret").is_none());
    // The vendor expires the access token: the next call refreshes it once and goes on.
    kf.expire_tokens();
    let crm = t
        .stack
        .services
        .connectors
        .resolve(&t.account, &id)
        .await
        .unwrap();
    let c = crm.get_contact(&kf.contact_ids()[0]).await.unwrap();
    assert!(c.field("email").is_some(), "{c:?}");
    assert_eq!(kf.refreshes(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_execution_waits_shows_throttled_and_succeeds() {
    let hub = hubspot::fake::start(2).await;
    let kf = keap::fake::start(1).await;
    let t = stack(&hub.base, &kf.base).await;
    let conn = connect(
        &t,
        "hubspot",
        &hubspot::fake::FakeServer::credentials(),
        json!({}),
    )
    .await;
    let id = conn["connection_id"].as_str().unwrap().to_owned();
    let contact = hub.contact_ids()[0].clone();
    // Three 429s use up the shared client's own attempts; the worker then waits out
    // Retry-After instead of failing.
    for _ in 0..3 {
        hub.fail_next(429, Some(2));
    }
    let (status, body) = t
        .post(
            "/v1/executions",
            &t.key,
            &json!({"helper": "format_it", "config": {"field": "first_name", "format": "uppercase"},
                    "connection_id": id, "contact_id": contact}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let exec = body["execution_id"].as_str().unwrap().to_owned();
    let (mut saw_throttled, deadline) =
        (false, std::time::Instant::now() + Duration::from_secs(60));
    let done = loop {
        let (_, e) = t.get(&format!("/v1/executions/{exec}"), &t.key).await;
        match e["status"].as_str() {
            Some("throttled") => saw_throttled = true,
            Some("succeeded" | "failed") => break e,
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(saw_throttled, "the wait was not visible: {done}");
    assert!(
        done["output"]["throttled_waits"].as_u64() >= Some(1),
        "{done}"
    );
    t.stop().await;
}

/// A stack with the sinks only (the test drives the sync itself), a HubSpot connection
/// to `hub`, and its full sync requested and claimed by "first".
struct ClaimedSync {
    t: TestStack,
    svc: mfh_processors::Services,
    c: mfh_processors::connectors::registry::Connection,
    id: String,
    state: mfh_processors::store::syncs::SyncState,
}

async fn claimed_hubspot_sync(hub: &hubspot::fake::FakeServer) -> ClaimedSync {
    let h = hub.base.clone();
    let t = TestStack::start_configured(Some(Processors::Sink), move |cfg| {
        cfg.crm.hubspot.api_base = h;
        cfg.crm.hubspot.rate_limit = RateLimit::new(1000, Duration::from_secs(1));
    })
    .await;
    let conn = connect(
        &t,
        "hubspot",
        &hubspot::fake::FakeServer::credentials(),
        json!({}),
    )
    .await;
    let id = conn["connection_id"].as_str().unwrap().to_owned();
    let svc = t.stack.services.clone();
    let c = svc.store.connection(&id).await.unwrap().unwrap();
    svc.store
        .request_sync(&t.account, &id, mfh_pipeline::now_millis())
        .await
        .unwrap();
    let state = mfh_processors::contact_sync::claim(&svc, &c, "first", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    ClaimedSync {
        t,
        svc,
        c,
        id,
        state,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_sync_continues_from_its_last_page_and_syncs_are_rescheduled() {
    use mfh_processors::contact_sync;
    let hub = hubspot::fake::start(250).await;
    let kf = keap::fake::start(1).await;
    // The API and the sinks only: this test drives the sync itself.
    let _ = kf;
    let ClaimedSync {
        t,
        svc,
        c,
        id,
        state,
    } = Box::pin(claimed_hubspot_sync(&hub)).await;
    // The first process dies right after its first page is saved.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let (svc2, c2) = (svc.clone(), c.clone());
    let run = tokio::spawn(async move {
        let progress = move |_: u64, _: Option<u64>| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            // Hold the run here until it is aborted.
            std::thread::sleep(Duration::from_millis(300));
        };
        contact_sync::sync_connection(&svc2, &c2, state, &progress).await
    });
    rx.await.unwrap();
    run.abort();
    let _ = run.await;
    let mut crashed = svc.store.sync_state(&id).await.unwrap().unwrap();
    assert_eq!((crashed.status.as_str(), crashed.synced), ("running", 100));
    // Its lease is still live: nobody else may take the run yet.
    assert!(
        contact_sync::claim(&svc, &c, "second", Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    crashed.lease_until = 0;
    assert!(svc.store.save_sync(&mut crashed).await.unwrap());
    let resumed = contact_sync::claim(&svc, &c, "second", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resumed.synced, 100,
        "the run continues instead of starting over"
    );
    let pages_before = hub.requests().len();
    let done = contact_sync::sync_connection(&svc, &c, resumed, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((done.status.as_str(), done.synced), ("done", 250));
    // Two more pages (100 + 50), not three.
    let listed = hub.requests()[pages_before..]
        .iter()
        .filter(|r| r.starts_with("GET /crm/v3/objects/contacts?"))
        .count();
    assert_eq!(listed, 2, "{:?}", &hub.requests()[pages_before..]);
    t.wait_sql(&t.key, "select count(*) from contacts", json!(250))
        .await;
    // Scheduling: not due within the interval, due after it.
    assert!(
        contact_sync::claim(&svc, &c, "cron", Duration::from_secs(3600))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let due = contact_sync::claim(&svc, &c, "cron", Duration::from_millis(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((due.status.as_str(), due.synced), ("running", 0));
    t.stop().await;
}

/// A rate-limited page renews the sync's lease past the wait before sleeping, so a
/// `Retry-After` longer than the lease cannot let a second process take the run and read
/// the same pages while this one sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_waiting_out_a_rate_limit_keeps_its_lease() {
    use mfh_processors::contact_sync;
    let hub = hubspot::fake::start(30).await;
    let ClaimedSync {
        t,
        svc,
        c,
        id,
        state: claimed,
    } = Box::pin(claimed_hubspot_sync(&hub)).await;
    // Enough 429s to get past the HTTP client's own attempts to the sync's wait.
    for _ in 0..3 {
        hub.fail_next(429, Some(2));
    }
    let before = mfh_pipeline::now_millis();
    let (svc2, c2, state) = (svc.clone(), c.clone(), claimed.clone());
    let run =
        tokio::spawn(
            async move { contact_sync::sync_connection(&svc2, &c2, state, &|_, _| {}).await },
        );
    // The first write after the claim is the renewal, before any page is saved.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let renewed = loop {
        let s = svc.store.sync_state(&id).await.unwrap().unwrap();
        if s.version > claimed.version {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no write during the wait"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(renewed.synced, 0, "the renewal comes before the page");
    assert!(
        renewed.lease_until >= before + 2_000 + 60_000,
        "lease until {} only, {} ms after the start",
        renewed.lease_until,
        renewed.lease_until - before
    );
    assert!(
        contact_sync::claim(&svc, &c, "second", Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    let done = run.await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.synced), ("done", 30));
    t.stop().await;
}

/// Signs a GoHighLevel delivery with `key` as GHL does (`X-GHL-Signature`, Ed25519 over
/// the raw body) and posts it to `path`.
async fn ghl_delivery(
    t: &TestStack,
    path: &str,
    body: &Value,
    key: &ring::signature::Ed25519KeyPair,
) -> (u16, Value) {
    use base64::Engine;
    let body = body.to_string();
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(body.as_bytes()));
    let r = t
        .http
        .post(format!("{}{path}", t.base))
        .header("content-type", "application/json")
        .header("x-ghl-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_level_webhooks_reach_only_the_connections_of_their_location_or_portal() {
    use base64::Engine;
    use mfh_processors::connectors::gohighlevel;
    use ring::signature::KeyPair;
    let hub = hubspot::fake::start(3).await;
    let ghl = gohighlevel::fake::start(3).await;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key().as_ref());
    let (h, g) = (hub.base.clone(), ghl.base.clone());
    let t = TestStack::start_configured(Some(Processors::All), move |cfg| {
        let fast = RateLimit::new(1000, Duration::from_secs(1));
        cfg.crm.hubspot.api_base = h;
        cfg.crm.hubspot.client_secret = HUBSPOT_SECRET.into();
        cfg.crm.hubspot.rate_limit = fast;
        cfg.crm.gohighlevel.token_url = format!("{g}/oauth/token");
        cfg.crm.gohighlevel.authorize_url = format!("{g}/oauth/authorize");
        cfg.crm.gohighlevel.client_id = "fake-client".into();
        cfg.crm.gohighlevel.client_secret = "fake-secret".into();
        cfg.crm.gohighlevel.api_base = g;
        cfg.crm.gohighlevel.webhook_public_key = public;
        cfg.crm.gohighlevel.rate_limit = fast;
        cfg.crm.sync_interval = Duration::ZERO;
    })
    .await;
    // Account 1 reaches the HubSpot portal; account 2 the GoHighLevel location; account
    // 3 another location, whose per-connection URL a vendor might still call.
    let hs = connect(
        &t,
        "hubspot",
        &hubspot::fake::FakeServer::credentials(),
        json!({}),
    )
    .await;
    assert_eq!(
        hs["webhook_url"],
        json!(format!("{}/v1/webhooks/crm/hubspot", t.base)),
        "one URL per vendor app: {hs}"
    );
    let (_, key2) = t.add_account().await;
    let (_, key3) = t.add_account().await;
    let mk = |k: &str, loc: &str| {
        let body = json!({"platform": "gohighlevel", "credentials": {"token": gohighlevel::fake::PRIVATE_TOKEN},
            "settings": {"location_id": loc}});
        let (k, t) = (k.to_owned(), &t);
        async move {
            let (s, b) = t.post("/v1/connections", &k, &body).await;
            assert_eq!(s, 201, "{b}");
            b
        }
    };
    mk(&key2, gohighlevel::fake::LOCATION_ID).await;
    let other = mk(&key3, "someOtherLocation0001").await;
    let other_id = other["connection_id"].as_str().unwrap().to_owned();
    // Account 4 types a wrong location, then authorises the right one at GHL's
    // chooselocation: the token's location replaces the typed one, and routes.
    let (_, key4) = t.add_account().await;
    let (s, oauth) = t
        .post(
            "/v1/connections",
            &key4,
            &json!({"platform": "gohighlevel", "settings": {"location_id": "typedWrongLocation00"}}),
        )
        .await;
    assert_eq!(
        (s, &oauth["status"]),
        (201, &json!("pending_authorization")),
        "{oauth}"
    );
    let oauth_id = oauth["connection_id"].as_str().unwrap().to_owned();
    let (_, start) = t
        .post(
            &format!("/v1/connections/{oauth_id}/oauth/start"),
            &key4,
            &json!({}),
        )
        .await;
    let state = start["state"].as_str().unwrap();
    let r = t
        .http
        .get(format!(
            "{}/v1/oauth/callback?code=abc&state={state}",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, shown) = t.get(&format!("/v1/connections/{oauth_id}"), &key4).await;
    assert_eq!(
        shown["settings"]["location_id"],
        json!(gohighlevel::fake::LOCATION_ID),
        "{shown}"
    );

    // HubSpot: one signed delivery with an event of account 1's portal and one of a
    // portal nobody connected.
    let ids = hub.contact_ids();
    hub.set_field(&ids[0], "firstname", "Routed");
    let portal = hub.portal_id();
    let body = json!([
        {"eventId": 21, "subscriptionType": "contact.propertyChange", "objectId": ids[0], "portalId": portal, "occurredAt": 1},
        {"eventId": 22, "subscriptionType": "contact.propertyChange", "objectId": ids[1], "portalId": 999_999, "occurredAt": 1}
    ])
    .to_string();
    let now = mfh_pipeline::now_millis();
    let url = format!("{}/v1/webhooks/crm/hubspot", t.base);
    let sig = mfh_processors::crm_webhooks::hubspot_sign_v3(
        HUBSPOT_SECRET,
        "POST",
        &url,
        body.as_bytes(),
        &now.to_string(),
    );
    let r = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", sig)
        .header("x-hubspot-request-timestamp", now.to_string())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(
        (receipt["received"].clone(), receipt["unrouted"].clone()),
        (json!(1), json!(1)),
        "{receipt}"
    );
    // The app URL is signed over its own path: a signature for another URL fails.
    let r = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "x-hubspot-signature-v3",
            mfh_processors::crm_webhooks::hubspot_sign_v3(
                HUBSPOT_SECRET,
                "POST",
                &format!("{url}/x"),
                body.as_bytes(),
                &now.to_string(),
            ),
        )
        .header("x-hubspot-request-timestamp", now.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    t.wait_sql(
        &t.key,
        &format!(
            "select first_name from contacts where contact_id = '{}'",
            ids[0]
        ),
        json!("Routed"),
    )
    .await;

    // GoHighLevel: an event of the location accounts 2 and 4 reach, sent to the app
    // URL and, as a misconfigured vendor app would, to account 3's connection URL: both
    // reach accounts 2 and 4 only (the second delivery's events are duplicates).
    let gid = ghl.contact_ids()[0].clone();
    ghl.set_field(&gid, "first_name", "Located");
    let event = json!({"type": "ContactUpdate", "locationId": gohighlevel::fake::LOCATION_ID,
        "id": gid, "webhookId": "wh-1", "timestamp": mfh_pipeline::now_millis()});
    let (s, r) = ghl_delivery(&t, "/v1/webhooks/crm/gohighlevel", &event, &key).await;
    assert_eq!((s, &r["received"]), (200, &json!(2)), "{r}");
    let mut again = event.clone();
    again["timestamp"] = json!(mfh_pipeline::now_millis() + 1);
    let (s, r) = ghl_delivery(
        &t,
        &format!("/v1/webhooks/crm/gohighlevel/{other_id}"),
        &again,
        &key,
    )
    .await;
    assert_eq!(
        (s, &r["received"], &r["duplicates"]),
        (200, &json!(0), &json!(2)),
        "{r}"
    );
    let unknown = json!({"type": "ContactUpdate", "locationId": "nobodysLocation00001", "id": gid,
        "webhookId": "wh-2", "timestamp": mfh_pipeline::now_millis()});
    let (s, r) = ghl_delivery(&t, "/v1/webhooks/crm/gohighlevel", &unknown, &key).await;
    assert_eq!(
        (s, &r["received"], &r["unrouted"]),
        (200, &json!(0), &json!(1)),
        "{r}"
    );
    // Unsigned vendors have no app URL.
    let (s, _) = ghl_delivery(&t, "/v1/webhooks/crm/keap", &unknown, &key).await;
    assert_eq!(s, 404);
    for k in [&key2, &key4] {
        t.wait_sql(
            k,
            &format!("select first_name from contacts where contact_id = '{gid}'"),
            json!("Located"),
        )
        .await;
    }
    for k in [&t.key, &key3] {
        t.wait_sql(
            k,
            &format!("select count(*) from contacts where contact_id = '{gid}'"),
            json!(0),
        )
        .await;
    }
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for p in ["hubspot", "gohighlevel"] {
        assert!(
            metrics.contains(&format!(
                "mfh_crm_events_unrouted_total{{platform=\"{p}\"}} 1"
            )),
            "{metrics}"
        );
    }
    t.stop().await;
}

//! Saved helpers and their run URLs end to end, through real sockets: a CRM automation
//! posts a helper's URL the way Keap, GoHighLevel, ActiveCampaign and HubSpot do (no
//! headers, form or JSON bodies), the pipeline runs it on the sandbox contact, and the
//! history, stats, slots and state follow the saved helper. Run with `scripts/test`.
#![allow(clippy::unwrap_used)]

mod support;

use mfh_processors::billing::{AccountStatus, BillingState, Plan};
use mfh_processors::connectors::sandbox::Sandbox;
use mfh_schemas::ExecutionRequested;
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use std::time::Duration;
use support::TestStack;

async fn save(t: &TestStack, key: &str, body: Value) -> Value {
    let (status, h) = t.post("/v1/helpers", key, &body).await;
    assert_eq!(status, 201, "{h}");
    h
}

/// The path of a helper's run URL (its host is `api.public_url`).
fn run_path(h: &Value) -> String {
    let url = h["run_url"].as_str().unwrap();
    url[url.find("/v1/run/").unwrap()..].to_owned()
}

/// Posts to a run URL with only a content type, as a CRM does; returns status and body.
async fn call(t: &TestStack, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let r = t
        .http
        .post(format!("{}{path}", t.base))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn has_tag(t: &TestStack, contact: &str, tag: &str) -> bool {
    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    let c = sandbox.contact_record(contact).await.unwrap().unwrap();
    c.tags.contains_key(tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_automation_runs_a_saved_helper_through_its_url() {
    let t = TestStack::start().await;
    let h = save(
        &t,
        &t.key,
        json!({"name": "Tag VIP", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox"}),
    )
    .await;
    let id = h["helper_id"].as_str().unwrap().to_owned();
    assert!(h["run_url"].as_str().unwrap().starts_with(&t.base), "{h}");
    let path = run_path(&h);

    // Keap's Campaign Builder "Send HTTP Post": form-encoded name/value pairs, no headers.
    let (status, accepted) = call(&t, &path, FORM, "contactId=3&source=campaign").await;
    assert_eq!(status, 202, "{accepted}");
    let done = t
        .wait_done(accepted["execution_id"].as_str().unwrap(), &t.key)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["helper_id"], id.as_str());
    assert_eq!(done["source"], "run_url");
    assert_eq!(done["input"], json!({"source": "campaign"}));
    assert!(has_tag(&t, "3", "102").await);
    let (_, list) = t
        .get(
            &format!("/v1/executions?helper_id={id}&contact_id=3"),
            &t.key,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, got) = t.get(&format!("/v1/helpers/{id}"), &t.key).await;
    assert_eq!(got["execution_count"], 1, "{got}");
    assert!(got["last_executed_at"].as_i64().is_some());
    assert_eq!(got["run_url"], h["run_url"], "the URL is shown again");

    // GoHighLevel's workflow webhook: JSON with contact_id.
    let (status, a) = call(
        &t,
        &path,
        "application/json",
        r#"{"contact_id": "4", "first_name": "Ann", "customData": {"k": "v"}}"#,
    )
    .await;
    assert_eq!(status, 202, "{a}");
    let done = t
        .wait_done(a["execution_id"].as_str().unwrap(), &t.key)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["input"]["customData"], json!({"k": "v"}));
    assert!(has_tag(&t, "4", "102").await);

    // ActiveCampaign's automation webhook: form fields with bracketed names.
    let (status, a) = call(
        &t,
        &path,
        FORM,
        "contact%5Bid%5D=5&contact%5Bemail%5D=e%40example.com",
    )
    .await;
    assert_eq!(status, 202, "{a}");
    let done = t
        .wait_done(a["execution_id"].as_str().unwrap(), &t.key)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(has_tag(&t, "5", "102").await);

    // A GET with the contact in the query string works too.
    let r = t
        .http
        .get(format!("{}{path}?contactId=6", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // Bad deliveries each get their own 4xx problem, and nothing is queued for them.
    for (ct, body, want) in [
        (FORM, "first=Ann", 400),
        (FORM, "contactId=~Contact.Id~", 400),
        ("application/json", "{oops", 400),
        ("text/plain", "contactId=3", 415),
    ] {
        let (status, p) = call(&t, &path, ct, body).await;
        assert_eq!(status, want, "{body}: {p}");
        assert!(p["detail"].is_string(), "{p}");
    }
    let big = format!("contactId=3&x={}", "a".repeat(2 << 20));
    // Its own client: the server answers 413 without reading the body and closes the
    // connection, which a pooled client could otherwise reuse.
    let r = reqwest::Client::new()
        .post(format!("{}{path}", t.base))
        .header("content-type", FORM)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let (status, _) = call(&t, "/v1/run/hlp_0000000000000000.nope", FORM, "contactId=3").await;
    assert_eq!(status, 401);
    let (_, got) = t.get(&format!("/v1/helpers/{id}"), &t.key).await;
    let (_, all) = t
        .get(&format!("/v1/executions?helper_id={id}&limit=100"), &t.key)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    assert!(got["execution_count"].as_i64().unwrap() <= 4);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_redelivery_runs_once_and_rotated_paused_deleted_urls_refuse() {
    let t = TestStack::start().await;
    let h = save(
        &t,
        &t.key,
        json!({"name": "Score", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"}),
    )
    .await;
    let id = h["helper_id"].as_str().unwrap().to_owned();
    let path = run_path(&h);

    // HubSpot retries a webhook it thinks failed, with the same body.
    let body = r#"{"objectId": 2, "properties": {"email": "b@example.com"}}"#;
    let (s1, first) = call(&t, &path, "application/json", body).await;
    let (s2, again) = call(&t, &path, "application/json", body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first["execution_id"], again["execution_id"]);
    t.wait_done(first["execution_id"].as_str().unwrap(), &t.key)
        .await;
    let (_, list) = t
        .get(&format!("/v1/executions?helper_id={id}"), &t.key)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // An Idempotency-Key header is honoured as well.
    let keyed = |k: &'static str| {
        t.http
            .post(format!("{}{path}", t.base))
            .header("content-type", FORM)
            .header("idempotency-key", k)
            .body("contactId=7")
            .send()
    };
    let a: Value = keyed("k1").await.unwrap().json().await.unwrap();
    let b: Value = keyed("k1").await.unwrap().json().await.unwrap();
    assert_eq!(a["execution_id"], b["execution_id"]);

    // Paused: 423 and nothing queued.
    let (status, _) = t
        .request_json(
            "PATCH",
            &format!("/v1/helpers/{id}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, p) = call(&t, &path, FORM, "contactId=1").await;
    assert_eq!(status, 423, "{p}");
    let (status, _) = t
        .request_json(
            "PATCH",
            &format!("/v1/helpers/{id}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, 200);

    // Rotated: the old URL is refused at once, the new one works.
    let (status, rotated) = t
        .post(&format!("/v1/helpers/{id}/rotate-url"), &t.key, &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = call(&t, &path, FORM, "contactId=1").await;
    assert_eq!(status, 401);
    let new_path = run_path(&rotated);
    assert_ne!(new_path, path);
    let (status, _) = call(&t, &new_path, FORM, "contactId=1").await;
    assert_eq!(status, 202);

    // Deleted: gone from lists, its URL answers 410, its history stays.
    let (status, _) = t
        .request_json("DELETE", &format!("/v1/helpers/{id}"), &json!(null))
        .await;
    assert_eq!(status, 204);
    let (status, _) = call(&t, &new_path, FORM, "contactId=1").await;
    assert_eq!(status, 410);
    let (_, listed) = t.get("/v1/helpers", &t.key).await;
    assert!(listed["items"].as_array().unwrap().is_empty(), "{listed}");
    let (status, _) = t.get(&format!("/v1/helpers/{id}"), &t.key).await;
    assert_eq!(status, 404);
    let (_, history) = t
        .get(&format!("/v1/executions?helper_id={id}"), &t.key)
        .await;
    assert!(history["items"].as_array().unwrap().len() >= 2, "{history}");

    // Another account cannot see or change it.
    let (_, other_key) = t.add_account().await;
    let h2 = save(
        &t,
        &t.key,
        json!({"name": "Mine", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"}),
    )
    .await;
    let (status, _) = t
        .get(
            &format!("/v1/helpers/{}", h2["helper_id"].as_str().unwrap()),
            &other_key,
        )
        .await;
    assert_eq!(status, 404);
    t.stop().await;
}

/// A trial account (ten helper slots) with its own key.
async fn trial_account(t: &TestStack) -> String {
    let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let billing = BillingState {
        plan: Plan::Trial,
        status: AccountStatus::Trialing,
        trial_ends_at: Some(chrono::Utc::now().timestamp() + 86_400),
        ..BillingState::default()
    };
    let store = &t.stack.services.store;
    store
        .create_account(&account, "Trial", Some("t@example.com"), &billing)
        .await
        .unwrap();
    Sandbox::new(store.clone(), &account, "sandbox")
        .seed(&support::seed())
        .await
        .unwrap();
    store.create_api_key(&account, "test").await.unwrap()
}

async fn run_variant(t: &TestStack, key: &str, path: &str, contact: &str) -> String {
    let (status, a) = call(t, path, FORM, &format!("contactId={contact}")).await;
    assert_eq!(status, 202, "{a}");
    let done = t.wait_done(a["execution_id"].as_str().unwrap(), key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done["output"]["variant"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_keeps_state_and_slots_count_live_helpers() {
    let t = TestStack::start().await;
    let key = trial_account(&t).await;
    let config = |a: &str| json!({"mode": "goal", "option_a": a, "option_b": "b", "option_c": "c", "split_count": 3, "sticky": false});
    let h = save(
        &t,
        &key,
        json!({"name": "Split", "helper": "split_it", "config": config("a"), "connection_id": "sandbox"}),
    )
    .await;
    let id = h["helper_id"].as_str().unwrap().to_owned();
    let path = run_path(&h);
    assert_eq!(run_variant(&t, &key, &path, "1").await, "A");
    assert_eq!(run_variant(&t, &key, &path, "2").await, "B");
    for i in 0..10 {
        let r = t
            .http
            .patch(format!("{}/v1/helpers/{id}", t.base))
            .header("x-api-key", &key)
            .json(&json!({"config": config(&format!("a{i}"))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // The rotation went on: a reset would start at A again.
    assert_eq!(run_variant(&t, &key, &path, "3").await, "C");
    let (_, got) = t.get(&format!("/v1/helpers/{id}"), &key).await;
    assert_eq!(got["config"]["option_a"], "a9");
    let (_, account) = t.get("/v1/account", &key).await;
    assert_eq!(
        account["usage"]["helpers"], 1,
        "ten edits use one slot: {account}"
    );

    // A config that does not validate lists every problem, and changes nothing.
    let r = t
        .http
        .patch(format!("{}/v1/helpers/{id}", t.base))
        .header("x-api-key", &key)
        .json(&json!({"config": {"mode": "nope", "extra": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let p: Value = r.json().await.unwrap();
    assert!(!p["errors"].as_array().unwrap().is_empty(), "{p}");

    // Ten slots on a trial: nine more fit, the eleventh is refused, a delete frees one.
    let tag = json!({"name": "T", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"});
    let mut last = String::new();
    for _ in 0..9 {
        last = save(&t, &key, tag.clone()).await["helper_id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let (status, p) = t.post("/v1/helpers", &key, &tag).await;
    assert_eq!(status, 403, "{p}");
    let (status, p) = t
        .post(&format!("/v1/helpers/{last}/copy"), &key, &json!({}))
        .await;
    assert_eq!(status, 403, "a copy takes a slot too: {p}");
    let r = t
        .http
        .delete(format!("{}/v1/helpers/{last}", t.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, copy) = t
        .post(&format!("/v1/helpers/{id}/copy"), &key, &json!({}))
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["name"], "Split (copy)");
    assert_ne!(copy["run_url"], h["run_url"]);
    // Inline configs through the REST API take no slot.
    let (status, body) = t
        .post("/v1/executions", &key, &json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["105"]}, "connection_id": "sandbox", "contact_id": "1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let (_, listed) = t.get("/v1/helpers?helper=split_it", &key).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_producer_names_a_saved_helper_and_a_failure_is_retried() {
    let t = TestStack::start().await;
    let h = save(
        &t,
        &t.key,
        json!({"name": "VIP", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox"}),
    )
    .await;
    let id = h["helper_id"].as_str().unwrap().to_owned();
    let exec = uuid::Uuid::new_v4().to_string();
    let r = ExecutionRequested {
        execution_id: exec.clone(),
        account_id: t.account.clone(),
        contact_id: "7".into(),
        connection_id: String::new(),
        helper: String::new(),
        config_json: String::new(),
        input_json: None,
        requested_at: mfh_pipeline::now_millis(),
        source: "direct".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: Some(id.clone()),
    };
    let client = mfh_pipeline::avro::AvroSerde::new(&t.registry_url);
    let topic = t.cfg.kafka.topics().requested();
    let bytes = client.encode(&topic.value_subject(), &r).await.unwrap();
    t.stack
        .services
        .producer
        .send(
            FutureRecord::to(&topic.name).key(&r.key()).payload(&bytes),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let done = t.wait_done(&exec, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["helper"], "tag_it");
    assert_eq!(done["helper_id"], id.as_str());
    assert!(has_tag(&t, "7", "102").await);

    // A contact the CRM does not have fails; a retry runs the helper's current config.
    let path = run_path(&h);
    let (_, a) = call(&t, &path, FORM, "contactId=404404").await;
    let failed_id = a["execution_id"].as_str().unwrap().to_owned();
    let failed = t.wait_done(&failed_id, &t.key).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (_, got) = t.get(&format!("/v1/helpers/{id}"), &t.key).await;
    assert_eq!(
        got["last_failures"][0]["execution_id"],
        failed_id.as_str(),
        "{got}"
    );
    assert_eq!(got["failure_count"], 1);
    let (status, retry) = t
        .post(
            &format!("/v1/executions/{failed_id}/retry"),
            &t.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{retry}");
    let second = t
        .wait_done(retry["execution_id"].as_str().unwrap(), &t.key)
        .await;
    assert_eq!(second["retry_of"], failed_id.as_str());
    assert_eq!(second["helper_id"], id.as_str());
    assert_eq!(second["contact_id"], "404404");
    let (status, again) = t
        .post(
            &format!("/v1/executions/{failed_id}/retry"),
            &t.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        again["execution_id"], retry["execution_id"],
        "one retry per failure"
    );
    let (status, _) = t
        .post(&format!("/v1/executions/{exec}/retry"), &t.key, &json!({}))
        .await;
    assert_eq!(status, 409, "a success is not retried");
    t.stop().await;
}

/// The helper form's tag picker reads the connection's tag catalog; another account's
/// connection, or none, is a 404 like any other resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lists_its_tags_for_the_form() {
    let t = TestStack::start_with(None).await;
    let (status, body) = t.get("/v1/connections/sandbox/tags", &t.key).await;
    assert_eq!(status, 200, "{body}");
    let tags = body["tags"].as_array().unwrap();
    let vip = tags.iter().find(|g| g["id"] == "102").unwrap();
    assert_eq!(vip["name"], "VIP", "{vip}");
    assert!(tags.iter().any(|g| g["name"] == "Webinar: March"), "{body}");
    for id in ["conn_0123456789abcdef", "nope"] {
        let (status, body) = t.get(&format!("/v1/connections/{id}/tags"), &t.key).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["status"], 404);
    }
    let (status, _) = t.get("/v1/connections/sandbox/tags", "mfh_wrong").await;
    assert_eq!(status, 401);
    t.stop().await;
}

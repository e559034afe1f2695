//! Every helper of the registry through the whole pipeline on real sockets: REST → broker
//! → router → its category's worker → sandbox CRM (DynamoDB-compatible server) → sink →
//! DynamoDB and the lake. Third-party calls go to one local vendor stub.
#![allow(clippy::unwrap_used)]

mod support;

use mfh::stack::Processors;
use mfh_pipeline::CancellationToken;
use mfh_processors::helpers::{HELPERS, Vendors};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::TestStack;

/// A trigger payload for the helpers that act on an inbound event.
fn input_for(helper: &str) -> Option<Value> {
    match helper {
        "ip_notifications" | "ip_redirects" | "route_it_geo" => Some(json!({"ip": "8.8.8.8"})),
        "video_trigger_it" => Some(json!({"video_id": "wistia-abc123", "percent": 80})),
        "hook_it_v2" => Some(json!({"event": "order.created"})),
        "hook_it_v3" => Some(json!({"order": {"total": "49.00"}, "items": [{"sku": "SKU-1"}]})),
        "facebook_lead_ads" => Some(json!({"leadgen_id": "4401", "form_id": "1234567890"})),
        "stripe_hooks" => Some(json!({
            "id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1_777_593_600,
            "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_1",
                                "customer_email": "ada@example.com", "amount_paid": 4900,
                                "currency": "usd", "status": "paid"}}
        })),
        _ => None,
    }
}

/// Error kinds that mean the pipeline, not the helper, failed.
const INFRASTRUCTURE: &[&str] = &[
    "crm_unsupported",
    "store",
    "encode",
    "produce",
    "crm_unavailable",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_helper_runs_through_the_pipeline() {
    let cancel = CancellationToken::new();
    let (vendor, seen) = support::start_vendor_stub(&cancel).await;
    let t = TestStack::start_configured(Some(Processors::All), |cfg| {
        cfg.processors.vendors = Vendors::all_at(&vendor);
    })
    .await;
    let mut ids = BTreeMap::new();
    for h in HELPERS.iter() {
        // Example hosts of customer-configured URLs point at the local stub instead.
        let example = h
            .example_config()
            .replace("https://hooks.example.invalid", &vendor)
            .replace("https://alerts.example.invalid", &vendor);
        let config: Value = serde_json::from_str(&example).unwrap();
        let mut body = json!({"helper": h.name(), "config": config, "connection_id": "sandbox", "contact_id": "1"});
        if let Some(input) = input_for(h.name()) {
            body["input"] = input;
        }
        let (status, answer) = t.post("/v1/executions", &t.key, &body).await;
        assert_eq!(status, 202, "{}: {answer}", h.name());
        ids.insert(
            h.name(),
            answer["execution_id"].as_str().unwrap().to_owned(),
        );
    }
    let mut report = Vec::new();
    let mut succeeded = 0;
    for (name, id) in &ids {
        let done = t.wait_done(id, &t.key).await;
        let status = done["status"].as_str().unwrap().to_owned();
        let kind = done["error_kind"].as_str().unwrap_or("").to_owned();
        assert!(
            status == "succeeded" || status == "failed",
            "{name}: {done}"
        );
        assert!(
            !INFRASTRUCTURE.contains(&kind.as_str()),
            "{name} failed in the pipeline: {done}"
        );
        succeeded += usize::from(status == "succeeded");
        report.push(format!(
            "{name:<26} {status:<9} {kind:<10} {} {}",
            done["message"], done["output"]["failed_changes"]
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert_eq!(ids.len(), HELPERS.len());
    assert!(
        succeeded * 10 >= ids.len() * 9,
        "only {succeeded} of {} succeeded on the demo data:\n{}",
        ids.len(),
        report.join("\n")
    );
    assert!(
        !seen.lock().unwrap().is_empty(),
        "no integration helper called its vendor"
    );
    let q = "select count(distinct execution_id) from executions where source = 'api'";
    t.wait_sql(&t.key, q, json!(ids.len())).await;
    t.stop().await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_state_counts_exactly_under_concurrent_writers_and_replays() {
    use mfh_processors::state::StateStore;
    use mfh_processors::store::state::DynamoState;
    let t = TestStack::start_with(None).await;
    let store = t.stack.services.store.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let s = DynamoState::new(store.clone(), &t.account);
        tasks.spawn(async move {
            for i in 0..25 {
                let exec = format!("w{w}-e{i}");
                let first = s.incr("split_it/x/counter", 1, &exec, None).await.unwrap();
                // A redelivered execution gets its first answer back and adds nothing.
                let again = s.incr("split_it/x/counter", 1, &exec, None).await.unwrap();
                assert_eq!(first, again);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let mine = DynamoState::new(store.clone(), &t.account);
    assert_eq!(
        mine.get("split_it/x/counter").await.unwrap(),
        Some(json!(100))
    );
    // Another account sees none of it.
    let other = DynamoState::new(store, "someone-else");
    assert_eq!(other.get("split_it/x/counter").await.unwrap(), None);
    assert!(other.list("split_it/").await.unwrap().is_empty());
    let (_, created) = mine
        .put_if_absent("snap/1", json!({"a": 1}), None)
        .await
        .unwrap();
    let (v, again) = mine
        .put_if_absent("snap/1", json!({"a": 2}), None)
        .await
        .unwrap();
    assert!(created && !again && v == json!({"a": 1}));
    // Review finding 13: a put used to erase the `incr` journal, so an execution that
    // incremented before a reset incremented again on redelivery.
    assert_eq!(mine.incr("reset/x", 1, "e1", None).await.unwrap(), 1);
    mine.put("reset/x", json!(0), None).await.unwrap();
    assert_eq!(mine.incr("reset/x", 1, "e1", None).await.unwrap(), 1);
    assert_eq!(mine.get("reset/x").await.unwrap(), Some(json!(0)));
    assert_eq!(mine.incr("reset/x", 1, "e2", None).await.unwrap(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_its_execution_through_the_pipeline_once() {
    use mfh_schemas::ExecutionRequested;
    let t = TestStack::start().await;
    let now = mfh_pipeline::now_millis();
    let req = ExecutionRequested {
        execution_id: uuid::Uuid::new_v4().to_string(),
        account_id: t.account.clone(),
        contact_id: "3".into(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: json!({"action": "apply", "tag_ids": ["102"]}).to_string(),
        input_json: None,
        requested_at: now,
        source: "schedule".into(),
        depth: 1,
        parent_execution_id: Some("parent-1".into()),
        helper_id: None,
    };
    let store = &t.stack.services.store;
    store.put_timer(now + 1500, &req).await.unwrap();
    // Written twice (a redelivered parent): still one timer, one execution.
    store.put_timer(now + 1500, &req).await.unwrap();
    let (status, _) = t
        .get(&format!("/v1/executions/{}", req.execution_id), &t.key)
        .await;
    assert_eq!(status, 404, "must not run before its time");
    let done = t.wait_done(&req.execution_id, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["started_at"].as_str().is_some() || done["duration_ms"].is_number());
    let mut left = 0;
    for shard in 0..mfh_processors::store::timers::SHARDS {
        left += store
            .due_timers(shard, now + 60_000, 10)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(left, 0, "the fired timer is deleted");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_every_helper_with_its_config_schema() {
    let t = TestStack::start_with(None).await;
    let r = t
        .http
        .get(format!("{}/v1/helper-types", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 97);
    let categories: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|h| h["category"].as_str()).collect();
    assert_eq!(categories.len(), 8);
    for h in &list {
        assert_eq!(h["config_schema"]["type"], "object", "{h}");
        assert!(h["summary"].as_str().unwrap().ends_with('.'), "{h}");
        assert!(!h["outputs"].as_array().unwrap().is_empty(), "{h}");
        assert!(h["example_config"].is_object(), "{h}");
    }
    let tag_it = list.iter().find(|h| h["name"] == "tag_it").unwrap();
    assert!(tag_it["config_schema"]["properties"]["tag_ids"].is_object());
    assert_eq!(tag_it["requires"], json!(["tags"]));
    let one: Value = t
        .http
        .get(format!("{}/v1/helper-types/tag_it", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&one, tag_it);
    let missing = t
        .http
        .get(format!("{}/v1/helper-types/nope", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_it_runs_its_steps_in_the_pipeline_and_a_loop_stops_at_the_depth_limit() {
    use mfh_processors::connectors::sandbox::Sandbox;
    let t = TestStack::start().await;
    // One step now, one after a 2 s timer; both on contact 3 (which has no tags).
    let parent = t
        .execute(
            "chain_it",
            json!({"steps": [
                {"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}},
                {"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["105"]}, "delay_seconds": 2}
            ]}),
            "3",
        )
        .await;
    let done = t.wait_done(&parent, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let children: Vec<String> = done["output"]["follow_ups"]
        .as_array()
        .unwrap_or_else(|| panic!("no follow-ups: {done}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(children.len(), 2, "{done}");
    let first = t.wait_done(&children[0], &t.key).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["source"], "chain", "{first}");
    let second = t.wait_done(&children[1], &t.key).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["source"], "schedule", "{second}");
    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    let c = sandbox.contact_record("3").await.unwrap().unwrap();
    assert!(
        c.tags.contains_key("102") && c.tags.contains_key("105"),
        "{c:?}"
    );

    // A chain nested deeper than the limit: every level up to the limit runs, the next
    // one is dead-lettered as chain_too_deep and nothing runs past it.
    let limit = t.cfg.processors.max_chain_depth;
    let mut config = json!({"action": "apply", "tag_ids": ["101"]});
    let mut helper = "tag_it";
    for _ in 0..(limit + 2) {
        config = json!({"steps": [{"helper": helper, "config": config}]});
        helper = "chain_it";
    }
    let root = t.execute("chain_it", config, "4").await;
    let dl = t
        .dead_letters("dlq-chain")
        .next(std::time::Duration::from_secs(60), "the over-deep request")
        .await;
    assert_eq!(dl.reason_kind, "chain_too_deep", "{dl:?}");
    assert_eq!(t.wait_done(&root, &t.key).await["status"], "succeeded");
    let c = sandbox.contact_record("4").await.unwrap().unwrap();
    assert!(
        !c.tags.contains_key("101"),
        "the innermost step must not run"
    );
    t.stop().await;
}

//! No input a tenant or a direct producer sends stops a processor: records the store
//! cannot take, configs at the edge of their range and results too large for DynamoDB
//! are refused, dead-lettered or cut, and the records after them still flow. Run with
//! `scripts/test`.
#![allow(clippy::unwrap_used)]

mod support;

use mfh_schemas::{ExecutionCompleted, ExecutionRequested, ExecutionStatus};
use serde_json::{Value, json};
use support::TestStack;

/// A succeeded tag_it result for sandbox contact 1, as a worker writes it.
fn result(t: &TestStack, id: &str) -> ExecutionCompleted {
    let now = mfh_pipeline::now_millis();
    ExecutionCompleted {
        execution_id: id.to_owned(),
        account_id: t.account.clone(),
        contact_id: "1".into(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        category: "tagging".into(),
        status: ExecutionStatus::Succeeded,
        message: "done".into(),
        requested_at: now,
        started_at: now,
        completed_at: now,
        output_json: "{}".into(),
        changes: vec![],
        error_kind: None,
        error_message: None,
        source: "direct".into(),
        helper_id: None,
    }
}

fn request(t: &TestStack, id: &str, contact: &str) -> ExecutionRequested {
    ExecutionRequested {
        execution_id: id.to_owned(),
        account_id: t.account.clone(),
        contact_id: contact.to_owned(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: json!({"action": "apply", "tag_ids": ["101"]}).to_string(),
        input_json: None,
        requested_at: mfh_pipeline::now_millis(),
        source: "direct".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_no_write_can_take_are_refused_and_the_rest_flows() {
    let t = TestStack::start().await;
    let svc = &t.stack.services;
    let requested = svc.kafka.topics().requested();
    // An empty execution id and a contact id with the key separator: every store write
    // would fail on them, forever. They are dead letters, not a stopped router.
    let mut empty = request(&t, "", "1");
    empty.execution_id.clear();
    svc.produce(&requested, &empty.key(), &empty).await.unwrap();
    let colon = request(&t, &uuid::Uuid::new_v4().to_string(), "a:b");
    svc.produce(&requested, "k", &colon).await.unwrap();
    // A result bigger than a DynamoDB item, written straight to the results topic.
    let big_id = uuid::Uuid::new_v4().to_string();
    let big = ExecutionCompleted {
        message: "é".repeat(10_000),
        output_json: json!({"blob": "x".repeat(600 * 1024)}).to_string(),
        ..result(&t, &big_id)
    };
    let completed = svc.kafka.topics().completed();
    svc.produce(&completed, &big.key(), &big).await.unwrap();
    // Records behind them still run.
    let after = uuid::Uuid::new_v4().to_string();
    let ok = request(&t, &after, "1");
    svc.produce(&requested, &ok.key(), &ok).await.unwrap();
    let done = t.wait_done(&after, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let kept = t.wait_done(&big_id, &t.key).await;
    assert_eq!(kept["output"]["truncated"], true, "{kept}");
    assert!(kept["message"].as_str().unwrap().len() <= 8 * 1024);
    // The lake holds the whole result.
    t.wait_sql(
        &t.key,
        &format!(
            "select length(output_json) > 600000 from executions where execution_id = '{big_id}'"
        ),
        json!(true),
    )
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_at_the_edge_of_their_range_are_refused_before_they_run() {
    let t = TestStack::start_with(None).await;
    let mut config: Value = serde_json::from_str(
        mfh_processors::helpers::find("countdown_timer")
            .unwrap()
            .example_config(),
    )
    .unwrap();
    config["add_days"] = json!(4_000_000_000_u64);
    let (status, p) = t
        .post(
            "/v1/executions",
            &t.key,
            &json!({"helper": "countdown_timer", "config": config, "connection_id": "sandbox", "contact_id": "1"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "add_days", "{p}");
    t.stop().await;
}

/// Review finding 11: a write DynamoDB refuses (`ValidationException`, here a result with
/// an empty execution id written straight to the results topic) is permanent: the sink
/// dead-letters it at once, without retrying or stopping, and the results after it land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_store_refuses_is_dead_lettered_not_retried() {
    let t = TestStack::start().await;
    let svc = &t.stack.services;
    let completed = svc.kafka.topics().completed();
    let refused = result(&t, "");
    // The same key as the next one: the same partition must keep flowing.
    svc.produce(&completed, "k1", &refused).await.unwrap();
    let after = uuid::Uuid::new_v4().to_string();
    svc.produce(&completed, "k1", &result(&t, &after))
        .await
        .unwrap();
    let done = t.wait_done(&after, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    let dl = t
        .dead_letters("dlq-store-check")
        .next(std::time::Duration::from_secs(30), "the refused result")
        .await;
    assert_eq!(dl.stage, "sink");
    assert_eq!(dl.reason_kind, "store_rejected", "{}", dl.reason);
    assert!(dl.reason.contains("ValidationException"), "{}", dl.reason);
    t.stop().await;
}

/// A vendor that takes every apply, counts them, and then takes the journal's table away,
/// so recording what it took fails.
struct VendorThenStoreDown {
    applies: std::sync::atomic::AtomicUsize,
    store: mfh_processors::store::Store,
}

#[async_trait::async_trait]
impl mfh_processors::connectors::CrmRead for VendorThenStoreDown {
    async fn search_contacts(
        &self,
        _query: &mfh_processors::connectors::ContactQuery,
        _page: Option<&str>,
    ) -> Result<mfh_processors::connectors::ContactPage, mfh_processors::connectors::CrmError> {
        Ok(mfh_processors::connectors::ContactPage {
            contacts: vec![],
            next: None,
            total: None,
        })
    }
}

#[async_trait::async_trait]
impl mfh_processors::connectors::CrmConnector for VendorThenStoreDown {
    fn platform(&self) -> &'static str {
        "keap"
    }
    fn capabilities(&self) -> &'static [mfh_processors::connectors::Capability] {
        &[]
    }
    async fn healthcheck(&self) -> Result<(), mfh_processors::connectors::CrmError> {
        Ok(())
    }
    async fn vendor_account(&self) -> Result<Option<String>, mfh_processors::connectors::CrmError> {
        Ok(None)
    }
    async fn get_contact(
        &self,
        contact_id: &str,
    ) -> Result<mfh_processors::helpers::Contact, mfh_processors::connectors::CrmError> {
        Err(mfh_processors::connectors::CrmError::NotFound {
            object: format!("contact {contact_id}"),
        })
    }
    async fn apply(
        &self,
        _contact_id: &str,
        _execution_id: &str,
        _changes: &[mfh_processors::helpers::Change],
    ) -> Result<mfh_processors::connectors::ApplyReport, mfh_processors::connectors::CrmError> {
        self.applies
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store
            .client
            .delete_table()
            .table_name(self.store.table(mfh_processors::store::CRM_APPLIES))
            .send()
            .await
            .unwrap();
        Ok(mfh_processors::connectors::ApplyReport::default())
    }
}

/// Review finding 6: the vendor answered, then recording the apply failed. The caller
/// gets the vendor's report, not an error its CRM retry would answer by writing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_write_is_not_repeated_when_recording_it_fails() {
    use mfh_processors::connectors::CrmConnector;
    let cfg = mfh_processors::store::DynamoConfig {
        endpoint: std::env::var("MFH_TEST_DYNAMO").expect("run with scripts/test"),
        region: "us-east-1".into(),
        table_prefix: format!(
            "journal_{}_",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        access_key_id: "local".into(),
        secret_access_key: "local".into(),
        cache_ttl_ms: 0,
    };
    let store = mfh_processors::store::Store::connect(&cfg);
    store.ensure_tables().await.unwrap();
    let vendor = std::sync::Arc::new(VendorThenStoreDown {
        applies: std::sync::atomic::AtomicUsize::new(0),
        store: store.clone(),
    });
    let journaled = mfh_processors::connectors::journal::Journaled::new(
        vendor.clone(),
        store.clone(),
        "conn_1".into(),
    );
    // The worker's way of calling a CRM: retries while it is unavailable.
    let policy = mfh_processors::connectors::CrmRetry {
        rate_limited_attempts: 2,
        unavailable_attempts: 3,
        max_wait: std::time::Duration::from_millis(100),
    };
    let no_wait = |_: bool, _: std::time::Duration| -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    };
    let r = mfh_processors::connectors::with_crm_retries(policy, &no_wait, || {
        journaled.apply("7", "exec-1", &[])
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        vendor.applies.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the vendor was asked to write again"
    );
}

/// Review finding 13 (one failing timer aborts the poll): a timer item whose request no
/// longer parses sits in the first shard. It is dead-lettered and removed, and the timers
/// of every shard still fire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_cannot_fire_is_dead_lettered_and_the_others_fire() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let t = TestStack::start().await;
    let store = &t.stack.services.store;
    let now = mfh_pipeline::now_millis();
    store
        .client
        .put_item()
        .table_name(store.table(mfh_processors::store::TIMERS))
        .item("shard", AttributeValue::S("s0".into()))
        .item(
            "due",
            AttributeValue::S(format!("{:013}#broken", now - 1_000)),
        )
        .item("request", AttributeValue::S("{not a request".into()))
        .send()
        .await
        .unwrap();
    // Several, so they land in several shards, the first one's included.
    let ids: Vec<String> = (0..6).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (i, id) in ids.iter().enumerate() {
        let req = request(&t, id, &(i % 3 + 1).to_string());
        store.put_timer(now - 500, &req).await.unwrap();
    }
    for id in &ids {
        let done = t.wait_done(id, &t.key).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let dl = t
        .dead_letters("dlq-timer-check")
        .next(std::time::Duration::from_secs(30), "the broken timer")
        .await;
    assert_eq!(dl.stage, "scheduler");
    assert_eq!(dl.reason_kind, "corrupt_timer");
    assert_eq!(dl.payload.as_deref(), Some(&b"{not a request"[..]));
    let mut left = 0;
    for shard in 0..mfh_processors::store::timers::SHARDS {
        left += store
            .due_timers(shard, now + 60_000, 10)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(left, 0, "every timer, the broken one too, is gone");
    t.stop().await;
}

/// Review finding 13: an execution accepted but never produced (the registry or broker
/// away) stayed `queued` forever. It now shows why, and the caller's repeat queues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_the_api_could_not_queue_says_so_and_a_repeat_runs_it() {
    let t = TestStack::start().await;
    // A second API on the same store whose registry is unreachable: every produce fails.
    let mut broken = t.stack.api_state(&t.cfg);
    broken.avro = mfh_pipeline::avro::AvroSerde::new("http://127.0.0.1:9");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broken_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mfh::stack::serve_api(broken, listener, t.cancel.clone()));
    let body = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox", "contact_id": "4"});
    let send = |base: String| {
        let (http, key, body) = (t.http.clone(), t.key.clone(), body.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/executions"))
                .header("x-api-key", key)
                .header("idempotency-key", "order-8")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, problem) = send(broken_base).await;
    assert_eq!(status, 503, "{problem}");
    let (_, list) = t.get("/v1/executions", &t.key).await;
    let stuck = &list["items"][0];
    assert_eq!(stuck["status"], "failed", "{list}");
    assert_eq!(stuck["error_kind"], "not_queued", "{list}");
    let id = stuck["execution_id"].as_str().unwrap().to_owned();
    let (status, accepted) = send(t.base.clone()).await;
    assert_eq!(
        (status, accepted["execution_id"].as_str()),
        (202, Some(id.as_str())),
        "{accepted}"
    );
    assert_eq!(accepted["status"], "queued");
    let done = t.wait_done(&id, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["error_kind"], Value::Null, "{done}");
    t.stop().await;
}

/// Review finding 13: a follow-up that could not be requested (store or broker away)
/// marked the parent failed, although its changes were made, and the follow-ups after it
/// were never requested. Now the parent waits: it is redelivered and requests them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_that_cannot_be_requested_holds_its_parent_until_it_can() {
    let t = TestStack::start().await;
    let store = &t.stack.services.store;
    store
        .client
        .delete_table()
        .table_name(store.table(mfh_processors::store::TIMERS))
        .send()
        .await
        .unwrap();
    let later = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "delay_seconds": 3600});
    let id = t
        .execute("chain_it", json!({"steps": [later.clone(), later]}), "2")
        .await;
    // Long enough for the worker's retries to run out more than once.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let (_, seen) = t.get(&format!("/v1/executions/{id}"), &t.key).await;
    assert_ne!(seen["status"], "failed", "{seen}");
    assert_ne!(seen["status"], "succeeded", "{seen}");
    store.ensure_tables().await.unwrap();
    let done = t.wait_done(&id, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["output"]["follow_ups"].as_array().map(Vec::len),
        Some(2),
        "{done}"
    );
    t.stop().await;
}

/// Review finding 7: the first copy of a result always won, so a redelivered execution
/// whose first run failed (before recording an outcome) and whose second run made its
/// changes stayed `failed` for good. A succeeded copy now replaces a failed one, in
/// DynamoDB and in the explorer's one row per execution; a failed copy never replaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_copy_replaces_a_failed_one_and_never_the_reverse() {
    let t = TestStack::start().await;
    let svc = &t.stack.services;
    let completed = svc.kafka.topics().completed();
    let id = uuid::Uuid::new_v4().to_string();
    let key = format!("{}:1", t.account);
    // A saved helper's stats count the execution once, and its failure only while the
    // failed copy stands.
    let helper = json!({"name": "T", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"});
    let (status, h) = t.post("/v1/helpers", &t.key, &helper).await;
    assert_eq!(status, 201, "{h}");
    let helper_id = h["helper_id"].as_str().unwrap().to_owned();
    let stats = || async {
        let (_, h) = t.get(&format!("/v1/helpers/{helper_id}"), &t.key).await;
        (h["execution_count"].clone(), h["failure_count"].clone())
    };
    let failed = ExecutionCompleted {
        status: ExecutionStatus::Failed,
        error_kind: Some("crm_unavailable".into()),
        error_message: Some("the CRM did not answer".into()),
        helper_id: Some(helper_id.clone()),
        ..result(&t, &id)
    };
    svc.produce(&completed, &key, &failed).await.unwrap();
    assert_eq!(t.wait_done(&id, &t.key).await["status"], "failed");
    assert_eq!(stats().await, (json!(1), json!(1)));
    let succeeded = ExecutionCompleted {
        completed_at: failed.completed_at + 1000,
        helper_id: Some(helper_id.clone()),
        ..result(&t, &id)
    };
    svc.produce(&completed, &key, &succeeded).await.unwrap();
    // A later failed copy (another redelivery, the CRM away again) changes nothing.
    svc.produce(&completed, &key, &failed).await.unwrap();
    let marker = uuid::Uuid::new_v4().to_string();
    svc.produce(&completed, &key, &result(&t, &marker))
        .await
        .unwrap();
    t.wait_done(&marker, &t.key).await;
    let (_, now) = t.get(&format!("/v1/executions/{id}"), &t.key).await;
    assert_eq!(now["status"], "succeeded", "{now}");
    assert_eq!(now["error_kind"], Value::Null, "{now}");
    assert_eq!(
        stats().await,
        (json!(1), json!(0)),
        "the failure taken back"
    );
    let q = format!(
        "select count(*) || ' ' || min(status) from executions where execution_id = '{id}'"
    );
    t.wait_sql(&t.key, &q, json!("1 succeeded")).await;
    t.stop().await;
}

/// Review finding 13: helper state did not retry a store error, so a moment of DynamoDB
/// unavailability inside `once` turned a sent message into a failed execution. Here the
/// state table appears a moment after the first write is tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_state_rides_out_a_moment_without_its_store() {
    use mfh_processors::state::StateStore;
    let cfg = mfh_processors::store::DynamoConfig {
        endpoint: std::env::var("MFH_TEST_DYNAMO").expect("run with scripts/test"),
        region: "us-east-1".into(),
        table_prefix: format!("state_{}_", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        access_key_id: "local".into(),
        secret_access_key: "local".into(),
        cache_ttl_ms: 0,
    };
    let store = mfh_processors::store::Store::connect(&cfg);
    let state = mfh_processors::store::state::DynamoState::new(store.clone(), "acct_1");
    let later = store.clone();
    let tables = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        later.ensure_tables().await.unwrap();
    });
    state
        .put("once/e1/sms", json!({"status": "done"}), None)
        .await
        .unwrap();
    tables.await.unwrap();
    assert_eq!(
        state.get("once/e1/sms").await.unwrap(),
        Some(json!({"status": "done"}))
    );
}

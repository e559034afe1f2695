//! End-to-end tests through real sockets: HTTP → broker → router → category workers →
//! sink → DynamoDB-compatible server and lake → explorer. Run them with `scripts/test`.
#![allow(clippy::unwrap_used)]

mod support;

use mfh_processors::connectors::sandbox::Sandbox;
use mfh_schemas::ExecutionRequested;
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use std::time::Duration;
use support::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_request_runs_the_helper_and_lands_in_dynamodb_and_the_lake() {
    let t = TestStack::start().await;
    let id = t
        .execute(
            "tag_it",
            json!({"action": "apply", "tag_ids": ["102"]}),
            "1",
        )
        .await;
    let done = t.wait_done(&id, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["category"], "tagging");
    assert_eq!(
        done["changes"],
        json!([{"kind": "tag_applied", "target": "102", "old_value": null, "new_value": "VIP"}])
    );
    assert!(done["duration_ms"].as_i64().unwrap() >= 0);

    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    let contact = sandbox.contact_record("1").await.unwrap().unwrap();
    assert!(contact.tags.contains_key("102"));

    let (status, list) = t
        .get("/v1/executions?helper=tag_it&status=succeeded", &t.key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["execution_id"], id.as_str());

    let q = format!(
        "select count(*) from executions where execution_id = '{id}' and status = 'succeeded'"
    );
    t.wait_sql(&t.key, &q, json!(1)).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_same_execution_and_runs_it_once() {
    let t = TestStack::start().await;
    let body = json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["105"]}, "connection_id": "sandbox", "contact_id": "3"});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = t
            .http
            .post(format!("{}/v1/executions", t.base))
            .header("x-api-key", &t.key)
            .header("idempotency-key", "order-7")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        ids.push(v["execution_id"].as_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|i| *i == ids[0]));
    assert_eq!(t.wait_done(&ids[0], &t.key).await["status"], "succeeded");
    // A retry once it finished is answered with the result, and nothing is produced.
    let r = t
        .http
        .post(format!("{}/v1/executions", t.base))
        .header("x-api-key", &t.key)
        .header("idempotency-key", "order-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["execution_id"], ids[0].as_str());
    assert_eq!(v["status"], "succeeded", "{v}");
    // A different body under the same key is refused.
    let r = t
        .http
        .post(format!("{}/v1/executions", t.base))
        .header("x-api-key", &t.key)
        .header("idempotency-key", "order-7")
        .json(&json!({"helper": "tag_it", "config": {"action": "remove", "tag_ids": ["105"]}, "connection_id": "sandbox", "contact_id": "3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    t.wait_sql(&t.key, "select count(*) from executions", json!(1))
        .await;
    let (_, list) = t.get("/v1/executions", &t.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    t.stop().await;
}

fn request(
    t: &TestStack,
    id: &str,
    helper: &str,
    config: Value,
    contact: &str,
    at: i64,
) -> ExecutionRequested {
    ExecutionRequested {
        execution_id: id.to_owned(),
        account_id: t.account.clone(),
        contact_id: contact.to_owned(),
        connection_id: "sandbox".into(),
        helper: helper.into(),
        config_json: config.to_string(),
        input_json: None,
        requested_at: at,
        source: "direct".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    }
}

async fn produce_raw(t: &TestStack, key: &str, bytes: &[u8]) {
    let topic = t.cfg.kafka.topics().requested().name;
    t.stack
        .services
        .producer
        .send(
            FutureRecord::to(&topic).key(key).payload(bytes),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// Encodes like any Kafka client with a registry: the schema id comes from the registry.
async fn produce_request(t: &TestStack, r: &ExecutionRequested) {
    let client = mfh_pipeline::avro::AvroSerde::new(&t.registry_url);
    let subject = t.cfg.kafka.topics().requested().value_subject();
    let bytes = client.encode(&subject, r).await.unwrap();
    produce_raw(t, &r.key(), &bytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_producer_gets_the_same_result_as_the_rest_path() {
    let t = TestStack::start().await;
    let id = uuid::Uuid::new_v4().to_string();
    let r = request(
        &t,
        &id,
        "tag_it",
        json!({"action": "apply", "tag_ids": ["102"]}),
        "1",
        mfh_pipeline::now_millis(),
    );
    produce_request(&t, &r).await;
    let done = t.wait_done(&id, &t.key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["source"], "direct");
    assert_eq!(done["changes"][0]["kind"], "tag_applied");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_topic_and_the_partition_keeps_flowing() {
    let t = TestStack::start().await;
    let now = mfh_pipeline::now_millis();
    let key = format!("{}:1", t.account);
    produce_raw(&t, &key, b"\0\0\0\0\x01not avro at all").await;
    produce_raw(&t, &key, b"plain text").await;
    produce_request(
        &t,
        &request(&t, "bad-helper", "no_such_helper", json!({}), "1", now),
    )
    .await;
    produce_request(
        &t,
        &request(
            &t,
            "bad-config",
            "tag_it",
            json!({"action": "explode"}),
            "1",
            now,
        ),
    )
    .await;
    let good = uuid::Uuid::new_v4().to_string();
    produce_request(
        &t,
        &request(
            &t,
            &good,
            "tag_it",
            json!({"action": "apply", "tag_ids": ["101"]}),
            "1",
            now,
        ),
    )
    .await;
    assert_eq!(t.wait_done(&good, &t.key).await["status"], "succeeded");

    let dead = t.dead_letters("dlq-check");
    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let dl = dead.next(Duration::from_secs(30), "each bad record").await;
        assert_eq!(dl.stage, "router");
        assert!(!dl.reason.is_empty());
        assert!(dl.payload.is_some());
        kinds.push(dl.reason_kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "invalid_avro",
            "invalid_avro",
            "invalid_config",
            "unknown_helper"
        ]
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_contacts_executions_run_in_order_while_contacts_run_concurrently() {
    let t = TestStack::start().await;
    let base = mfh_pipeline::now_millis();
    let mut by_contact: Vec<(String, Vec<String>)> = vec![
        ("1".into(), vec![]),
        ("2".into(), vec![]),
        ("3".into(), vec![]),
    ];
    for i in 0..15 {
        for (contact, ids) in &mut by_contact {
            let id = format!("{contact}-{i:02}-{}", uuid::Uuid::new_v4().simple());
            // Alternate apply/remove so the final state also depends on the order.
            let action = if i % 2 == 0 { "apply" } else { "remove" };
            let r = request(
                &t,
                &id,
                "tag_it",
                json!({"action": action, "tag_ids": ["104"]}),
                contact,
                base + i,
            );
            produce_request(&t, &r).await;
            ids.push(id);
        }
    }
    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    for (contact, ids) in &by_contact {
        let mut prev_done = 0;
        for id in ids {
            let d = t.wait_done(id, &t.key).await;
            assert_eq!(d["status"], "succeeded", "{d}");
            let started = d["started_at"].as_i64().unwrap();
            assert!(
                started >= prev_done,
                "{id} started before its predecessor finished"
            );
            prev_done = d["completed_at"].as_i64().unwrap();
        }
        // 15 alternating runs starting with apply end with the tag applied.
        let c = sandbox.contact_record(contact).await.unwrap().unwrap();
        assert!(c.tags.contains_key("104"), "contact {contact}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_each_account_only_its_own_data() {
    let t = TestStack::start().await;
    let (other, other_key) = t.add_account().await;
    let mine = t
        .execute(
            "tag_it",
            json!({"action": "apply", "tag_ids": ["102"]}),
            "1",
        )
        .await;
    let (_, body) = t
        .post("/v1/executions", &other_key, &json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox", "contact_id": "2"}))
        .await;
    let theirs = body["execution_id"].as_str().unwrap().to_owned();
    t.wait_done(&mine, &t.key).await;
    t.wait_done(&theirs, &other_key).await;
    // Another account's execution is invisible through the API too.
    assert_eq!(
        t.get(&format!("/v1/executions/{theirs}"), &t.key).await.0,
        404
    );

    t.wait_sql(&t.key, "select count(*) from executions", json!(1))
        .await;
    t.wait_sql(&other_key, "select count(*) from executions", json!(1))
        .await;
    let (_, r) = t
        .sql(&t.key, "select distinct account_id from executions")
        .await;
    assert_eq!(r["rows"], json!([[t.account]]));

    let other_file = t
        .stack
        .lake
        .files_of_account(&other)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let root = t.stack.lake.local_root().unwrap();
    let other_file = root.join("executions").join(other_file);
    let lake_root = root.display().to_string();
    let attacks = [
        format!("select * from read_parquet('{}')", other_file.display()),
        format!("select * from read_parquet('{lake_root}/**/*.parquet')"),
        "select * from read_csv('/etc/passwd')".to_owned(),
        "select * from glob('/*')".to_owned(),
        "SET enable_external_access = true".to_owned(),
        "SET lock_configuration = false".to_owned(),
        "COPY executions TO '/tmp/mfh-leak.csv'".to_owned(),
        format!("ATTACH '{lake_root}/x.db' AS x"),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "select 1; select 2".to_owned(),
    ];
    for sql in attacks {
        let (status, body) = t.sql(&t.key, &sql).await;
        assert_eq!(status, 400, "{sql} was allowed: {body}");
        assert!(body["detail"].is_string(), "{body}");
    }
    assert!(!std::path::Path::new("/tmp/mfh-leak.csv").exists());
    // Still the caller's own rows only, after all that.
    let (_, r) = t.sql(&t.key, "select count(*) from executions").await;
    assert_eq!(r["rows"], json!([[1]]));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_a_4xx_problem_body() {
    let t = TestStack::start_with(None).await;
    let url = format!("{}/v1/executions", t.base);
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(ct, "application/problem+json", "{status} {body}");
        assert_eq!(body["status"], status, "{body}");
        (status, body)
    };
    let k = &t.key;
    assert_eq!(send(t.http.post(&url).json(&json!({}))).await.0, 401);
    assert_eq!(
        send(
            t.http
                .post(&url)
                .header("x-api-key", "mfh_wrong")
                .json(&json!({}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        send(
            t.http
                .post(&url)
                .header("x-api-key", k)
                .header("content-type", "application/json")
                .body("{not json")
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(t.http.post(&url).header("x-api-key", k).body("{}"))
            .await
            .0,
        415,
        "no content type"
    );
    assert_eq!(
        send(t.http.delete(&url).header("x-api-key", k)).await.0,
        405
    );
    assert_eq!(
        send(
            t.http
                .post(&url)
                .header("x-api-key", k)
                .json(&json!({"helper": "tag_it"}))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        send(
            t.http
                .post(&url)
                .header("x-api-key", k)
                .json(&json!([1, 2]))
        )
        .await
        .0,
        422
    );
    let (s, b) = send(t.http.post(&url).header("x-api-key", k).json(
        &json!({"helper": "nope", "config": {}, "connection_id": "sandbox", "contact_id": "1"}),
    ))
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = send(t.http.post(&url).header("x-api-key", k).json(&json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": []}, "connection_id": "sandbox", "contact_id": "1"}))).await;
    assert_eq!(s, 422);
    assert_eq!(b["errors"][0]["field"], "tag_ids", "{b}");
    let (s, _) = send(t.http.post(&url).header("x-api-key", k).json(
        &json!({"helper": "tag_it", "config": "x", "connection_id": "sandbox", "contact_id": "1"}),
    ))
    .await;
    assert_eq!(s, 422);
    let (s, _) = send(t.http.post(&url).header("x-api-key", k).json(&json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["1"]}, "connection_id": "", "contact_id": "1"}))).await;
    assert_eq!(s, 422);
    assert_eq!(
        send(
            t.http
                .post(format!("{url}?dry_run=maybe"))
                .header("x-api-key", k)
                .json(&json!({}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(t.http.get(format!("{url}?limit=0")).header("x-api-key", k))
            .await
            .0,
        400
    );
    assert_eq!(
        send(
            t.http
                .get(format!("{url}?status=weird"))
                .header("x-api-key", k)
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(
            t.http
                .get(format!("{url}?cursor=%%%"))
                .header("x-api-key", k)
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(
            t.http
                .get(format!("{url}/does-not-exist"))
                .header("x-api-key", k)
        )
        .await
        .0,
        404
    );
    assert_eq!(
        send(t.http.get(format!("{}/v2/nothing", t.base))).await.0,
        404
    );
    let big = "x".repeat(2 << 20);
    // Its own client: the server answers 413 without reading the body and closes the
    // connection, which a pooled client could otherwise reuse for the next request.
    assert_eq!(
        send(
            reqwest::Client::new()
                .post(&url)
                .header("x-api-key", k)
                .header("content-type", "application/json")
                .body(big)
        )
        .await
        .0,
        413
    );
    assert_eq!(
        send(
            t.http
                .post(format!("{}/v1/explorer/query", t.base))
                .header("x-api-key", k)
                .json(&json!({"sql": ""}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(
            t.http
                .post(format!("{}/v1/explorer/query", t.base))
                .header("x-api-key", k)
                .json(&json!({"sql": "select nonsense from"}))
        )
        .await
        .0,
        400
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_changes_without_making_them() {
    let t = TestStack::start_with(None).await;
    let (status, body) = t
        .post("/v1/executions?dry_run=true", &t.key, &json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["102"]}, "connection_id": "sandbox", "contact_id": "1"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["changes"],
        json!([{"kind": "apply_tag", "tag_id": "102"}])
    );
    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    assert!(
        !sandbox
            .contact_record("1")
            .await
            .unwrap()
            .unwrap()
            .tags
            .contains_key("102")
    );
    let (_, helpers) = t.get("/v1/helper-types", &t.key).await;
    assert!(
        helpers
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "tag_it")
    );
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    t.stop().await;
}

fn child_env(t: &TestStack) -> Vec<(String, String)> {
    let c = &t.cfg;
    vec![
        ("MFH__KAFKA__BROKERS".into(), c.kafka.brokers.clone()),
        (
            "MFH__KAFKA__SCHEMA_REGISTRY_URL".into(),
            c.kafka.schema_registry_url.clone(),
        ),
        ("MFH__KAFKA__PREFIX".into(), c.kafka.prefix.clone()),
        (
            "MFH__KAFKA__PARTITIONS".into(),
            c.kafka.partitions.to_string(),
        ),
        ("MFH__DYNAMO__ENDPOINT".into(), c.dynamo.endpoint.clone()),
        (
            "MFH__DYNAMO__TABLE_PREFIX".into(),
            c.dynamo.table_prefix.clone(),
        ),
        ("MFH__LAKE__ROOT".into(), c.lake.root.clone()),
        ("MFH__PROCESSORS__LAKE_MAX_WAIT".into(), "20ms".into()),
        ("MFH__PROCESSORS__LAKE_COMPACT_MIN_FILES".into(), "4".into()),
    ]
}

/// A child process that is killed when dropped, so a failing test leaves none behind.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_processor(t: &TestStack, which: &str, n: usize) -> Proc {
    let dir = std::env::var("MFH_TEST_LOG_DIR")
        .map_or_else(|_| t.lake_dir.path().to_owned(), std::path::PathBuf::from);
    let log = std::fs::File::create(dir.join(format!("{which}-{n}.log"))).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_mfh"))
        .args([
            "--log",
            &std::env::var("MFH_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            "process",
            "--category",
            which,
        ])
        .envs(child_env(t))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map(Proc)
        .unwrap()
}

fn terminate(Proc(child): &mut Proc) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_rebalance_and_crash_mid_stream_without_losing_or_duplicating_a_result() {
    let t = TestStack::start_with(Some(mfh::stack::Processors::Router)).await;
    // Two instances of the tagging group share its partitions.
    let mut first = spawn_processor(&t, "tagging", 1);
    let mut second = spawn_processor(&t, "tagging", 2);
    let mut sink = spawn_processor(&t, "sink", 1);
    let base = mfh_pipeline::now_millis();
    let produce = |range: std::ops::Range<usize>| {
        let t = &t;
        async move {
            let mut ids = Vec::new();
            for i in range {
                let id = format!("kill-{i:04}-{}", uuid::Uuid::new_v4().simple());
                let contact = ["1", "2", "3", "4", "5"][i % 5];
                let action = if (i / 5) % 2 == 0 { "apply" } else { "remove" };
                let config = json!({"action": action, "tag_ids": ["103"]});
                let r = request(t, &id, "tag_it", config, contact, base + i as i64);
                produce_request(t, &r).await;
                ids.push(id);
            }
            ids
        }
    };
    let ids = produce(0..400).await;
    // As soon as results land, one worker and the sink are killed mid-batch (no
    // LeaveGroup). The surviving worker alone must get the dead one's partitions once its
    // session expires, and finish everything.
    t.wait_done(&ids[10], &t.key).await;
    first.0.kill().unwrap();
    let _ = first.0.wait();
    sink.0.kill().unwrap();
    let _ = sink.0.wait();
    let mut sink = spawn_processor(&t, "sink", 2);
    for id in &ids {
        assert_eq!(t.wait_done(id, &t.key).await["status"], "succeeded");
    }
    // A second wave: a new member joins mid-stream (a rebalance moves partitions while
    // records run), then the old one is killed and the new one takes everything.
    let wave = produce(400..600).await;
    t.wait_done(&wave[10], &t.key).await;
    let mut third = spawn_processor(&t, "tagging", 3);
    t.wait_done(&wave[60], &t.key).await;
    second.0.kill().unwrap();
    let _ = second.0.wait();
    for id in &wave {
        assert_eq!(t.wait_done(id, &t.key).await["status"], "succeeded");
    }
    let n = 600;
    let all = "select count(*) from executions where execution_id like 'kill-%'";
    t.wait_sql(&t.key, all, json!(n)).await;
    let (_, r) = t
        .sql(
            &t.key,
            "select count(distinct execution_id), count(*) from executions",
        )
        .await;
    assert_eq!(r["rows"], json!([[n, n]]), "no duplicate rows in the lake");
    // 120 alternating runs per contact starting with apply end with the tag removed.
    let sandbox = Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox");
    for c in ["1", "2", "3", "4", "5"] {
        assert!(
            !sandbox
                .contact_record(c)
                .await
                .unwrap()
                .unwrap()
                .tags
                .contains_key("103"),
            "contact {c}"
        );
    }
    terminate(&mut third);
    terminate(&mut sink);
    t.stop().await;
}

/// Review finding 10: queries had no cap, so a burst multiplied DuckDB's memory limit by
/// the blocking pool's size. With one slot, a second query while one runs gets a 429
/// problem, not a second DuckDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_runs_at_most_its_slots_at_once() {
    let t = TestStack::start_configured(None, |cfg| {
        cfg.api.explorer_max_concurrent = 1;
        cfg.api.explorer_timeout = Duration::from_secs(8);
    })
    .await;
    let slow = t.sql(&t.key, "select sum(i) from range(100000000000) t(i)");
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.sql(&t.key, "select 1").await
    };
    let ((slow_status, _), (status, body)) = tokio::join!(slow, second);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["status"], 429);
    assert!(
        body["detail"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    assert_eq!(slow_status, 422, "the long query ran out of time");
    let (status, body) = t.sql(&t.key, "select 1 as one").await;
    assert_eq!((status, &body["rows"]), (200, &json!([[1]])), "{body}");
    t.stop().await;
}

/// A pure helper's outcome and its contact's changes are one sandbox write, made once:
/// a redelivery finds the execution in the contact's journal, and a recorded outcome
/// cancels the write it came with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_records_a_pure_outcome_with_its_changes_once() {
    use mfh_processors::connectors::CrmConnector;
    use mfh_processors::helpers::{Change, Outcome};
    let t = TestStack::start().await;
    let store = t.stack.services.store.clone();
    let sandbox = Sandbox::new(store.clone(), &t.account, "sandbox");
    let outcome = |changes: Vec<Change>| Outcome {
        success: true,
        message: "tagged".into(),
        output: serde_json::Map::new(),
        changes,
        logs: Vec::new(),
        follow_ups: Vec::new(),
    };
    let apply = vec![Change::ApplyTag {
        tag_id: "104".into(),
    }];
    let remove = vec![Change::RemoveTag {
        tag_id: "104".into(),
    }];
    let first = outcome(apply.clone());
    // As the worker does: the helper reads the contact, then the write starts from it.
    sandbox.get_contact("3").await.unwrap();
    let ledger = store.outcome_put("x1", &first).unwrap();
    let report = sandbox
        .apply_recording("3", "x1", &apply, ledger.clone())
        .await
        .unwrap()
        .expect("one write");
    assert_eq!(report.applied.len(), 1, "{report:?}");
    assert_eq!(store.recorded_outcome("x1").await.unwrap(), Some(first));
    let tagged = sandbox.contact_record("3").await.unwrap().unwrap();
    assert!(tagged.tags.contains_key("104"));
    // Redelivered: the contact shows the execution, so nothing is written and the
    // caller takes the usual way (the first outcome, the journal's report).
    assert!(
        sandbox
            .apply_recording("3", "x1", &apply, ledger)
            .await
            .unwrap()
            .is_none()
    );
    let again = sandbox.apply("3", "x1", &apply).await.unwrap();
    assert_eq!(again.applied, report.applied);
    // An outcome already recorded cancels the contact's write made with it.
    let taken = store.outcome_put("x1", &outcome(remove.clone())).unwrap();
    assert!(
        sandbox
            .apply_recording("3", "x2", &remove, taken)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sandbox.contact_record("3").await.unwrap().unwrap(), tagged);
    assert_eq!(
        store.recorded_outcome("x1").await.unwrap().unwrap().changes,
        apply
    );
    t.stop().await;
}

/// What one tag_it execution through the API costs, counted by the processes' own
/// metrics: DynamoDB requests and produced records per execution, in steady state. Waits
/// on the completion counter instead of polling the API, which would add requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)]
async fn one_tag_it_execution_costs_a_bounded_number_of_requests() {
    // What runs by the clock, not per execution (cache refreshes every `cache_ttl_ms`,
    // the timer poll every `timer_poll`), is kept out of the window, so the count does
    // not depend on how fast this machine runs the test.
    let t = TestStack::start_configured(Some(mfh::stack::Processors::All), |cfg| {
        cfg.dynamo.cache_ttl_ms = 600_000;
        cfg.processors.timer_poll = Duration::from_secs(600);
    })
    .await;
    let metrics = t.stack.services.metrics.clone();
    let run = |n: usize, offset: usize| {
        let t = &t;
        async move {
            let sends = (0..n).map(|i| {
                let contact = ((i + offset) % 7 + 1).to_string();
                let action = if (i + offset).is_multiple_of(2) {
                    "apply"
                } else {
                    "remove"
                };
                async move {
                    t.execute(
                        "tag_it",
                        json!({"action": action, "tag_ids": ["104"]}),
                        &contact,
                    )
                    .await
                }
            });
            futures::future::join_all(sends).await
        }
    };
    let wait_completed = |want: u64| {
        let metrics = metrics.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while metrics.executions_completed_total() < want {
                assert!(std::time::Instant::now() < deadline, "not all completed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Warm up: the helper instance is registered, the key touched, the caches filled.
    run(7, 0).await;
    wait_completed(7).await;
    let requests_before = metrics.dynamodb_requests_total();
    let produced_before = metrics.records_produced_total();
    let before = metrics.render();
    let n = 140;
    for batch in 0..7 {
        run(20, batch * 20).await;
    }
    wait_completed(7 + n as u64).await;
    let requests = metrics.dynamodb_requests_total() - requests_before;
    let produced = metrics.records_produced_total() - produced_before;
    #[allow(clippy::cast_precision_loss)]
    let (per_exec, produced_per_exec) = (requests as f64 / n as f64, produced as f64 / n as f64);
    let after = metrics.render();
    let lines = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("mfh_dynamodb_requests_total{"))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse::<f64>().ok()?))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (b, a) = (lines(&before), lines(&after));
    for (k, v) in &a {
        let d = v - b.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let each = d / n as f64;
            println!("{k} {each:.2}");
        }
    }
    println!(
        "DynamoDB requests per execution: {per_exec:.2}; records produced: {produced_per_exec:.2}"
    );
    // Every process serves the counters at /metrics.
    let text = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "mfh_dynamodb_requests_total{",
        "mfh_kafka_records_produced_total{",
        "mfh_executions_completed_total{",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // 14.5 before the caches, the dropped pre-reads, the contact read once, admission in
    // one transaction with the queued row, and the outcome in one with the contact. Four
    // per execution: that transaction, the contact's read, the outcome-and-contact
    // transaction, the sink's result (and now and then a connection scan).
    assert!(
        per_exec <= 4.1,
        "{per_exec:.2} DynamoDB requests per execution"
    );
    assert!(
        (3.0..3.2).contains(&produced_per_exec),
        "{produced_per_exec:.2} records produced per execution"
    );
    t.stop().await;
}

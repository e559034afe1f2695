//! Drives executions through the whole pipeline (REST → broker → router → worker → sink →
//! DynamoDB) and prints executions/s with p50/p99 latency from request to the result being
//! readable in DynamoDB, next to the same broker's raw produce→consume pass-through rate
//! measured in the same run, and the two baselines of [`baselines`]: the broker relaying
//! three hops without work, and the store taking one execution's requests without the
//! broker. Run with `scripts/bench` (it starts the broker and store).
//! Trade-off: everything shares this machine's cores, so the ratio is the figure to
//! compare across machines, not the absolute rates.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "pipeline/baselines.rs"]
mod baselines;

use mfh_pipeline::metrics::Metrics;
use mfh_processors::connectors::sandbox::{Sandbox, SeedContact, SeedFile};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn broker_pass_through(t: &support::TestStack, n: usize, size: usize) -> f64 {
    let topic = format!("{}bench.raw", t.cfg.kafka.prefix);
    mfh_topics::provision(
        &t.cfg.kafka.brokers,
        &[mfh_topics::Topic {
            name: topic.clone(),
            ..t.cfg.kafka.topics().requested()
        }],
    )
    .await
    .unwrap();
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &t.cfg.kafka.brokers)
        .set("group.id", format!("{}bench-raw", t.cfg.kafka.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let start = Instant::now();
    let produce = baselines::produce_n(t.stack.services.producer.clone(), topic, n, size);
    let mut seen = 0;
    while seen < n {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        seen += 1;
    }
    produce.await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Milliseconds from acceptance to the result being written to DynamoDB, sorted.
async fn write_latencies(t: &support::TestStack, ids: &[String]) -> Vec<f64> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let v = t
            .stack
            .services
            .store
            .get_execution(&t.account, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.status, "succeeded");
        out.push((v.written_at.unwrap() - v.requested_at) as f64);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// The two ways a caller queues an execution, for [`accept_rate`].
#[derive(Clone, Copy)]
enum Path<'a> {
    /// `POST /v1/executions` with an API key and an inline JSON config.
    Rest,
    /// A saved helper's run URL (this path) with a form-encoded contact id, as Keap
    /// posts it.
    RunUrl(&'a str),
}

/// Requests/s at which the API accepts `n` executions on `path` (until the last 202),
/// then waits until the sink has written them all, so rounds do not overlap; and the
/// DynamoDB requests per execution, end to end, on that path.
async fn accept_rate(
    t: &support::TestStack,
    path: Path<'_>,
    n: usize,
    contacts: usize,
    concurrency: usize,
    round: usize,
    sink_done: &impl Fn() -> u64,
) -> (f64, f64) {
    let metrics = &t.stack.services.metrics;
    let requests_before = metrics.dynamodb_requests_total();
    let before = sink_done();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut submits = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (base, key, http) = (t.base.clone(), t.key.clone(), t.http.clone());
        let run_path = match path {
            Path::Rest => None,
            Path::RunUrl(p) => Some(p.to_owned()),
        };
        // A distinct input per request: identical deliveries are answered as repeats.
        let contact = format!("b{}", i % contacts);
        submits.spawn(async move {
            let r = match run_path {
                None => http
                    .post(format!("{base}/v1/executions"))
                    .header("x-api-key", &key)
                    .json(&json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["104"]}, "connection_id": "sandbox", "contact_id": contact, "input": {"n": format!("{round}-{i}")}}))
                    .send()
                    .await
                    .unwrap(),
                Some(run_path) => http
                    .post(format!("{base}{run_path}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("contactId={contact}&n={round}-{i}"))
                    .send()
                    .await
                    .unwrap(),
            };
            assert_eq!(r.status(), 202);
            drop(permit);
        });
    }
    while let Some(r) = submits.join_next().await {
        r.unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    while sink_done() < before + n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requests = metrics.dynamodb_requests_total() - requests_before;
    (rate, requests as f64 / n as f64)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this is not a test.
    }
    let n = arg("MFH_BENCH_N", 4000);
    let contacts = arg("MFH_BENCH_CONTACTS", 1000);
    let concurrency = arg("MFH_BENCH_CONCURRENCY", 32);
    let t = support::TestStack::start().await;
    // Many contacts, as in a real account: executions of one contact run one at a time.
    let seed = SeedFile {
        tags: [("104".to_owned(), "Bench".to_owned())].into(),
        contacts: (0..contacts)
            .map(|i| SeedContact {
                id: format!("b{i}"),
                fields: [("first_name".to_owned(), format!("n{i}"))].into(),
                tags: vec![],
                ..SeedContact::default()
            })
            .collect(),
        ..SeedFile::default()
    };
    Sandbox::new(t.stack.services.store.clone(), &t.account, "sandbox")
        .seed(&seed)
        .await
        .unwrap();
    // Warm up: schemas registered, groups joined, caches filled.
    let w = t
        .execute(
            "tag_it",
            json!({"action": "apply", "tag_ids": ["101"]}),
            "1",
        )
        .await;
    t.wait_done(&w, &t.key).await;
    let sink_done = || {
        t.stack
            .services
            .metrics
            .processed
            .get_or_create(&Metrics::stage("sink"))
            .get()
    };
    let before = sink_done();

    let raw = broker_pass_through(&t, n * 4, 300).await;

    let metrics = t.stack.services.metrics.clone();
    let (requests_before, produced_before) = (
        metrics.dynamodb_requests_total(),
        metrics.records_produced_total(),
    );
    let start = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (base, key, http) = (t.base.clone(), t.key.clone(), t.http.clone());
        submits.spawn(async move {
            let action = if (i / contacts).is_multiple_of(2) { "apply" } else { "remove" };
            let r = http
                .post(format!("{base}/v1/executions"))
                .header("x-api-key", &key)
                .json(&json!({"helper": "tag_it", "config": {"action": action, "tag_ids": ["104"]}, "connection_id": "sandbox", "contact_id": format!("b{}", i % contacts)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            drop(permit);
            let v: serde_json::Value = r.json().await.unwrap();
            v["execution_id"].as_str().unwrap().to_owned()
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(id) = submits.join_next().await {
        ids.push(id.unwrap());
    }
    let accepted = start.elapsed().as_secs_f64();
    // Wait on the sink's own counter, so the measurement adds no load to the store.
    while sink_done() < before + n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let requests = metrics.dynamodb_requests_total() - requests_before;
    let produced = metrics.records_produced_total() - produced_before;
    let latencies = write_latencies(&t, &ids).await;
    let rate = n as f64 / elapsed;
    println!(
        "pipeline: {n} executions over {contacts} contacts in {elapsed:.2} s = {rate:.0} executions/s (all accepted after {accepted:.2} s)"
    );
    println!(
        "latency request accepted -> result written to DynamoDB: p50 {:.0} ms, p99 {:.0} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );
    println!(
        "per execution (by the processes' counters): {:.2} DynamoDB requests, {:.2} records produced",
        requests as f64 / n as f64,
        produced as f64 / n as f64
    );
    println!("broker pass-through (produce -> consume, 300 B records): {raw:.0} records/s");
    println!("ratio pipeline / pass-through: {:.4}", rate / raw);
    let in_flight = t.cfg.processors.max_in_flight;
    let relay = baselines::three_hop_relay(&t, n, 300, in_flight).await;
    println!(
        "baseline three-hop relay (produce -> consume -> produce x3, 300 B, {in_flight} in flight a hop): {relay:.0} records/s; ratio pipeline / relay: {:.3}",
        rate / relay
    );
    let (store_rate, store_requests) = baselines::store_minimum(&t, n, contacts, concurrency).await;
    println!(
        "baseline store, one execution's own reads and writes ({store_requests:.2} requests each, {concurrency} at once): {store_rate:.0} executions/s; ratio pipeline / store: {:.3}",
        rate / store_rate
    );

    // Unsaturated latency: a steady 25 requests/s, well under the throughput above.
    let paced = arg("MFH_BENCH_PACED", 250);
    let before = sink_done();
    let mut ids = Vec::with_capacity(paced);
    let mut tick = tokio::time::interval(Duration::from_millis(40));
    for i in 0..paced {
        tick.tick().await;
        ids.push(
            t.execute(
                "tag_it",
                json!({"action": "apply", "tag_ids": ["104"]}),
                &format!("b{}", i % contacts),
            )
            .await,
        );
    }
    while sink_done() < before + paced as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let latencies = write_latencies(&t, &ids).await;
    println!(
        "latency at 25 executions/s: p50 {:.0} ms, p99 {:.0} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );

    // Acceptance: the run URL a CRM calls against POST /v1/executions, in alternating
    // rounds of the same size so both see the same machine and the same store.
    let (status, saved) = t
        .post(
            "/v1/helpers",
            &t.key,
            &json!({"name": "bench", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["104"]}, "connection_id": "sandbox"}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let url = saved["run_url"].as_str().unwrap();
    let run_path = &url[url.find("/v1/run/").unwrap()..];
    let per_round = arg("MFH_BENCH_ACCEPT", 500);
    let (mut rest, mut run) = (Vec::new(), Vec::new());
    let (mut rest_requests, mut run_requests) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let path = if round % 2 == 0 {
            Path::Rest
        } else {
            Path::RunUrl(run_path)
        };
        let (r, requests) = accept_rate(
            &t,
            path,
            per_round,
            contacts,
            concurrency,
            round,
            &sink_done,
        )
        .await;
        match path {
            Path::Rest => {
                rest.push(r);
                rest_requests.push(requests);
            }
            Path::RunUrl(_) => {
                run.push(r);
                run_requests.push(requests);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "accepted requests/s ({per_round} a round, 3 rounds each, alternating): POST /v1/executions {:.0}, run URL {:.0}; ratio run URL / REST {:.2}",
        mean(&rest),
        mean(&run),
        mean(&run) / mean(&rest)
    );
    println!(
        "DynamoDB requests per execution, end to end: POST /v1/executions {:.2}, run URL {:.2}",
        mean(&rest_requests),
        mean(&run_requests)
    );
    t.stop().await;
}

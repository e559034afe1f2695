//! Drives executions through the whole pipeline (REST → broker → router → worker → sink →
//! DynamoDB) and prints executions/s with p50/p99 latency from request to the result being
//! readable in DynamoDB, next to the same broker's raw produce→consume pass-through rate
//! measured in the same run. Run with `scripts/bench` (it starts the broker and store).
//! Trade-off: everything shares this machine's cores, so the ratio is the figure to
//! compare across machines, not the absolute rates.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

#[path = "../tests/support/mod.rs"]
mod support;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use std::collections::HashMap;
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
    let payload = vec![7u8; size];
    let start = Instant::now();
    let producer = t.stack.services.producer.clone();
    let topic2 = topic.clone();
    let produce = tokio::spawn(async move {
        let mut futs = Vec::with_capacity(n);
        for i in 0..n {
            let key = format!("k{}", i % 1000);
            futs.push(
                producer
                    .send_result(FutureRecord::to(&topic2).key(&key).payload(&payload))
                    .unwrap(),
            );
        }
        for f in futs {
            f.await.unwrap().unwrap();
        }
    });
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

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this is not a test.
    }
    let n = arg("MFH_BENCH_N", 2000);
    let concurrency = arg("MFH_BENCH_CONCURRENCY", 32);
    let t = support::TestStack::start().await;
    // Warm up: schemas registered, groups joined, caches filled.
    let w = t
        .execute(
            "tag_it",
            json!({"action": "apply", "tag_ids": ["101"]}),
            "1",
        )
        .await;
    t.wait_done(&w, &t.key).await;

    let raw = broker_pass_through(&t, n * 4, 300).await;

    let start = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let submit = {
        let (base, key, http) = (t.base.clone(), t.key.clone(), t.http.clone());
        tokio::spawn(async move {
            for i in 0..n {
                let permit = sem.clone().acquire_owned().await.unwrap();
                let (base, key, http, tx) = (base.clone(), key.clone(), http.clone(), tx.clone());
                tokio::spawn(async move {
                    let contact = ["1", "2", "3", "4", "5"][i % 5];
                    let action = if i % 2 == 0 { "apply" } else { "remove" };
                    let sent = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/executions"))
                        .header("x-api-key", &key)
                        .json(&json!({"helper": "tag_it", "config": {"action": action, "tag_ids": ["104"]}, "connection_id": "sandbox", "contact_id": contact}))
                        .send()
                        .await
                        .unwrap();
                    let v: serde_json::Value = r.json().await.unwrap();
                    tx.send((v["execution_id"].as_str().unwrap().to_owned(), sent))
                        .unwrap();
                    drop(permit);
                });
            }
        })
    };
    let store = t.stack.services.store.clone();
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        while let Ok((id, sent)) = rx.try_recv() {
            pending.insert(id, sent);
        }
        let ids: Vec<String> = pending.keys().cloned().collect();
        for id in ids {
            let v = store.get_execution(&t.account, &id).await.unwrap();
            if v.is_some_and(|v| v.status != "queued") {
                let sent = pending.remove(&id).unwrap();
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    submit.await.unwrap();
    latencies.sort_by(f64::total_cmp);
    let rate = n as f64 / elapsed;
    println!("pipeline: {n} executions in {elapsed:.2} s = {rate:.0} executions/s");
    println!(
        "latency request -> DynamoDB-visible result: p50 {:.1} ms, p99 {:.1} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );
    println!("broker pass-through (produce -> consume, 300 B records): {raw:.0} records/s");
    println!("ratio pipeline / pass-through: {:.4}", rate / raw);
    t.stop().await;
}

//! The two baselines the pipeline's saturation rate is read against, run in the same
//! process on the same broker and store: the broker carrying the pipeline's hops without
//! their work, and the store taking the writes one execution needs without the broker.

use super::support::TestStack;
use futures::StreamExt;
use mfh_processors::connectors::CrmConnector;
use mfh_processors::connectors::sandbox::Sandbox;
use mfh_processors::helpers::{Change, Outcome};
use mfh_processors::{admission, store::Store};
use mfh_schemas::{ExecutionCompleted, ExecutionRequested, ExecutionStatus};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};

/// Produces `n` records of `size` bytes over 1,000 keys to `topic`, all sent before any
/// acknowledgement is awaited.
pub(crate) fn produce_n(
    producer: FutureProducer,
    topic: String,
    n: usize,
    size: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let payload = vec![7u8; size];
        let mut acks = Vec::with_capacity(n);
        for i in 0..n {
            let key = format!("k{}", i % 1000);
            acks.push(
                producer
                    .send_result(FutureRecord::to(&topic).key(&key).payload(&payload))
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap().unwrap();
        }
    })
}

/// Records/s through three relays, produce → consume → produce (requested → routed →
/// completed → the sink's topic, the pipeline's hops with no work between them): the
/// pipeline's producer and consumer settings, up to `in_flight` awaited produces per hop,
/// offsets stored after the produce is acknowledged, as the pipeline's runner does.
pub(crate) async fn three_hop_relay(t: &TestStack, n: usize, size: usize, in_flight: usize) -> f64 {
    let kafka = &t.cfg.kafka;
    let names: Vec<String> = (0..4)
        .map(|i| format!("{}bench.hop{i}", kafka.prefix))
        .collect();
    let topics: Vec<_> = names
        .iter()
        .map(|name| mfh_topics::Topic {
            name: name.clone(),
            ..kafka.topics().requested()
        })
        .collect();
    mfh_topics::provision(&kafka.brokers, &topics)
        .await
        .unwrap();
    let producer = t.stack.services.producer.clone();
    let relays: Vec<_> = (0..3)
        .map(|hop| {
            let consumer: StreamConsumer = kafka
                .consumer(
                    &kafka.group(&format!("bench-hop{hop}")),
                    DefaultConsumerContext,
                )
                .unwrap();
            consumer.subscribe(&[&names[hop]]).unwrap();
            let (from, to) = (names[hop].clone(), names[hop + 1].clone());
            tokio::spawn(relay(consumer, producer.clone(), from, to, n, in_flight))
        })
        .collect();
    let last: StreamConsumer = kafka
        .consumer(&kafka.group("bench-hop-last"), DefaultConsumerContext)
        .unwrap();
    last.subscribe(&[&names[3]]).unwrap();
    let start = Instant::now();
    let produce = produce_n(producer, names[0].clone(), n, size);
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(120), last.recv())
            .await
            .expect("the relay stalled")
            .unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    produce.await.unwrap();
    for r in relays {
        r.await.unwrap();
    }
    rate
}

async fn relay(
    consumer: StreamConsumer,
    producer: FutureProducer,
    from: String,
    to: String,
    n: usize,
    in_flight: usize,
) {
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut moved = 0;
    while moved < n {
        tokio::select! {
            m = consumer.recv(), if pending.len() < in_flight => {
                let m = m.unwrap();
                let (key, payload) = (m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec());
                let (partition, offset) = (m.partition(), m.offset());
                let (producer, to) = (producer.clone(), to.clone());
                pending.push(async move {
                    producer
                        .send(FutureRecord::to(&to).key(&key).payload(&payload), Duration::from_secs(30))
                        .await
                        .unwrap();
                    (partition, offset)
                });
            }
            Some((partition, offset)) = pending.next() => {
                consumer.store_offset(&from, partition, offset).unwrap();
                moved += 1;
            }
        }
    }
}

/// Executions/s the store takes when given only what one tag_it execution writes and
/// reads through the pipeline, with the pipeline's own calls, `concurrency` executions at
/// once over `contacts` contacts: the API's admission transaction (count and queued
/// row), the worker's contact read and its contact-and-outcome transaction, the sink's
/// result write. Returns the rate and the DynamoDB requests per execution it made.
pub(crate) async fn store_minimum(
    t: &TestStack,
    n: usize,
    contacts: usize,
    concurrency: usize,
) -> (f64, f64) {
    let store = t.stack.services.store.clone();
    let metrics = t.stack.services.metrics.clone();
    let requests_before = metrics.dynamodb_requests_total();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut runs = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (store, account) = (store.clone(), t.account.clone());
        let contact = format!("b{}", i % contacts);
        runs.spawn(async move {
            one_execution(&store, &account, &contact, i).await;
            drop(permit);
        });
    }
    while let Some(r) = runs.join_next().await {
        r.unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let requests = metrics.dynamodb_requests_total() - requests_before;
    (rate, requests as f64 / n as f64)
}

async fn one_execution(store: &Store, account: &str, contact: &str, i: usize) {
    let now = chrono::Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let req = ExecutionRequested {
        execution_id: id.clone(),
        account_id: account.to_owned(),
        contact_id: contact.to_owned(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: r#"{"action":"apply","tag_ids":["104"]}"#.into(),
        input_json: None,
        requested_at: now.timestamp_millis(),
        source: "api".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    };
    let admitted = admission::admit_writing(
        store,
        admission::Request {
            account_id: account,
            execution_id: &id,
            now,
        },
        true,
        vec![store.queued_put(&req, None).unwrap()],
    )
    .await
    .unwrap()
    .expect("admitted");
    assert!(admitted.wrote, "the quiet path");
    let sandbox = Sandbox::new(store.clone(), account, "sandbox");
    let contact_doc = sandbox.get_contact(contact).await.unwrap();
    let tag = if i.is_multiple_of(2) {
        Change::ApplyTag {
            tag_id: "104".into(),
        }
    } else {
        Change::RemoveTag {
            tag_id: "104".into(),
        }
    };
    let outcome = Outcome {
        success: true,
        message: format!("tag 104 on {}", contact_doc.id),
        changes: vec![tag.clone()],
        ..Outcome::default()
    };
    let ledger = store.outcome_put(&id, &outcome).unwrap();
    let changes = [tag];
    // Two executions of one contact overlapping (rare here, never in the pipeline) take
    // the worker's way round a conflict.
    let report = match sandbox
        .apply_recording(contact, &id, &changes, ledger)
        .await
        .unwrap()
    {
        Some(report) => report,
        None => {
            store.record_outcome(&id, outcome.clone()).await.unwrap();
            sandbox.apply(contact, &id, &changes).await.unwrap()
        }
    };
    let done = mfh_pipeline::now_millis();
    let completed = ExecutionCompleted {
        execution_id: id,
        account_id: account.to_owned(),
        contact_id: contact.to_owned(),
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        category: "tagging".into(),
        status: ExecutionStatus::Succeeded,
        message: outcome.message,
        requested_at: req.requested_at,
        started_at: done,
        completed_at: done,
        output_json: "{}".into(),
        changes: report.applied,
        error_kind: None,
        error_message: None,
        source: req.source,
        helper_id: None,
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    store.put_completed(&completed, 0, i as i64).await.unwrap();
}

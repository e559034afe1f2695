//! The runner against a real broker: a record never runs in two members at once, and a
//! clean stop finishes what it started. Needs `MFH_TEST_BROKERS` (run with `scripts/test`).
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use mfh_pipeline::avro::AvroSerde;
use mfh_pipeline::kafka::KafkaConfig;
use mfh_pipeline::metrics::Metrics;
use mfh_pipeline::runner::{self, Failure, Handler, Record, RunnerConfig, RunnerDeps};
use rdkafka::producer::FutureRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Per record: how many handlers run it now, the most that ever did at once, and how
/// many times it ran to the end.
#[derive(Default, Debug, Clone, Copy)]
struct Runs {
    now: u32,
    most: u32,
    finished: u32,
}

/// Takes `work` per record, noting who runs what.
struct Slow {
    work: Duration,
    seen: Mutex<HashMap<(i32, i64), Runs>>,
}

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, r: &Record) -> Result<(), Failure> {
        {
            let mut seen = self.seen.lock().unwrap();
            let e = seen.entry((r.partition, r.offset)).or_default();
            e.now += 1;
            e.most = e.most.max(e.now);
        }
        tokio::time::sleep(self.work).await;
        let mut seen = self.seen.lock().unwrap();
        let e = seen.get_mut(&(r.partition, r.offset)).unwrap();
        e.now -= 1;
        e.finished += 1;
        Ok(())
    }
}

impl Slow {
    fn new(work: Duration) -> Arc<Self> {
        Arc::new(Self {
            work,
            seen: Mutex::default(),
        })
    }
    fn runs(&self) -> HashMap<(i32, i64), Runs> {
        self.seen.lock().unwrap().clone()
    }
    async fn until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&HashMap<(i32, i64), Runs>) -> bool,
    ) {
        let start = Instant::now();
        while !done(&self.runs()) {
            assert!(start.elapsed() < within, "{what}: {:?}", self.runs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Setup {
    kafka: KafkaConfig,
    topic: String,
}

async fn setup(partitions: i32) -> Setup {
    let kafka = KafkaConfig {
        brokers: std::env::var("MFH_TEST_BROKERS")
            .expect("MFH_TEST_BROKERS: run the suite with scripts/test"),
        // No record here is dead-lettered, so the registry is never asked.
        schema_registry_url: "http://127.0.0.1:9".into(),
        prefix: format!("r{}.", &uuid_like()),
        partitions,
        linger: Duration::from_millis(2),
        fetch_wait_max: Duration::from_millis(50),
        extra: std::collections::BTreeMap::new(),
    };
    let topic = kafka.topics().requested();
    mfh_topics::provision(&kafka.brokers, std::slice::from_ref(&topic))
        .await
        .unwrap();
    Setup {
        kafka,
        topic: topic.name,
    }
}

/// Unique per test: two tests of this binary start at once, and the clock alone gave
/// both the same prefix (one topic, one group) in a full-suite run.
fn uuid_like() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{:x}{:x}n{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl Setup {
    async fn produce(&self, partition: i32, key: &str) {
        let producer = self.kafka.producer().unwrap();
        producer
            .send(
                FutureRecord::to(&self.topic)
                    .partition(partition)
                    .key(key)
                    .payload("x"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    fn member(
        &self,
        handler: Arc<Slow>,
        max_in_flight: usize,
        max_buffered: usize,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let cfg = RunnerConfig {
            stage: "test".into(),
            group: self.kafka.group("runner"),
            topics: vec![self.topic.clone()],
            dead_letter_topic: format!("{}dead", self.kafka.prefix),
            max_in_flight,
            max_buffered,
            drain_timeout: Duration::from_secs(20),
        };
        let deps = RunnerDeps {
            kafka: self.kafka.clone(),
            producer: self.kafka.producer().unwrap(),
            avro: AvroSerde::new(&self.kafka.schema_registry_url),
            metrics: Metrics::new(),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(runner::run(cfg, deps, handler, cancel.clone()));
        (cancel, task)
    }
}

/// Review finding 5: a second member joining while the first runs records used to get
/// their partitions at once and run the same records again, at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partition_is_given_up_only_after_its_running_records_end() {
    let s = setup(2).await;
    for p in 0..2 {
        for k in 0..3 {
            s.produce(p, &format!("c{p}-{k}")).await;
        }
    }
    let work = Slow::new(Duration::from_secs(4));
    // Four run, and the buffer is full: the first member pauses instead of stopping polls,
    // so it still serves the rebalance.
    let (stop_a, a) = s.member(work.clone(), 4, 4);
    work.until(
        "four records running in the first member",
        Duration::from_secs(30),
        |r| r.values().filter(|x| x.now > 0).count() == 4,
    )
    .await;
    let (stop_b, b) = s.member(work.clone(), 4, 4);
    work.until("all six records finished", Duration::from_secs(60), |r| {
        r.len() == 6 && r.values().all(|x| x.now == 0 && x.finished > 0)
    })
    .await;
    // Give a wrongly redelivered record the time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_a.cancel();
    stop_b.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let runs = work.runs();
    for (at, r) in &runs {
        assert_eq!(
            r.most, 1,
            "record {at:?} ran in two members at once: {runs:?}"
        );
        assert_eq!(
            r.finished, 1,
            "record {at:?} finished before the revoke and its offset was committed, yet ran again: {runs:?}"
        );
    }
}

/// Review finding 8: a clean stop used to abort running records mid-write and leave them
/// for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_finishes_running_records_and_commits_them() {
    let s = setup(1).await;
    s.produce(0, "contact-1").await;
    let work = Slow::new(Duration::from_secs(2));
    let (stop, member) = s.member(work.clone(), 4, 16);
    work.until("the record running", Duration::from_secs(30), |r| {
        r.values().any(|x| x.now == 1)
    })
    .await;
    stop.cancel();
    member.await.unwrap().unwrap();
    assert_eq!(
        work.runs().get(&(0, 0)).map(|r| r.finished),
        Some(1),
        "the stop waited for the running record"
    );
    // The next member starts after it: only the new record runs.
    s.produce(0, "contact-2").await;
    let next = Slow::new(Duration::from_millis(10));
    let (stop, member) = s.member(next.clone(), 4, 16);
    next.until("the new record handled", Duration::from_secs(30), |r| {
        r.get(&(0, 1)).is_some_and(|x| x.finished == 1)
    })
    .await;
    stop.cancel();
    member.await.unwrap().unwrap();
    assert!(
        !next.runs().contains_key(&(0, 0)),
        "the finished record was committed at the stop, not redelivered: {:?}",
        next.runs()
    );
}

//! A consumer-group loop with per-key ordering, bounded concurrency, at-least-once offset
//! storage and dead letters.
//!
//! Records with the same key run one at a time, in offset order; records with different
//! keys run concurrently, at most `max_in_flight` at once. At most `max_buffered` records
//! are held (running or waiting); when full the loop stops fetching, so a slow key delays
//! the others only once the buffer is full. A partition's offset is stored only up to its
//! lowest record still being handled (the watermark), and librdkafka commits stored offsets
//! in the background and on rebalance: a crash redelivers what was not finished, which the
//! handlers make harmless by writing idempotently.

use crate::avro::AvroSerde;
use crate::metrics::{DeadLetterLabels, LagLabels, Metrics};
use async_trait::async_trait;
use mfh_schemas::DeadLetter;
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One consumed record, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Record {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub payload: Option<Vec<u8>>,
}

/// How handling a record ended, other than success.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The record can never be handled; send it to the dead-letter topic and move on.
    #[error("{kind}: {reason}")]
    DeadLetter {
        /// Machine-readable class.
        kind: String,
        /// Human-readable reason.
        reason: String,
    },
    /// Something outside the record is broken (registry, store, broker) and retries ran
    /// out: stop without storing the offset, so the record is redelivered after restart.
    #[error("fatal: {0}")]
    Fatal(String),
}

impl Failure {
    /// A dead-letter failure.
    pub fn dead_letter(kind: &str, reason: impl Into<String>) -> Self {
        Self::DeadLetter {
            kind: kind.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The per-record work of a processor.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one record. Must be idempotent: a record may be delivered again.
    ///
    /// # Errors
    /// [`Failure`] as documented on its variants.
    async fn handle(&self, record: &Record) -> Result<(), Failure>;
}

/// Settings of one runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Stage name for logs and metrics: router, worker.data, sink.
    pub stage: String,
    /// Consumer group.
    pub group: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
    /// Records handled concurrently.
    pub max_in_flight: usize,
    /// Records held at once, running or waiting.
    pub max_buffered: usize,
}

/// Where rejected records go, and the services a runner needs.
#[derive(Clone)]
pub struct RunnerDeps {
    /// Broker settings.
    pub kafka: crate::kafka::KafkaConfig,
    /// Producer for dead letters.
    pub producer: FutureProducer,
    /// Registry-aware codec.
    pub avro: AvroSerde,
    /// Metrics.
    pub metrics: Metrics,
}

impl std::fmt::Debug for RunnerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerDeps")
            .field("kafka", &self.kafka)
            .finish_non_exhaustive()
    }
}

type Tp = (String, i32);

/// A handled record: its key, the record, the partition epoch it started in, the result.
type Finished = (Vec<u8>, Record, u64, Result<(), Failure>);

/// Notes revocations so the loop can forget waiting records of lost partitions.
#[derive(Default)]
pub struct RebalanceTracker {
    revoked: Mutex<Vec<Tp>>,
}

impl ClientContext for RebalanceTracker {}

impl ConsumerContext for RebalanceTracker {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut r = self
                .revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for e in tpl.elements() {
                r.push((e.topic().to_owned(), e.partition()));
            }
        }
    }
    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "Partitions assigned.");
        }
    }
}

/// Offsets in flight per partition; the watermark is the lowest one not yet done.
#[derive(Default, Debug)]
pub struct OffsetTracker {
    in_flight: HashMap<Tp, BTreeSet<i64>>,
    next: HashMap<Tp, i64>,
}

impl OffsetTracker {
    /// Notes a record as started.
    pub fn start(&mut self, tp: &Tp, offset: i64) {
        self.in_flight.entry(tp.clone()).or_default().insert(offset);
        let n = self.next.entry(tp.clone()).or_insert(offset + 1);
        *n = (*n).max(offset + 1);
    }

    /// Notes a record as done; returns the offset to store if the watermark moved.
    pub fn finish(&mut self, tp: &Tp, offset: i64) -> Option<i64> {
        let set = self.in_flight.get_mut(tp)?;
        let was_lowest = set.first() == Some(&offset);
        if !set.remove(&offset) {
            return None;
        }
        if !was_lowest {
            return None;
        }
        Some(
            set.first()
                .copied()
                .unwrap_or_else(|| self.next.get(tp).copied().unwrap_or(offset + 1)),
        )
    }

    /// Forgets a partition (after revocation).
    pub fn forget(&mut self, tp: &Tp) {
        self.in_flight.remove(tp);
        self.next.remove(tp);
    }
}

/// Per-key queues: a key runs one record at a time.
#[derive(Default)]
struct KeyedQueues {
    waiting: HashMap<Vec<u8>, VecDeque<Record>>,
    busy: HashSet<Vec<u8>>,
    ready: VecDeque<Vec<u8>>,
}

impl KeyedQueues {
    fn push(&mut self, key: Vec<u8>, rec: Record) {
        let q = self.waiting.entry(key.clone()).or_default();
        q.push_back(rec);
        if q.len() == 1 && !self.busy.contains(&key) {
            self.ready.push_back(key);
        }
    }

    fn next_ready(&mut self) -> Option<(Vec<u8>, Record)> {
        while let Some(key) = self.ready.pop_front() {
            if self.busy.contains(&key) {
                continue;
            }
            if let Some(rec) = self.waiting.get_mut(&key).and_then(VecDeque::pop_front) {
                if self.waiting.get(&key).is_some_and(VecDeque::is_empty) {
                    self.waiting.remove(&key);
                }
                self.busy.insert(key.clone());
                return Some((key, rec));
            }
        }
        None
    }

    fn done(&mut self, key: &[u8]) {
        self.busy.remove(key);
        if self.waiting.contains_key(key) {
            self.ready.push_back(key.to_vec());
        }
    }

    /// Drops waiting records of a partition; returns how many.
    fn drop_partition(&mut self, tp: &Tp) -> usize {
        let mut dropped = 0;
        for q in self.waiting.values_mut() {
            let before = q.len();
            q.retain(|r| !(r.topic == tp.0 && r.partition == tp.1));
            dropped += before - q.len();
        }
        self.waiting.retain(|_, q| !q.is_empty());
        dropped
    }
}

fn record_key(rec: &Record) -> Vec<u8> {
    // A record without a key has no order to keep with others; give it a unique one.
    rec.key
        .clone()
        .unwrap_or_else(|| format!("\0{}:{}:{}", rec.topic, rec.partition, rec.offset).into_bytes())
}

/// Runs `handler` over the group's records until `cancel` fires or a handler fails fatally.
///
/// # Errors
/// A fatal handler failure, or a consumer that cannot be created or subscribed.
pub async fn run(
    cfg: RunnerConfig,
    deps: RunnerDeps,
    handler: Arc<dyn Handler>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let consumer: Arc<StreamConsumer<RebalanceTracker>> = Arc::new(
        deps.kafka
            .consumer(&cfg.group, RebalanceTracker::default())?,
    );
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(stage = %cfg.stage, group = %cfg.group, topics = ?cfg.topics, "Consuming.");
    let lag_task = tokio::spawn(report_lag(
        consumer.clone(),
        cfg.group.clone(),
        deps.metrics.clone(),
        cancel.clone(),
    ));

    let mut tracker = OffsetTracker::default();
    let mut queues = KeyedQueues::default();
    let mut running: JoinSet<Finished> = JoinSet::new();
    // Bumped when a partition is revoked: a record started before belongs to the old
    // assignment and must not move the offsets of a later one.
    let mut epochs: HashMap<Tp, u64> = HashMap::new();
    let mut buffered = 0usize;
    let stage = crate::metrics::Metrics::stage(&cfg.stage);
    let result = loop {
        forget_revoked(
            &consumer,
            &mut tracker,
            &mut queues,
            &mut buffered,
            &mut epochs,
        );
        while running.len() < cfg.max_in_flight {
            let Some((key, rec)) = queues.next_ready() else {
                break;
            };
            let h = handler.clone();
            let epoch = epochs
                .get(&(rec.topic.clone(), rec.partition))
                .copied()
                .unwrap_or(0);
            running.spawn(async move {
                let r = handle_caught(h.as_ref(), &rec).await;
                (key, rec, epoch, r)
            });
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (key, rec, epoch, outcome) = match joined {
                    Ok(v) => v,
                    Err(e) => break Err(anyhow::anyhow!("{} handler panicked: {e}", cfg.stage)),
                };
                buffered = buffered.saturating_sub(1);
                queues.done(&key);
                match outcome {
                    Ok(()) => {
                        deps.metrics.processed.get_or_create(&stage).inc();
                    }
                    Err(Failure::DeadLetter { kind, reason }) => {
                        if let Err(e) = dead_letter(&cfg, &deps, &rec, &kind, &reason).await {
                            break Err(e);
                        }
                    }
                    Err(Failure::Fatal(msg)) => {
                        break Err(anyhow::anyhow!("{} at {}[{}]@{}: {msg}", cfg.stage, rec.topic, rec.partition, rec.offset));
                    }
                }
                let tp = (rec.topic.clone(), rec.partition);
                let current = epochs.get(&tp).copied().unwrap_or(0) == epoch;
                let next = if current { tracker.finish(&tp, rec.offset) } else { None };
                if let Some(next) = next {
                    let mut tpl = TopicPartitionList::new();
                    if tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(next)).is_ok() {
                        // Fails only for a partition we no longer own; its new owner redelivers.
                        if let Err(e) = consumer.store_offsets(&tpl) {
                            tracing::debug!(error = ?e, topic = %tp.0, partition = tp.1, "Offset not stored.");
                        }
                    }
                }
            }
            msg = consumer.recv(), if buffered < cfg.max_buffered => {
                match msg {
                    Ok(m) => {
                        // A rebalance runs inside recv(): forget the old assignment's
                        // records before adding this one, which may belong to the new one.
                        forget_revoked(&consumer, &mut tracker, &mut queues, &mut buffered, &mut epochs);
                        let rec = Record {
                            topic: m.topic().to_owned(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            payload: m.payload().map(<[u8]>::to_vec),
                        };
                        tracker.start(&(rec.topic.clone(), rec.partition), rec.offset);
                        buffered += 1;
                        queues.push(record_key(&rec), rec);
                    }
                    Err(e) => {
                        tracing::warn!(stage = %cfg.stage, error = ?e, "Consume error.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    };
    lag_task.abort();
    // Finished records' offsets are stored; commit them now rather than waiting for the
    // background commit, so a clean stop redelivers nothing.
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = ?e, "Final commit skipped.");
    }
    running.abort_all();
    result
}

/// Runs the handler on one record; a panic becomes that record's dead letter, so one
/// record (a tenant's config, a vendor's answer) can never stop the partition or the
/// process, and its redelivery cannot turn into a crash loop.
async fn handle_caught(h: &dyn Handler, rec: &Record) -> Result<(), Failure> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(h.handle(rec))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, panic = %what, "Handler panicked; the record is dead-lettered.");
            Err(Failure::dead_letter(
                "panic",
                format!("the handler panicked: {what}"),
            ))
        }
    }
}

fn forget_revoked(
    consumer: &StreamConsumer<RebalanceTracker>,
    tracker: &mut OffsetTracker,
    queues: &mut KeyedQueues,
    buffered: &mut usize,
    epochs: &mut HashMap<Tp, u64>,
) {
    let revoked: Vec<Tp> = {
        let mut r = consumer
            .context()
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *r)
    };
    for tp in revoked {
        let dropped = queues.drop_partition(&tp);
        *buffered = buffered.saturating_sub(dropped);
        tracker.forget(&tp);
        *epochs.entry(tp.clone()).or_default() += 1;
        tracing::info!(topic = %tp.0, partition = tp.1, dropped, "Partition revoked.");
    }
}

async fn dead_letter(
    cfg: &RunnerConfig,
    deps: &RunnerDeps,
    rec: &Record,
    kind: &str,
    reason: &str,
) -> anyhow::Result<()> {
    tracing::warn!(stage = %cfg.stage, topic = %rec.topic, partition = rec.partition, offset = rec.offset, kind, reason, "Record dead-lettered.");
    let dl = DeadLetter {
        source_topic: rec.topic.clone(),
        source_partition: rec.partition,
        source_offset: rec.offset,
        key: rec.key.clone(),
        payload: rec.payload.clone(),
        stage: cfg.stage.clone(),
        reason_kind: kind.to_owned(),
        reason: reason.to_owned(),
        failed_at: crate::now_millis(),
    };
    let subject = format!("{}-value", cfg.dead_letter_topic);
    let bytes = deps.avro.encode(&subject, &dl).await?;
    let mut fr = FutureRecord::to(&cfg.dead_letter_topic).payload(&bytes);
    if let Some(k) = &rec.key {
        fr = fr.key(k);
    }
    let sent = deps.producer.send(fr, Duration::from_secs(30)).await;
    if let Err((e, _)) = sent {
        if !too_large(&e) {
            return Err(anyhow::anyhow!(
                "dead-letter produce to {}: {e}",
                cfg.dead_letter_topic
            ));
        }
        // A record near the broker's message size cannot travel with its payload: the
        // dead letter keeps the position (to fetch the original) and the reason.
        let dl = DeadLetter {
            payload: None,
            reason: format!(
                "{} (payload of {} bytes left out: too large for a dead letter)",
                dl.reason,
                rec.payload.as_ref().map_or(0, Vec::len)
            ),
            ..dl
        };
        let bytes = deps.avro.encode(&subject, &dl).await?;
        let mut fr = FutureRecord::to(&cfg.dead_letter_topic).payload(&bytes);
        if let Some(k) = &rec.key {
            fr = fr.key(k);
        }
        deps.producer
            .send(fr, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| {
                anyhow::anyhow!("dead-letter produce to {}: {e}", cfg.dead_letter_topic)
            })?;
    }
    deps.metrics
        .dead_letters
        .get_or_create(&DeadLetterLabels {
            stage: cfg.stage.clone(),
            reason: kind.to_owned(),
        })
        .inc();
    Ok(())
}

/// Whether the broker (or librdkafka) refused a message for its size.
fn too_large(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::MessageSizeTooLarge | C::InvalidRecord)
    )
}

async fn report_lag(
    consumer: Arc<StreamConsumer<RebalanceTracker>>,
    group: String,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let c = consumer.clone();
        let lags = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let Ok(pos) = c.position() else { return out };
            for e in pos.elements() {
                let Offset::Offset(p) = e.offset() else {
                    continue;
                };
                if let Ok((_, high)) =
                    c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))
                {
                    // Some brokers under-report end offsets; never show negative lag.
                    out.push((e.topic().to_owned(), e.partition(), (high - p).max(0)));
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        for (topic, partition, lag) in lags {
            metrics
                .consumer_lag
                .get_or_create(&LagLabels {
                    group: group.clone(),
                    topic,
                    partition,
                })
                .set(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: i32, o: i64, key: &str) -> Record {
        Record {
            topic: "t".into(),
            partition: p,
            offset: o,
            key: Some(key.into()),
            payload: None,
        }
    }

    /// Panics on offset 1 (with a formatted message) and 2 (with a literal).
    struct Panicky;

    #[async_trait]
    impl Handler for Panicky {
        async fn handle(&self, record: &Record) -> Result<(), Failure> {
            match record.offset {
                1 => panic!("overflow at {}", record.offset),
                2 => panic!("literal"),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_record_is_a_dead_letter_and_the_next_runs() {
        let kind = |r: Result<(), Failure>| match r {
            Err(Failure::DeadLetter { kind, reason }) => Some((kind, reason)),
            _ => None,
        };
        let one = kind(handle_caught(&Panicky, &rec(0, 1, "k")).await);
        assert_eq!(
            one,
            Some(("panic".into(), "the handler panicked: overflow at 1".into()))
        );
        let two = kind(handle_caught(&Panicky, &rec(0, 2, "k")).await);
        assert_eq!(
            two.map(|(_, r)| r).as_deref(),
            Some("the handler panicked: literal")
        );
        assert!(handle_caught(&Panicky, &rec(0, 3, "k")).await.is_ok());
    }

    #[test]
    fn watermark_waits_for_the_lowest_offset() {
        let mut t = OffsetTracker::default();
        let tp = ("t".to_owned(), 0);
        for o in 10..13 {
            t.start(&tp, o);
        }
        assert_eq!(t.finish(&tp, 11), None);
        assert_eq!(t.finish(&tp, 10), Some(12));
        assert_eq!(t.finish(&tp, 12), Some(13));
        assert_eq!(t.finish(&tp, 12), None);
    }

    #[test]
    fn a_key_runs_one_record_at_a_time_in_order() {
        let mut q = KeyedQueues::default();
        q.push(b"a".to_vec(), rec(0, 1, "a"));
        q.push(b"a".to_vec(), rec(0, 2, "a"));
        q.push(b"b".to_vec(), rec(0, 3, "b"));
        let (k1, r1) = q.next_ready().unwrap();
        let (k2, r2) = q.next_ready().unwrap();
        assert_eq!((k1.as_slice(), r1.offset), (&b"a"[..], 1));
        assert_eq!((k2.as_slice(), r2.offset), (&b"b"[..], 3));
        assert!(q.next_ready().is_none(), "a is busy");
        q.done(b"a");
        assert_eq!(q.next_ready().unwrap().1.offset, 2);
    }

    #[test]
    fn revocation_drops_waiting_records_of_that_partition_only() {
        let mut q = KeyedQueues::default();
        q.push(b"a".to_vec(), rec(0, 1, "a"));
        q.push(b"a".to_vec(), rec(1, 2, "a"));
        assert_eq!(q.drop_partition(&("t".into(), 0)), 1);
        assert_eq!(q.next_ready().unwrap().1.partition, 1);
    }
}

//! A consumer-group loop with per-key ordering, bounded concurrency, at-least-once offset
//! storage and dead letters.
//!
//! Records with the same key run one at a time, in offset order; records with different
//! keys run concurrently, at most `max_in_flight` at once. At most `max_buffered` records
//! are held (running or waiting); when full the loop pauses its partitions but keeps
//! polling, so rebalances are served and the member is never evicted for not polling. A
//! partition's offset is stored only up to its lowest record still being handled (the
//! watermark), and librdkafka commits stored offsets in the background and on rebalance.
//!
//! A record never runs in two members at once: a revoke waits (at most `drain_timeout`)
//! for the partition's running records before giving it up, and a clean stop stops
//! fetching and waits the same way before its last commit. Only a crash, or a record
//! outliving the wait, redelivers work that had started, which the handlers make harmless
//! by writing idempotently.

mod dead_letter;
mod in_flight;
mod queues;

pub use in_flight::{InFlight, OffsetTracker, RebalanceContext};

use crate::avro::AvroSerde;
use crate::metrics::{LagLabels, Metrics};
use async_trait::async_trait;
use in_flight::Ticket;
use queues::{KeyedQueues, record_key};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
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
    /// The record's timestamp (producer's create time or the broker's append time), Unix ms.
    pub timestamp_ms: Option<i64>,
    /// The record's headers with a value, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The offset of the record fetched before this one from the same partition in this
    /// assignment; `None` for the first, every offset below which was committed. The
    /// offsets in between hold no record (compaction, transaction markers), so a reader
    /// of offsets may count them as done once this one is.
    pub previous: Option<i64>,
}

fn headers_of(h: &rdkafka::message::BorrowedHeaders) -> Vec<(String, Vec<u8>)> {
    use rdkafka::message::Headers;
    h.iter()
        .filter_map(|h| Some((h.key.to_owned(), h.value?.to_vec())))
        .collect()
}

impl Record {
    /// The value of the header `key`, the first if it repeats.
    #[must_use]
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
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

    /// Called when partitions are revoked, after their running records ended (or were
    /// stopped), before their new owner may start: drop what is cached for them.
    fn revoked(&self, _partitions: &[(String, i32)]) {}
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
    /// Longest a revoke or a clean stop waits for running records before stopping them.
    /// Keep it well under `max.poll.interval.ms` (300 s): the group's rebalance waits too.
    pub drain_timeout: Duration,
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

type Consumed = StreamConsumer<RebalanceContext>;

/// How a started record ended.
enum End {
    /// Handled, or dead-lettered: its offset is done.
    Done { dead_lettered: bool },
    /// Stopped before it finished (a revoke or stop outlived its wait): it runs again.
    Stopped,
    /// Retries ran out on something outside the record: the runner stops.
    Fatal(String),
}

/// A started record's key (to release it) and how it ended.
type Finished = (Vec<u8>, End);

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
    let in_flight = Arc::new(InFlight::default());
    let context = RebalanceContext {
        in_flight: in_flight.clone(),
        handler: handler.clone(),
        drain: cfg.drain_timeout,
        stage: cfg.stage.clone(),
    };
    let consumer: Arc<Consumed> = Arc::new(deps.kafka.consumer(&cfg.group, context)?);
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(stage = %cfg.stage, group = %cfg.group, topics = ?cfg.topics, "Consuming.");
    let lag_task = tokio::spawn(report_lag(
        consumer.clone(),
        cfg.group.clone(),
        deps.metrics.clone(),
        cancel.clone(),
    ));
    let cfg = Arc::new(cfg);
    let deps = Arc::new(deps);
    let mut queues = KeyedQueues::default();
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut buffered = 0usize;
    // The last offset fetched per partition in this assignment.
    let mut fetched: HashMap<Tp, i64> = HashMap::new();
    // The assignment the partitions were paused in; None while fetching.
    let mut paused: Option<u64> = None;
    let stage = crate::metrics::Metrics::stage(&cfg.stage);
    let result = loop {
        drop_revoked(&in_flight, &mut queues, &mut buffered, &mut fetched);
        while running.len() < cfg.max_in_flight {
            let Some((key, rec)) = queues.next_ready() else {
                break;
            };
            let tp = (rec.topic.clone(), rec.partition);
            let ticket = in_flight.started(&tp);
            running.spawn(run_one(
                key,
                rec,
                ticket,
                handler.clone(),
                consumer.clone(),
                in_flight.clone(),
                cfg.clone(),
                deps.clone(),
            ));
        }
        paused = pause_when_full(&consumer, &in_flight, buffered >= cfg.max_buffered, paused);
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            Some(joined) = running.join_next(), if !running.is_empty() => {
                match settle(joined, &cfg, &mut queues, &mut buffered) {
                    Ok(true) => {
                        deps.metrics.processed.get_or_create(&stage).inc();
                    }
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
            }
            msg = consumer.recv() => {
                match msg {
                    Ok(m) => {
                        // A rebalance runs inside recv(): forget the old assignment's
                        // records before adding this one, which may belong to the new one.
                        drop_revoked(&in_flight, &mut queues, &mut buffered, &mut fetched);
                        let tp = (m.topic().to_owned(), m.partition());
                        let rec = Record {
                            topic: tp.0.clone(),
                            partition: tp.1,
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            payload: m.payload().map(<[u8]>::to_vec),
                            timestamp_ms: m.timestamp().to_millis(),
                            headers: m.headers().map(headers_of).unwrap_or_default(),
                            previous: fetched.insert(tp, m.offset()),
                        };
                        in_flight.fetched(&(rec.topic.clone(), rec.partition), rec.offset);
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
    let result = drain(
        &mut running,
        &in_flight,
        &cfg,
        &mut queues,
        &mut buffered,
        result,
    )
    .await;
    // Finished records' offsets are stored; commit them now rather than waiting for the
    // background commit, so a clean stop redelivers only what never finished.
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = ?e, "Final commit skipped.");
    }
    result
}

/// Handles one record in its own task: the dead letter is produced and the offset stored
/// here, not in the loop, so a revoke waiting inside the loop's `recv()` sees the record
/// finished with its offset stored.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    key: Vec<u8>,
    rec: Record,
    ticket: Ticket,
    handler: Arc<dyn Handler>,
    consumer: Arc<Consumed>,
    in_flight: Arc<InFlight>,
    cfg: Arc<RunnerConfig>,
    deps: Arc<RunnerDeps>,
) -> Finished {
    let handled = tokio::select! {
        r = handle_caught(handler.as_ref(), &rec) => Some(r),
        () = ticket.stop.cancelled() => None,
    };
    let end = match handled {
        None => End::Stopped,
        Some(Ok(())) => End::Done {
            dead_lettered: false,
        },
        Some(Err(Failure::DeadLetter { kind, reason })) => {
            match dead_letter::dead_letter(&cfg, &deps, &rec, &kind, &reason).await {
                Ok(()) => End::Done {
                    dead_lettered: true,
                },
                Err(e) => End::Fatal(format!("{e:#}")),
            }
        }
        Some(Err(Failure::Fatal(msg))) => End::Fatal(format!(
            "{} at {}[{}]@{}: {msg}",
            cfg.stage, rec.topic, rec.partition, rec.offset
        )),
    };
    let tp = (rec.topic.clone(), rec.partition);
    let done = matches!(end, End::Done { .. });
    in_flight.ended(&tp, &ticket, rec.offset, done, |next| {
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(&tp.0, tp.1, Offset::Offset(next))
            .is_ok()
        {
            // Fails only for a partition we no longer own; its new owner redelivers.
            if let Err(e) = consumer.store_offsets(&tpl) {
                tracing::debug!(error = ?e, topic = %tp.0, partition = tp.1, "Offset not stored.");
            }
        }
    });
    (key, end)
}

/// Releases a finished record's key; `Ok(true)` when it was handled without a dead letter.
fn settle(
    joined: Result<Finished, tokio::task::JoinError>,
    cfg: &RunnerConfig,
    queues: &mut KeyedQueues,
    buffered: &mut usize,
) -> anyhow::Result<bool> {
    let (key, end) =
        joined.map_err(|e| anyhow::anyhow!("{} record task failed: {e}", cfg.stage))?;
    *buffered = buffered.saturating_sub(1);
    queues.done(&key);
    match end {
        End::Done { dead_lettered } => Ok(!dead_lettered),
        End::Stopped => Ok(false),
        End::Fatal(msg) => Err(anyhow::anyhow!(msg)),
    }
}

/// After the loop: waits (at most `drain_timeout`) for running records, then stops the
/// rest at their next await. Waiting records never start; they are redelivered.
async fn drain(
    running: &mut JoinSet<Finished>,
    in_flight: &InFlight,
    cfg: &RunnerConfig,
    queues: &mut KeyedQueues,
    buffered: &mut usize,
    mut result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    if running.is_empty() {
        return result;
    }
    let n = running.len();
    let deadline = tokio::time::Instant::now() + cfg.drain_timeout;
    let mut stopped = false;
    loop {
        let next = if stopped {
            running.join_next().await
        } else {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(stage = %cfg.stage, running = running.len(), "Records outlived the drain; they are stopped and run again after restart.");
                    in_flight.stop_all();
                    stopped = true;
                    continue;
                }
            }
        };
        let Some(joined) = next else { break };
        if let Err(e) = settle(joined, cfg, queues, buffered) {
            tracing::error!(stage = %cfg.stage, error = %e, "Failed while draining.");
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    tracing::info!(stage = %cfg.stage, records = n, "Drained running records.");
    result
}

/// Pauses every assigned partition while the buffer is full, and resumes them when it is
/// not; an assignment made while paused starts fetching (see `post_rebalance`) and is
/// paused here in turn.
fn pause_when_full(
    consumer: &Consumed,
    in_flight: &InFlight,
    full: bool,
    paused: Option<u64>,
) -> Option<u64> {
    let now = in_flight.assignments();
    let want = full.then_some(now);
    if want == paused || (!full && paused.is_none()) {
        return paused;
    }
    let Ok(assigned) = consumer.assignment() else {
        return paused;
    };
    let r = if full {
        consumer.pause(&assigned)
    } else {
        consumer.resume(&assigned)
    };
    if let Err(e) = r {
        tracing::debug!(error = ?e, full, "Pause or resume refused.");
        return paused;
    }
    want
}

/// Drops the waiting records of partitions revoked since the last look.
fn drop_revoked(
    in_flight: &InFlight,
    queues: &mut KeyedQueues,
    buffered: &mut usize,
    fetched: &mut HashMap<Tp, i64>,
) {
    for tp in in_flight.take_revoked() {
        fetched.remove(&tp);
        let dropped = queues.drop_partition(&tp);
        *buffered = buffered.saturating_sub(dropped);
        if dropped > 0 {
            tracing::info!(topic = %tp.0, partition = tp.1, dropped, "Waiting records of a revoked partition dropped.");
        }
    }
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

async fn report_lag(
    consumer: Arc<Consumed>,
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
pub(super) mod tests {
    use super::*;

    pub(super) fn rec(p: i32, o: i64, key: &str) -> Record {
        Record {
            topic: "t".into(),
            partition: p,
            offset: o,
            key: Some(key.into()),
            payload: None,
            timestamp_ms: None,
            headers: Vec::new(),
            previous: None,
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
}

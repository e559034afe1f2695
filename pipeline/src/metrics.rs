//! Prometheus metrics of every stage, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// Labels of per-stage metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// router, worker.<category>, sink, api.
    pub stage: String,
}

/// Labels of dead-letter counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// The stage that gave up.
    pub stage: String,
    /// The reason class.
    pub reason: String,
}

/// Labels of consumer lag.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// Labels of DynamoDB request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DynamoLabels {
    /// The table, without the deployment's prefix; tables joined by `+` for a
    /// transaction or batch over several.
    pub table: String,
    /// The operation: GetItem, TransactWriteItems, ...
    pub op: String,
}

/// Labels of per-topic counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic's full name.
    pub topic: String,
}

/// Labels of per-CRM counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// keap, gohighlevel, activecampaign, ontraport or hubspot.
    pub platform: String,
}

/// Labels of completed executions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// succeeded or failed.
    pub status: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The process's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// Records handled, per stage.
    pub processed: Family<StageLabels, Counter>,
    /// Records whose handling failed (results with status failed included), per stage.
    pub failures: Family<StageLabels, Counter>,
    /// Records sent to the dead-letter topic.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Seconds from a record's request time to the end of its handling, per stage.
    pub latency: Family<StageLabels, Histogram, fn() -> Histogram>,
    /// Records behind the partition's end offset.
    pub consumer_lag: Family<LagLabels, Gauge>,
    /// DynamoDB requests sent (an operation, not its retries; a batch or transaction is one).
    pub dynamodb_requests: Family<DynamoLabels, Counter>,
    /// Records the broker acknowledged, per topic.
    pub records_produced: Family<TopicLabels, Counter>,
    /// Execution results the sink wrote first (redelivered copies are not counted).
    pub executions_completed: Family<StatusLabels, Counter>,
    /// CRM webhook events naming a vendor account (location, portal) no connection
    /// reaches: acknowledged to the vendor, attributed to nobody.
    pub crm_events_unrouted: Family<PlatformLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mfh");
        let processed = Family::<StageLabels, Counter>::default();
        let failures = Family::<StageLabels, Counter>::default();
        let dead_letters = Family::<DeadLetterLabels, Counter>::default();
        let latency = Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let consumer_lag = Family::<LagLabels, Gauge>::default();
        let dynamodb_requests = Family::<DynamoLabels, Counter>::default();
        let records_produced = Family::<TopicLabels, Counter>::default();
        let executions_completed = Family::<StatusLabels, Counter>::default();
        let crm_events_unrouted = Family::<PlatformLabels, Counter>::default();
        registry.register("records_processed", "Records handled", processed.clone());
        registry.register(
            "failures",
            "Records whose handling failed",
            failures.clone(),
        );
        registry.register(
            "dead_letters",
            "Records sent to the dead-letter topic",
            dead_letters.clone(),
        );
        registry.register(
            "latency_seconds",
            "Request-to-handled latency",
            latency.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records behind the end offset",
            consumer_lag.clone(),
        );
        registry.register(
            "dynamodb_requests",
            "DynamoDB requests sent; a batch or transaction counts once",
            dynamodb_requests.clone(),
        );
        registry.register(
            "kafka_records_produced",
            "Records the broker acknowledged",
            records_produced.clone(),
        );
        registry.register(
            "executions_completed",
            "Execution results written, first copies only",
            executions_completed.clone(),
        );
        registry.register(
            "crm_events_unrouted",
            "CRM webhook events for a vendor account no connection reaches",
            crm_events_unrouted.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            processed,
            failures,
            dead_letters,
            latency,
            consumer_lag,
            dynamodb_requests,
            records_produced,
            executions_completed,
            crm_events_unrouted,
        }
    }

    /// Counts one record the broker acknowledged on `topic`.
    pub fn produced(&self, topic: &str) {
        self.records_produced
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }

    /// DynamoDB requests counted so far, over every table and operation.
    #[must_use]
    pub fn dynamodb_requests_total(&self) -> u64 {
        sum(&self.render(), "mfh_dynamodb_requests_total")
    }

    /// Records produced so far, over every topic.
    #[must_use]
    pub fn records_produced_total(&self) -> u64 {
        sum(&self.render(), "mfh_kafka_records_produced_total")
    }

    /// Executions completed so far, any status.
    #[must_use]
    pub fn executions_completed_total(&self) -> u64 {
        sum(&self.render(), "mfh_executions_completed_total")
    }

    /// A stage label set.
    #[must_use]
    pub fn stage(stage: &str) -> StageLabels {
        StageLabels {
            stage: stage.to_owned(),
        }
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
            out.clear();
        }
        out
    }
}

/// The sum of one counter family's samples in a text exposition.
fn sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

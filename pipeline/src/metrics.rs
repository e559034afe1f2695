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
        Self {
            registry: Arc::new(Mutex::new(registry)),
            processed,
            failures,
            dead_letters,
            latency,
            consumer_lag,
        }
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

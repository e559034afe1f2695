//! Broker settings, the idempotent producer and consumers.

use rdkafka::ClientConfig;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Broker connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Schema Registry base URL.
    pub schema_registry_url: String,
    /// Prefix for topic and group names, so deployments (and tests) can share a broker.
    #[serde(default)]
    pub prefix: String,
    /// Partitions of each topic at creation.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// How long the producer may wait to batch records.
    #[serde(with = "humantime_serde", default = "default_linger")]
    pub linger: Duration,
    /// Longest a consumer's fetch waits for data. Every hop of the pipeline pays up to this
    /// once per record when traffic is light, so keep it well under the latency target.
    #[serde(with = "humantime_serde", default = "default_fetch_wait")]
    pub fetch_wait_max: Duration,
    /// Extra librdkafka properties, e.g. `security.protocol`.
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
}

const fn default_partitions() -> i32 {
    8
}
fn default_linger() -> Duration {
    Duration::from_millis(2)
}
fn default_fetch_wait() -> Duration {
    Duration::from_millis(50)
}

impl KafkaConfig {
    /// The prefixed group id of a processor.
    #[must_use]
    pub fn group(&self, name: &str) -> String {
        format!("{}mfh-{name}", self.prefix)
    }

    /// The topic set of this deployment.
    #[must_use]
    pub fn topics(&self) -> mfh_topics::Topics {
        mfh_topics::Topics::new(self.prefix.clone(), self.partitions)
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// An idempotent producer: acks from all replicas, no duplicates from its retries.
    ///
    /// # Errors
    /// When librdkafka rejects the settings.
    pub fn producer(&self) -> Result<FutureProducer, rdkafka::error::KafkaError> {
        self.base()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("message.timeout.ms", "30000")
            .create()
    }

    /// A consumer of `group` that stores offsets only when told to (at-least-once) and
    /// commits the stored ones in the background and on rebalance.
    ///
    /// # Errors
    /// When librdkafka rejects the settings.
    pub fn consumer<C: ConsumerContext + 'static>(
        &self,
        group: &str,
        context: C,
    ) -> Result<StreamConsumer<C>, rdkafka::error::KafkaError> {
        self.base()
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "fetch.wait.max.ms",
                self.fetch_wait_max.as_millis().to_string(),
            )
            .set("session.timeout.ms", "10000")
            // Polling never stops (a full buffer pauses partitions instead), so this bounds
            // only a revoke's wait for running records, which `drain_timeout` keeps under it.
            .set("max.poll.interval.ms", "300000")
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(context)
    }
}

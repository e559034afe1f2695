//! mfh's stream processors and the business logic they run.
//!
//! # Layout
//! - [`router`] — validates requests, enforces plan limits ([`admission`]) and sends each
//!   to its helper category's topic.
//! - [`worker`] — one consumer group per category; runs helpers against the CRM.
//! - [`scheduler`] — fires follow-up executions whose time has come.
//! - [`sink`] — writes results to DynamoDB and the Parquet lake, each exactly once.
//! - [`contact_sink`] — writes CRM contact snapshots to the lake's `contacts` table, once each.
//! - [`billing_processor`] — applies verified Stripe events to accounts' billing state.
//! - [`alerts`] — the daily `execution_alert` and `connection_alert` a failed execution asks for.
//! - [`notifier`] — sends billing emails (SMTP, or an outbox directory), each once.
//! - [`trial_expiry`] — the scheduled job that expires ended trials.
//! - [`billing`] — plans, limits, Stripe event parsing and the billing state machine.
//! - [`helpers`] — the helpers, by category, and their registry.
//! - [`connectors`] — the CRM connector trait, the sandbox CRM and the five vendor CRMs.
//! - [`contact_sync`] — full contact syncs from CRMs into the snapshots topic.
//! - [`crm_events`] — CRM events into contact snapshots and triggered executions.
//! - [`crm_webhooks`] — verifying and reading CRM webhook deliveries.
//! - [`store`] — the DynamoDB tables.
//! - [`lake`] — the Parquet lake and its manifests.
//! - [`http`] — the shared outbound HTTP client with its SSRF guard.
//! - [`state`] — platform-side helper state (rotations, counters, the effect journal).
//! - [`context`] — builds a helper's context for one execution.

pub mod admission;
pub mod alerts;
pub mod billing;
pub mod billing_processor;
pub mod connectors;
pub mod contact_sink;
pub mod contact_sync;
pub mod context;
pub mod crm_events;
pub mod crm_webhooks;
pub mod helpers;
pub mod http;
pub mod lake;
pub mod notifier;
pub mod router;
pub mod scheduler;
pub mod sink;
pub mod state;
pub mod store;
pub mod trial_expiry;
pub mod worker;

use mfh_pipeline::avro::AvroSerde;
use mfh_pipeline::kafka::KafkaConfig;
use mfh_pipeline::metrics::Metrics;
use mfh_pipeline::runner::{Failure, RunnerConfig, RunnerDeps};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of the processors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorsConfig {
    /// Records handled concurrently per processor instance.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Records held per processor instance, running or waiting.
    #[serde(default = "default_buffered")]
    pub max_buffered: usize,
    /// Longest a revoke or a clean stop waits for running records before stopping them
    /// (they then run again in their new owner or after restart). At most 4 minutes: the
    /// group's rebalance waits for it, within librdkafka's 5-minute poll interval.
    #[serde(with = "humantime_serde", default = "default_drain")]
    pub drain_timeout: Duration,
    /// Deepest chain of executions started by other executions.
    #[serde(default = "default_depth")]
    pub max_chain_depth: i32,
    /// Sink: rows per lake flush at most.
    #[serde(default = "default_batch")]
    pub lake_max_batch: usize,
    /// Sink: longest a row waits for its lake flush.
    #[serde(with = "humantime_serde", default = "default_wait")]
    pub lake_max_wait: Duration,
    /// Sink: small files of one account and day merged once there are this many.
    #[serde(default = "default_compact")]
    pub lake_compact_min_files: usize,
    /// Sink: how long replaced files stay for readers with an old manifest.
    #[serde(with = "humantime_serde", default = "default_grace")]
    pub lake_delete_grace: Duration,
    /// Base URLs of third-party services, overriding the vendors' public ones.
    #[serde(default)]
    pub vendors: helpers::Vendors,
    /// How often the scheduler looks for due timers.
    #[serde(with = "humantime_serde", default = "default_timer_poll")]
    pub timer_poll: Duration,
}

fn default_timer_poll() -> Duration {
    Duration::from_secs(1)
}

const fn default_in_flight() -> usize {
    64
}
const fn default_buffered() -> usize {
    1024
}
fn default_drain() -> Duration {
    Duration::from_secs(20)
}
const fn default_depth() -> i32 {
    5
}
const fn default_batch() -> usize {
    2000
}
fn default_wait() -> Duration {
    Duration::from_millis(200)
}
const fn default_compact() -> usize {
    16
}
fn default_grace() -> Duration {
    Duration::from_secs(300)
}

impl Default for ProcessorsConfig {
    fn default() -> Self {
        Self {
            max_in_flight: default_in_flight(),
            max_buffered: default_buffered(),
            drain_timeout: default_drain(),
            max_chain_depth: default_depth(),
            lake_max_batch: default_batch(),
            lake_max_wait: default_wait(),
            lake_compact_min_files: default_compact(),
            lake_delete_grace: default_grace(),
            vendors: helpers::Vendors::default(),
            timer_poll: default_timer_poll(),
        }
    }
}

/// What every processor needs: broker, codec, producer, stores, metrics.
#[derive(Clone)]
pub struct Services {
    /// Broker settings.
    pub kafka: KafkaConfig,
    /// Processor settings.
    pub cfg: ProcessorsConfig,
    /// Registry-aware codec.
    pub avro: AvroSerde,
    /// The shared idempotent producer.
    pub producer: FutureProducer,
    /// DynamoDB tables.
    pub store: store::Store,
    /// CRM connectors.
    pub connectors: connectors::Connectors,
    /// Outbound HTTP.
    pub http: http::HttpClient,
    /// Platform file storage (backups, uploads); each account sees its own prefix.
    pub files: std::sync::Arc<dyn object_store::ObjectStore>,
    /// Metrics.
    pub metrics: Metrics,
    /// Billing: Stripe prices, the trial job, email delivery.
    pub billing: billing::BillingConfig,
    /// Tells the router which requests the API admitted and counted already.
    pub seal: admission::Seal,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("kafka", &self.kafka)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Produces `value` to `topic` under `key`, retrying while the registry or broker is
    /// away.
    ///
    /// # Errors
    /// [`Failure::Fatal`] when retries run out.
    pub async fn produce<T: mfh_schemas::AvroRecord + Sync>(
        &self,
        topic: &mfh_topics::Topic,
        key: &str,
        value: &T,
    ) -> Result<(), Failure> {
        let subject = topic.value_subject();
        let bytes = with_retries("encode", || self.avro.encode(&subject, value))
            .await
            .map_err(|e| Failure::Fatal(mfh_pipeline::report(&e)))?;
        with_retries("produce", || async {
            self.producer
                .send(
                    FutureRecord::to(&topic.name).key(key).payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        })
        .await
        .map_err(|e| produce_failure(&topic.name, &e))?;
        self.metrics.produced(&topic.name);
        Ok(())
    }

    pub(crate) fn runner(
        &self,
        stage: &str,
        group: &str,
        topic: String,
    ) -> (RunnerConfig, RunnerDeps) {
        (
            RunnerConfig {
                stage: stage.to_owned(),
                group: self.kafka.group(group),
                topics: vec![topic],
                dead_letter_topic: self.kafka.topics().dead_letter().name,
                max_in_flight: self.cfg.max_in_flight,
                max_buffered: self.cfg.max_buffered,
                drain_timeout: self.cfg.drain_timeout,
            },
            RunnerDeps {
                kafka: self.kafka.clone(),
                producer: self.producer.clone(),
                avro: self.avro.clone(),
                metrics: self.metrics.clone(),
            },
        )
    }
}

/// Whether an error is one that asking again cannot change.
pub(crate) trait Permanence {
    /// `true` stops [`with_retries`] at once; by default every failure is transient.
    fn is_permanent(&self) -> bool {
        false
    }
}

impl Permanence for store::StoreError {
    fn is_permanent(&self) -> bool {
        store::StoreError::is_permanent(self)
    }
}

/// A record the broker refuses for its size stays too large; the rest is the broker's.
impl Permanence for rdkafka::error::KafkaError {
    fn is_permanent(&self) -> bool {
        self.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge)
    }
}

/// The registry (encode) and the mail server fail for reasons outside the record.
impl Permanence for mfh_pipeline::avro::AvroError {}
impl Permanence for notifier::MailError {}

/// A store error as the failure of the record that caused it: a permanent one
/// dead-letters the record (its partition moves on), a transient one stops the
/// processor, which its supervisor restarts, so the record is redelivered.
pub(crate) fn store_failure(e: &store::StoreError) -> Failure {
    if e.is_permanent() {
        Failure::dead_letter("store_rejected", mfh_pipeline::report(e))
    } else {
        Failure::Fatal(mfh_pipeline::report(e))
    }
}

/// A produce that failed after its retries: a record the broker refuses for its size is
/// dead-lettered, anything else stops the processor for its supervisor to restart.
pub(crate) fn produce_failure(topic: &str, e: &rdkafka::error::KafkaError) -> Failure {
    if Permanence::is_permanent(e) {
        Failure::dead_letter("too_large", format!("produce to {topic}: {e}"))
    } else {
        Failure::Fatal(format!("produce to {topic}: {e}"))
    }
}

/// Retries a fallible async step with capped backoff (not a permanent failure); used for the pipeline's own stores,
/// whose failures are transient until proven otherwise.
pub(crate) async fn with_retries<T, E: std::fmt::Debug + Permanence, F, Fut>(
    what: &str,
    mut f: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= 6 || e.is_permanent() => return Err(e),
            Err(e) => {
                tracing::warn!(what, attempt, error = ?e, "Retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
        }
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[derive(Debug)]
    struct Refused(bool);

    impl Permanence for Refused {
        fn is_permanent(&self) -> bool {
            self.0
        }
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried_and_a_transient_one_is() {
        for (permanent, want) in [(true, 1), (false, 6)] {
            let mut attempts = 0;
            let r: Result<(), Refused> = with_retries("test", || {
                attempts += 1;
                async move { Err(Refused(permanent)) }
            })
            .await;
            assert!(r.is_err());
            assert_eq!(attempts, want, "permanent: {permanent}");
        }
    }
}

//! One definition per mfh topic, and idempotent provisioning.
//!
//! Topic names follow `mfh.<entity>.<event>` and exist only as the constants below; every
//! other crate refers to them through [`Topic`] values. Names may be prefixed per
//! deployment (tests use a unique prefix so they can run side by side on one broker).
//!
//! # Layout
//! - [`Topic`] — name, key, value schema, partitions, cleanup policy, retention, DLQ.
//! - [`all`] — every topic, in provisioning order.
//! - [`provision`] — create missing topics; existing ones are left as they are.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Execution requests from the API and direct producers.
pub const EXECUTIONS_REQUESTED: &str = "mfh.execution.requested";
/// Per-category routed requests; the category name is appended.
pub const EXECUTIONS_ROUTED_PREFIX: &str = "mfh.execution.routed.";
/// Execution results.
pub const EXECUTIONS_COMPLETED: &str = "mfh.execution.completed";
/// Records a processor could not handle, with the reason.
pub const EXECUTIONS_DEAD_LETTER: &str = "mfh.execution.deadletter";
/// Verified Stripe webhook events, keyed by account.
pub const BILLING_STRIPE_EVENTS: &str = "mfh.billing.stripe_event";
/// Emails to send (billing events and alerts), keyed by account.
pub const NOTIFICATIONS_REQUESTED: &str = "mfh.notification.requested";
/// Verified, normalised CRM webhook events, keyed `account:contact`.
pub const CRM_EVENTS: &str = "mfh.crm.event";
/// The latest state of each CRM contact, compacted, keyed `account:connection:contact`.
pub const CRM_CONTACT_SNAPSHOTS: &str = "mfh.crm.contact_snapshot";

/// The helper categories whose routed topics exist; kept here (not in `processors`)
/// because topics own names and must not depend on business logic.
pub const CATEGORIES: [&str; 8] = [
    "tagging",
    "contact",
    "data",
    "automation",
    "integration",
    "notification",
    "analytics",
    "platform",
];

/// How old segments are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Delete after the retention time.
    Delete,
    /// Keep the latest record per key.
    Compact,
}

/// One topic's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The full name, deployment prefix included.
    pub name: String,
    /// What the key holds.
    pub key: &'static str,
    /// The value's Avro record name.
    pub value_schema: &'static str,
    /// Partition count.
    pub partitions: i32,
    /// Cleanup policy.
    pub cleanup: Cleanup,
    /// Retention in milliseconds (`-1` keeps forever).
    pub retention_ms: i64,
    /// Where records this topic's consumers cannot handle go.
    pub dead_letter: Option<String>,
}

impl Topic {
    /// The Schema Registry subject of the value (TopicNameStrategy).
    #[must_use]
    pub fn value_subject(&self) -> String {
        format!("{}-value", self.name)
    }
}

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// Names of one deployment: every topic name gets `prefix` in front.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    partitions: i32,
}

impl Topics {
    /// Topics named with `prefix` (may be empty) and `partitions` partitions each.
    #[must_use]
    pub fn new(prefix: impl Into<String>, partitions: i32) -> Self {
        Self {
            prefix: prefix.into(),
            partitions: partitions.max(1),
        }
    }

    fn named(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// The dead-letter topic.
    #[must_use]
    pub fn dead_letter(&self) -> Topic {
        Topic {
            name: self.named(EXECUTIONS_DEAD_LETTER),
            key: "the failed record's key",
            value_schema: "io.mfh.pipeline.DeadLetter",
            partitions: self.partitions,
            cleanup: Cleanup::Delete,
            retention_ms: 4 * WEEK_MS,
            dead_letter: None,
        }
    }

    /// Execution requests, keyed `account:contact`.
    #[must_use]
    pub fn requested(&self) -> Topic {
        Topic {
            name: self.named(EXECUTIONS_REQUESTED),
            key: "account_id:contact_id",
            value_schema: "io.mfh.execution.ExecutionRequested",
            partitions: self.partitions,
            cleanup: Cleanup::Delete,
            retention_ms: WEEK_MS,
            dead_letter: Some(self.dead_letter().name),
        }
    }

    /// The routed requests of one category.
    #[must_use]
    pub fn routed(&self, category: &str) -> Topic {
        Topic {
            name: self.named(&format!("{EXECUTIONS_ROUTED_PREFIX}{category}")),
            ..self.requested()
        }
    }

    /// Execution results, keyed like the requests.
    #[must_use]
    pub fn completed(&self) -> Topic {
        Topic {
            name: self.named(EXECUTIONS_COMPLETED),
            value_schema: "io.mfh.execution.ExecutionCompleted",
            ..self.requested()
        }
    }

    /// Verified Stripe events, keyed by account so one account's events apply in order.
    #[must_use]
    pub fn stripe_events(&self) -> Topic {
        Topic {
            name: self.named(BILLING_STRIPE_EVENTS),
            key: "account",
            value_schema: "io.mfh.billing.StripeEvent",
            partitions: self.partitions,
            cleanup: Cleanup::Delete,
            retention_ms: 4 * WEEK_MS,
            dead_letter: Some(self.dead_letter().name),
        }
    }

    /// Notification requests, keyed by account.
    #[must_use]
    pub fn notifications(&self) -> Topic {
        Topic {
            name: self.named(NOTIFICATIONS_REQUESTED),
            value_schema: "io.mfh.notification.Notification",
            ..self.stripe_events()
        }
    }

    /// Verified CRM webhook events, keyed by account and contact so a contact's events
    /// (and the executions their triggers start) stay in order.
    #[must_use]
    pub fn crm_events(&self) -> Topic {
        Topic {
            name: self.named(CRM_EVENTS),
            value_schema: "io.mfh.crm.CrmEvent",
            ..self.requested()
        }
    }

    /// Contact snapshots: compacted, so the topic itself keeps the latest state of every
    /// contact (a deletion is a snapshot with `deleted = true`).
    #[must_use]
    pub fn contact_snapshots(&self) -> Topic {
        Topic {
            name: self.named(CRM_CONTACT_SNAPSHOTS),
            key: "account_id:connection_id:contact_id",
            value_schema: "io.mfh.crm.ContactSnapshot",
            partitions: self.partitions,
            cleanup: Cleanup::Compact,
            retention_ms: -1,
            dead_letter: Some(self.dead_letter().name),
        }
    }

    /// Every topic, in provisioning order.
    #[must_use]
    pub fn all(&self) -> Vec<Topic> {
        let mut v = vec![self.dead_letter(), self.requested()];
        v.extend(CATEGORIES.iter().map(|c| self.routed(c)));
        v.push(self.completed());
        v.push(self.stripe_events());
        v.push(self.notifications());
        v.push(self.crm_events());
        v.push(self.contact_snapshots());
        v
    }
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The admin client could not be created.
    #[error("cannot create Kafka admin client for {brokers}: {source}")]
    Client {
        /// Bootstrap servers.
        brokers: String,
        /// Cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("cannot create topic {topic}: {reason}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's reason.
        reason: String,
    },
}

/// Creates every topic in `topics` that does not exist yet. Running it again is a no-op.
///
/// # Errors
/// [`ProvisionError`] when the broker cannot be reached or refuses a topic.
pub async fn provision(brokers: &str, topics: &[Topic]) -> Result<Vec<String>, ProvisionError> {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|source| ProvisionError::Client {
            brokers: brokers.to_owned(),
            source,
        })?;
    let retention: Vec<String> = topics.iter().map(|t| t.retention_ms.to_string()).collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .map(|(t, r)| {
            NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1))
                .set(
                    "cleanup.policy",
                    match t.cleanup {
                        Cleanup::Delete => "delete",
                        Cleanup::Compact => "compact",
                    },
                )
                .set("retention.ms", r)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin
            .create_topics(&new, &opts)
            .await
            .map_err(|source| ProvisionError::Client {
                brokers: brokers.to_owned(),
                source,
            })?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => {
                tracing::info!(topic = %name, "Topic created.");
                created.push(name);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProvisionError::Create {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_unique_and_dotted() {
        let t = Topics::new("t1.", 4);
        let all = t.all();
        let mut names: Vec<_> = all.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(names.iter().all(|n| n.starts_with("t1.mfh.")));
        assert_eq!(t.routed("data").name, "t1.mfh.execution.routed.data");
        assert_eq!(
            t.requested().dead_letter.as_deref(),
            Some("t1.mfh.execution.deadletter")
        );
        assert_eq!(
            t.completed().value_subject(),
            "t1.mfh.execution.completed-value"
        );
    }
}

//! Dead letters: a record that can never be handled, with the reason, on the dead-letter topic.

use super::{Record, RunnerConfig, RunnerDeps};
use crate::metrics::DeadLetterLabels;
use mfh_schemas::DeadLetter;
use rdkafka::producer::FutureRecord;
use std::time::Duration;

pub(super) async fn dead_letter(
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
    deps.metrics.produced(&cfg.dead_letter_topic);
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

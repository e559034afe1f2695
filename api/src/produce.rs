//! Producing records from request handlers: registry-aware Avro, a bounded wait for the
//! broker's acknowledgement, and 503 when the broker is away (the caller may retry).

use crate::AppState;
use crate::error::ApiError;
use mfh_schemas::{AvroRecord, DeadLetter};
use mfh_topics::Topic;
use rdkafka::producer::FutureRecord;
use std::time::Duration;

/// Produces `value` to `topic` under `key` and waits until the broker has it.
///
/// # Errors
/// [`ApiError::Unavailable`] when the registry or the broker fails.
pub async fn record<T: AvroRecord>(
    state: &AppState,
    topic: &Topic,
    key: &str,
    value: &T,
) -> Result<(), ApiError> {
    send(state, topic, Some(key), value, false).await
}

/// Like [`record`], with the record sealed as admitted and counted
/// ([`mfh_processors::admission::Seal`]): the router runs it without admitting it again.
///
/// # Errors
/// [`ApiError::Unavailable`] when the registry or the broker fails.
pub async fn admitted_record<T: AvroRecord>(
    state: &AppState,
    topic: &Topic,
    key: &str,
    value: &T,
) -> Result<(), ApiError> {
    send(state, topic, Some(key), value, true).await
}

async fn send<T: AvroRecord>(
    state: &AppState,
    topic: &Topic,
    key: Option<&str>,
    value: &T,
    sealed: bool,
) -> Result<(), ApiError> {
    let bytes = state
        .avro
        .encode(&topic.value_subject(), value)
        .await
        .map_err(|e| ApiError::Unavailable(mfh_pipeline::report(&e)))?;
    let mut record = match key {
        Some(k) => FutureRecord::to(&topic.name).key(k).payload(&bytes),
        None => FutureRecord::to(&topic.name).payload(&bytes),
    };
    let tag;
    if sealed {
        tag = state.seal.tag(&bytes);
        record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
            rdkafka::message::Header {
                key: mfh_processors::admission::ADMITTED_HEADER,
                value: Some(tag.as_slice()),
            },
        ));
    }
    state
        .producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| ApiError::Unavailable(format!("produce to {}: {e}", topic.name)))?;
    state.metrics.produced(&topic.name);
    Ok(())
}

/// Sends an accepted request the pipeline cannot use to the dead-letter topic, with the
/// reason and the original bytes.
///
/// # Errors
/// [`ApiError::Unavailable`] when the registry or the broker fails.
pub async fn dead_letter(
    state: &AppState,
    stage: &str,
    reason_kind: &str,
    reason: &str,
    payload: &[u8],
) -> Result<(), ApiError> {
    let topic = state.kafka.topics().dead_letter();
    let record = DeadLetter {
        source_topic: String::new(),
        source_partition: -1,
        source_offset: -1,
        key: None,
        payload: Some(payload.to_vec()),
        stage: stage.to_owned(),
        reason_kind: reason_kind.to_owned(),
        reason: reason.to_owned(),
        failed_at: mfh_pipeline::now_millis(),
    };
    send(state, &topic, None, &record, false).await
}

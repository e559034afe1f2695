//! The dead-letter record: what could not be processed, why, and where it came from.

use serde::{Deserialize, Serialize};

/// A record the pipeline gave up on (`io.mfh.pipeline.DeadLetter`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The topic the record was read from.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
    /// The original key bytes.
    #[serde(with = "serde_bytes")]
    pub key: Option<Vec<u8>>,
    /// The original value bytes, untouched.
    #[serde(with = "serde_bytes")]
    pub payload: Option<Vec<u8>>,
    /// The processor that gave up: router, worker.<category>, sink.
    pub stage: String,
    /// A machine-readable class: invalid_avro, unknown_helper, invalid_config, ...
    pub reason_kind: String,
    /// The human-readable reason.
    pub reason: String,
    /// When, in Unix milliseconds.
    pub failed_at: i64,
}

crate::avro_record!(DeadLetter, "dead_letter.avsc");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AvroRecord, wire};

    #[test]
    fn dead_letter_round_trips_with_raw_bytes() {
        let d = DeadLetter {
            source_topic: "t".into(),
            source_partition: 3,
            source_offset: 42,
            key: Some(b"a:c".to_vec()),
            payload: Some(vec![0xff, 0, 1]),
            stage: "router".into(),
            reason_kind: "invalid_avro".into(),
            reason: "bad".into(),
            failed_at: 9,
        };
        let bytes = wire::encode(&d, 2).unwrap();
        let back: DeadLetter = wire::decode_body(DeadLetter::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, d);
    }
}

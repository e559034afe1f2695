//! The execution records: a request to run a helper and its result.

use serde::{Deserialize, Serialize};

/// A request to run one helper against one contact (`io.mfh.execution.ExecutionRequested`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRequested {
    /// Unique id; every effect of the execution is keyed by it.
    pub execution_id: String,
    /// The owning account.
    pub account_id: String,
    /// The contact in the CRM.
    pub contact_id: String,
    /// The CRM connection the helper runs against.
    pub connection_id: String,
    /// Registry name of the helper.
    pub helper: String,
    /// The helper's config as a JSON object.
    pub config_json: String,
    /// Optional trigger payload as JSON.
    pub input_json: Option<String>,
    /// When the request was accepted, in Unix milliseconds.
    pub requested_at: i64,
    /// Where the request came from: api, direct, chain, trigger or schedule.
    pub source: String,
    /// Chaining depth; 0 for a request from outside.
    pub depth: i32,
    /// The execution that chained this one, if any.
    pub parent_execution_id: Option<String>,
    /// The saved helper this execution runs, if any.
    #[serde(default)]
    pub helper_id: Option<String>,
}

impl ExecutionRequested {
    /// The record key: executions of one contact share it, so they share a partition and
    /// keep their order.
    #[must_use]
    pub fn key(&self) -> String {
        contact_key(&self.account_id, &self.contact_id)
    }
}

/// The partitioning key of every record about one contact of one account.
#[must_use]
pub fn contact_key(account_id: &str, contact_id: &str) -> String {
    format!("{account_id}:{contact_id}")
}

/// The terminal state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// The helper ran and its changes were applied.
    Succeeded,
    /// The helper or the CRM reported an error; `error_kind` says which.
    Failed,
}

impl ExecutionStatus {
    /// The lower-case name used in the API and the lake.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One change made to the contact in the CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChange {
    /// field_updated, tag_applied, tag_removed, note_added, goal_achieved, ...
    pub kind: String,
    /// Field key, tag id, goal call name or note title.
    pub target: String,
    /// The value before, where there was one.
    pub old_value: Option<String>,
    /// The value after, where there is one.
    pub new_value: Option<String>,
}

/// The result of one execution (`io.mfh.execution.ExecutionCompleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionCompleted {
    /// Same as the request's.
    pub execution_id: String,
    /// Same as the request's.
    pub account_id: String,
    /// Same as the request's.
    pub contact_id: String,
    /// Same as the request's.
    pub connection_id: String,
    /// Same as the request's.
    pub helper: String,
    /// The helper's category, e.g. tagging.
    pub category: String,
    /// Succeeded or failed.
    pub status: ExecutionStatus,
    /// The helper's human-readable summary of what it did.
    pub message: String,
    /// When the request was accepted, in Unix milliseconds.
    pub requested_at: i64,
    /// When the worker started the helper.
    pub started_at: i64,
    /// When the result was ready.
    pub completed_at: i64,
    /// The helper's outputs as a JSON object.
    pub output_json: String,
    /// The changes made to the contact.
    pub changes: Vec<ContactChange>,
    /// A machine-readable error class when failed.
    pub error_kind: Option<String>,
    /// The error's description when failed.
    pub error_message: Option<String>,
    /// Same as the request's.
    pub source: String,
    /// Same as the request's: the saved helper that ran, if any.
    #[serde(default)]
    pub helper_id: Option<String>,
}

impl ExecutionCompleted {
    /// The record key, equal to the request's.
    #[must_use]
    pub fn key(&self) -> String {
        contact_key(&self.account_id, &self.contact_id)
    }
}

crate::avro_record!(ExecutionRequested, "execution_requested.avsc");
crate::avro_record!(ExecutionCompleted, "execution_completed.avsc");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AvroRecord, wire};

    pub(crate) fn sample_request() -> ExecutionRequested {
        ExecutionRequested {
            execution_id: "e-1".into(),
            account_id: "a-1".into(),
            contact_id: "c-1".into(),
            connection_id: "sandbox".into(),
            helper: "tag_it".into(),
            config_json: r#"{"action":"apply","tag_ids":["1"]}"#.into(),
            input_json: None,
            requested_at: 1_700_000_000_123,
            source: "api".into(),
            depth: 0,
            parent_execution_id: Some("e-0".into()),
            helper_id: Some("hlp_1".into()),
        }
    }

    #[test]
    fn request_round_trips() {
        let r = sample_request();
        let bytes = wire::encode(&r, 7).unwrap();
        let (id, body) = wire::split_frame(&bytes).unwrap();
        assert_eq!(id, 7);
        let back: ExecutionRequested =
            wire::decode_body(ExecutionRequested::schema(), body).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.key(), "a-1:c-1");
    }

    #[test]
    fn completed_round_trips() {
        let c = ExecutionCompleted {
            execution_id: "e-1".into(),
            account_id: "a".into(),
            contact_id: "c".into(),
            connection_id: "sandbox".into(),
            helper: "tag_it".into(),
            category: "tagging".into(),
            status: ExecutionStatus::Failed,
            message: "m".into(),
            requested_at: 1,
            started_at: 2,
            completed_at: 3,
            output_json: "{}".into(),
            changes: vec![ContactChange {
                kind: "tag_applied".into(),
                target: "101".into(),
                old_value: None,
                new_value: Some("VIP".into()),
            }],
            error_kind: Some("crm".into()),
            error_message: Some("boom".into()),
            source: "direct".into(),
            helper_id: None,
        };
        let bytes = wire::encode(&c, 1).unwrap();
        let back: ExecutionCompleted =
            wire::decode_body(ExecutionCompleted::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x01\0\0\0\x01abc",
            b"\0\0\0\0\x01\xff\xff\xff\xff\xff\xff",
        ] {
            let res = wire::split_frame(bytes).and_then(|(_, body)| {
                wire::decode_body::<ExecutionRequested>(ExecutionRequested::schema(), body)
            });
            assert!(res.is_err());
        }
    }

    #[test]
    fn old_writer_without_new_fields_reads_with_defaults() {
        let old = apache_avro::Schema::parse_str(
            r#"{"type":"record","name":"ExecutionRequested","namespace":"io.mfh.execution","fields":[
            {"name":"execution_id","type":"string"},{"name":"account_id","type":"string"},
            {"name":"contact_id","type":"string"},{"name":"connection_id","type":"string"},
            {"name":"helper","type":"string"},{"name":"config_json","type":"string"},
            {"name":"requested_at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
        )
        .unwrap();
        let mut rec = apache_avro::types::Record::new(&old).unwrap();
        for f in [
            "execution_id",
            "account_id",
            "contact_id",
            "connection_id",
            "helper",
        ] {
            rec.put(f, "x");
        }
        rec.put("config_json", "{}");
        rec.put(
            "requested_at",
            apache_avro::types::Value::TimestampMillis(5),
        );
        #[allow(deprecated)]
        let body = apache_avro::to_avro_datum(&old, rec).unwrap();
        let r: ExecutionRequested = wire::decode_body(&old, &body).unwrap();
        assert_eq!(r.source, "direct");
        assert_eq!(r.depth, 0);
        assert_eq!(r.requested_at, 5);
        assert_eq!(r.helper_id, None);
    }
}

//! Avro schemas of mfh's records and the Rust types that match them.
//!
//! Every record that crosses a topic is defined twice: as an `.avsc` file under `avro/`
//! (what the Schema Registry holds) and as a serde type here. Tests check that each type
//! round-trips through its schema and that every schema can still read the data written
//! with each of its committed predecessors under `avro/history/`.
//!
//! # Layout
//! - [`AvroRecord`] — the link between a type and its schema.
//! - [`wire`] — Confluent wire-format framing (magic byte, schema id) and datum codec.
//! - [`execution`] — `ExecutionRequested`, `ExecutionCompleted`.
//! - [`dead_letter`] — `DeadLetter`.
//! - [`billing`] — `StripeEvent`, `Notification`.
//! - [`crm`] — `CrmEvent`, `ContactSnapshot`.

pub mod billing;
pub mod crm;
pub mod dead_letter;
pub mod execution;
pub mod wire;

pub use billing::{Notification, StripeEvent};
pub use crm::{ContactSnapshot, CrmEvent, CrmEventKind};
pub use dead_letter::DeadLetter;
pub use execution::{ContactChange, ExecutionCompleted, ExecutionRequested, ExecutionStatus};
pub use wire::{DecodeError, EncodeError};

use apache_avro::Schema;

/// A Rust type whose values are Avro records of one schema.
pub trait AvroRecord: serde::Serialize + serde::de::DeserializeOwned {
    /// The schema's JSON text, as committed under `avro/`.
    const SCHEMA_JSON: &'static str;
    /// The parsed schema.
    fn schema() -> &'static Schema;
    /// The record's full name, e.g. `io.mfh.execution.ExecutionRequested`.
    fn full_name() -> String {
        match Self::schema() {
            Schema::Record(r) => r.name.fullname(None),
            other => format!("{other:?}"),
        }
    }
}

/// Defines `schema()` from an embedded `.avsc` file; the schemas are committed files,
/// so a parse failure is a build defect caught by every test.
macro_rules! avro_record {
    ($ty:ty, $file:literal) => {
        impl $crate::AvroRecord for $ty {
            const SCHEMA_JSON: &'static str = include_str!(concat!("../avro/", $file));
            #[allow(clippy::expect_used)]
            fn schema() -> &'static apache_avro::Schema {
                static SCHEMA: std::sync::LazyLock<apache_avro::Schema> =
                    std::sync::LazyLock::new(|| {
                        apache_avro::Schema::parse_str(<$ty as $crate::AvroRecord>::SCHEMA_JSON)
                            .expect(concat!("committed schema ", $file, " parses"))
                    });
                &SCHEMA
            }
        }
    };
}
pub(crate) use avro_record;

/// Every schema mfh registers: (record full name, schema JSON).
#[must_use]
pub fn all_schemas() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ExecutionRequested", ExecutionRequested::SCHEMA_JSON),
        ("ExecutionCompleted", ExecutionCompleted::SCHEMA_JSON),
        ("DeadLetter", DeadLetter::SCHEMA_JSON),
        ("StripeEvent", StripeEvent::SCHEMA_JSON),
        ("Notification", Notification::SCHEMA_JSON),
        ("CrmEvent", CrmEvent::SCHEMA_JSON),
        ("ContactSnapshot", ContactSnapshot::SCHEMA_JSON),
    ]
}

#[cfg(test)]
mod evolution_tests {
    use super::*;
    use apache_avro::schema_compatibility::SchemaCompatibility;

    /// Each committed predecessor of a schema, oldest first.
    fn history() -> Vec<(&'static str, &'static Schema, Vec<&'static str>)> {
        vec![
            (
                "ExecutionRequested",
                ExecutionRequested::schema(),
                vec![include_str!("../avro/history/execution_requested.v1.avsc")],
            ),
            (
                "ExecutionCompleted",
                ExecutionCompleted::schema(),
                vec![include_str!("../avro/history/execution_completed.v1.avsc")],
            ),
            (
                "DeadLetter",
                DeadLetter::schema(),
                vec![include_str!("../avro/history/dead_letter.v1.avsc")],
            ),
            (
                "StripeEvent",
                StripeEvent::schema(),
                vec![include_str!("../avro/history/stripe_event.v1.avsc")],
            ),
            (
                "Notification",
                Notification::schema(),
                vec![include_str!("../avro/history/notification.v1.avsc")],
            ),
            (
                "CrmEvent",
                CrmEvent::schema(),
                vec![include_str!("../avro/history/crm_event.v1.avsc")],
            ),
            (
                "ContactSnapshot",
                ContactSnapshot::schema(),
                vec![include_str!("../avro/history/contact_snapshot.v1.avsc")],
            ),
        ]
    }

    #[test]
    fn every_schema_reads_data_written_with_each_predecessor() {
        for (name, current, olds) in history() {
            for (i, old) in olds.iter().enumerate() {
                let old = Schema::parse_str(old).unwrap();
                if let Err(e) = SchemaCompatibility::can_read(&old, current) {
                    panic!("{name}: current schema cannot read v{} data: {e}", i + 1);
                }
            }
        }
    }

    #[test]
    fn the_latest_history_entry_is_the_current_schema_or_older() {
        // A schema change must add a new history file; this catches an edited history file.
        for (name, current, olds) in history() {
            let latest = Schema::parse_str(olds.last().unwrap()).unwrap();
            assert!(
                SchemaCompatibility::can_read(current, &latest).is_ok()
                    || SchemaCompatibility::can_read(&latest, current).is_ok(),
                "{name}: history and current schema are unrelated"
            );
        }
    }
}

//! Parsing submitted schemas, their identity key, and the reader/writer compatibility check.

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde_json::Value;

use super::error::RegistryError;

/// A schema parsed from its text, with its identity key.
pub(super) struct ParsedSchema {
    /// The text as submitted.
    pub(super) text: String,
    /// The parsed schema.
    pub(super) schema: Schema,
    /// The identity key, see [`ParsedSchema::parse`].
    pub(super) key: String,
}

impl ParsedSchema {
    /// Parses an Avro schema.
    ///
    /// The identity key is the parsed schema re-serialized as JSON with sorted object keys: it
    /// ignores whitespace, attribute order and the `"type": "long"` vs `"long"` spelling. It is
    /// stricter than the Parsing Canonical Form (`Schema::canonical_form`) on purpose: that
    /// form strips `default`, `logicalType`, `doc` and `aliases`, so a `timestamp-millis` field
    /// and a plain `long` would share one id, and a schema that adds a default (which changes
    /// compatibility) would silently map to the version without it.
    pub(super) fn parse(text: &str) -> Result<Self, RegistryError> {
        let schema = Schema::parse_str(text).map_err(|err| RegistryError::InvalidSchema {
            reason: crate::report(&err),
        })?;
        let key = identity_key(&schema)?;
        Ok(Self {
            text: text.to_owned(),
            schema,
            key,
        })
    }
}

fn identity_key(schema: &Schema) -> Result<String, RegistryError> {
    let value = serde_json::to_value(schema).map_err(|err| RegistryError::InvalidSchema {
        reason: crate::report(&err),
    })?;
    let mut out = String::new();
    write_sorted(&value, &mut out);
    Ok(out)
}

/// Writes `value` as compact JSON with object keys sorted at every level, so the key does not
/// depend on serde_json's `preserve_order` feature.
fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_sorted(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Why `reader` cannot (always) read data written with `writer`, or `None` if it can.
///
/// `Compatibility::Partial` (a narrowed union or enum without a reader default) counts as
/// incompatible, as in Confluent's registry: some records would fail to decode.
pub(super) fn read_problem(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only partially compatible: some union branches or enum symbols cannot be resolved"
                .to_owned(),
        ),
        Err(err) => Some(crate::report(&err)),
    }
}

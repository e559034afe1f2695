//! Confluent wire format: `0x00`, a big-endian 4-byte schema id, then one Avro datum.

// The datum functions are deprecated in favour of GenericDatum{Reader,Writer}, which
// schema_registry_converter 6 does not use yet; keep one codec path with it.
#![allow(deprecated)]

use crate::AvroRecord;
use apache_avro::{Schema, from_avro_datum, from_value, to_avro_datum, to_value};

/// The first byte of every Confluent-framed record.
pub const MAGIC_BYTE: u8 = 0;

/// Why bytes could not be read as a record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 5-byte header, or a magic byte other than 0.
    #[error("not Confluent wire format: {0}")]
    NotWireFormat(&'static str),
    /// The schema id is not known to the registry.
    #[error("unknown schema id {0}")]
    UnknownSchema(u32),
    /// The bytes do not decode with the writer's schema, or do not resolve to the reader's.
    #[error("invalid Avro for {record}: {source}")]
    InvalidAvro {
        /// The record we tried to read.
        record: String,
        /// The codec's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
}

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {record}: {source}")]
pub struct EncodeError {
    record: String,
    #[source]
    source: Box<apache_avro::Error>,
}

/// Splits a Confluent-framed record into its schema id and Avro body.
///
/// # Errors
/// [`DecodeError::NotWireFormat`] for a short buffer or a wrong magic byte.
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if bytes.len() < 5 {
        return Err(DecodeError::NotWireFormat("shorter than the 5-byte header"));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(DecodeError::NotWireFormat("magic byte is not 0"));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

/// Encodes `value` with its own schema and frames it with `schema_id`.
///
/// # Errors
/// [`EncodeError`] if the value does not fit its schema.
pub fn encode<T: AvroRecord>(value: &T, schema_id: u32) -> Result<Vec<u8>, EncodeError> {
    let err = |e| EncodeError {
        record: T::full_name(),
        source: Box::new(e),
    };
    let avro = to_value(value).map_err(err)?;
    let avro = avro.resolve(T::schema()).map_err(err)?;
    let body = to_avro_datum(T::schema(), avro).map_err(err)?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an Avro body written with `writer` into `T`, resolving to `T`'s schema so that
/// data from older (or newer, compatible) writers reads with defaults filled in.
///
/// # Errors
/// [`DecodeError::InvalidAvro`] when the body does not match the writer schema or does not
/// resolve to `T`.
pub fn decode_body<T: AvroRecord>(writer: &Schema, mut body: &[u8]) -> Result<T, DecodeError> {
    let err = |e| DecodeError::InvalidAvro {
        record: T::full_name(),
        source: Box::new(e),
    };
    let value = from_avro_datum(writer, &mut body, Some(T::schema())).map_err(err)?;
    if !body.is_empty() {
        return Err(DecodeError::NotWireFormat(
            "trailing bytes after the Avro datum",
        ));
    }
    from_value::<T>(&value).map_err(err)
}

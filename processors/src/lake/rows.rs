//! The executions table's rows, and the Parquet encoding every table shares.

use super::{LakeError, LakeRow};
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mfh_schemas::ExecutionCompleted;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::sync::{Arc, LazyLock};

/// One row of the executions table.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    /// The result.
    pub result: ExecutionCompleted,
    /// The changes as a JSON array.
    pub changes_json: String,
}

impl ExecutionRow {
    /// The row of a result.
    #[must_use]
    pub fn new(result: ExecutionCompleted) -> Self {
        let changes: Vec<crate::store::executions::ContactChangeView> =
            result.changes.iter().map(Into::into).collect();
        let changes_json = serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into());
        Self {
            result,
            changes_json,
        }
    }

    /// The UTC day of the request, the lake's date partition.
    #[must_use]
    pub fn date(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.result.requested_at)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string()
    }
}

impl LakeRow for ExecutionRow {
    fn account_id(&self) -> &str {
        &self.result.account_id
    }

    fn date(&self) -> String {
        ExecutionRow::date(self)
    }

    fn schema() -> SchemaRef {
        SCHEMA.clone()
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch, arrow::error::ArrowError> {
        to_batch(rows)
    }

    /// Keeps one row per execution: a succeeded copy over a failed one (the result
    /// DynamoDB keeps, see `Store::put_completed`), then the later one.
    fn compact(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
        let Some(first) = batches.first() else {
            return Ok(batches);
        };
        let all = arrow::compute::concat_batches(&first.schema(), &batches)?;
        let id = column::<StringArray>(&all, "execution_id")?;
        let status = column::<StringArray>(&all, "status")?;
        let completed = column::<TimestampMillisecondArray>(&all, "completed_at")?;
        let ranked = (0..all.num_rows()).map(|i| {
            (
                id.value(i),
                (status.value(i) == "succeeded", completed.value(i)),
            )
        });
        Ok(vec![keep_best(&all, ranked)?])
    }
}

/// A column of `batch` by name and type.
pub(super) fn column<'a, T: arrow::array::Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, arrow::error::ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!("no {name} column of the expected type"))
        })
}

/// The rows of `all` that rank highest per key (`ranked` gives each row's key and rank,
/// in row order), in input order, so a compacted file's rows are deterministic.
pub(super) fn keep_best<K: Eq + std::hash::Hash, R: Ord>(
    all: &RecordBatch,
    ranked: impl Iterator<Item = (K, R)>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    use std::collections::hash_map::Entry;
    let mut best: std::collections::HashMap<K, (R, usize)> = std::collections::HashMap::new();
    for (i, (key, rank)) in ranked.enumerate() {
        match best.entry(key) {
            Entry::Occupied(mut e) => {
                if rank > e.get().0 {
                    e.insert((rank, i));
                }
            }
            Entry::Vacant(e) => {
                e.insert((rank, i));
            }
        }
    }
    let mut keep: Vec<usize> = best.into_values().map(|(_, i)| i).collect();
    keep.sort_unstable();
    let indices = keep
        .into_iter()
        .map(u32::try_from)
        .collect::<Result<arrow::array::UInt32Array, _>>()
        .map_err(|e| arrow::error::ArrowError::ComputeError(e.to_string()))?;
    arrow::compute::take_record_batch(all, &indices)
}

/// The Arrow schema of the executions table.
pub static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("execution_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("contact_id", DataType::Utf8, false),
        Field::new("connection_id", DataType::Utf8, false),
        Field::new("helper", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("requested_at", ts(), false),
        Field::new("started_at", ts(), false),
        Field::new("completed_at", ts(), false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("output_json", DataType::Utf8, false),
        Field::new("changes_json", DataType::Utf8, false),
        Field::new("error_kind", DataType::Utf8, true),
        Field::new("error_message", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        // Added with saved helpers: files written before lack it and read as null.
        Field::new("helper_id", DataType::Utf8, true),
    ]))
});

fn strings<'a>(rows: &'a [ExecutionRow], f: impl Fn(&'a ExecutionRow) -> &'a str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

fn opt_strings<'a>(
    rows: &'a [ExecutionRow],
    f: impl Fn(&'a ExecutionRow) -> Option<&'a str>,
) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn times(rows: &[ExecutionRow], f: impl Fn(&ExecutionRow) -> i64) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(f)).with_timezone("UTC"))
}

/// The rows as one Arrow batch.
///
/// # Errors
/// An Arrow error if the columns do not fit the schema (a defect).
pub fn to_batch(rows: &[ExecutionRow]) -> Result<RecordBatch, arrow::error::ArrowError> {
    RecordBatch::try_new(
        SCHEMA.clone(),
        vec![
            strings(rows, |x| &x.result.execution_id),
            strings(rows, |x| &x.result.account_id),
            strings(rows, |x| &x.result.contact_id),
            strings(rows, |x| &x.result.connection_id),
            strings(rows, |x| &x.result.helper),
            strings(rows, |x| &x.result.category),
            strings(rows, |x| x.result.status.as_str()),
            strings(rows, |x| &x.result.message),
            times(rows, |x| x.result.requested_at),
            times(rows, |x| x.result.started_at),
            times(rows, |x| x.result.completed_at),
            Arc::new(Int64Array::from_iter_values(
                rows.iter()
                    .map(|x| x.result.completed_at - x.result.requested_at),
            )),
            strings(rows, |x| &x.result.output_json),
            strings(rows, |x| &x.changes_json),
            opt_strings(rows, |x| x.result.error_kind.as_deref()),
            opt_strings(rows, |x| x.result.error_message.as_deref()),
            strings(rows, |x| &x.result.source),
            opt_strings(rows, |x| x.result.helper_id.as_deref()),
        ],
    )
}

/// Encodes batches of `schema` as one Parquet file.
///
/// # Errors
/// [`LakeError::Parquet`] on an encoding failure.
pub fn encode_parquet(
    path: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(Vec<u8>, u64), LakeError> {
    let perr = |e: &dyn std::fmt::Display| LakeError::Parquet {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut w =
        ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).map_err(|e| perr(&e))?;
    let mut rows = 0u64;
    for b in batches {
        rows += b.num_rows() as u64;
        w.write(b).map_err(|e| perr(&e))?;
    }
    w.close().map_err(|e| perr(&e))?;
    Ok((buf, rows))
}

/// A batch read from an older file in `schema`'s columns: a column added since (always
/// nullable) is all nulls, so files of every version compact together.
///
/// # Errors
/// An Arrow error when a non-nullable column is missing or a type differs.
pub fn conform(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => Ok(arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
            None => Err(arrow::error::ArrowError::SchemaError(format!(
                "column {} is missing",
                f.name()
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Decodes a Parquet file written by [`encode_parquet`].
///
/// # Errors
/// [`LakeError::Parquet`] on a decoding failure.
pub fn decode_parquet(path: &str, bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, LakeError> {
    let perr = |e: &dyn std::fmt::Display| LakeError::Parquet {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| perr(&e))?
        .build()
        .map_err(|e| perr(&e))?;
    reader.map(|b| b.map_err(|e| perr(&e))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compaction keeps the row DynamoDB keeps: a succeeded copy of an execution over a
    /// failed one, whatever their order.
    #[test]
    fn compaction_keeps_one_row_per_execution_preferring_success() {
        let row = |id: &str, ok: bool, at: i64| {
            let mut r = crate::lake::compact::testing::row(id, "a");
            r.result.status = if ok {
                mfh_schemas::ExecutionStatus::Succeeded
            } else {
                mfh_schemas::ExecutionStatus::Failed
            };
            r.result.completed_at = at;
            r
        };
        let batch =
            to_batch(&[row("e1", true, 5), row("e1", false, 9), row("e2", false, 1)]).unwrap();
        let kept = ExecutionRow::compact(vec![batch]).unwrap();
        let ids = column::<StringArray>(&kept[0], "execution_id").unwrap();
        let status = column::<StringArray>(&kept[0], "status").unwrap();
        let got: Vec<_> = (0..kept[0].num_rows())
            .map(|i| (ids.value(i), status.value(i)))
            .collect();
        assert_eq!(got, vec![("e1", "succeeded"), ("e2", "failed")]);
    }

    /// A file written before `helper_id` existed still compacts with new rows.
    #[test]
    fn files_without_a_later_column_conform_with_nulls() {
        let row = crate::lake::compact::testing::row("e1", "a");
        let new = to_batch(std::slice::from_ref(&row)).unwrap();
        let keep: Vec<usize> = (0..SCHEMA.fields().len() - 1).collect();
        let old = new.project(&keep).unwrap();
        let (bytes, _) = encode_parquet("old.parquet", &old.schema(), &[old]).unwrap();
        let read = decode_parquet("old.parquet", bytes.into()).unwrap();
        let conformed = conform(read[0].clone(), &SCHEMA).unwrap();
        assert_eq!(conformed.schema().fields(), SCHEMA.fields());
        assert_eq!(
            conformed.column_by_name("helper_id").unwrap().null_count(),
            1
        );
        assert_eq!(conformed.column_by_name("execution_id").unwrap().len(), 1);
    }
}

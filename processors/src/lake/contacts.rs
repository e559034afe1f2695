//! The contacts table's rows: every CRM contact snapshot as read, with its topic position.
//!
//! The table is a log of states; readers want the latest state of each contact. Compaction
//! therefore keeps only the latest row of each (connection, contact), deletion markers
//! included: a dropped marker would let an older snapshot in another file resurrect the
//! contact. "Latest" is the greatest `observed_at`, then `crm_updated_at` (a missing one
//! ranks lowest), then topic partition and offset, the order the explorer uses too.

use super::LakeRow;
use super::rows::column;
use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use mfh_schemas::ContactSnapshot;
use std::sync::{Arc, LazyLock};

/// One row of the contacts table: a snapshot and where it was read from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// The snapshot.
    pub snapshot: ContactSnapshot,
    /// The snapshot's partition of the contact snapshots topic.
    pub topic_partition: i32,
    /// The snapshot's offset in that partition: the last tie-break between equal states.
    pub topic_offset: i64,
}

impl ContactRow {
    /// The row of a snapshot read at `topic_partition`/`topic_offset`.
    #[must_use]
    pub fn new(snapshot: ContactSnapshot, topic_partition: i32, topic_offset: i64) -> Self {
        Self {
            snapshot,
            topic_partition,
            topic_offset,
        }
    }
}

/// The Arrow schema of the contacts table.
pub static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("connection_id", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
        Field::new("contact_id", DataType::Utf8, false),
        Field::new("deleted", DataType::Boolean, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("first_name", DataType::Utf8, true),
        Field::new("last_name", DataType::Utf8, true),
        Field::new("fields_json", DataType::Utf8, false),
        Field::new("tags_json", DataType::Utf8, false),
        Field::new("owner_id", DataType::Utf8, true),
        Field::new("crm_updated_at", ts(), true),
        Field::new("observed_at", ts(), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("topic_partition", DataType::Int32, false),
        Field::new("topic_offset", DataType::Int64, false),
    ]))
});

fn strings<'a>(rows: &'a [ContactRow], f: impl Fn(&'a ContactSnapshot) -> &'a str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| f(&r.snapshot)),
    ))
}

fn opt_strings<'a>(
    rows: &'a [ContactRow],
    f: impl Fn(&'a ContactSnapshot) -> Option<&'a str>,
) -> ArrayRef {
    Arc::new(rows.iter().map(|r| f(&r.snapshot)).collect::<StringArray>())
}

fn times(rows: &[ContactRow], f: impl Fn(&ContactSnapshot) -> Option<i64>) -> ArrayRef {
    let a: TimestampMillisecondArray = rows.iter().map(|r| f(&r.snapshot)).collect();
    Arc::new(a.with_timezone("UTC"))
}

impl LakeRow for ContactRow {
    /// A contact's snapshots span days; only merging them all bounds the table's growth.
    const COMPACT_ACROSS_DAYS: bool = true;

    fn account_id(&self) -> &str {
        &self.snapshot.account_id
    }

    fn date(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.snapshot.observed_at)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string()
    }

    fn schema() -> SchemaRef {
        SCHEMA.clone()
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            SCHEMA.clone(),
            vec![
                strings(rows, |s| &s.account_id),
                strings(rows, |s| &s.connection_id),
                strings(rows, |s| &s.platform),
                strings(rows, |s| &s.contact_id),
                Arc::new(BooleanArray::from_iter(
                    rows.iter().map(|r| Some(r.snapshot.deleted)),
                )),
                opt_strings(rows, |s| s.email.as_deref()),
                opt_strings(rows, |s| s.first_name.as_deref()),
                opt_strings(rows, |s| s.last_name.as_deref()),
                strings(rows, |s| &s.fields_json),
                strings(rows, |s| &s.tags_json),
                opt_strings(rows, |s| s.owner_id.as_deref()),
                times(rows, |s| s.crm_updated_at),
                times(rows, |s| Some(s.observed_at)),
                strings(rows, |s| &s.source),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|r| r.topic_partition),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.topic_offset),
                )),
            ],
        )
    }

    /// Keeps the latest row of each (connection, contact), deletion markers included.
    fn compact(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, ArrowError> {
        let Some(first) = batches.first() else {
            return Ok(batches);
        };
        let all = arrow::compute::concat_batches(&first.schema(), &batches)?;
        let connection = column::<StringArray>(&all, "connection_id")?;
        let contact = column::<StringArray>(&all, "contact_id")?;
        let observed = column::<TimestampMillisecondArray>(&all, "observed_at")?;
        let updated = column::<TimestampMillisecondArray>(&all, "crm_updated_at")?;
        let partition = column::<Int32Array>(&all, "topic_partition")?;
        let offset = column::<Int64Array>(&all, "topic_offset")?;
        // Option orders None first, so a missing crm_updated_at ranks lowest.
        let rank = |i: usize| {
            (
                observed.value(i),
                updated.is_valid(i).then(|| updated.value(i)),
                partition.value(i),
                offset.value(i),
            )
        };
        let ranked =
            (0..all.num_rows()).map(|i| ((connection.value(i), contact.value(i)), rank(i)));
        Ok(vec![super::rows::keep_best(&all, ranked)?])
    }
}

/// Test support: snapshots and a reader of the table (also used by the explorer's tests).
#[cfg(any(test, feature = "test-util"))]
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)]
pub mod testing {
    use super::*;

    /// A snapshot of `contact` in `account`'s connection `conn`, observed at `observed_at`.
    #[must_use]
    pub fn snapshot(account: &str, conn: &str, contact: &str, observed_at: i64) -> ContactSnapshot {
        ContactSnapshot {
            account_id: account.into(),
            connection_id: conn.into(),
            platform: "keap".into(),
            contact_id: contact.into(),
            deleted: false,
            email: Some(format!("{contact}@{observed_at}.test")),
            first_name: None,
            last_name: None,
            fields_json: "{}".into(),
            tags_json: "{}".into(),
            owner_id: None,
            crm_updated_at: None,
            observed_at,
            source: "full_sync".into(),
        }
    }

    /// The (connection, contact, deleted, email) of every row in `batches`, sorted.
    #[must_use]
    pub fn summary(batches: &[RecordBatch]) -> Vec<(String, String, bool, Option<String>)> {
        let mut out = Vec::new();
        for b in batches {
            let s = |n: &str| column::<StringArray>(b, n).unwrap();
            let deleted = column::<BooleanArray>(b, "deleted").unwrap();
            for i in 0..b.num_rows() {
                let email = s("email");
                out.push((
                    s("connection_id").value(i).to_owned(),
                    s("contact_id").value(i).to_owned(),
                    deleted.value(i),
                    email.is_valid(i).then(|| email.value(i).to_owned()),
                ));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{snapshot, summary};
    use super::*;
    use crate::lake::compact::{LakeWriter, Position, WriterConfig};
    use crate::lake::rows::{decode_parquet, encode_parquet};
    use crate::lake::{CONTACTS_TABLE, Lake, Manifest};
    use std::time::Duration;

    const T: i64 = 1_760_000_000_000;
    const DAY: i64 = 86_400_000;

    fn row(conn: &str, contact: &str, observed_at: i64, offset: i64) -> ContactRow {
        ContactRow::new(snapshot("a", conn, contact, observed_at), 0, offset)
    }

    fn gone(mut r: ContactRow) -> ContactRow {
        r.snapshot.deleted = true;
        r.snapshot.email = None;
        r
    }

    #[test]
    fn encodes_typed_columns_and_round_trips() {
        let mut updated = row("c1", "x", T, 7);
        updated.snapshot.crm_updated_at = Some(T - 5);
        let rows = vec![updated, gone(row("c1", "y", T + DAY, 8))];
        assert_eq!(rows[0].date(), "2025-10-09");
        assert_eq!(rows[1].date(), "2025-10-10");
        let batch = ContactRow::to_batch(&rows).unwrap();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let ty = |n: &str| {
            batch
                .schema()
                .field_with_name(n)
                .unwrap()
                .data_type()
                .clone()
        };
        assert_eq!(ty("observed_at"), ts);
        assert_eq!(ty("crm_updated_at"), ts);
        assert_eq!(ty("deleted"), DataType::Boolean);
        assert_eq!(ty("topic_offset"), DataType::Int64);

        let (bytes, n) = encode_parquet("t", &SCHEMA, &[batch]).unwrap();
        assert_eq!(n, 2);
        let back = decode_parquet("t", bytes.into()).unwrap();
        assert_eq!(back[0].schema().fields(), SCHEMA.fields());
        let updated = column::<TimestampMillisecondArray>(&back[0], "crm_updated_at").unwrap();
        assert_eq!(updated.value(0), T - 5);
        assert!(updated.is_null(1));
        let offsets = column::<Int64Array>(&back[0], "topic_offset").unwrap();
        assert_eq!(offsets.values().to_vec(), vec![7, 8]);
        assert_eq!(
            summary(&back),
            vec![
                ("c1".into(), "x".into(), false, Some(format!("x@{T}.test"))),
                ("c1".into(), "y".into(), true, None),
            ]
        );
    }

    #[test]
    fn compaction_keeps_the_latest_row_of_each_contact_and_tombstones() {
        let mut z_old = row("c1", "z", T, 20);
        z_old.snapshot.email = Some("z-none".into());
        let mut z_new = row("c1", "z", T, 10);
        // Same observed_at: the later CRM modification wins over an unknown one.
        z_new.snapshot.crm_updated_at = Some(T);
        z_new.snapshot.email = Some("z-crm".into());
        let mut w_low = row("c1", "w", T, 30);
        w_low.snapshot.email = Some("w-30".into());
        let mut w_high = row("c1", "w", T, 31);
        w_high.snapshot.email = Some("w-31".into());
        let first = ContactRow::to_batch(&[
            row("c1", "x", T, 1),
            row("c1", "x", T + 2, 2),
            gone(row("c1", "y", T + 5, 3)),
            z_old,
            w_high,
        ])
        .unwrap();
        // A second file: an older x, an older live y, and x under another connection.
        let second = ContactRow::to_batch(&[
            row("c1", "x", T + 1, 4),
            row("c1", "y", T + 4, 5),
            row("c2", "x", T, 6),
            z_new,
            w_low,
        ])
        .unwrap();
        let out = ContactRow::compact(vec![first, second]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            summary(&out),
            vec![
                ("c1".into(), "w".into(), false, Some("w-31".into())),
                (
                    "c1".into(),
                    "x".into(),
                    false,
                    Some(format!("x@{}.test", T + 2))
                ),
                ("c1".into(), "y".into(), true, None),
                ("c1".into(), "z".into(), false, Some("z-crm".into())),
                ("c2".into(), "x".into(), false, Some(format!("x@{T}.test"))),
            ]
        );
        assert!(ContactRow::compact(vec![]).unwrap().is_empty());
    }

    async fn read_all(lake: &Lake, account: &str) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for f in lake.files_of_account(account).await.unwrap() {
            let bytes = lake.get(&f).await.unwrap().unwrap();
            out.extend(decode_parquet(&f, bytes).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn writer_compacts_contacts_to_latest_state_across_days() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap().table(CONTACTS_TABLE);
        assert_eq!(lake.table_name(), CONTACTS_TABLE);
        let w = LakeWriter::start(
            lake.clone(),
            WriterConfig {
                max_batch: 1,
                max_wait: Duration::from_millis(1),
                compact_min_files: 3,
                delete_grace: Duration::ZERO,
            },
        );
        let submit = |offset: i64, r: ContactRow| {
            let w = w.clone();
            async move {
                w.submit(Position::fetched(0, offset, 1), Some(r))
                    .await
                    .unwrap()
            }
        };
        submit(0, row("c1", "x", T, 0)).await;
        submit(1, row("c1", "y", T, 1)).await;
        submit(2, row("c1", "x", T + DAY, 2)).await;
        // Redelivered: skipped by the manifest.
        submit(2, row("c1", "x", T + DAY, 2)).await;
        submit(3, gone(row("c1", "y", T + DAY, 3))).await;
        // A stale snapshot of y arriving late, on a third day's file: must not resurrect it.
        submit(4, row("c1", "y", T - DAY, 4)).await;
        w.submit(Position::fetched(0, 5, 1), None).await.unwrap();
        w.submit(
            Position::fetched(0, 6, 1),
            Some(ContactRow::new(snapshot("b", "c1", "x", T), 0, 6)),
        )
        .await
        .unwrap();

        let m = Manifest::load(&lake, 0).await.unwrap();
        assert_eq!(m.watermark, 7);
        let a_files: Vec<_> = m.files.iter().filter(|f| f.account_id == "a").collect();
        let tiers: Vec<(u8, u64)> = a_files.iter().map(|f| (f.tier, f.rows)).collect();
        assert_eq!(
            tiers,
            vec![(1, 2), (0, 1), (0, 1)],
            "the first three days merged to each contact's latest: {a_files:?}"
        );
        assert!(m.pending_deletes.is_empty());
        // Readers pick each contact's latest across tiers, as compaction does within one.
        let latest = ContactRow::compact(read_all(&lake, "a").await).unwrap();
        assert_eq!(
            summary(&latest),
            vec![
                (
                    "c1".into(),
                    "x".into(),
                    false,
                    Some(format!("x@{}.test", T + DAY))
                ),
                ("c1".into(), "y".into(), true, None),
            ]
        );
        assert_eq!(summary(&read_all(&lake, "b").await).len(), 1);
        // The table lives in its own directory; executions on the same store are untouched.
        assert!(dir.path().join("contacts/_manifest/p0").is_dir());
        let executions = Lake::local(dir.path()).unwrap();
        assert!(executions.files_of_account("a").await.unwrap().is_empty());
        let local = lake.materialize_account("a", dir.path()).await.unwrap();
        assert!(local[0].starts_with(dir.path().join("contacts")));
    }
}

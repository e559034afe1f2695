//! The lake writer: batches rows, writes them as Parquet, publishes them in the partition
//! manifest, and compacts small files.
//!
//! The sink's handlers hand rows to one writer task over a bounded channel and wait until
//! their row is published; Parquet encoding runs on the blocking pool. The writer is
//! generic over the table's [`LakeRow`], so every table shares the same publishing,
//! offset skipping and compaction; a row type only decides its partitioning, encoding
//! and what compaction keeps.

use super::rows::{ExecutionRow, decode_parquet, encode_parquet};
use super::{FileEntry, Lake, LakeError, LakeRow, Manifest, manifest::PendingDelete};
use arrow::array::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Rows (or skipped offsets) per flush at most.
    pub max_batch: usize,
    /// Longest a row waits for its flush.
    pub max_wait: Duration,
    /// Files of one account and day in one partition before they are merged.
    pub compact_min_files: usize,
    /// How long a replaced file stays for readers holding an old manifest.
    pub delete_grace: Duration,
}

struct Request<R> {
    partition: i32,
    offset: i64,
    row: Option<R>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle handlers use to write rows of type `R` to one table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LakeWriter<R = ExecutionRow> {
    tx: mpsc::Sender<Request<R>>,
}

impl<R: LakeRow> LakeWriter<R> {
    /// Starts the writer task for `lake`'s table; it ends when every handle is dropped.
    #[must_use]
    pub fn start(lake: Lake, cfg: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(cfg.max_batch * 2);
        tokio::spawn(writer_loop(lake, cfg, rx));
        Self { tx }
    }

    /// Publishes `row` (or only marks the offset handled, for `None`) and waits until the
    /// manifest that makes it visible is stored. An offset already handled is skipped, so
    /// a redelivered record never produces a second row.
    ///
    /// # Errors
    /// A description of the failed flush.
    pub async fn submit(&self, partition: i32, offset: i64, row: Option<R>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request {
                partition,
                offset,
                row,
                done,
            })
            .await
            .map_err(|_| "lake writer stopped".to_owned())?;
        wait.await.map_err(|_| "lake writer stopped".to_owned())?
    }
}

async fn writer_loop<R: LakeRow>(
    lake: Lake,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Request<R>>,
) {
    let mut manifests: HashMap<i32, Manifest> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.max_wait;
        while batch.len() < cfg.max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        let mut by_partition: BTreeMap<i32, Vec<Request<R>>> = BTreeMap::new();
        for r in batch {
            by_partition.entry(r.partition).or_default().push(r);
        }
        for (partition, reqs) in by_partition {
            let result = flush_partition(&lake, &cfg, &mut manifests, partition, &reqs).await;
            if let Err(e) = &result {
                tracing::error!(partition, error = ?e, "Lake flush failed.");
                // Re-read the manifest next time: the in-memory copy may be ahead of storage.
                manifests.remove(&partition);
            }
            let msg = result.map_err(|e| mfh_pipeline::report(&e));
            for r in reqs {
                let _ = r.done.send(msg.clone());
            }
        }
    }
}

/// Encodes on the blocking pool: Parquet encoding (and a compaction's row selection) is
/// CPU work.
async fn encode<R: LakeRow>(
    path: String,
    batches: Vec<RecordBatch>,
    compacting: bool,
) -> Result<(Vec<u8>, u64), LakeError> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let batches = if compacting {
            let schema = R::schema();
            let batches = batches
                .into_iter()
                .map(|b| super::rows::conform(b, &schema))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LakeError::Parquet {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
            R::compact(batches).map_err(|e| LakeError::Parquet {
                path: p.clone(),
                message: e.to_string(),
            })?
        } else {
            batches
        };
        encode_parquet(&p, &R::schema(), &batches)
    })
    .await
    .map_err(|e| LakeError::Parquet {
        path,
        message: e.to_string(),
    })?
}

async fn flush_partition<R: LakeRow>(
    lake: &Lake,
    cfg: &WriterConfig,
    manifests: &mut HashMap<i32, Manifest>,
    partition: i32,
    reqs: &[Request<R>],
) -> Result<(), LakeError> {
    let manifest = match manifests.entry(partition) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(Manifest::load(lake, partition).await?)
        }
    };
    let mut groups: BTreeMap<(String, String), Vec<R>> = BTreeMap::new();
    let mut offsets = Vec::new();
    for r in reqs {
        if manifest.is_handled(r.offset) {
            continue;
        }
        offsets.push(r.offset);
        if let Some(row) = &r.row {
            groups
                .entry((row.account_id().to_owned(), row.date()))
                .or_default()
                .push(row.clone());
        }
    }
    if offsets.is_empty() {
        return Ok(());
    }
    let mut next = manifest.clone();
    let first = offsets.iter().min().copied().unwrap_or_default();
    for ((account, date), rows) in &groups {
        let rel = format!(
            "account_id={}/date={date}/p{partition}-{first:012}-{}.parquet",
            sanitize(account),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let batch = R::to_batch(rows).map_err(|e| LakeError::Parquet {
            path: rel.clone(),
            message: e.to_string(),
        })?;
        let (bytes, n) = encode::<R>(rel.clone(), vec![batch], false).await?;
        lake.put(&rel, bytes).await?;
        next.files.push(FileEntry {
            path: rel,
            account_id: account.clone(),
            date: date.clone(),
            rows: n,
        });
    }
    next.mark_handled(offsets);
    next.save(lake).await?;
    *manifest = next;
    for (account, date) in groups.keys() {
        if let Err(e) = compact::<R>(lake, cfg, manifest, account, date).await {
            // Compaction is an optimisation; the small files stay valid.
            tracing::warn!(partition, account, date, error = ?e, "Compaction failed.");
        }
    }
    delete_expired(lake, manifest).await
}

/// Account ids are ours, but the lake must never let one escape its directory.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Merges the account's files of `date` (or of every day, for
/// [`LakeRow::COMPACT_ACROSS_DAYS`]) into one file holding what [`LakeRow::compact`] keeps.
async fn compact<R: LakeRow>(
    lake: &Lake,
    cfg: &WriterConfig,
    manifest: &mut Manifest,
    account: &str,
    date: &str,
) -> Result<(), LakeError> {
    let small: Vec<FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.account_id == account && (R::COMPACT_ACROSS_DAYS || f.date == date))
        .cloned()
        .collect();
    if small.len() < cfg.compact_min_files {
        return Ok(());
    }
    // Across days, the merged file goes under the newest day merged: a latest-state row's
    // day is only where it was first written, and readers never derive data from the path.
    let date = small
        .iter()
        .map(|f| f.date.as_str())
        .max()
        .unwrap_or(date)
        .to_owned();
    let mut batches = Vec::new();
    for f in &small {
        let bytes = lake.get(&f.path).await?.ok_or_else(|| LakeError::Store {
            path: f.path.clone(),
            message: "listed in the manifest but missing".into(),
        })?;
        batches.extend(decode_parquet(&f.path, bytes)?);
    }
    let rel = format!(
        "account_id={}/date={date}/p{}-compacted-{}.parquet",
        sanitize(account),
        manifest.partition,
        uuid::Uuid::new_v4().simple()
    );
    let (bytes, rows) = encode::<R>(rel.clone(), batches, true).await?;
    lake.put(&rel, bytes).await?;
    let mut next = manifest.clone();
    next.files.retain(|f| !small.contains(f));
    next.files.push(FileEntry {
        path: rel,
        account_id: account.to_owned(),
        date,
        rows,
    });
    let after_ms = mfh_pipeline::now_millis()
        + i64::try_from(cfg.delete_grace.as_millis()).unwrap_or(i64::MAX);
    next.pending_deletes
        .extend(small.into_iter().map(|f| PendingDelete {
            path: f.path,
            after_ms,
        }));
    next.save(lake).await?;
    *manifest = next;
    Ok(())
}

async fn delete_expired(lake: &Lake, manifest: &mut Manifest) -> Result<(), LakeError> {
    let now = mfh_pipeline::now_millis();
    if !manifest.pending_deletes.iter().any(|d| d.after_ms <= now) {
        return Ok(());
    }
    let (expired, keep): (Vec<_>, Vec<_>) = manifest
        .pending_deletes
        .drain(..)
        .partition(|d| d.after_ms <= now);
    manifest.pending_deletes = keep;
    // Save first: a crash then leaves only unreferenced files, never a dangling entry.
    manifest.save(lake).await?;
    for d in expired {
        lake.delete(&d.path).await?;
    }
    Ok(())
}

/// Test support: the rows visible to `account` (also used by the S3 integration test).
///
/// # Errors
/// [`LakeError`] when a manifest or file cannot be read.
pub async fn visible_rows(lake: &Lake, account: &str) -> Result<usize, LakeError> {
    let mut n = 0;
    for f in lake.files_of_account(account).await? {
        let bytes = lake.get(&f).await?.ok_or_else(|| LakeError::Store {
            path: f.clone(),
            message: "missing".into(),
        })?;
        n += decode_parquet(&f, bytes)?
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>();
    }
    Ok(n)
}

/// Test support shared by the unit test (local lake) and the S3 integration test.
#[cfg(any(test, feature = "test-util"))]
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)]
pub mod testing {
    use super::*;
    use mfh_schemas::{ExecutionCompleted, ExecutionStatus};

    /// A result row of `account`.
    #[must_use]
    pub fn row(id: &str, account: &str) -> ExecutionRow {
        ExecutionRow::new(ExecutionCompleted {
            execution_id: id.into(),
            account_id: account.into(),
            contact_id: "c".into(),
            connection_id: "sandbox".into(),
            helper: "tag_it".into(),
            category: "tagging".into(),
            status: ExecutionStatus::Succeeded,
            message: String::new(),
            requested_at: 1_760_000_000_000,
            started_at: 1_760_000_000_001,
            completed_at: 1_760_000_000_002,
            output_json: "{}".into(),
            changes: vec![],
            error_kind: None,
            error_message: None,
            source: "api".into(),
            helper_id: None,
        })
    }

    /// Redelivered offsets are written once, compaction keeps every row, and replaced
    /// files go once their grace period is over.
    pub async fn exercise(lake: Lake) {
        let cfg = WriterConfig {
            max_batch: 1,
            max_wait: Duration::from_millis(1),
            compact_min_files: 3,
            delete_grace: Duration::ZERO,
        };
        let w = LakeWriter::start(lake.clone(), cfg);
        for o in 0..5 {
            w.submit(0, o, Some(row(&format!("e{o}"), "a")))
                .await
                .unwrap();
        }
        // Redelivery of offsets 2..5 after a crash: nothing new becomes visible.
        for o in 2..5 {
            w.submit(0, o, Some(row(&format!("e{o}"), "a")))
                .await
                .unwrap();
        }
        w.submit(0, 5, None).await.unwrap();
        w.submit(0, 6, Some(row("other", "b"))).await.unwrap();
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 5);
        assert_eq!(visible_rows(&lake, "b").await.unwrap(), 1);
        let m = Manifest::load(&lake, 0).await.unwrap();
        assert_eq!(m.watermark, 7);
        assert!(
            m.files.iter().filter(|f| f.account_id == "a").count() < 3,
            "compacted"
        );
        assert!(
            m.pending_deletes.is_empty(),
            "replaced files deleted after the grace period"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_lake_is_effectively_once_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        testing::exercise(Lake::local(dir.path()).unwrap()).await;
    }
}

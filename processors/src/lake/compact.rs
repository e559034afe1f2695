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
use mfh_pipeline::runner::Record;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
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

/// Where a row comes from: its record's place in the source topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The topic partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The offset fetched before it in this assignment (see [`Record::previous`]): the
    /// offsets in between hold no record and are done with this one.
    pub previous: Option<i64>,
    /// The record's timestamp, which tells a later life of the topic from a redelivery.
    pub timestamp_ms: Option<i64>,
}

impl Position {
    /// The position of a consumed record.
    #[must_use]
    pub fn of(rec: &Record) -> Self {
        Self {
            partition: rec.partition,
            offset: rec.offset,
            previous: rec.previous,
            timestamp_ms: rec.timestamp_ms,
        }
    }

    /// A record fetched in order right after `offset - 1`, stamped `timestamp_ms`.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn fetched(partition: i32, offset: i64, timestamp_ms: i64) -> Self {
        Self {
            partition,
            offset,
            previous: offset.checked_sub(1).filter(|p| *p >= 0),
            timestamp_ms: Some(timestamp_ms),
        }
    }

    /// The offsets this record settles: itself and the empty gap before it.
    fn first_settled(&self) -> i64 {
        self.previous
            .map_or(0, |p| p.saturating_add(1))
            .min(self.offset)
    }
}

struct Request<R> {
    at: Position,
    row: Option<R>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle handlers use to write rows of type `R` to one table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LakeWriter<R = ExecutionRow> {
    tx: mpsc::Sender<Request<R>>,
    forgotten: Arc<Mutex<HashSet<i32>>>,
}

impl<R: LakeRow> LakeWriter<R> {
    /// Starts the writer task for `lake`'s table; it ends when every handle is dropped.
    #[must_use]
    pub fn start(lake: Lake, cfg: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(cfg.max_batch * 2);
        let forgotten = Arc::new(Mutex::new(HashSet::new()));
        tokio::spawn(writer_loop(lake, cfg, rx, forgotten.clone()));
        Self { tx, forgotten }
    }

    /// Publishes `row` (or only marks the offset handled, for `None`) and waits until the
    /// manifest that makes it visible is stored. An offset already handled is skipped, so
    /// a redelivered record never produces a second row.
    ///
    /// # Errors
    /// A description of the failed flush.
    pub async fn submit(&self, at: Position, row: Option<R>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { at, row, done })
            .await
            .map_err(|_| "lake writer stopped".to_owned())?;
        wait.await.map_err(|_| "lake writer stopped".to_owned())?
    }

    /// Drops what the writer holds for `partitions` (their manifests), after they were
    /// revoked: their next owner may change them, so this writer reads them afresh.
    pub fn forget(&self, partitions: &[(String, i32)]) {
        let mut f = self
            .forgotten
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.extend(partitions.iter().map(|(_, p)| *p));
    }
}

/// Attempts of one flush against manifests other writers keep changing.
const FLUSH_ATTEMPTS: usize = 8;

async fn writer_loop<R: LakeRow>(
    lake: Lake,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Request<R>>,
    forgotten: Arc<Mutex<HashSet<i32>>>,
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
        for p in std::mem::take(&mut *forgotten.lock().unwrap_or_else(PoisonError::into_inner)) {
            manifests.remove(&p);
        }
        let mut by_partition: BTreeMap<i32, Vec<Request<R>>> = BTreeMap::new();
        for r in batch {
            // Nobody waits for it: its handler was stopped (a revoke or stop outlived its
            // drain), and the record goes to the next owner, which writes it.
            if r.done.is_closed() {
                continue;
            }
            by_partition.entry(r.at.partition).or_default().push(r);
        }
        for (partition, reqs) in by_partition {
            let mut attempt = 1;
            let result = loop {
                let r = flush_partition(&lake, &cfg, &mut manifests, partition, &reqs).await;
                if attempt == FLUSH_ATTEMPTS || !matches!(r, Err(LakeError::Conflict { .. })) {
                    break r;
                }
                attempt += 1;
                tracing::info!(
                    partition,
                    table = lake.table_name(),
                    "Manifest changed by another writer; flushing again on the newest."
                );
            };
            if let Err(e) = &result {
                tracing::error!(partition, error = ?e, "Lake flush failed.");
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

/// Publishes `reqs` on the partition's newest manifest. A [`LakeError::Conflict`] (or
/// any error) drops the cached manifest and the files this attempt wrote, for the caller
/// to try again on a fresh read.
async fn flush_partition<R: LakeRow>(
    lake: &Lake,
    cfg: &WriterConfig,
    manifests: &mut HashMap<i32, Manifest>,
    partition: i32,
    reqs: &[Request<R>],
) -> Result<(), LakeError> {
    let manifest = match manifests.remove(&partition) {
        Some(m) => m,
        None => Manifest::load(lake, partition).await?,
    };
    let mut next = manifest.clone();
    if reqs
        .iter()
        .any(|r| next.is_new_life(r.at.offset, r.at.timestamp_ms))
    {
        tracing::warn!(
            partition,
            table = lake.table_name(),
            life = next.life + 1,
            watermark = next.watermark,
            "A record newer than every one handled sits at a handled offset: the topic began a new life (recreated, or a fresh broker); its offsets start again."
        );
        next.begin_life();
    }
    let mut groups: BTreeMap<(String, String), Vec<R>> = BTreeMap::new();
    let mut settled = Vec::new();
    for r in reqs {
        if !next.is_handled(r.at.offset)
            && let Some(row) = &r.row
        {
            groups
                .entry((row.account_id().to_owned(), row.date()))
                .or_default()
                .push(row.clone());
        }
        settled.push(r.at);
    }
    let unchanged = settled
        .iter()
        .all(|p| next.is_range_handled(p.first_settled(), p.offset));
    if unchanged && next.life == manifest.life {
        manifests.insert(partition, manifest);
        return Ok(());
    }
    let first = settled.iter().map(|p| p.offset).min().unwrap_or_default();
    let mut written = Vec::new();
    let result = async {
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
            written.push(rel.clone());
            next.files.push(FileEntry {
                path: rel,
                account_id: account.clone(),
                date: date.clone(),
                rows: n,
                tier: 0,
            });
        }
        for p in &settled {
            next.mark_range(p.first_settled(), p.offset);
            next.saw_record(p.timestamp_ms);
        }
        next.save(lake).await
    }
    .await;
    if let Err(e) = result {
        // Not in any manifest: nobody can read them.
        for rel in written {
            let _ = lake.delete(&rel).await;
        }
        return Err(e);
    }
    for (account, date) in groups.keys() {
        match compact::<R>(lake, cfg, &mut next, account, date).await {
            Ok(()) => {}
            // Another writer moved on; the next flush reloads and compacts then.
            Err(LakeError::Conflict { .. }) => return Ok(()),
            // Compaction is an optimisation; the small files stay valid.
            Err(e) => tracing::warn!(partition, account, date, error = ?e, "Compaction failed."),
        }
    }
    match delete_expired(lake, &mut next).await {
        Ok(()) => {
            manifests.insert(partition, next);
            Ok(())
        }
        Err(LakeError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
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
/// [`LakeRow::COMPACT_ACROSS_DAYS`]) in tiers: once a tier holds `compact_min_files`
/// files they become one file of the next tier, holding what [`LakeRow::compact`] keeps,
/// and so on up; a merged file is not read again until its own tier fills. Readers pick
/// the one row per key across tiers (the explorer's `QUALIFY`s).
async fn compact<R: LakeRow>(
    lake: &Lake,
    cfg: &WriterConfig,
    manifest: &mut Manifest,
    account: &str,
    date: &str,
) -> Result<(), LakeError> {
    for tier in 0..u8::MAX {
        let small: Vec<FileEntry> = manifest
            .files
            .iter()
            .filter(|f| {
                f.account_id == account
                    && f.tier == tier
                    && (R::COMPACT_ACROSS_DAYS || f.date == date)
            })
            .cloned()
            .collect();
        if small.len() < cfg.compact_min_files.max(2) {
            return Ok(());
        }
        merge::<R>(lake, cfg, manifest, account, date, small, tier + 1).await?;
    }
    Ok(())
}

/// Replaces `small` by one file of `tier`.
async fn merge<R: LakeRow>(
    lake: &Lake,
    cfg: &WriterConfig,
    manifest: &mut Manifest,
    account: &str,
    date: &str,
    small: Vec<FileEntry>,
    tier: u8,
) -> Result<(), LakeError> {
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
        "account_id={}/date={date}/p{}-t{tier}-{}.parquet",
        sanitize(account),
        manifest.partition,
        uuid::Uuid::new_v4().simple()
    );
    let (bytes, rows) = encode::<R>(rel.clone(), batches, true).await?;
    lake.put(&rel, bytes).await?;
    let compacted = rel.clone();
    let mut next = manifest.clone();
    next.files.retain(|f| !small.contains(f));
    next.files.push(FileEntry {
        path: rel,
        account_id: account.to_owned(),
        date,
        rows,
        tier,
    });
    let after_ms = mfh_pipeline::now_millis()
        + i64::try_from(cfg.delete_grace.as_millis()).unwrap_or(i64::MAX);
    next.pending_deletes
        .extend(small.into_iter().map(|f| PendingDelete {
            path: f.path,
            after_ms,
        }));
    if let Err(e) = next.save(lake).await {
        let _ = lake.delete(&compacted).await;
        return Err(e);
    }
    *manifest = next;
    Ok(())
}

async fn delete_expired(lake: &Lake, manifest: &mut Manifest) -> Result<(), LakeError> {
    let now = mfh_pipeline::now_millis();
    if !manifest.pending_deletes.iter().any(|d| d.after_ms <= now) {
        return Ok(());
    }
    let mut next = manifest.clone();
    let (expired, keep): (Vec<_>, Vec<_>) = next
        .pending_deletes
        .drain(..)
        .partition(|d| d.after_ms <= now);
    next.pending_deletes = keep;
    // Save first: a crash then leaves only unreferenced files, never a dangling entry.
    next.save(lake).await?;
    *manifest = next;
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
        let at = |o| Position::fetched(0, o, 1_000 + o);
        for o in 0..5 {
            w.submit(at(o), Some(row(&format!("e{o}"), "a")))
                .await
                .unwrap();
        }
        // Redelivery of offsets 2..5 after a crash: nothing new becomes visible.
        for o in 2..5 {
            w.submit(at(o), Some(row(&format!("e{o}"), "a")))
                .await
                .unwrap();
        }
        w.submit(at(5), None).await.unwrap();
        w.submit(at(6), Some(row("other", "b"))).await.unwrap();
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 5);
        assert_eq!(visible_rows(&lake, "b").await.unwrap(), 1);
        let m = Manifest::load(&lake, 0).await.unwrap();
        assert_eq!(m.watermark, 7);
        let tiers: Vec<u8> = m
            .files
            .iter()
            .filter(|f| f.account_id == "a")
            .map(|f| f.tier)
            .collect();
        assert_eq!(
            tiers,
            vec![1, 0, 0],
            "the first three files merged, the next two wait"
        );
        assert!(
            m.pending_deletes.is_empty(),
            "replaced files deleted after the grace period"
        );
        // Of two writers holding the same generation, the store lets only one save it
        // (a hard link locally, `If-None-Match: *` on S3).
        let (mut first, mut second) = (m.clone(), m);
        first.save(&lake).await.unwrap();
        assert!(
            matches!(second.save(&lake).await, Err(LakeError::Conflict { .. })),
            "the second writer of a generation loses"
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

    fn cfg() -> WriterConfig {
        WriterConfig {
            max_batch: 1,
            max_wait: Duration::from_millis(1),
            compact_min_files: 100,
            delete_grace: Duration::ZERO,
        }
    }

    /// Review finding 9: every compaction used to rewrite the account's whole day,
    /// compacted file included. Now a merged file waits for its own tier to fill.
    #[tokio::test]
    async fn compaction_rewrites_each_row_once_per_tier() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let w = LakeWriter::start(
            lake.clone(),
            WriterConfig {
                compact_min_files: 3,
                ..cfg()
            },
        );
        let tiers = || async {
            let mut t: Vec<(u8, u64)> = Manifest::load(&lake, 0)
                .await
                .unwrap()
                .files
                .iter()
                .map(|f| (f.tier, f.rows))
                .collect();
            t.sort_unstable();
            t
        };
        for o in 0..7 {
            w.submit(
                Position::fetched(0, o, 1),
                Some(testing::row(&format!("e{o}"), "a")),
            )
            .await
            .unwrap();
        }
        assert_eq!(tiers().await, vec![(0, 1), (1, 3), (1, 3)]);
        for o in 7..9 {
            w.submit(
                Position::fetched(0, o, 1),
                Some(testing::row(&format!("e{o}"), "a")),
            )
            .await
            .unwrap();
        }
        assert_eq!(
            tiers().await,
            vec![(2, 9)],
            "three tier-1 files become one of tier 2"
        );
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 9);
    }

    /// Review finding 3: a writer holding an old manifest (a partition moved away and
    /// back, or a zombie) used to save over the newer one, dropping the other writer's
    /// files from it for good.
    #[tokio::test]
    async fn a_writer_with_an_old_manifest_keeps_the_other_writers_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let (s1, s2) = (
            LakeWriter::start(lake.clone(), cfg()),
            LakeWriter::start(lake.clone(), cfg()),
        );
        let at = |o| Position::fetched(3, o, 1_000 + o);
        for o in 0..5 {
            s1.submit(at(o), Some(testing::row(&format!("f{o}"), "a")))
                .await
                .unwrap();
        }
        // Partition 3 moves to the second sink, which writes offsets 5..8.
        for o in 5..8 {
            s2.submit(at(o), Some(testing::row(&format!("g{o}"), "a")))
                .await
                .unwrap();
        }
        // And back, without the first sink hearing of the revoke: it still caches its copy.
        s1.submit(at(8), Some(testing::row("h8", "a")))
            .await
            .unwrap();
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 9);
        let m = Manifest::load(&lake, 3).await.unwrap();
        assert_eq!(m.watermark, 9);
        // A revoke told to the writer drops its copy; the next flush starts from storage.
        s1.forget(&[("t".into(), 3)]);
        s2.submit(at(9), Some(testing::row("g9", "a")))
            .await
            .unwrap();
        s1.submit(at(10), Some(testing::row("h10", "a")))
            .await
            .unwrap();
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 11);
    }

    /// Review finding 4: after a restart of the embedded broker (offsets from 0 again)
    /// the lake used to skip every new result below the old watermark.
    #[tokio::test]
    async fn results_of_a_fresh_broker_are_written_and_its_redeliveries_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let w = LakeWriter::start(lake.clone(), cfg());
        for o in 0..10 {
            w.submit(
                Position::fetched(0, o, 1_000 + o),
                Some(testing::row(&format!("old{o}"), "a")),
            )
            .await
            .unwrap();
        }
        drop(w);
        let w = LakeWriter::start(lake.clone(), cfg());
        for o in 0..4 {
            w.submit(
                Position::fetched(0, o, 50_000 + o),
                Some(testing::row(&format!("new{o}"), "a")),
            )
            .await
            .unwrap();
        }
        // The new life's own redelivery of offsets 2 and 3 adds nothing.
        for o in 2..4 {
            w.submit(
                Position::fetched(0, o, 50_000 + o),
                Some(testing::row(&format!("new{o}"), "a")),
            )
            .await
            .unwrap();
        }
        assert_eq!(visible_rows(&lake, "a").await.unwrap(), 14);
        let m = Manifest::load(&lake, 0).await.unwrap();
        assert_eq!((m.life, m.watermark), (1, 4));
    }

    /// Review finding 9: offsets topic compaction removed used to hold the watermark back
    /// for good.
    #[tokio::test]
    async fn a_gap_from_topic_compaction_moves_the_watermark_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let w = LakeWriter::start(lake.clone(), cfg());
        let gapped = |offset, previous| Position {
            partition: 1,
            offset,
            previous,
            timestamp_ms: Some(7),
        };
        w.submit(gapped(40, None), Some(testing::row("a", "a")))
            .await
            .unwrap();
        w.submit(gapped(90, Some(40)), None).await.unwrap();
        w.submit(gapped(5000, Some(90)), Some(testing::row("b", "a")))
            .await
            .unwrap();
        let m = Manifest::load(&lake, 1).await.unwrap();
        assert_eq!(m.watermark, 5001);
        assert!(m.handled.is_empty());
    }
}

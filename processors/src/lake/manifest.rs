//! A partition's manifest: visible files and offsets written.

use super::{Lake, LakeError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One visible Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the table directory.
    pub path: String,
    /// The account whose rows it holds.
    pub account_id: String,
    /// The day (UTC) of the rows' request time.
    pub date: String,
    /// Row count.
    pub rows: u64,
    /// Compaction tier: 0 for a flush's file, t + 1 for a merge of `compact_min_files`
    /// files of tier t, so each row is rewritten once per tier, not at every compaction.
    #[serde(default)]
    pub tier: u8,
}

/// A file replaced by compaction, deleted once readers can no longer hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelete {
    /// Path relative to the table directory.
    pub path: String,
    /// Unix ms after which it may go.
    pub after_ms: i64,
}

/// The manifest of one partition of a table's source topic.
///
/// Stored as generations, `_manifest/p<N>/<generation>.json`, each written only if it does
/// not exist yet (a create-if-absent on local disk and on S3): two writers of one partition
/// (a rebalance, a zombie, a second sink) cannot overwrite each other; the one that loses
/// reloads the newest and redoes its flush on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The topic partition.
    pub partition: i32,
    /// The generation this manifest was read as (0: none stored yet).
    #[serde(skip)]
    pub generation: u64,
    /// Every offset below this one has been handled (written or skipped).
    pub watermark: i64,
    /// Offsets at or above the watermark that have been handled.
    #[serde(default)]
    pub handled: Handled,
    /// The newest record timestamp handled in this life of the topic; `None` in a
    /// manifest from before lives were recorded (then no new life is detected).
    #[serde(default)]
    pub newest_record_ms: Option<i64>,
    /// Lives of the topic partition this manifest has seen: a recreated topic or a fresh
    /// broker starts its offsets again, and a record at an offset already handled but
    /// newer than anything handled begins a new life, forgetting the old offsets.
    #[serde(default)]
    pub life: u32,
    /// Visible files.
    pub files: Vec<FileEntry>,
    /// Files waiting for deletion.
    #[serde(default)]
    pub pending_deletes: Vec<PendingDelete>,
}

/// Offsets handled above the watermark, as disjoint half-open ranges (start → end), so a
/// gap of any size costs one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled(BTreeMap<i64, i64>);

impl Handled {
    /// Whether `o` is in a range.
    #[must_use]
    pub fn contains(&self, o: i64) -> bool {
        self.0
            .range(..=o)
            .next_back()
            .is_some_and(|(_, &end)| o < end)
    }

    /// Whether `start..end` lies in one range.
    #[must_use]
    pub fn covers(&self, start: i64, end: i64) -> bool {
        start >= end
            || self
                .0
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| end <= e)
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ranges held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn insert(&mut self, mut start: i64, mut end: i64) {
        if start >= end {
            return;
        }
        // Merge with every range that touches [start, end).
        if let Some((&s, &e)) = self.0.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        let touching: Vec<i64> = self.0.range(start..=end).map(|(&s, _)| s).collect();
        for s in touching {
            if let Some(e) = self.0.remove(&s) {
                end = end.max(e);
            }
        }
        self.0.insert(start, end);
    }
}

impl Serialize for Handled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(&a, &b)| [a, b]))
    }
}

impl<'de> Deserialize<'de> for Handled {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Manifests written before ranges list single offsets.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Ranges(Vec<[i64; 2]>),
            Offsets(Vec<i64>),
        }
        let mut h = Self::default();
        match Repr::deserialize(d)? {
            Repr::Ranges(r) => r.into_iter().for_each(|[a, b]| h.insert(a, b)),
            Repr::Offsets(o) => o.into_iter().for_each(|a| h.insert(a, a + 1)),
        }
        Ok(h)
    }
}

const DIR: &str = "_manifest";
/// Generations kept behind the newest, for readers that listed one and are about to
/// read it; a reader that still misses one lists again.
const KEEP_GENERATIONS: u64 = 8;

impl Manifest {
    fn dir(partition: i32) -> String {
        format!("{DIR}/p{partition}")
    }

    /// The path of one generation, relative to the table.
    #[must_use]
    pub fn path(partition: i32, generation: u64) -> String {
        format!("{}/{generation:020}.json", Self::dir(partition))
    }

    /// Where manifests were kept before generations: read as generation 0.
    fn legacy_path(partition: i32) -> String {
        format!("{DIR}/p{partition}.json")
    }

    /// Loads a partition's newest manifest, or an empty one.
    ///
    /// # Errors
    /// [`LakeError`] when it exists but cannot be read or parsed.
    pub async fn load(lake: &Lake, partition: i32) -> Result<Self, LakeError> {
        for _ in 0..5 {
            let newest = lake
                .list(&Self::dir(partition))
                .await?
                .iter()
                .filter_map(|n| n.strip_suffix(".json")?.parse::<u64>().ok())
                .max();
            let (path, generation) = match newest {
                Some(g) => (Self::path(partition, g), g),
                None => (Self::legacy_path(partition), 0),
            };
            match lake.get(&path).await? {
                Some(bytes) => {
                    let mut m: Self =
                        serde_json::from_slice(&bytes).map_err(|e| LakeError::Manifest {
                            path,
                            message: e.to_string(),
                        })?;
                    m.generation = generation;
                    return Ok(m);
                }
                None if newest.is_none() => {
                    return Ok(Self {
                        partition,
                        ..Self::default()
                    });
                }
                // Cleaned up between the listing and the read: list again.
                None => {}
            }
        }
        Err(LakeError::Manifest {
            path: Self::dir(partition),
            message: "its generations keep changing under the reader".into(),
        })
    }

    /// Every partition's newest manifest.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest cannot be read.
    pub async fn load_all(lake: &Lake) -> Result<Vec<Self>, LakeError> {
        let (dirs, files) = lake.list_dir(DIR).await?;
        let mut partitions: BTreeSet<i32> = BTreeSet::new();
        for name in dirs.iter().chain(&files) {
            if let Some(p) = name
                .strip_prefix('p')
                .map(|n| n.strip_suffix(".json").unwrap_or(n))
                .and_then(|n| n.parse().ok())
            {
                partitions.insert(p);
            }
        }
        let mut out = Vec::new();
        for p in partitions {
            out.push(Self::load(lake, p).await?);
        }
        Ok(out)
    }

    /// Stores this manifest as the generation after the one it was read as, and becomes
    /// it; [`LakeError::Conflict`] when another writer stored that generation first.
    ///
    /// # Errors
    /// [`LakeError`].
    pub async fn save(&mut self, lake: &Lake) -> Result<(), LakeError> {
        let next = self.generation + 1;
        let path = Self::path(self.partition, next);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| LakeError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !lake.put_if_absent(&path, bytes).await? {
            return Err(LakeError::Conflict { path });
        }
        self.generation = next;
        // Best effort: an old generation left behind costs space, not correctness.
        if next == 1 {
            let _ = lake.delete(&Self::legacy_path(self.partition)).await;
        }
        if let Some(old) = next.checked_sub(KEEP_GENERATIONS + 1)
            && old > 0
        {
            let _ = lake.delete(&Self::path(self.partition, old)).await;
        }
        Ok(())
    }

    /// Whether `offset` has already been handled.
    #[must_use]
    pub fn is_handled(&self, offset: i64) -> bool {
        offset < self.watermark || self.handled.contains(offset)
    }

    /// Whether every offset of `first..=last` has been handled.
    #[must_use]
    pub fn is_range_handled(&self, first: i64, last: i64) -> bool {
        last < self.watermark
            || self
                .handled
                .covers(first.max(self.watermark), last.saturating_add(1))
    }

    /// Notes offsets as handled and advances the watermark over any contiguous run.
    pub fn mark_handled(&mut self, offsets: impl IntoIterator<Item = i64>) {
        for o in offsets {
            self.mark_range(o, o);
        }
    }

    /// Notes `first..=last` as handled (a record and the gap before it that holds none).
    pub fn mark_range(&mut self, first: i64, last: i64) {
        let start = first.max(self.watermark);
        self.handled.insert(start, last.saturating_add(1));
        while let Some(entry) = self.handled.0.first_entry() {
            if *entry.key() > self.watermark {
                break;
            }
            let end = entry.remove();
            self.watermark = self.watermark.max(end);
        }
    }

    /// Whether a record at `offset` stamped `record_ms` belongs to a later life of the
    /// topic than this manifest's offsets: its offset was handled, yet it is newer than
    /// every record handled. Clocks must not run backwards across the gap between lives.
    #[must_use]
    pub fn is_new_life(&self, offset: i64, record_ms: Option<i64>) -> bool {
        match (self.newest_record_ms, record_ms) {
            (Some(newest), Some(t)) => t > newest && self.is_handled(offset),
            _ => false,
        }
    }

    /// Forgets the offsets of the previous life; the files stay visible.
    pub fn begin_life(&mut self) {
        self.watermark = 0;
        self.handled = Handled::default();
        self.newest_record_ms = None;
        self.life += 1;
    }

    /// Notes a handled record's timestamp.
    pub fn saw_record(&mut self, record_ms: Option<i64>) {
        if let Some(t) = record_ms {
            self.newest_record_ms = Some(self.newest_record_ms.map_or(t, |n| n.max(t)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_advances_over_contiguous_offsets_only() {
        let mut m = Manifest::default();
        m.mark_handled([0, 1, 3]);
        assert_eq!(m.watermark, 2);
        assert!(m.is_handled(1) && m.is_handled(3) && !m.is_handled(2));
        m.mark_handled([2]);
        assert_eq!(m.watermark, 4);
        assert!(m.handled.is_empty());
    }

    /// Review finding 9: a gap no record will ever fill (topic compaction, retention)
    /// used to hold the watermark back and grow `handled` by one entry per offset forever.
    #[test]
    fn a_gap_without_records_is_closed_in_one_range() {
        let mut m = Manifest::default();
        m.mark_range(0, 0);
        // Offsets 1..1_000_000 were compacted away; the record at 1_000_000 says so.
        m.mark_range(500_000, 1_000_000);
        assert_eq!((m.watermark, m.handled.len()), (1, 1));
        m.mark_range(1, 499_999);
        assert_eq!(m.watermark, 1_000_001);
        assert!(m.handled.is_empty());
        m.mark_range(1_000_005, 1_000_005);
        m.mark_range(1_000_003, 1_000_004);
        assert_eq!(m.handled.len(), 1, "touching ranges merge");
        assert!(m.is_handled(1_000_004) && !m.is_handled(1_000_002));
    }

    #[test]
    fn old_manifests_with_single_offsets_still_read() {
        let m: Manifest =
            serde_json::from_str(r#"{"partition":1,"watermark":4,"handled":[6,7,9],"files":[]}"#)
                .unwrap();
        assert!(m.is_handled(7) && m.is_handled(9) && !m.is_handled(8));
        assert_eq!(m.handled.len(), 2);
        assert_eq!(m.newest_record_ms, None);
        assert!(
            !m.is_new_life(2, Some(i64::MAX)),
            "no life is guessed without timestamps"
        );
    }

    /// Review finding 4: results of a fresh broker (offsets from 0 again) used to be
    /// skipped as already written.
    #[test]
    fn a_newer_record_at_a_handled_offset_begins_a_new_life() {
        let mut m = Manifest::default();
        for o in 0..125 {
            m.mark_range(o, o);
            m.saw_record(Some(1_000 + o));
        }
        assert!(
            !m.is_new_life(3, Some(1_003)),
            "a redelivery of the same life"
        );
        assert!(
            !m.is_new_life(200, Some(9_000)),
            "a new offset is simply new"
        );
        assert!(m.is_new_life(3, Some(9_000)));
        m.begin_life();
        assert!(!m.is_handled(3));
        assert_eq!(m.life, 1);
    }

    #[tokio::test]
    async fn a_second_writer_of_a_generation_loses() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let mut a = Manifest::load(&lake, 2).await.unwrap();
        let mut b = a.clone();
        a.mark_handled([0]);
        a.save(&lake).await.unwrap();
        b.mark_handled([1]);
        assert!(matches!(
            b.save(&lake).await,
            Err(LakeError::Conflict { .. })
        ));
        let newest = Manifest::load(&lake, 2).await.unwrap();
        assert_eq!((newest.generation, newest.watermark), (1, 1));
        for _ in 0..20 {
            let mut m = Manifest::load(&lake, 2).await.unwrap();
            m.save(&lake).await.unwrap();
        }
        let kept = lake.list(&Manifest::dir(2)).await.unwrap().len();
        assert!(kept <= 9, "old generations are cleaned up: {kept} kept");
    }

    #[tokio::test]
    async fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let mut m = Manifest {
            partition: 3,
            ..Manifest::default()
        };
        m.mark_handled([0]);
        m.saw_record(Some(5));
        m.save(&lake).await.unwrap();
        assert_eq!(Manifest::load(&lake, 3).await.unwrap(), m);
        assert_eq!(Manifest::load_all(&lake).await.unwrap().len(), 1);
        assert_eq!(Manifest::load(&lake, 4).await.unwrap().watermark, 0);
    }
}

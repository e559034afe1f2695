//! A partition's manifest: visible files and offsets written.

use super::{Lake, LakeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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
}

/// A file replaced by compaction, deleted once readers can no longer hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelete {
    /// Path relative to the table directory.
    pub path: String,
    /// Unix ms after which it may go.
    pub after_ms: i64,
}

/// The manifest of one partition of the results topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The topic partition.
    pub partition: i32,
    /// Every offset below this one has been handled (written or skipped).
    pub watermark: i64,
    /// Offsets at or above the watermark that have been handled.
    pub handled: BTreeSet<i64>,
    /// Visible files.
    pub files: Vec<FileEntry>,
    /// Files waiting for deletion.
    #[serde(default)]
    pub pending_deletes: Vec<PendingDelete>,
}

const DIR: &str = "_manifest";

impl Manifest {
    /// The manifest's path relative to the table.
    #[must_use]
    pub fn path(partition: i32) -> String {
        format!("{DIR}/p{partition}.json")
    }

    /// Loads a partition's manifest, or an empty one.
    ///
    /// # Errors
    /// [`LakeError`] when it exists but cannot be read or parsed.
    pub async fn load(lake: &Lake, partition: i32) -> Result<Self, LakeError> {
        let path = Self::path(partition);
        match lake.get(&path).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| LakeError::Manifest {
                path,
                message: e.to_string(),
            }),
            None => Ok(Self {
                partition,
                ..Self::default()
            }),
        }
    }

    /// Every partition's manifest.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest cannot be read.
    pub async fn load_all(lake: &Lake) -> Result<Vec<Self>, LakeError> {
        let mut out = Vec::new();
        for name in lake.list(DIR).await? {
            if let Some(p) = name
                .strip_prefix('p')
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            {
                out.push(Self::load(lake, p).await?);
            }
        }
        Ok(out)
    }

    /// Replaces the manifest atomically.
    ///
    /// # Errors
    /// [`LakeError`].
    pub async fn save(&self, lake: &Lake) -> Result<(), LakeError> {
        let path = Self::path(self.partition);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| LakeError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        lake.put(&path, bytes).await
    }

    /// Whether `offset` has already been handled.
    #[must_use]
    pub fn is_handled(&self, offset: i64) -> bool {
        offset < self.watermark || self.handled.contains(&offset)
    }

    /// Notes offsets as handled and advances the watermark over any contiguous run.
    pub fn mark_handled(&mut self, offsets: impl IntoIterator<Item = i64>) {
        for o in offsets {
            if o >= self.watermark {
                self.handled.insert(o);
            }
        }
        while self.handled.remove(&self.watermark) {
            self.watermark += 1;
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

    #[tokio::test]
    async fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        let mut m = Manifest {
            partition: 3,
            ..Manifest::default()
        };
        m.mark_handled([0]);
        m.save(&lake).await.unwrap();
        assert_eq!(Manifest::load(&lake, 3).await.unwrap(), m);
        assert_eq!(Manifest::load_all(&lake).await.unwrap().len(), 1);
        assert_eq!(Manifest::load(&lake, 4).await.unwrap().watermark, 0);
    }
}

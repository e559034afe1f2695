//! A partition's manifest: visible files and offsets written.

use super::{LakeError, io, write_atomically};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

impl Manifest {
    /// The manifest file of `partition` in `table_dir`.
    #[must_use]
    pub fn path(table_dir: &Path, partition: i32) -> PathBuf {
        table_dir
            .join("_manifest")
            .join(format!("p{partition}.json"))
    }

    /// Loads a partition's manifest, or an empty one.
    ///
    /// # Errors
    /// [`LakeError`] when the file exists but cannot be read or parsed.
    pub fn load(table_dir: &Path, partition: i32) -> Result<Self, LakeError> {
        let path = Self::path(table_dir, partition);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LakeError::Manifest {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                partition,
                ..Self::default()
            }),
            Err(e) => Err(LakeError::Io { path, source: e }),
        }
    }

    /// Every partition's manifest in `table_dir`.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest cannot be read.
    pub fn load_all(table_dir: &Path) -> Result<Vec<Self>, LakeError> {
        let dir = table_dir.join("_manifest");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(LakeError::Io {
                    path: dir,
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(p) = name
                .strip_prefix('p')
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            {
                out.push(Self::load(table_dir, p)?);
            }
        }
        Ok(out)
    }

    /// Replaces the manifest on disk atomically.
    ///
    /// # Errors
    /// [`LakeError::Io`].
    pub fn save(&self, table_dir: &Path) -> Result<(), LakeError> {
        let path = Self::path(table_dir, self.partition);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| LakeError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&path, &bytes)
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

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest {
            partition: 3,
            ..Manifest::default()
        };
        m.mark_handled([0]);
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path(), 3).unwrap(), m);
        assert_eq!(Manifest::load_all(dir.path()).unwrap().len(), 1);
        assert_eq!(Manifest::load(dir.path(), 4).unwrap().watermark, 0);
    }
}

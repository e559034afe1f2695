//! The Parquet lake: execution results as Parquet files under a root directory,
//! hive-partitioned by account and date (`executions/account_id=A/date=D/…`).
//!
//! Readers never list directories: each partition of the results topic has a manifest
//! (`executions/_manifest/p<N>.json`) naming the files that are visible and the topic
//! offsets already written. A flush writes its files first and then replaces the manifest
//! atomically (write, fsync, rename), so a crash at any point leaves either the old
//! manifest (the new files are invisible orphans, rewritten on redelivery) or the new one.
//! Compaction merges one partition's small files of an account and day into one file and
//! swaps them in the manifest the same way; the old files are deleted only after a grace
//! period, so a reader holding the old manifest still finds them.

pub mod compact;
pub mod manifest;
pub mod rows;

pub use manifest::{FileEntry, Manifest};
pub use rows::ExecutionRow;

use std::path::{Path, PathBuf};

/// The executions table's directory under the lake root.
pub const EXECUTIONS_TABLE: &str = "executions";

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file could not be read or written.
    #[error("lake I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Parquet or Arrow failed.
    #[error("parquet {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// A manifest could not be parsed.
    #[error("corrupt manifest {path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A lake rooted at a local directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
}

impl Lake {
    /// The lake under `root`.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The executions table's directory.
    #[must_use]
    pub fn table_dir(&self) -> PathBuf {
        self.root.join(EXECUTIONS_TABLE)
    }

    /// Every visible file of `account_id`, from all partition manifests.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest cannot be read.
    pub fn files_of_account(&self, account_id: &str) -> Result<Vec<PathBuf>, LakeError> {
        let mut out = Vec::new();
        for m in Manifest::load_all(&self.table_dir())? {
            out.extend(
                m.files
                    .iter()
                    .filter(|f| f.account_id == account_id)
                    .map(|f| self.table_dir().join(&f.path)),
            );
        }
        out.sort();
        Ok(out)
    }
}

/// Writes `bytes` to `path` so that readers see either the old content or all of the new:
/// a temporary file, fsync, rename, then fsync of the directory.
///
/// # Errors
/// [`LakeError::Io`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LakeError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Durability of the rename; not every filesystem supports fsync on directories.
        let _ = d.sync_all();
    }
    Ok(())
}

//! The store file: its layout ([`StoreData`]) and the crash-safe write.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::RegistryError;
use super::types::CompatibilityLevel;

/// Name of the store file inside the data directory.
pub const STORE_FILE: &str = "schema-registry.json";

/// Version of the store file's layout.
pub(super) const FORMAT: u32 = 1;

/// The persisted state: exactly what goes into the store file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreData {
    /// Layout version, [`FORMAT`].
    pub(super) format: u32,
    /// The global compatibility level.
    pub(super) compatibility: CompatibilityLevel,
    /// The next global id to hand out.
    pub(super) next_id: u32,
    /// Every schema ever registered, by ascending id. Never removed, so ids stay resolvable.
    pub(super) schemas: Vec<StoredSchema>,
    /// Subjects by name.
    pub(super) subjects: BTreeMap<String, SubjectData>,
}

impl StoreData {
    pub(super) fn empty() -> Self {
        Self {
            format: FORMAT,
            compatibility: CompatibilityLevel::default(),
            next_id: 1,
            schemas: Vec::new(),
            subjects: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredSchema {
    pub(super) id: u32,
    pub(super) schema: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubjectData {
    /// Subject-level compatibility; the global level applies when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) compatibility: Option<CompatibilityLevel>,
    /// Versions by ascending number, soft-deleted ones included.
    #[serde(default)]
    pub(super) versions: Vec<VersionData>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionData {
    pub(super) version: u32,
    pub(super) id: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) deleted: bool,
}

pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> RegistryError {
    let path = path.to_owned();
    move |source| RegistryError::Io {
        action,
        path,
        source,
    }
}

/// Writes `data` to `file` so that a crash leaves either the old or the new content.
pub(super) fn write_atomically(file: &Path, data: &StoreData) -> Result<(), RegistryError> {
    let bytes =
        serde_json::to_vec_pretty(data).map_err(|source| RegistryError::Encode { source })?;
    let tmp = file.with_extension("json.tmp");
    let mut out = File::create(&tmp).map_err(io_error("create", &tmp))?;
    out.write_all(&bytes).map_err(io_error("write", &tmp))?;
    out.sync_all().map_err(io_error("fsync", &tmp))?;
    drop(out);
    fs::rename(&tmp, file).map_err(io_error("rename into place", file))?;
    sync_parent(file)
}

/// Fsyncs the directory holding `file`, so the rename itself survives a power loss.
#[cfg(unix)]
fn sync_parent(file: &Path) -> Result<(), RegistryError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("fsync directory", dir)),
        _ => Ok(()),
    }
}

/// Directories cannot be opened for fsync on this platform; the rename is the best we get.
#[cfg(not(unix))]
fn sync_parent(_file: &Path) -> Result<(), RegistryError> {
    Ok(())
}

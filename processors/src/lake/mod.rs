//! The Parquet lake: tables of Parquet files, hive-partitioned by account and date
//! (`<table>/account_id=A/date=D/…`), in a local directory (the default) or an S3 bucket,
//! both through the `object_store` crate. `executions` holds execution results,
//! `contacts` holds CRM contact snapshots; a [`Lake`] is a view of one table, and
//! [`Lake::table`] gives another table on the same store, so every table shares one
//! mechanism (the writer in [`compact`], the manifests in [`manifest`]).
//!
//! Readers never list data files: each partition of a table's source topic has a manifest
//! (`<table>/_manifest/p<N>/<generation>.json`) naming the files that are visible and the
//! topic offsets already written. A flush writes its files first and then stores the next
//! generation of the manifest with one create-if-absent (a hard link on local disk, a PUT
//! with `If-None-Match: *` on S3), so a crash at any point leaves either the old manifest
//! (the new files are invisible orphans, and the rows are written again on redelivery) or
//! the new one, and of two writers of a partition only one can store a generation: the
//! other reloads and redoes its flush. Compaction merges one partition's small files of an
//! account and day into one file and swaps them in the manifest the same way; the old
//! files are deleted only after a grace period, so a reader holding the old manifest
//! still finds them.

pub mod compact;
pub mod contacts;
pub mod manifest;
pub mod rows;

pub use contacts::ContactRow;
pub use manifest::{FileEntry, Manifest};
pub use rows::ExecutionRow;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// The executions table's directory under the lake root.
pub const EXECUTIONS_TABLE: &str = "executions";

/// The contacts table's directory under the lake root.
pub const CONTACTS_TABLE: &str = "contacts";

/// A row type of one lake table: what the generic [`compact::LakeWriter`] needs to
/// partition, encode and compact it.
pub trait LakeRow: Clone + Send + Sync + 'static {
    /// Whether compaction merges an account's files across all days of a partition (a
    /// latest-state table, whose rows of one key may span days) rather than one day's.
    const COMPACT_ACROSS_DAYS: bool = false;

    /// The account the row belongs to (the `account_id=` partition).
    fn account_id(&self) -> &str;

    /// The UTC day of the row (the `date=` partition).
    fn date(&self) -> String;

    /// The table's Arrow schema.
    fn schema() -> SchemaRef;

    /// The rows as one Arrow batch.
    ///
    /// # Errors
    /// An Arrow error if the columns do not fit the schema (a defect).
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, arrow::error::ArrowError>;

    /// What compaction keeps of the merged files' batches; every row by default.
    ///
    /// # Errors
    /// An Arrow error if the batches do not fit the schema.
    fn compact(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
        Ok(batches)
    }
}

/// Where the lake lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A local directory, or `s3://bucket/prefix`.
    pub root: String,
    /// S3: endpoint of an S3-compatible server (MinIO, moto); empty for AWS.
    #[serde(default)]
    pub s3_endpoint: String,
    /// S3: region.
    #[serde(default = "default_region")]
    pub s3_region: String,
    /// S3: access key id; empty reads `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub s3_access_key_id: String,
    /// S3: secret key; empty reads `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub s3_secret_access_key: String,
    /// S3: allow a plain-HTTP endpoint (local test servers only).
    #[serde(default)]
    pub s3_allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl LakeConfig {
    /// A local lake under `root`.
    #[must_use]
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into().display().to_string(),
            s3_endpoint: String::new(),
            s3_region: default_region(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
        }
    }
}

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The object store failed.
    #[error("lake storage at {path}: {message}")]
    Store {
        /// The object.
        path: String,
        /// Cause.
        message: String,
    },
    /// Parquet or Arrow failed.
    #[error("parquet {path}: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// Cause.
        message: String,
    },
    /// A manifest could not be parsed.
    #[error("corrupt manifest {path}: {message}")]
    Manifest {
        /// The file.
        path: String,
        /// Cause.
        message: String,
    },
    /// The lake config is unusable.
    /// Another writer stored the manifest generation this one meant to write.
    #[error("manifest {path} was written by another writer first")]
    Conflict { path: String },
    #[error("lake config: {0}")]
    Config(String),
}

fn store_err(path: &str, e: &object_store::Error) -> LakeError {
    LakeError::Store {
        path: path.to_owned(),
        message: mfh_pipeline::report(e),
    }
}

/// One table of the lake (`executions` unless [`Lake::table`] says otherwise). Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// Set for a local lake: the directory, so DuckDB can read files in place.
    local_root: Option<PathBuf>,
    /// Key prefix inside the store (empty for local, the S3 prefix otherwise).
    prefix: String,
    /// The table this view reads and writes: its directory under the root.
    table: Arc<str>,
}

impl Lake {
    /// Opens the lake described by `cfg`, creating a local root directory if needed.
    ///
    /// # Errors
    /// [`LakeError::Config`] for an unusable root or S3 settings.
    pub fn open(cfg: &LakeConfig) -> Result<Self, LakeError> {
        if let Some(rest) = cfg.root.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(LakeError::Config(format!("{:?} names no bucket", cfg.root)));
            }
            let env = |k: &str| std::env::var(k).unwrap_or_default();
            let pick = |v: &str, k: &str| if v.is_empty() { env(k) } else { v.to_owned() };
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(&cfg.s3_region)
                .with_access_key_id(pick(&cfg.s3_access_key_id, "AWS_ACCESS_KEY_ID"))
                .with_secret_access_key(pick(&cfg.s3_secret_access_key, "AWS_SECRET_ACCESS_KEY"))
                .with_allow_http(cfg.s3_allow_http);
            if !cfg.s3_endpoint.is_empty() {
                b = b
                    .with_endpoint(&cfg.s3_endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            let store = b
                .build()
                .map_err(|e| LakeError::Config(mfh_pipeline::report(&e)))?;
            return Ok(Self {
                store: Arc::new(store),
                local_root: None,
                prefix: prefix.trim_matches('/').to_owned(),
                table: EXECUTIONS_TABLE.into(),
            });
        }
        let root = std::path::absolute(&cfg.root).map_err(|e| LakeError::Config(e.to_string()))?;
        std::fs::create_dir_all(&root)
            .map_err(|e| LakeError::Config(format!("creating {}: {e}", root.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| LakeError::Config(mfh_pipeline::report(&e)))?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
            prefix: String::new(),
            table: EXECUTIONS_TABLE.into(),
        })
    }

    /// The same store's table `name` (for example [`CONTACTS_TABLE`]).
    #[must_use]
    pub fn table(&self, name: &str) -> Self {
        Self {
            table: name.into(),
            ..self.clone()
        }
    }

    /// The table this view reads and writes.
    #[must_use]
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// A local lake under `root`.
    ///
    /// # Errors
    /// As [`Lake::open`].
    pub fn local(root: impl Into<PathBuf>) -> Result<Self, LakeError> {
        Self::open(&LakeConfig::local(root))
    }

    /// The platform's file store (backups, uploads) beside the tables: `files/` under
    /// the lake's root.
    #[must_use]
    pub fn files(&self) -> Arc<dyn ObjectStore> {
        let prefix = if self.prefix.is_empty() {
            "files".to_owned()
        } else {
            format!("{}/files", self.prefix)
        };
        Arc::new(object_store::prefix::PrefixStore::new(
            self.store.clone(),
            prefix.as_str(),
        ))
    }

    /// The local root directory, for a local lake.
    #[must_use]
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    fn key(&self, rel: &str) -> ObjectPath {
        let table = format!("{}/{rel}", self.table);
        if self.prefix.is_empty() {
            ObjectPath::from(table)
        } else {
            ObjectPath::from(format!("{}/{table}", self.prefix))
        }
    }

    /// Writes one object (relative to the table) in a single atomic put.
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), LakeError> {
        self.store
            .put(&self.key(rel), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| store_err(rel, &e))
    }

    /// Stores `bytes` at `rel` only if nothing is there; `false` when something was.
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn put_if_absent(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, LakeError> {
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..object_store::PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.key(rel), bytes.into(), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_err(rel, &e)),
        }
    }

    /// Reads one object, or `None` if it does not exist.
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn get(&self, rel: &str) -> Result<Option<bytes::Bytes>, LakeError> {
        match self.store.get(&self.key(rel)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| store_err(rel, &e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(rel, &e)),
        }
    }

    /// Deletes one object; a missing one is fine.
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn delete(&self, rel: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(rel, &e)),
        }
    }

    /// Names of the objects directly under `dir` (relative to the table).
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, LakeError> {
        Ok(self.list_dir(dir).await?.1)
    }

    /// The names of the folders and of the files directly in `dir`.
    ///
    /// # Errors
    /// [`LakeError::Store`].
    pub async fn list_dir(&self, dir: &str) -> Result<(Vec<String>, Vec<String>), LakeError> {
        match self.store.list_with_delimiter(Some(&self.key(dir))).await {
            Ok(l) => Ok((
                l.common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_owned))
                    .collect(),
                l.objects
                    .iter()
                    .filter_map(|o| o.location.filename().map(str::to_owned))
                    .collect(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok((Vec::new(), Vec::new())),
            Err(e) => Err(store_err(dir, &e)),
        }
    }

    /// Every visible file of `account_id` (relative to the table), from all partition
    /// manifests.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest cannot be read.
    pub async fn files_of_account(&self, account_id: &str) -> Result<Vec<String>, LakeError> {
        let mut out = Vec::new();
        for m in Manifest::load_all(self).await? {
            out.extend(
                m.files
                    .into_iter()
                    .filter(|f| f.account_id == account_id)
                    .map(|f| f.path),
            );
        }
        out.sort();
        Ok(out)
    }

    /// Local paths of `account_id`'s visible files for a reader such as DuckDB: in place for
    /// a local lake, downloaded into `scratch` for S3.
    ///
    /// # Errors
    /// [`LakeError`] when a manifest or file cannot be read.
    pub async fn materialize_account(
        &self,
        account_id: &str,
        scratch: &std::path::Path,
    ) -> Result<Vec<PathBuf>, LakeError> {
        let files = self.files_of_account(account_id).await?;
        if let Some(root) = &self.local_root {
            return Ok(files
                .iter()
                .map(|f| root.join(&*self.table).join(f))
                .collect());
        }
        let mut out = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let bytes = self.get(f).await?.ok_or_else(|| LakeError::Store {
                path: f.clone(),
                message: "listed in a manifest but missing".into(),
            })?;
            // Named by table: a reader may materialise several tables into one scratch dir.
            let local = scratch.join(format!("{}-{i}.parquet", self.table));
            std::fs::write(&local, &bytes).map_err(|e| LakeError::Store {
                path: local.display().to_string(),
                message: e.to_string(),
            })?;
            out.push(local);
        }
        Ok(out)
    }
}

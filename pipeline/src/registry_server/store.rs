//! [`RegistryStore`]: subjects, versions, global schema ids and compatibility levels, kept in
//! memory and (optionally) persisted to one JSON file.
//!
//! Every change is transactional: it is applied to a copy of the persisted data, the copy is
//! written to `<file>.tmp`, fsynced and renamed over the store file (then the directory is
//! fsynced), and only then does the copy replace the in-memory state. A crash therefore leaves
//! either the old or the new file, never a torn one, and a failed write leaves memory untouched.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use apache_avro::Schema;

use super::error::RegistryError;
use super::persist::{
    FORMAT, STORE_FILE, StoreData, StoredSchema, VersionData, io_error, write_atomically,
};
use super::schema::{ParsedSchema, read_problem};
use super::types::{CompatibilityLevel, MAX_NUMBER, SubjectVersion, VersionSelector};

/// A parsed stored schema.
struct Indexed {
    schema: Schema,
    key: String,
}

/// The registry's state, in memory and optionally in a JSON file.
///
/// Not synchronized: [`super::RegistryState`] wraps it in a mutex.
pub struct RegistryStore {
    /// The store file, or `None` in memory-only mode.
    file: Option<PathBuf>,
    data: StoreData,
    /// Parsed schemas by global id; holds every id in `data.schemas`.
    parsed: HashMap<u32, Indexed>,
    /// Global id by identity key (the lowest id if several share a key).
    by_key: HashMap<String, u32>,
}

impl fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryStore")
            .field("file", &self.file)
            .field("schemas", &self.data.schemas.len())
            .field("subjects", &self.data.subjects.len())
            .finish_non_exhaustive()
    }
}

impl RegistryStore {
    /// Opens the store in `dir` (creating the directory and an empty store file if needed),
    /// or an empty memory-only store when `dir` is `None`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] if the directory or file cannot be created or read, and
    /// [`RegistryError::Corrupt`] if the file does not hold a valid store.
    pub fn open(dir: Option<&Path>) -> Result<Self, RegistryError> {
        let Some(dir) = dir else {
            return Self::from_data(None, StoreData::empty());
        };
        fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        let file = dir.join(STORE_FILE);
        match fs::read(&file) {
            Ok(bytes) => {
                let data =
                    serde_json::from_slice(&bytes).map_err(|err| RegistryError::Corrupt {
                        path: file.clone(),
                        reason: crate::report(&err),
                    })?;
                Self::from_data(Some(file), data)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Write the empty store now so an unwritable directory fails at startup.
                let data = StoreData::empty();
                write_atomically(&file, &data)?;
                Self::from_data(Some(file), data)
            }
            Err(err) => Err(io_error("read", &file)(err)),
        }
    }

    /// The store file, or `None` in memory-only mode.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Checks the loaded data's invariants and builds the indexes.
    fn from_data(file: Option<PathBuf>, data: StoreData) -> Result<Self, RegistryError> {
        let corrupt = |reason: String| RegistryError::Corrupt {
            path: file.clone().unwrap_or_default(),
            reason,
        };
        if data.format != FORMAT {
            return Err(corrupt(format!("unknown format {}", data.format)));
        }
        let mut parsed = HashMap::with_capacity(data.schemas.len());
        let mut by_key = HashMap::with_capacity(data.schemas.len());
        let mut previous = 0;
        for stored in &data.schemas {
            if stored.id <= previous || stored.id >= data.next_id {
                return Err(corrupt(format!("schema id {} is out of order", stored.id)));
            }
            previous = stored.id;
            let ParsedSchema { schema, key, .. } = ParsedSchema::parse(&stored.schema)
                .map_err(|err| corrupt(format!("schema {}: {}", stored.id, crate::report(&err))))?;
            by_key.entry(key.clone()).or_insert(stored.id);
            parsed.insert(stored.id, Indexed { schema, key });
        }
        for (subject, sub) in &data.subjects {
            let mut previous = 0;
            for v in &sub.versions {
                if v.version <= previous || !parsed.contains_key(&v.id) {
                    return Err(corrupt(format!(
                        "subject {subject:?} version {} is out of order or has an unknown id",
                        v.version
                    )));
                }
                previous = v.version;
            }
        }
        Ok(Self {
            file,
            data,
            parsed,
            by_key,
        })
    }

    /// Persists `next` (if file-backed) and makes it the current state.
    fn commit(&mut self, next: StoreData) -> Result<(), RegistryError> {
        if let Some(file) = &self.file {
            write_atomically(file, &next)?;
        }
        self.data = next;
        Ok(())
    }

    fn indexed(&self, id: u32) -> Result<&Indexed, RegistryError> {
        self.parsed.get(&id).ok_or_else(|| RegistryError::Internal {
            reason: format!("version points at unknown schema id {id}"),
        })
    }

    /// The versions of `subject` that are visible: live ones, plus soft-deleted ones when
    /// `include_deleted`. `None` if there are none, i.e. the subject does not exist.
    fn visible(&self, subject: &str, include_deleted: bool) -> Option<Vec<VersionData>> {
        let versions: Vec<_> = self
            .data
            .subjects
            .get(subject)?
            .versions
            .iter()
            .filter(|v| include_deleted || !v.deleted)
            .copied()
            .collect();
        (!versions.is_empty()).then_some(versions)
    }

    fn resolve(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<VersionData, RegistryError> {
        let versions = self.visible(subject, include_deleted).ok_or_else(|| {
            RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            }
        })?;
        let found = match selector {
            VersionSelector::Latest => versions.last().copied(),
            VersionSelector::Number(n) => versions.into_iter().find(|v| v.version == n),
        };
        found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_owned(),
            version: selector.to_string(),
        })
    }

    fn subject_version(
        &self,
        subject: &str,
        v: VersionData,
    ) -> Result<SubjectVersion, RegistryError> {
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: v.version,
            id: v.id,
            schema: self.schema_by_id(v.id)?.to_owned(),
        })
    }

    /// The schema text with global id `id` (soft-deleted versions included: old records
    /// must stay decodable).
    ///
    /// # Errors
    ///
    /// [`RegistryError::SchemaIdNotFound`].
    pub fn schema_by_id(&self, id: u32) -> Result<&str, RegistryError> {
        self.data
            .schemas
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .and_then(|i| self.data.schemas.get(i))
            .map(|s| s.schema.as_str())
            .ok_or(RegistryError::SchemaIdNotFound { id })
    }

    /// The subjects and versions that use global id `id`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SchemaIdNotFound`].
    pub fn usages_of_id(
        &self,
        id: u32,
        include_deleted: bool,
    ) -> Result<Vec<(String, u32)>, RegistryError> {
        self.schema_by_id(id)?;
        Ok(self
            .data
            .subjects
            .iter()
            .flat_map(|(subject, sub)| {
                sub.versions
                    .iter()
                    .filter(move |v| v.id == id && (include_deleted || !v.deleted))
                    .map(move |v| (subject.clone(), v.version))
            })
            .collect())
    }

    /// Subject names, sorted; a subject is listed while it has a live version (or any
    /// version, with `include_deleted`).
    #[must_use]
    pub fn subjects(&self, include_deleted: bool) -> Vec<String> {
        self.data
            .subjects
            .keys()
            .filter(|s| self.visible(s, include_deleted).is_some())
            .cloned()
            .collect()
    }

    /// The version numbers of `subject`, ascending.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SubjectNotFound`].
    pub fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        self.visible(subject, include_deleted)
            .map(|vs| vs.iter().map(|v| v.version).collect())
            .ok_or_else(|| RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            })
    }

    /// One version of `subject`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SubjectNotFound`] or [`RegistryError::VersionNotFound`].
    pub fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let v = self.resolve(subject, selector, include_deleted)?;
        self.subject_version(subject, v)
    }

    /// Registers `schema` under `subject` and returns its global id; see
    /// [`Self::register_parsed`].
    ///
    /// # Errors
    ///
    /// As [`Self::register_parsed`], plus [`RegistryError::InvalidSchema`].
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let parsed = ParsedSchema::parse(schema)?;
        self.register_parsed(subject, parsed)
    }

    /// Registers a parsed schema under `subject`.
    ///
    /// An identical schema (same identity key) already live under the subject returns its id
    /// unchanged. Otherwise the schema must pass the subject's compatibility level against
    /// its live versions; it then becomes the next version, reusing the global id of an
    /// identical schema under any subject or taking the next free id.
    pub(super) fn register_parsed(
        &mut self,
        subject: &str,
        candidate: ParsedSchema,
    ) -> Result<u32, RegistryError> {
        for v in self.visible(subject, false).unwrap_or_default() {
            if self.indexed(v.id)?.key == candidate.key {
                return Ok(v.id);
            }
        }
        let messages = self.compatibility_problems(subject, None, &candidate)?;
        if !messages.is_empty() {
            return Err(RegistryError::IncompatibleSchema {
                subject: subject.to_owned(),
                messages,
            });
        }

        let mut next = self.data.clone();
        let existing = self.by_key.get(&candidate.key).copied();
        let id = match existing {
            Some(id) => id,
            None => {
                let id = next.next_id;
                if id > MAX_NUMBER {
                    return Err(RegistryError::IdsExhausted);
                }
                next.next_id = id + 1;
                next.schemas.push(StoredSchema {
                    id,
                    schema: candidate.text,
                });
                id
            }
        };
        let entry = next.subjects.entry(subject.to_owned()).or_default();
        let version = entry.versions.last().map_or(0, |v| v.version) + 1;
        if version > MAX_NUMBER {
            return Err(RegistryError::IdsExhausted);
        }
        entry.versions.push(VersionData {
            version,
            id,
            deleted: false,
        });
        self.commit(next)?;
        if existing.is_none() {
            self.by_key.insert(candidate.key.clone(), id);
            self.parsed.insert(
                id,
                Indexed {
                    schema: candidate.schema,
                    key: candidate.key,
                },
            );
        }
        Ok(id)
    }

    /// Finds the live version of `subject` holding a schema identical to `candidate`.
    pub(super) fn lookup(
        &self,
        subject: &str,
        candidate: &ParsedSchema,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions =
            self.visible(subject, false)
                .ok_or_else(|| RegistryError::SubjectNotFound {
                    subject: subject.to_owned(),
                })?;
        for v in versions.into_iter().rev() {
            if self.indexed(v.id)?.key == candidate.key {
                return self.subject_version(subject, v);
            }
        }
        Err(RegistryError::SchemaNotRegistered {
            subject: subject.to_owned(),
        })
    }

    /// Checks `candidate` against `subject` under the subject's compatibility level and
    /// returns one message per failed check (empty: compatible).
    ///
    /// With `target`, only that version is checked (the level gives the direction); without
    /// it, the latest live version is checked, or every live version for transitive levels.
    /// A subject without versions accepts anything when `target` is `None`.
    pub(super) fn compatibility_problems(
        &self,
        subject: &str,
        target: Option<VersionSelector>,
        candidate: &ParsedSchema,
    ) -> Result<Vec<String>, RegistryError> {
        let level = self.compatibility(Some(subject));
        let against = match target {
            Some(selector) => vec![self.resolve(subject, selector, false)?],
            None => {
                let live = self.visible(subject, false).unwrap_or_default();
                if level.transitive() {
                    live
                } else {
                    live.last().copied().into_iter().collect()
                }
            }
        };
        let mut messages = Vec::new();
        for v in against {
            let existing = &self.indexed(v.id)?.schema;
            if level.backward()
                && let Some(why) = read_problem(existing, &candidate.schema)
            {
                messages.push(format!(
                    "the new schema cannot read data written with version {}: {why}",
                    v.version
                ));
            }
            if level.forward()
                && let Some(why) = read_problem(&candidate.schema, existing)
            {
                messages.push(format!(
                    "version {} cannot read data written with the new schema: {why}",
                    v.version
                ));
            }
        }
        Ok(messages)
    }

    /// The compatibility level in force for `subject` (its own, else the global one), or the
    /// global level for `None`.
    #[must_use]
    pub fn compatibility(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|s| self.data.subjects.get(s))
            .and_then(|sub| sub.compatibility)
            .unwrap_or(self.data.compatibility)
    }

    /// The subject's own compatibility level, if it has one.
    #[must_use]
    pub fn subject_compatibility(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.data
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
    }

    /// Sets the global level (`subject` `None`) or a subject's level. A subject's level may be
    /// set before its first version.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub fn set_compatibility(
        &mut self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let mut next = self.data.clone();
        match subject {
            None => next.compatibility = level,
            Some(s) => next.subjects.entry(s.to_owned()).or_default().compatibility = Some(level),
        }
        self.commit(next)
    }

    /// Removes a subject's own level and returns it.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SubjectCompatibilityNotConfigured`], or storage errors.
    pub fn delete_subject_compatibility(
        &mut self,
        subject: &str,
    ) -> Result<CompatibilityLevel, RegistryError> {
        let mut next = self.data.clone();
        let previous = next
            .subjects
            .get_mut(subject)
            .and_then(|s| s.compatibility.take())
            .ok_or_else(|| RegistryError::SubjectCompatibilityNotConfigured {
                subject: subject.to_owned(),
            })?;
        drop_if_empty(&mut next, subject);
        self.commit(next)?;
        Ok(previous)
    }

    /// Deletes a subject and returns the deleted version numbers.
    ///
    /// A soft delete hides every live version (ids stay resolvable, version numbers are not
    /// reused). A permanent delete removes a subject that was soft-deleted first.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SubjectNotFound`], [`RegistryError::SubjectSoftDeleted`],
    /// [`RegistryError::SubjectNotSoftDeleted`], or storage errors.
    pub fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let all = self
            .visible(subject, true)
            .ok_or_else(|| RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            })?;
        let live: Vec<u32> = all
            .iter()
            .filter(|v| !v.deleted)
            .map(|v| v.version)
            .collect();
        let mut next = self.data.clone();
        let deleted = if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            next.subjects.remove(subject);
            all.iter().map(|v| v.version).collect()
        } else {
            if live.is_empty() {
                return Err(RegistryError::SubjectSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            if let Some(sub) = next.subjects.get_mut(subject) {
                sub.versions.iter_mut().for_each(|v| v.deleted = true);
            }
            live
        };
        self.commit(next)?;
        Ok(deleted)
    }

    /// Deletes one version of a subject and returns its number; soft and permanent as in
    /// [`Self::delete_subject`].
    ///
    /// # Errors
    ///
    /// [`RegistryError::SubjectNotFound`], [`RegistryError::VersionNotFound`],
    /// [`RegistryError::VersionSoftDeleted`], [`RegistryError::VersionNotSoftDeleted`], or
    /// storage errors.
    pub fn delete_version(
        &mut self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        // `latest` means the latest live version; a number may name a soft-deleted one.
        let v = match selector {
            VersionSelector::Latest => self.resolve(subject, selector, false)?,
            VersionSelector::Number(_) => self.resolve(subject, selector, true)?,
        };
        let mut next = self.data.clone();
        let Some(sub) = next.subjects.get_mut(subject) else {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        };
        match (permanent, v.deleted) {
            (false, true) => {
                return Err(RegistryError::VersionSoftDeleted {
                    subject: subject.to_owned(),
                    version: v.version,
                });
            }
            (true, false) => {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject.to_owned(),
                    version: v.version,
                });
            }
            (false, false) => sub
                .versions
                .iter_mut()
                .filter(|x| x.version == v.version)
                .for_each(|x| x.deleted = true),
            (true, true) => {
                sub.versions.retain(|x| x.version != v.version);
                drop_if_empty(&mut next, subject);
            }
        }
        self.commit(next)?;
        Ok(v.version)
    }
}

/// Removes a subject entry that holds nothing any more.
fn drop_if_empty(data: &mut StoreData, subject: &str) {
    if data
        .subjects
        .get(subject)
        .is_some_and(|s| s.versions.is_empty() && s.compatibility.is_none())
    {
        data.subjects.remove(subject);
    }
}

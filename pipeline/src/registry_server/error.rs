//! [`RegistryError`]: everything the registry store and its HTTP layer can fail with.

use std::io;
use std::path::PathBuf;

/// An error of the embedded schema registry.
///
/// The first group of variants are client errors that the HTTP layer maps to Confluent's
/// error codes (404xx, 409, 422xx); the last group are storage failures (HTTP 500).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject has no (visible) versions. Confluent code 40401.
    #[error("subject {subject:?} not found")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but not this version. Confluent code 40402.
    #[error("version {version} of subject {subject:?} not found")]
    VersionNotFound {
        /// The subject asked for.
        subject: String,
        /// The version asked for, as given (`latest` or a number).
        version: String,
    },
    /// No schema has this global id. Confluent code 40403.
    #[error("schema with id {id} not found")]
    SchemaIdNotFound {
        /// The id asked for.
        id: u32,
    },
    /// The schema is not registered under the subject. Confluent code 40403.
    #[error("schema is not registered under subject {subject:?}")]
    SchemaNotRegistered {
        /// The subject searched.
        subject: String,
    },
    /// The subject was soft-deleted already. Confluent code 40404.
    #[error("subject {subject:?} was soft deleted; set permanent=true to delete it permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete was asked for a subject that was not soft-deleted first.
    /// Confluent code 40405.
    #[error("subject {subject:?} was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// The version was soft-deleted already. Confluent code 40406.
    #[error("version {version} of subject {subject:?} was soft deleted")]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// A permanent delete was asked for a version that was not soft-deleted first.
    /// Confluent code 40407.
    #[error("version {version} of subject {subject:?} was not deleted first")]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// The subject has no compatibility level of its own. Confluent code 40408.
    #[error("subject {subject:?} does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured {
        /// The subject.
        subject: String,
    },
    /// The new schema fails the compatibility check. HTTP 409, code 409.
    #[error(
        "schema being registered is incompatible with an earlier schema for subject {subject:?}: {details}",
        details = .messages.join("; ")
    )]
    IncompatibleSchema {
        /// The subject registered under.
        subject: String,
        /// One message per failed check.
        messages: Vec<String>,
    },
    /// The schema text is not a valid Avro schema. Confluent code 42201.
    #[error("invalid schema: {reason}")]
    InvalidSchema {
        /// What the parser said, with its source chain.
        reason: String,
    },
    /// A `schemaType` other than `AVRO`. Confluent code 42201.
    #[error("unsupported schema type {schema_type:?}; this registry supports AVRO only")]
    UnsupportedSchemaType {
        /// The type asked for.
        schema_type: String,
    },
    /// Schema references were given; this registry does not resolve them. Confluent code 42201.
    #[error("schema references are not supported by the embedded registry")]
    ReferencesUnsupported,
    /// A version that is neither `latest`, `-1` nor a positive 32-bit number. Confluent code 42202.
    #[error(
        "the specified version {version:?} is not valid; use \"latest\" or a number from 1 to 2^31-1"
    )]
    InvalidVersion {
        /// The version as given.
        version: String,
    },
    /// An unknown compatibility level. Confluent code 42203.
    #[error("invalid compatibility level {level:?}")]
    InvalidCompatibilityLevel {
        /// The level as given.
        level: String,
    },
    /// The request body or a path segment could not be understood. HTTP 422, code 422.
    #[error("malformed request: {reason}")]
    MalformedRequest {
        /// What was wrong.
        reason: String,
    },
    /// All 2^31-1 global ids or versions are used up.
    #[error("no global schema id or version number is left")]
    IdsExhausted,
    /// Reading or writing the store file failed.
    #[error("could not {action} {path}")]
    Io {
        /// What was being done, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The store file exists but cannot be loaded.
    #[error("registry store {path} is corrupt: {reason}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be encoded as JSON.
    #[error("could not encode the registry store")]
    Encode {
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// An internal invariant broke (a stored version points at an unknown schema id, or a
    /// blocking task failed).
    #[error("internal registry error: {reason}")]
    Internal {
        /// What broke.
        reason: String,
    },
}

impl RegistryError {
    /// The HTTP status and Confluent `error_code` of this error.
    #[must_use]
    pub fn status_and_code(&self) -> (u16, u32) {
        match self {
            Self::SubjectNotFound { .. } => (404, 40401),
            Self::VersionNotFound { .. } => (404, 40402),
            Self::SchemaIdNotFound { .. } | Self::SchemaNotRegistered { .. } => (404, 40403),
            Self::SubjectSoftDeleted { .. } => (404, 40404),
            Self::SubjectNotSoftDeleted { .. } => (404, 40405),
            Self::VersionSoftDeleted { .. } => (404, 40406),
            Self::VersionNotSoftDeleted { .. } => (404, 40407),
            Self::SubjectCompatibilityNotConfigured { .. } => (404, 40408),
            Self::IncompatibleSchema { .. } => (409, 409),
            Self::InvalidSchema { .. }
            | Self::UnsupportedSchemaType { .. }
            | Self::ReferencesUnsupported => (422, 42201),
            Self::InvalidVersion { .. } => (422, 42202),
            Self::InvalidCompatibilityLevel { .. } => (422, 42203),
            Self::MalformedRequest { .. } => (422, 422),
            Self::IdsExhausted
            | Self::Io { .. }
            | Self::Corrupt { .. }
            | Self::Encode { .. }
            | Self::Internal { .. } => (500, 50001),
        }
    }

    /// Whether this is a server-side failure (whose details must not reach the client).
    #[must_use]
    pub fn is_internal(&self) -> bool {
        self.status_and_code().0 >= 500
    }
}

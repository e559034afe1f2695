//! Registry-aware Avro: values are framed in the Confluent wire format with the id the
//! Schema Registry gave their schema; readers fetch the writer's schema by id (cached) and
//! resolve it to their own, so old and new producers can share a topic.

use apache_avro::Schema;
use mfh_schemas::{AvroRecord, DecodeError, wire};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a record could not be decoded: bad bytes (dead-letter it) or an unreachable
/// registry (retry later).
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    /// The bytes are not a valid record of the expected type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The registry could not be asked.
    #[error("schema registry: {0}")]
    Registry(String),
    /// The value does not fit its schema.
    #[error(transparent)]
    Encode(#[from] mfh_schemas::EncodeError),
}

impl AvroError {
    /// Whether the record itself is at fault (so retrying cannot help).
    #[must_use]
    pub fn is_bad_record(&self) -> bool {
        matches!(self, Self::Decode(_))
    }
}

/// Encoder and decoder bound to one Schema Registry. Cheap to clone.
#[derive(Clone)]
pub struct AvroSerde {
    settings: Arc<SrSettings>,
    ids: Arc<Mutex<HashMap<String, u32>>>,
    writers: Arc<Mutex<HashMap<u32, Arc<Schema>>>>,
}

impl std::fmt::Debug for AvroSerde {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSerde").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache is still a valid cache: entries are inserted whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AvroSerde {
    /// A serde talking to the registry at `url`.
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            settings: Arc::new(SrSettings::new(url.trim_end_matches('/').to_owned())),
            ids: Arc::default(),
            writers: Arc::default(),
        }
    }

    /// Registers `T`'s schema under `subject` (idempotent) and returns its id.
    ///
    /// # Errors
    /// [`AvroError::Registry`] when the registry refuses (e.g. incompatible) or is down.
    pub async fn register<T: AvroRecord>(&self, subject: &str) -> Result<u32, AvroError> {
        if let Some(id) = lock(&self.ids).get(subject) {
            return Ok(*id);
        }
        let supplied = SuppliedSchema::new(
            Some(T::full_name()),
            SchemaType::Avro,
            T::SCHEMA_JSON.to_owned(),
        );
        let registered = post_schema(&self.settings, subject.to_owned(), supplied)
            .await
            .map_err(|e| AvroError::Registry(format!("register {subject}: {}", sr(&e))))?;
        lock(&self.ids).insert(subject.to_owned(), registered.id);
        lock(&self.writers).insert(registered.id, Arc::new(T::schema().clone()));
        Ok(registered.id)
    }

    /// Encodes `value` for `subject`, registering its schema on first use.
    ///
    /// # Errors
    /// [`AvroError`] when registration or encoding fails.
    pub async fn encode<T: AvroRecord>(
        &self,
        subject: &str,
        value: &T,
    ) -> Result<Vec<u8>, AvroError> {
        let id = self.register::<T>(subject).await?;
        Ok(wire::encode(value, id)?)
    }

    /// Decodes a framed record into `T`, fetching the writer's schema by id once.
    ///
    /// # Errors
    /// [`AvroError::Decode`] for bytes that are not a valid `T` (including an id the
    /// registry does not know); [`AvroError::Registry`] when the registry is unreachable.
    pub async fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, AvroError> {
        let (id, body) = wire::split_frame(bytes)?;
        let writer = self.writer(id).await?;
        Ok(wire::decode_body::<T>(&writer, body)?)
    }

    async fn writer(&self, id: u32) -> Result<Arc<Schema>, AvroError> {
        if let Some(s) = lock(&self.writers).get(&id) {
            return Ok(s.clone());
        }
        let fetched = match get_schema_by_id(id, &self.settings).await {
            Ok(f) => f,
            Err(e) if e.error.contains("status 404") => {
                return Err(DecodeError::UnknownSchema(id).into());
            }
            Err(e) => return Err(AvroError::Registry(format!("schema {id}: {}", sr(&e)))),
        };
        let schema =
            Schema::parse_str(&fetched.schema).map_err(|_| DecodeError::UnknownSchema(id))?;
        let schema = Arc::new(schema);
        lock(&self.writers).insert(id, schema.clone());
        Ok(schema)
    }
}

fn sr(e: &SRCError) -> String {
    format!("{} ({})", e.error, e.cause.as_deref().unwrap_or("no cause"))
}
